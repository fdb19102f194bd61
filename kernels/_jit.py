"""The one place that sets Numba options for arqon kernels.

Every kernel is compiled eagerly for one explicit signature with ``cache=True``, ``nogil=True`` and the NumPy error model
(division by zero gives inf/nan instead of raising). Set ``ARQON_JIT_CACHE=0`` to turn the on-disk cache off.
"""

import ctypes
import os

import numba
import numpy as np
from numba import types as t
from numba.core import cgutils, config
from numba.extending import intrinsic

CACHE = os.environ.get("ARQON_JIT_CACHE", "1") != "0"


def kernel(signature, inline=False, nogil=True):
    """Decorate a function as an arqon kernel compiled for ``signature``.

    ``inline=True`` also splices the kernel into every kernel that calls it (Numba IR inlining), which saves the call;
    use it for the helpers on the hot path. ``nogil=False`` keeps the GIL when called from Python: right for entry
    points whose work is shorter than releasing and re-taking the GIL (about 75 ns here)."""
    return numba.njit(
        signature, cache=CACHE, nogil=nogil, error_model="numpy", inline="always" if inline else "never"
    )


def entry_point(dispatcher):
    """The compiled entry point of a single-signature kernel: callable from Python without type dispatch.

    Falls back to the dispatcher itself when the JIT is disabled (``NUMBA_DISABLE_JIT=1``)."""
    overloads = getattr(dispatcher, "overloads", None)
    if not overloads:
        return dispatcher
    (compiled,) = overloads.values()
    return compiled.entry_point


@intrinsic
def _as_voidptr(typingctx, address):
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return t.voidptr(t.uintp), codegen


if config.DISABLE_JIT:

    def borrow(arr):
        return arr

    def view_at(address, shape, dtype):
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        return np.frombuffer((ctypes.c_char * size).from_address(address), dtype).reshape(shape)

else:

    @numba.njit(inline="always")
    def borrow(arr):
        """A view of ``arr`` without a reference count, for use while the caller holds ``arr``.

        Every array passed to an inlined helper inside a branch costs Numba an atomic increment and decrement; on a
        view with no meminfo they are skipped. Allocates: nothing."""
        return numba.carray(_as_voidptr(arr.ctypes.data), arr.shape, arr.dtype)

    @numba.njit(inline="always")
    def view_at(address, shape, dtype):
        """A view of memory at ``address`` with no reference count: only for arrays the caller keeps alive."""
        return numba.carray(_as_voidptr(address), shape, dtype)
