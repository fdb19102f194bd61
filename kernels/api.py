"""The public kernels over a tuner state (one array): callable from Python or inside the user's ``@njit`` code.

Each opens the state once (a header view and the matrix behind it, neither reference-counted) and runs its strategy:
SPSA's inlined cores, or a population strategy (ES, PBT, CMA-ES) through ``population``. An array that is not a tuner
state gets ``BAD_STATE`` and is left untouched.
"""

import numba
import numpy as np
from numba import types as t

from ._jit import borrow, kernel, view_at
from ._status import BAD_STATE, OK
from .cmaes import cma_recommended_row, cma_sample, cma_start, cma_update
from .es import es_sample, es_update
from .pbt import pbt_sample, pbt_update
from .population import exhausted, pop_ask, pop_ask_batch, pop_tell, pop_tell_batch
from .spsa import spsa_ask, spsa_reopen, spsa_tell, to_user
from .state import CENTER, CMAES, ES, HEADER, HEADER_BYTES, MAGIC, ROWS, SPSA, STATE_TYPE, THETA, X


@numba.njit(inline="always")
def _matrix(state):
    return view_at(state.ctypes.data + HEADER_BYTES, (state[0]["rows"], state[0]["d"]), np.float64)


@numba.njit(inline="always")
def _common(state):
    """The matrix's first ROWS rows: all SPSA uses. A constant row count lets LLVM fold the row offsets."""
    return view_at(state.ctypes.data + HEADER_BYTES, (ROWS, state[0]["d"]), np.float64)


@numba.njit(inline="always")
def _vector(state):
    h = state[0]
    return view_at(state.ctypes.data + HEADER_BYTES + 8 * h["rows"] * h["d"], h["n_vec"], np.float64)


@kernel(t.void(STATE_TYPE))
def _sample(hdr):
    """Write the next generation of a population strategy. Mutates: state. Allocates: nothing."""
    m, v = _matrix(hdr), _vector(hdr)
    s = hdr[0]["strategy"]
    if s == ES:
        es_sample(hdr, m, v)
    elif s == CMAES:
        cma_sample(hdr, m, v)
    else:
        pbt_sample(hdr, m, v)


@kernel(t.void(STATE_TYPE))
def _update_when_complete(hdr):
    """Once every member of the written generation is back, update the population strategy and let the next ask
    sample anew (once: a generation already used waits for the next sample). Mutates: state. Allocates: nothing."""
    h = hdr[0]
    if h["sampled"] == 0 or h["n_back"] < h["n_pop"]:
        return
    m, v = _matrix(hdr), _vector(hdr)
    if h["strategy"] == ES:
        es_update(hdr, m, v)
    elif h["strategy"] == CMAES:
        cma_update(hdr, m, v)
    else:
        pbt_update(hdr, m, v)
    h["sampled"] = 0
    h["n_gen_total"] += 1


@kernel(t.int64(STATE_TYPE))
def _population_ask(hdr):
    m = _matrix(hdr)
    if hdr[0]["pending"] == 0 and hdr[0]["sampled"] == 0 and exhausted(hdr, m) == OK:
        _sample(hdr)
    return pop_ask(hdr, m)


@kernel(t.int64(STATE_TYPE, t.float64))
def _population_tell(hdr, value):
    status = pop_tell(hdr, _matrix(hdr), _vector(hdr), value)
    _update_when_complete(hdr)
    return status


@kernel(t.int64(STATE_TYPE))
def ask(state):
    """Write the next proposal into the X row (see ``proposal``). Asking again before a tell repeats it.
    Mutates: state. Allocates: nothing. Returns: status flags."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    if h[0]["strategy"] == SPSA:
        return spsa_ask(h, _common(h))
    return _population_ask(h)


@kernel(t.int64(STATE_TYPE, t.float64))
def tell(state, value):
    """Accept the measured value of the outstanding proposal. Mutates: state. Allocates: nothing.
    Returns: status flags (NONFINITE and NOT_ASKED leave the state unchanged)."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    if h[0]["strategy"] == SPSA:
        return spsa_tell(h, _common(h), value)
    return _population_tell(h, value)


@kernel(t.int64(STATE_TYPE, t.float64))
def step(state, value):
    """Tell ``value``, then write the next proposal: one call per measurement. Mutates: state. Allocates: nothing.
    Returns: status flags of both, also kept in the header's ``status``."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    if h[0]["strategy"] == SPSA:
        m = _common(h)
        status = spsa_tell(h, m, value) | spsa_ask(h, m)
    else:
        status = _population_tell(h, value) | _population_ask(h)
    h[0]["status"] = status
    return status


@kernel(t.int64(t.uintp, t.float64), nogil=False)
def step_at(address, value):
    """``step`` on the state whose header is at ``address``: the Python path, where passing one address costs less than
    passing an array, and keeping the GIL less than releasing it. The caller must hold the state.
    Mutates, allocates and returns as ``step``."""
    return step(view_at(address, 1, HEADER), value)


@kernel(t.int64(STATE_TYPE))
def ask_batch(state):
    """Hand out a batch: every member of the current generation not yet out (SPSA: its one proposal), no more than the
    budget allows. The batch is rows ``batch_start`` .. + ``batch_n`` of the user block at ``r_user`` (see
    ``batch``). Asking again before ``tell_batch`` repeats it. Mutates: state. Allocates: nothing.
    Returns: status flags (BUDGET_EXHAUSTED: batch_n is 0)."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    if h[0]["strategy"] == SPSA:  # SPSA's batch is its one proposal: ``ask``
        status = ask(h)
        h[0]["batch_n"] = 0 if status != OK else 1
        return status
    m = _matrix(h)
    if h[0]["pending"] != 2 and h[0]["sampled"] == 0 and exhausted(h, m) == OK:
        _sample(h)
    return pop_ask_batch(h, m)


@kernel(t.int64(STATE_TYPE, t.float64[::1]))
def tell_batch(state, values):
    """Accept the values of the batch out, in its order; NaN/inf (or a value not given) marks a member missing:
    the strategy updates from the others (SPSA keeps its proposal out). Mutates: state. Allocates: nothing.
    Returns: status flags (NONFINITE: some were missing; NOT_ASKED: no batch out, nothing changed)."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    if h[0]["strategy"] == SPSA:  # its one value: ``tell``
        return tell(h, values[0] if values.shape[0] > 0 else np.nan)
    status = pop_tell_batch(h, _matrix(h), _vector(h), borrow(values))
    _update_when_complete(h)
    return status


@kernel(t.float64[:, ::1](STATE_TYPE))
def batch(state):
    """The batch out (see ``ask_batch``) as a (batch_n, d) view, valid while the caller holds ``state``.
    Allocates: nothing."""
    h = borrow(state)
    start = h[0]["r_user"] + h[0]["batch_start"]
    return _matrix(h)[start:start + h[0]["batch_n"]]


@kernel(t.int64(STATE_TYPE))
def recommend(state):
    """Write the current estimate of the optimum (theta: SPSA's estimate, the ES mean, PBT's best-scored member; for
    CMA-ES the mean of the best run, see ``cma_recommended_row``), in user units, into the CENTER row. Mutates: state.
    Allocates: nothing. Returns: status flags."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    src = cma_recommended_row(h) if h[0]["strategy"] == CMAES else THETA
    to_user(h, _matrix(h), src, src, 0.0, CENTER)
    return OK


@kernel(t.float64[::1](STATE_TYPE))
def proposal(state):
    """The current proposal (the X row) as a view, valid while the caller holds ``state``. Allocates: nothing."""
    return _matrix(borrow(state))[X]


@kernel(t.void(STATE_TYPE))
def reopen_exploration(hdr):
    """Re-open exploration after the objective drifted, for any strategy: SPSA restarts its decaying gains
    (``spsa_reopen``); ES and CMA-ES go back to their starting step size (CMA-ES also to C = I), keeping theta; PBT
    forgets its scores, so members are judged on fresh values. The best value, measured before the drift, is
    forgotten. Mutates: hdr and the strategy's blocks. Allocates: nothing."""
    h = hdr[0]
    if h["strategy"] == SPSA:
        spsa_reopen(hdr)
        return
    h["has_best"] = 0
    if h["strategy"] == ES:
        h["sigma"] = h["sigma0"]
    elif h["strategy"] == CMAES:
        cma_start(hdr, _matrix(hdr), _vector(hdr), h["n_pop"])
    else:
        v = _vector(hdr)
        for j in range(h["n_pop"]):
            v[h["v_w"] + j] = np.nan


@kernel(t.int64(STATE_TYPE))
def reopen(state):
    """Re-open exploration (see ``reopen_exploration``): for a drift the caller detected itself. Mutates: state.
    Allocates: nothing. Returns: status flags."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    reopen_exploration(h)
    return OK
