"""The public kernels over a tuner state (one array): callable from Python or inside the user's ``@njit`` code.

Each opens the state once (a header view and the matrix behind it, neither reference-counted) and runs the strategy's
inlined cores. An array that is not a tuner state gets ``BAD_STATE`` and is left untouched.
"""

import numba
import numpy as np
from numba import types as t

from ._jit import borrow, kernel, view_at
from ._status import BAD_STATE, OK
from .spsa import spsa_ask, spsa_reopen, spsa_tell, to_user_units
from .state import CENTER, HEADER, HEADER_BYTES, MAGIC, ROWS, STATE_TYPE, X


@numba.njit(inline="always")
def _matrix(state):
    return view_at(state.ctypes.data + HEADER_BYTES, (ROWS, state[0]["d"]), np.float64)


@kernel(t.int64(STATE_TYPE))
def ask(state):
    """Write the next proposal into the X row (see ``proposal``). Asking again before a tell repeats it.
    Mutates: state. Allocates: nothing. Returns: status flags."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    return spsa_ask(h, _matrix(h))


@kernel(t.int64(STATE_TYPE, t.float64))
def tell(state, value):
    """Accept the measured value of the outstanding proposal. Mutates: state. Allocates: nothing.
    Returns: status flags (NONFINITE and NOT_ASKED leave the state unchanged)."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    return spsa_tell(h, _matrix(h), value)


@kernel(t.int64(STATE_TYPE, t.float64))
def step(state, value):
    """Tell ``value``, then write the next proposal: one call per measurement. Mutates: state. Allocates: nothing.
    Returns: status flags of both, also kept in the header's ``status``."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    m = _matrix(h)
    status = spsa_tell(h, m, value) | spsa_ask(h, m)
    h[0]["status"] = status
    return status


@kernel(t.int64(t.uintp, t.float64), nogil=False)
def step_at(address, value):
    """``step`` on the state whose header is at ``address``: the Python path, where passing one address costs less than
    passing an array, and keeping the GIL less than releasing it. The caller must hold the state.
    Mutates, allocates and returns as ``step``."""
    return step(view_at(address, 1, HEADER), value)


@kernel(t.int64(STATE_TYPE))
def recommend(state):
    """Write the current estimate of the optimum, in user units, into the CENTER row. Mutates: state.
    Allocates: nothing. Returns: status flags."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    to_user_units(h, _matrix(h), 0.0, CENTER)
    return OK


@kernel(t.float64[::1](STATE_TYPE))
def proposal(state):
    """The current proposal (the X row) as a view, valid while the caller holds ``state``. Allocates: nothing."""
    return _matrix(borrow(state))[X]


@kernel(t.int64(STATE_TYPE))
def reopen(state):
    """Re-open exploration (see ``spsa.spsa_reopen``): for a drift the caller detected itself. Mutates: state.
    Allocates: nothing. Returns: status flags."""
    h = borrow(state)
    if h[0]["magic"] != MAGIC:
        return BAD_STATE
    spsa_reopen(h)
    return OK
