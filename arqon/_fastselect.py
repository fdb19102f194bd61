"""``Selector.step`` as a builtin function, built as ``Tuner.step`` is (see ``arqon._fastcall``), for selectors with no
metrics and no context (the common case). A module of its own so that the bandit kernels compile only when a selector
is made.

A call with one exact ``float`` steps the state with every arm eligible and returns the next arm as an ``int``; any
other call (an ``int`` reward, a mask, a keyword) and any call the kernel refuses go to the checked step, which
converts, or raises naming the argument.
"""

import numba
import numpy as np
from numba import types as t

from arqon._fastcall import AVAILABLE, FLOAT_VALUE, OB_TYPE, TUPLE_ITEMS, _load, _py_long, _py_vectorcall, builtin, method_def
from arqon.kernels import bandit as kb
from arqon.kernels._jit import CACHE, view_at

_PENDING_OFFSET = kb.BANDIT_HEADER.fields["pending"][1]  # bytes into the header

if AVAILABLE:

    @numba.cfunc(t.uintp(t.uintp, t.uintp, t.intp, t.uintp), cache=CACHE, error_model="numpy")
    def _select_step_entry(closure, args, nargs, kwnames):
        """The METH_FASTCALL | METH_KEYWORDS C function behind a selector's ``step``. ``closure``: the tuple (state
        address as a float, the state's length in words as a float, the all-eligible mask's address and length as
        floats, the checked step). Mutates: the state. Allocates: nothing. Returns: a new reference."""
        items = view_at(closure + TUPLE_ITEMS, 5, np.uintp)
        if nargs == 1 and kwnames == 0:
            value = _load(args, np.uintp)
            if _load(value + OB_TYPE, np.uintp) == _load(items[0] + OB_TYPE, np.uintp):  # an exact float
                state = view_at(numba.uintp(_load(items[0] + FLOAT_VALUE, np.float64)),
                                numba.intp(_load(items[1] + FLOAT_VALUE, np.float64)), np.float64)
                mask = view_at(numba.uintp(_load(items[2] + FLOAT_VALUE, np.float64)),
                               numba.intp(_load(items[3] + FLOAT_VALUE, np.float64)), np.bool_)
                # with no arm out the checked step raises; a state too short to hold a header goes there too
                long_enough = state.shape[0] >= kb.BANDIT_HEADER_WORDS
                if long_enough and _load(state.ctypes.data + _PENDING_OFFSET, np.int64) == 1:
                    arm = kb.step(state, _load(value + FLOAT_VALUE, np.float64), state[:0], mask, state[:0])
                    if arm >= 0:
                        return _py_long(arm)
        return _py_vectorcall(items[4], args, numba.uintp(nargs), kwnames)

    _SELECT_STEP_DEF = method_def(b"step", _select_step_entry,
                                  b"step(reward, eligible=None, context=None, metrics=None)\n--\n\n"
                                  b"Learn reward of the arm out and return the next arm, in one kernel call.")


def fast_select_step(state: np.ndarray, all_eligible: np.ndarray, checked):
    """A builtin ``step(reward)`` on ``state`` (a selector's buffer with no metrics and no context) with the mask
    ``all_eligible``; every call it does not take itself goes to ``checked``. The caller keeps both arrays alive."""
    if not AVAILABLE:
        return checked
    return builtin(_SELECT_STEP_DEF, (float(state.ctypes.data), float(state.shape[0]),
                                      float(all_eligible.ctypes.data), float(all_eligible.shape[0]), checked))
