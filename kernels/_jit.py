"""The one place that sets Numba options for arqon kernels.

Every kernel is compiled eagerly for one explicit signature with ``cache=True``, ``nogil=True`` and the NumPy error model
(division by zero gives inf/nan instead of raising). Set ``ARQON_JIT_CACHE=0`` to turn the on-disk cache off.
"""

import os

import numba
import numpy as np
from numba import types as t
from numba.core import cgutils, config
from numba.extending import intrinsic

CACHE = os.environ.get("ARQON_JIT_CACHE", "1") != "0"


def kernel(signature, inline=False):
    """Decorate a function as an arqon kernel compiled for ``signature``.

    ``inline=True`` also splices the kernel into every kernel that calls it (Numba IR inlining), which saves the call;
    use it for the helpers on the hot path."""
    return numba.njit(
        signature, cache=CACHE, nogil=True, error_model="numpy", inline="always" if inline else "never"
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

else:

    @numba.njit(inline="always")
    def borrow(arr):
        """A view of ``arr`` without a reference count, for use while the caller holds ``arr``.

        Every array passed to an inlined helper inside a branch costs Numba an atomic increment and decrement; on a
        view with no meminfo they are skipped. Allocates: nothing."""
        return numba.carray(_as_voidptr(arr.ctypes.data), arr.shape, arr.dtype)


if config.DISABLE_JIT:

    def view_at(address, shape, dtype):
        raise RuntimeError("view_at needs the JIT: use the array kernels when NUMBA_DISABLE_JIT=1")

else:

    @numba.njit(inline="always")
    def view_at(address, shape, dtype):
        """A view of memory at ``address`` with no reference count: only for arrays the caller keeps alive."""
        return numba.carray(_as_voidptr(address), shape, dtype)
