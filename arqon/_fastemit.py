"""``Telemetry.emit`` as a builtin function, built as ``Tuner.step`` is (see ``arqon._fastcall``). A module of its own so
that the telemetry kernels compile only when a telemetry is made, never for a tuner alone.

A call with a metric name (an exact ``str``) or index (an exact ``int``) and an exact ``float`` looks the metric up in
a dict, emits with the telemetry's step counter and returns the flags; any other call (an explicit step, a NumPy
scalar, an unknown metric) goes to the checked emit.
"""

import numba
import numpy as np
from numba import types as t

from arqon._fastcall import (
    AVAILABLE, FLOAT_VALUE, OB_TYPE, TUPLE_ITEMS, _load, _py_dict_get, _py_long, _py_vectorcall, builtin, method_def,
)
from arqon.kernels import telemetry as tel_kernels
from arqon.kernels._jit import CACHE, view_at
from arqon.kernels._status import BAD_STATE

if AVAILABLE:

    @numba.cfunc(t.uintp(t.uintp, t.uintp, t.intp, t.uintp), cache=CACHE, error_model="numpy")
    def _emit_entry(closure, args, nargs, kwnames):
        """The METH_FASTCALL | METH_KEYWORDS C function behind a telemetry's ``emit``. ``closure``: the tuple (state,
        ring header and step counter addresses as floats, metric ids as floats by name and by index, checked emit, a
        str, an int, the state's and the ring's lengths in words as floats). Mutates: state, ring, counter.
        Allocates: nothing. Returns: a new reference."""
        items = view_at(closure + TUPLE_ITEMS, 9, np.uintp)
        if nargs == 2 and kwnames == 0:
            metric, value = _load(args, np.uintp), _load(args + 8, np.uintp)
            kind = _load(metric + OB_TYPE, np.uintp)
            if _load(value + OB_TYPE, np.uintp) == _load(items[0] + OB_TYPE, np.uintp) and (
                    kind == _load(items[5] + OB_TYPE, np.uintp) or kind == _load(items[6] + OB_TYPE, np.uintp)):
                index = _py_dict_get(items[3], metric)  # a borrowed reference, or 0: not a metric
                if index != 0:
                    counter = view_at(numba.uintp(_load(items[2] + FLOAT_VALUE, np.float64)), 1, np.int64)
                    flags = tel_kernels.emit_at(
                        numba.uintp(_load(items[0] + FLOAT_VALUE, np.float64)),
                        numba.intp(_load(items[7] + FLOAT_VALUE, np.float64)),
                        numba.uintp(_load(items[1] + FLOAT_VALUE, np.float64)),
                        numba.intp(_load(items[8] + FLOAT_VALUE, np.float64)),
                        numba.int64(_load(index + FLOAT_VALUE, np.float64)), _load(value + FLOAT_VALUE, np.float64),
                        counter[0])
                    if flags & BAD_STATE == 0:
                        counter[0] += 1
                        return _py_long(flags)
        return _py_vectorcall(items[4], args, numba.uintp(nargs), kwnames)

    _EMIT_DEF = method_def(b"emit", _emit_entry, b"emit(metric, value, step=None)\n--\n\nRecord one sample of metric.")


def fast_emit(address: int, words: int, ring_address: int, ring_words: int, counter: np.ndarray, names, checked):
    """A builtin ``emit(metric, value, step=None)`` on the telemetry state and the ring at these addresses (``words``
    and ``ring_words`` long), which
    numbers its samples with ``counter[0]`` (the next step); every call it does not take itself goes to ``checked`` (a
    Python function with the same meaning), which must hold the state, the ring and ``counter``."""
    if not AVAILABLE:
        return checked
    ids = {name: float(i) for i, name in enumerate(names)} | {i: float(i) for i in range(len(names))}
    return builtin(_EMIT_DEF, (float(address), float(ring_address), float(counter.ctypes.data), ids, checked, "", 0,
                               float(words), float(ring_words)))
