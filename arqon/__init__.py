"""arqon: machine-speed online tuning of live systems.

``Tuner`` proposes parameter values and learns from measured values; ``arqon.kernels`` holds the same logic as Numba
kernels for use inside ``@njit`` loops.
"""

from arqon.config import Config, ConfigError, Param, Spsa, load_config
from arqon.status import Status
from arqon.tuner import Best, BudgetExhausted, Tuner

__version__ = "0.1.0"

__all__ = ["Best", "BudgetExhausted", "Config", "ConfigError", "Param", "Spsa", "Status", "Tuner", "load_config"]
