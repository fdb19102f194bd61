"""arqon's compiled hot path. Imports numpy and numba only; every kernel is public and callable inside ``@njit``."""

from ._status import BUDGET_EXHAUSTED, NONFINITE, NOT_ASKED, OK
from .api import ask, step, tell
from .rng import rng_next, rng_rademacher, rng_seed, rng_uniform, splitmix64_next
from .state import HEADER, ROWS, TunerState, empty_state

__all__ = [
    "BUDGET_EXHAUSTED", "HEADER", "NONFINITE", "NOT_ASKED", "OK", "ROWS", "TunerState", "ask", "empty_state",
    "rng_next", "rng_rademacher", "rng_seed", "rng_uniform", "splitmix64_next", "step", "tell",
]
