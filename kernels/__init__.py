"""arqon's compiled hot path. Imports numpy and numba only; every kernel is public and callable inside ``@njit``.

A tuner state is one float64 array, the whole buffer (see ``state``): copy it, ``np.save`` it or pickle it and the
copy is a state too; anything else given to a kernel gets ``BAD_STATE`` and is left untouched (the executor's and the
telemetry's states, in ``guard`` and ``stats``, follow the same rule). Build it with ``arqon.Tuner(config).state``,
then ``ask``, ``tell`` and ``step`` it from Python or from your own ``@njit`` loop, reading proposals through
``proposal(state)``. Population
strategies (ES, PBT, CMA-ES) also hand out a whole generation: ``ask_batch``, ``batch``, ``tell_batch``.
"""

from ._status import BAD_STATE, BUDGET_EXHAUSTED, NONFINITE, NOT_ASKED, OK
from ._jit import drop_stale_cache
from .api import ask, ask_batch, batch, open_state, proposal, recommend, reopen, step, tell, tell_batch
from .rng import rng_next, rng_normal, rng_rademacher, rng_seed, rng_uniform, splitmix64_next
from .state import HEADER, ROWS, header, matrix, new_state, vector

__all__ = [
    "BAD_STATE", "BUDGET_EXHAUSTED", "HEADER", "NONFINITE", "NOT_ASKED", "OK", "ROWS", "ask", "ask_batch", "batch",
    "drop_stale_cache", "header", "matrix", "new_state", "open_state", "proposal", "recommend", "reopen", "rng_next",
    "rng_normal", "rng_rademacher", "rng_seed", "rng_uniform", "splitmix64_next", "step", "tell", "tell_batch",
    "vector",
]
