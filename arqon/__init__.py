"""arqon: machine-speed online tuning of live systems.

``Tuner`` proposes parameter values and learns from measured values; ``arqon.kernels`` holds the same logic as Numba
kernels for use inside ``@njit`` loops. The shell's names load on first use, so ``import arqon.kernels`` stays light
(numpy and numba only).
"""

from arqon._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "arqon.config", "ConfigError": "arqon.config", "Param": "arqon.config", "Spsa": "arqon.config",
    "load_config": "arqon.config", "Status": "arqon.status",
    "Best": "arqon.tuner", "BudgetExhausted": "arqon.tuner", "Tuner": "arqon.tuner",
    "Executor": "arqon.executor", "Flags": "arqon.executor", "Phase": "arqon.executor",
    "Policy": "arqon.policy", "load_policy": "arqon.policy",
    "Ring": "arqon.telemetry", "Summary": "arqon.telemetry", "Telemetry": "arqon.telemetry",
    "TelemetryConfig": "arqon.telemetry", "load_telemetry_config": "arqon.telemetry",
    "AuditLog": "arqon.audit", "LogCorrupt": "arqon.audit",
    "Selector": "arqon.selector", "SelectorConfig": "arqon.selector", "load_selector_config": "arqon.selector",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("arqon", globals(), _EXPORTS)
