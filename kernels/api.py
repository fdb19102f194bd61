"""The public kernels: ``ask``, ``tell`` and ``step`` over a ``TunerState``, callable from Python or inside ``@njit``."""

from numba import types as t

from ._jit import kernel
from .spsa import spsa_ask, spsa_step, spsa_tell
from .state import STATE_TYPE


@kernel(t.int64(STATE_TYPE), inline=True)
def ask(state):
    """Write the next proposal into ``state.x``. Mutates: state. Allocates: nothing. Returns: status flags."""
    return spsa_ask(state.hdr, state.mat)


@kernel(t.int64(STATE_TYPE, t.float64), inline=True)
def tell(state, value):
    """Accept the measured value of ``state.x``. Mutates: state. Allocates: nothing. Returns: status flags."""
    return spsa_tell(state.hdr, state.mat, value)


@kernel(t.int64(STATE_TYPE, t.float64), inline=True)
def step(state, value):
    """Tell ``value``, then write the next proposal into ``state.x``. Mutates: state. Allocates: nothing.
    Returns: status flags of both."""
    return spsa_step(state.hdr, state.mat, value)
