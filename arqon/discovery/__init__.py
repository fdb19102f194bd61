"""Offline discovery: searches that propose catalog variants, six promotion gates, evaluations on any executor.

``discover(spec)`` (``arqon discover SPEC``) runs a spec's search (CMA-ES, ES or a GA), sends its best candidates
through the gates (correctness, constraints, robustness, regression, staging canary, signed approval) and promotes
those that pass into a catalog. The runtime never imports this package.
"""

from arqon._lazy import lazy_exports

_EXPORTS = {"Candidate": "arqon.discovery.run", "Outcome": "arqon.discovery.run", "discover": "arqon.discovery.run",
            "Spec": "arqon.discovery.spec", "load_spec": "arqon.discovery.spec"}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("arqon.discovery", globals(), _EXPORTS)
