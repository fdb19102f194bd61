"""Offline discovery: searches that propose catalog variants, six promotion gates, evaluations on any executor.

``discover(spec)`` (``arqon discover SPEC``) runs a spec's search (CMA-ES, ES or a GA), sends its best candidates
through the gates (correctness, constraints, robustness, regression, staging canary, signed approval) and promotes
those that pass into a catalog. The runtime never imports this package.
"""

import importlib

_EXPORTS = {"Candidate": "arqon.discovery.run", "Outcome": "arqon.discovery.run", "discover": "arqon.discovery.run",
            "Spec": "arqon.discovery.spec", "load_spec": "arqon.discovery.spec"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):  # loaded on first use: `arqon --help` does not import the discovery machinery
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arqon.discovery' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
