"""``Tuner.step`` and ``Telemetry.emit`` as builtin functions: CPython calls them with no Python frame, no argument tuple
and no Numba unboxing.

A Numba entry point is a C function taking a tuple of arguments, which it unpacks and converts one by one: about 90 ns
with an address and a value, for a 34 ns step. Here the step is a Numba ``cfunc`` with CPython's METH_FASTCALL calling
convention (a pointer to the arguments), made into a builtin function object with ``PyCFunction_NewEx``; its ``self``
is a tuple (the state's address as a float, the proposal view, the checked step). A call with one exact ``float``
reads the float, runs the step and returns the proposal view; any other call (an int, a NumPy scalar, a str, a keyword,
a wrong count) goes to the checked step, which converts, or raises as a Python function would. ``Telemetry.emit`` is built
the same way in ``arqon._fastemit``, which compiles only when a telemetry is made.

It reads CPython objects' memory (a float's value, a tuple's items, an object's type), so it is used only where that
layout is the one checked here: 64-bit CPython with the GIL, no debug build. Elsewhere, and with ``NUMBA_DISABLE_JIT``,
``fast_step`` (and ``fast_emit``) return the checked functions themselves.
"""

import ctypes
import sys
import sysconfig

import numba
import numpy as np
from llvmlite import binding as llvm, ir
from numba import types as t
from numba.core import cgutils, config
from numba.extending import intrinsic

from arqon.kernels import api
from arqon.kernels._jit import CACHE, drop_stale_cache, view_at

OB_TYPE = 8  # offset of an object's type pointer
FLOAT_VALUE = 16  # offset of a float's double
TUPLE_ITEMS = 24  # offset of a tuple's first item pointer

AVAILABLE = (
    sys.implementation.name == "cpython"
    and sys.maxsize == 2**63 - 1
    and not sysconfig.get_config_var("Py_GIL_DISABLED")
    and (object.__basicsize__, float.__basicsize__, tuple.__basicsize__) == (OB_TYPE + 8, FLOAT_VALUE + 8, TUPLE_ITEMS)
    and not config.DISABLE_JIT
)


def _c_api(builder, name, returns, args):
    """Call the C-API function ``name`` with pointer-sized ``args``."""
    fnty = ir.FunctionType(returns, [ir.IntType(64)] * len(args))
    return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), args)


@intrinsic
def _py_incref(typingctx, obj):
    def codegen(context, builder, signature, args):
        _c_api(builder, "Py_IncRef", ir.VoidType(), args)
        return context.get_dummy_value()

    return t.void(obj), codegen


@intrinsic
def _py_dict_get(typingctx, mapping, key):
    def codegen(context, builder, signature, args):
        return _c_api(builder, "PyDict_GetItemWithError", ir.IntType(64), args)

    return t.uintp(mapping, key), codegen


@intrinsic
def _py_long(typingctx, value):
    def codegen(context, builder, signature, args):
        return _c_api(builder, "PyLong_FromLongLong", ir.IntType(64), args)

    return t.uintp(value), codegen


@intrinsic
def _py_vectorcall(typingctx, function, args, nargs, kwnames):
    def codegen(context, builder, signature, args_):
        return _c_api(builder, "PyObject_Vectorcall", ir.IntType(64), args_)

    return t.uintp(function, args, nargs, kwnames), codegen


def _cache_probe():
    pass


@numba.njit(inline="always")
def _load(address, dtype):
    """The ``dtype`` value at ``address``."""
    return view_at(address, 1, dtype)[0]


class _MethodDef(ctypes.Structure):
    """CPython's PyMethodDef."""
    _fields_ = [("name", ctypes.c_char_p), ("function", ctypes.c_void_p), ("flags", ctypes.c_int),
                ("doc", ctypes.c_char_p)]


_METH_FASTCALL, _METH_KEYWORDS = 0x80, 0x02


def method_def(name: bytes, entry, doc: bytes) -> _MethodDef:
    """The method definition of a METH_FASTCALL | METH_KEYWORDS builtin whose C function is the cfunc ``entry``."""
    return _MethodDef(name, entry.address, _METH_FASTCALL | _METH_KEYWORDS, doc)


if AVAILABLE:
    drop_stale_cache(_cache_probe)
    for _name in ("Py_IncRef", "PyObject_Vectorcall", "PyDict_GetItemWithError", "PyLong_FromLongLong"):  # resolved by address, whatever the platform's linker exports
        llvm.add_symbol(_name, ctypes.cast(getattr(ctypes.pythonapi, _name), ctypes.c_void_p).value)
    _new_function = ctypes.pythonapi.PyCFunction_NewEx
    _new_function.restype = ctypes.py_object
    _new_function.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]

    @numba.cfunc(t.uintp(t.uintp, t.uintp, t.intp, t.uintp), cache=CACHE, error_model="numpy")
    def _step_entry(closure, args, nargs, kwnames):
        """The METH_FASTCALL | METH_KEYWORDS C function behind a tuner's ``step``. ``closure``: the tuple (address as
        a float, proposal view, checked step, the state's length in words as a float). Mutates: the state. Allocates: nothing. Returns: a new reference."""
        items = view_at(closure + TUPLE_ITEMS, 4, np.uintp)
        if nargs == 1 and kwnames == 0:
            value = _load(args, np.uintp)
            if _load(value + OB_TYPE, np.uintp) == _load(items[0] + OB_TYPE, np.uintp):  # an exact float, as items[0]
                address = numba.uintp(_load(items[0] + FLOAT_VALUE, np.float64))
                words = numba.intp(_load(items[3] + FLOAT_VALUE, np.float64))
                api.step(view_at(address, words, np.float64), _load(value + FLOAT_VALUE, np.float64))
                _py_incref(items[1])
                return items[1]
        return _py_vectorcall(items[2], args, numba.uintp(nargs), kwnames)

    _STEP_DEF = method_def(b"step", _step_entry,
                           b"step(value)\n--\n\nTell value and return the next proposal, in one kernel call.")


def builtin(definition: _MethodDef, closure: tuple):
    """A builtin function object calling ``definition``'s C function with ``closure`` as its ``self``."""
    return _new_function(ctypes.addressof(definition), closure, None)


def fast_step(state: np.ndarray, x: np.ndarray, checked):
    """A builtin ``step(value)`` on ``state`` (a tuner's buffer), returning ``x``; every call it does not take itself
    goes to ``checked`` (a Python function with the same meaning). The caller keeps the state alive."""
    if not AVAILABLE:
        return checked
    return builtin(_STEP_DEF, (float(state.ctypes.data), x, checked, float(state.shape[0])))
