"""arqon's compiled hot path. Imports numpy and numba only; every kernel is public and callable inside ``@njit``.

A tuner state is one array (see ``state``): build it with ``arqon.Tuner(config).state``, then ``ask``, ``tell`` and
``step`` it from Python or from your own ``@njit`` loop, reading proposals through ``proposal(state)``. Population
strategies (ES, PBT, CMA-ES) also hand out a whole generation: ``ask_batch``, ``batch``, ``tell_batch``.
"""

from ._status import BAD_STATE, BUDGET_EXHAUSTED, NONFINITE, NOT_ASKED, OK
from ._jit import drop_stale_cache
from .api import ask, ask_batch, batch, proposal, recommend, reopen, step, step_at, tell, tell_batch
from .rng import rng_next, rng_normal, rng_rademacher, rng_seed, rng_uniform, splitmix64_next
from .state import HEADER, ROWS, matrix, new_state

__all__ = [
    "BAD_STATE", "BUDGET_EXHAUSTED", "HEADER", "NONFINITE", "NOT_ASKED", "OK", "ROWS", "ask", "ask_batch", "batch",
    "drop_stale_cache", "matrix", "new_state", "proposal", "recommend", "reopen", "rng_next", "rng_normal",
    "rng_rademacher", "rng_seed", "rng_uniform", "splitmix64_next", "step", "step_at", "tell", "tell_batch",
]
