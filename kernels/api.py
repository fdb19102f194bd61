"""The public kernels over a tuner state (one array): callable from Python or inside the user's ``@njit`` code.

A state is the whole float64 buffer (``state.py``). Each kernel first opens it with ``open_state``, which fails
closed: an array that is not a whole, consistent tuner state (a header alone, a truncated or corrupted buffer, another
component's state) gets ``BAD_STATE`` and nothing is read past its header or written. It then takes a header view and
the matrix behind it (neither reference-counted) and runs its strategy: SPSA's inlined cores, or a population strategy
(ES, PBT, CMA-ES) through ``population``.
"""

import numba
import numpy as np
from numba import types as t

from ._jit import kernel, view_at
from ._status import BAD_STATE, OK
from .cmaes import cma_recommended_row, cma_sample, cma_start, cma_update
from .es import es_sample, es_update
from .pbt import pbt_sample, pbt_update
from .population import pop_ask, pop_ask_batch, pop_tell, pop_tell_batch
from .spsa import exhausted, spsa_ask, spsa_reopen, spsa_tell, to_user
from .state import (
    BLOCK_TABLE, CENTER, CMAES, ES, HDR_TYPE, HEADER, HEADER_BYTES, HEADER_WORDS, LAYOUT_MASK, LAYOUT_TABLE, MAGIC, MAX_D,
    PBT, PENDING_BATCH, PENDING_NONE, PENDING_ONE, ROWS, SPSA, STATE_TYPE, THETA, X,
)

MAX_ROWS = 1 << 32  # rows of any valid state are far fewer: bounds the word count's product against overflow


@numba.njit(inline="always")
def _header(buf):
    return view_at(buf.ctypes.data, 1, HEADER)


@numba.njit(inline="always")
def _matrix(hdr):
    return view_at(hdr.ctypes.data + HEADER_BYTES, (hdr[0]["rows"], hdr[0]["d"]), np.float64)


@numba.njit(inline="always")
def _common(hdr):
    """The matrix's first ROWS rows: all SPSA uses. A constant row count lets LLVM fold the row offsets."""
    return view_at(hdr.ctypes.data + HEADER_BYTES, (ROWS, hdr[0]["d"]), np.float64)


@numba.njit(inline="always")
def _vector(hdr):
    h = hdr[0]
    return view_at(hdr.ctypes.data + HEADER_BYTES + 8 * h["rows"] * h["d"], h["n_vec"], np.float64)


@kernel(t.boolean(t.int64[::1], t.int64, t.int64, t.int64))
def _blocks_fit(words, strategy, rows, n_vec):
    """True when every block the strategy declares (``BLOCK_TABLE``) lies within its region: matrix rows ROWS..rows,
    vector words 0..n_vec (each bounded by the buffer's size, so no product below overflows). A block of size 0 is
    never read, wherever its offset points. ``words``: the header as int64 words. Allocates: nothing."""
    for b in range(BLOCK_TABLE.shape[1]):
        at, fa, fb, region = BLOCK_TABLE[strategy, b, 0], BLOCK_TABLE[strategy, b, 1], BLOCK_TABLE[strategy, b, 2], \
            BLOCK_TABLE[strategy, b, 3]
        if at < 0:
            break
        low, high = (ROWS, rows) if region == 0 else (0, n_vec)
        a = words[fa] if fa >= 0 else 1
        c = words[fb] if fb >= 0 else 1
        if a < 0 or c < 0:
            return False
        if a == 0 or c == 0:
            continue
        if a > high or c > high // a or words[at] < low or words[at] > high - a * c:
            return False
    return True


@kernel(t.boolean(HDR_TYPE))
def _counters_fit(hdr):
    """True when a population state's counters lie within its generation (and CMA-ES's model sizes match d), so
    that indices built from them stay inside the blocks ``_blocks_fit`` checked. Allocates: nothing."""
    h = hdr[0]
    m, n = h["n_pop_max"], h["n_pop"]
    if m < 1 or n < 1 or n > m or h["pending"] < PENDING_NONE or h["pending"] > PENDING_BATCH:
        return False
    if h["i_ask"] < 0 or h["i_ask"] > n or h["mu"] < 0 or h["mu"] > n or h["sampled"] < 0 or h["sampled"] > 1:
        return False
    if h["batch_start"] < 0 or h["batch_n"] < 0 or h["batch_start"] > n or h["batch_n"] > n - h["batch_start"]:
        return False
    out = 1 if h["pending"] == PENDING_ONE else h["batch_n"] if h["pending"] == PENDING_BATCH else 0
    if h["n_back"] != h["i_ask"] - out or h["n_back"] < 0:  # members back = handed out - still out
        return False
    if h["pending"] == PENDING_BATCH and h["batch_start"] + h["batch_n"] != h["i_ask"]:
        return False
    if h["pending"] == PENDING_NONE and h["sampled"] == 1 and h["i_ask"] >= n:  # a complete generation is updated
        return False
    if h["strategy"] != CMAES:
        return True
    d, a = h["d"], h["n_arch"]
    if h["model_member"] < -1 or h["model_member"] >= n:
        return False
    return a == 0 or (h["n_feat"] == (d + 1) * (d + 2) // 2 and h["d_model"] == d and h["i_arch"] >= 0
                      and h["i_arch"] < a and h["n_arch_filled"] >= 0 and h["n_arch_filled"] <= a)


@kernel(t.int64(STATE_TYPE), inline=True)
def open_state(buf):
    """OK when ``buf`` is a whole tuner state that its kernels can run on: its magic, its strategy's layout id, a word
    count equal to the array's size and to what its sizes add up to, and (population strategies) every offset and
    counter within its blocks; else BAD_STATE. A copy, an ``np.save``/``np.load`` round trip or a pickle of a state is
    a state; a header alone, a truncated or corrupted buffer, or another component's state is not.
    Reads: the header only. Allocates: nothing."""
    n = buf.shape[0]
    if n < HEADER_WORDS:
        return BAD_STATE
    h = _header(buf)[0]
    s, d, rows, n_vec = h["strategy"], h["d"], h["rows"], h["n_vec"]
    # one branch for all of them (the comparisons ORed): a state that passes costs no mispredicted exit; the layout
    # id is looked up at s & LAYOUT_MASK, in the table whatever s is, and counts only when s is in range
    bad = (h["magic"] != MAGIC) | (h["words"] != n) | (s < SPSA) | (s > CMAES)
    bad |= h["layout"] != LAYOUT_TABLE[s & LAYOUT_MASK]
    bad |= (d < 1) | (d > MAX_D) | (rows < ROWS) | (rows > MAX_ROWS) | (n_vec < 0) | (n_vec > n)
    bad |= (h["n_log"] < 0) | (h["n_log"] > d) | (h["n_periodic"] < 0) | (h["n_periodic"] > d)
    if bad or HEADER_WORDS + rows * d + n_vec != n:
        return BAD_STATE
    if s != SPSA and not (_blocks_fit(view_at(buf.ctypes.data, HEADER_WORDS, np.int64), s, rows, n_vec)
                          and _counters_fit(_header(buf))):
        return BAD_STATE
    return OK


@kernel(t.void(HDR_TYPE))
def _sample(hdr):
    """Write the next generation of a population strategy. Mutates: state. Allocates: nothing."""
    m, v = _matrix(hdr), _vector(hdr)
    s = hdr[0]["strategy"]
    if s == ES:
        es_sample(hdr, m, v)
    elif s == CMAES:
        cma_sample(hdr, m, v)
    elif s == PBT:
        pbt_sample(hdr, m, v)


@kernel(t.void(HDR_TYPE))
def _update_when_complete(hdr):
    """Once every member of the written generation is back, update the population strategy and let the next ask
    sample anew (once: a generation already used waits for the next sample). Mutates: state. Allocates: nothing."""
    h = hdr[0]
    if h["sampled"] == 0 or h["n_back"] < h["n_pop"]:
        return
    m, v = _matrix(hdr), _vector(hdr)
    s = h["strategy"]
    if s == ES:
        es_update(hdr, m, v)
    elif s == CMAES:
        cma_update(hdr, m, v)
    elif s == PBT:
        pbt_update(hdr, m, v)
    h["sampled"] = 0
    h["n_gen_total"] += 1


@kernel(t.int64(HDR_TYPE))
def _population_ask(hdr):
    m = _matrix(hdr)
    if hdr[0]["pending"] == PENDING_NONE and hdr[0]["sampled"] == 0 and exhausted(hdr, m) == OK:
        _sample(hdr)
    return pop_ask(hdr, m)


@kernel(t.int64(HDR_TYPE, t.float64))
def _population_tell(hdr, value):
    status = pop_tell(hdr, _matrix(hdr), _vector(hdr), value)
    _update_when_complete(hdr)
    return status


@kernel(t.int64(STATE_TYPE))
def ask(state):
    """Write the next proposal into the X row (see ``proposal``). Asking again before a tell repeats it.
    Mutates: state. Allocates: nothing. Returns: status flags (BAD_STATE: see ``open_state``; nothing touched)."""
    if open_state(state) != OK:
        return BAD_STATE
    h = _header(state)
    if h[0]["strategy"] == SPSA:
        return spsa_ask(h, _common(h))
    return _population_ask(h)


@kernel(t.int64(STATE_TYPE, t.float64))
def tell(state, value):
    """Accept the measured value of the outstanding proposal. Mutates: state. Allocates: nothing.
    Returns: status flags (NONFINITE, NOT_ASKED and BAD_STATE leave the state unchanged)."""
    if open_state(state) != OK:
        return BAD_STATE
    h = _header(state)
    if h[0]["strategy"] == SPSA:
        return spsa_tell(h, _common(h), value)
    return _population_tell(h, value)


@kernel(t.int64(STATE_TYPE, t.float64))
def step(state, value):
    """Tell ``value``, then write the next proposal: one call per measurement. Mutates: state. Allocates: nothing.
    Returns: status flags of both, also kept in the header's ``status`` (BAD_STATE: nothing touched)."""
    if open_state(state) != OK:
        return BAD_STATE
    h = _header(state)
    if h[0]["strategy"] == SPSA:
        m = _common(h)
        status = spsa_tell(h, m, value) | spsa_ask(h, m)
    else:
        status = _population_tell(h, value) | _population_ask(h)
    h[0]["status"] = status
    return status


@kernel(t.int64(t.uintp, t.intp, t.float64), nogil=False)
def step_at(address, words, value):
    """``step`` on the state of ``words`` float64 words at ``address``: the Python path of ``arqon.Tuner``, where
    passing an address costs less than passing an array, and keeping the GIL less than releasing it. Not public: only
    the owner of a state knows its address and length; the caller must hold the state.
    Mutates, allocates and returns as ``step``."""
    return step(view_at(address, words, np.float64), value)


@kernel(t.int64(STATE_TYPE))
def ask_batch(state):
    """Hand out a batch: every member of the current generation not yet out (SPSA: its one proposal), no more than the
    budget allows. The batch is rows ``batch_start`` .. + ``batch_n`` of the user block at ``r_user`` (see
    ``batch``). Asking again before ``tell_batch`` repeats it. Mutates: state. Allocates: nothing.
    Returns: status flags (BUDGET_EXHAUSTED: batch_n is 0)."""
    if open_state(state) != OK:
        return BAD_STATE
    h = _header(state)
    if h[0]["strategy"] == SPSA:  # SPSA's batch is its one proposal: ``ask``
        status = spsa_ask(h, _common(h))
        h[0]["batch_n"] = 0 if status != OK else 1
        return status
    m = _matrix(h)
    if h[0]["pending"] != PENDING_BATCH and h[0]["sampled"] == 0 and exhausted(h, m) == OK:
        _sample(h)
    return pop_ask_batch(h, m)


@kernel(t.int64(STATE_TYPE, t.float64[::1]))
def tell_batch(state, values):
    """Accept the values of the batch out, in its order; NaN/inf (or a value not given) marks a member missing:
    the strategy updates from the others (SPSA keeps its proposal out). Mutates: state. Allocates: nothing.
    Returns: status flags (NONFINITE: some were missing; NOT_ASKED: no batch out, nothing changed)."""
    if open_state(state) != OK:
        return BAD_STATE
    h = _header(state)
    if h[0]["strategy"] == SPSA:  # its one value: ``tell``
        return spsa_tell(h, _common(h), values[0] if values.shape[0] > 0 else np.nan)
    status = pop_tell_batch(h, _matrix(h), _vector(h), values)
    _update_when_complete(h)
    return status


@kernel(t.float64[:, ::1](STATE_TYPE))
def batch(state):
    """The batch out (see ``ask_batch``) as a (batch_n, d) view, valid while the caller holds ``state`` (empty for a
    state that does not open). Allocates: nothing."""
    if open_state(state) != OK:
        return view_at(state.ctypes.data, (0, 1), np.float64)
    h = _header(state)
    start = h[0]["r_user"] + h[0]["batch_start"]
    return _matrix(h)[start:start + h[0]["batch_n"]]


@kernel(t.int64(STATE_TYPE))
def recommend(state):
    """Write the current estimate of the optimum (theta: SPSA's estimate, the ES mean, PBT's best-scored member; for
    CMA-ES the mean of the best run, see ``cma_recommended_row``), in user units, into the CENTER row. Mutates: state.
    Allocates: nothing. Returns: status flags."""
    if open_state(state) != OK:
        return BAD_STATE
    h = _header(state)
    src = cma_recommended_row(h) if h[0]["strategy"] == CMAES else THETA
    to_user(h, _matrix(h), src, src, 0.0, CENTER)
    return OK


@kernel(t.float64[::1](STATE_TYPE))
def proposal(state):
    """The current proposal (the X row) as a view, valid while the caller holds ``state`` (empty for a state that
    does not open). Allocates: nothing."""
    if open_state(state) != OK:
        return view_at(state.ctypes.data, 0, np.float64)
    return _matrix(_header(state))[X]


@kernel(t.void(HDR_TYPE))
def reopen_exploration(hdr):
    """Re-open exploration after the objective drifted, for any strategy: SPSA restarts its decaying gains
    (``spsa_reopen``); ES and CMA-ES go back to their starting step size (CMA-ES also to C = I), keeping theta; PBT
    forgets its scores, so members are judged on fresh values. The best value, measured before the drift, is
    forgotten. The caller opened the state. Mutates: hdr and the strategy's blocks. Allocates: nothing."""
    h = hdr[0]
    s = h["strategy"]
    if s == SPSA:
        spsa_reopen(hdr)
        return
    h["has_best"] = 0
    if s == ES:
        h["sigma"] = h["sigma0"]
    elif s == CMAES:
        cma_start(hdr, _matrix(hdr), _vector(hdr), h["n_pop"])
    elif s == PBT:
        v = _vector(hdr)
        for j in range(h["n_pop"]):
            v[h["v_w"] + j] = np.nan


@kernel(t.int64(STATE_TYPE))
def reopen(state):
    """Re-open exploration (see ``reopen_exploration``): for a drift the caller detected itself. Mutates: state.
    Allocates: nothing. Returns: status flags."""
    if open_state(state) != OK:
        return BAD_STATE
    reopen_exploration(_header(state))
    return OK
