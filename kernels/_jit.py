"""The one place that sets Numba options for arqon kernels.

Every kernel is compiled eagerly for one explicit signature with ``cache=True``, ``nogil=True`` and the NumPy error
model (division by zero gives inf/nan instead of raising). Set ``ARQON_JIT_CACHE=0`` to turn the on-disk cache off.

Numba checks a cached kernel only against its own source file, but kernels inline helpers from other files: after any
kernel source changes, every cached kernel is stale. So at import the sources are hashed, and the cached kernels are
dropped whenever the hash differs from the one stamped beside them. The same holds for any ``cache=True`` function
outside this folder that calls kernels: its module calls ``drop_stale_cache(some_function_of_that_module)`` first.
"""

import ctypes
import hashlib
import os
from pathlib import Path

import numba
import numpy as np
from numba import types as t
from numba.core import cgutils, config
from numba.extending import intrinsic

CACHE = os.environ.get("ARQON_JIT_CACHE", "1") != "0"


def _cache_probe():
    pass


def drop_stale_cache(probe=_cache_probe):
    """Delete the cached compiled functions in the cache folder of ``probe``'s module if any kernel source changed since
    they were written. Call it, with any plain function of your module, before a module of your own whose
    ``cache=True`` functions call arqon kernels: Numba would otherwise keep running their old, inlined copies."""
    from numba.core.caching import FunctionCache

    if not CACHE or config.DISABLE_JIT:
        return
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py")))).hexdigest()
    try:
        cache_dir = Path(FunctionCache(probe)._cache_path)
    except RuntimeError:  # no writable cache location: Numba will not cache either
        return
    stamp = cache_dir / "arqon-kernels.sha256"
    if stamp.is_file() and stamp.read_text() == digest:
        return
    for stale in [*cache_dir.glob("*.nbi"), *cache_dir.glob("*.nbc")]:
        stale.unlink(missing_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


drop_stale_cache()


def kernel(signature, inline=False, nogil=True):
    """Decorate a function as an arqon kernel compiled for ``signature``.

    ``inline=True`` makes LLVM inline the kernel into every kernel that calls it (Numba's ``forceinline``: the call
    vanishes and constant arguments propagate into it); use it for the helpers on the hot path. The helper is still
    compiled once, on its own. Numba's own IR inlining (``inline="always"``) measured no faster, and copies the
    callee's IR once per block with all its variables, at every call site and every level: nested helpers made
    start-up quadratic (a first tuner step took 200 s to compile on a 2-core machine). ``nogil=False`` keeps the GIL
    when called from Python: right for entry points whose work is shorter than releasing and re-taking the GIL (about
    75 ns here).

    A kernel that is not inlined is an entry (``_borrowing_entry``) around its body: Numba takes a reference to every
    array argument of a function it calls and releases it on every way out, two atomic instructions each, which its
    reference-count pruning removes only in small functions. The entry hands the body views with no reference count,
    so a call from the user's @njit loop costs no atomics (UCB1's decision at K = 8 measured 85 ns with them, 15
    without, on one machine)."""
    options = dict(cache=CACHE, nogil=nogil, error_model="numpy")
    if inline:
        return numba.njit(signature, forceinline=True, **options)
    if config.DISABLE_JIT:
        return numba.njit(signature, **options)

    def decorate(function):
        borrowed = [isinstance(a, t.Array) and a.layout == "C" for a in signature.args]
        if not any(borrowed) or _holds_array(signature.return_type):  # a returned view must keep its reference
            return numba.njit(signature, **options)(function)
        return _borrowing_entry(function, signature, borrowed, options)

    return decorate


def _holds_array(ty) -> bool:
    """True when a value of Numba type ``ty`` is or contains an array."""
    if isinstance(ty, t.Array):
        return True
    return isinstance(ty, t.BaseTuple) and any(_holds_array(item) for item in ty.types)


def _borrowing_entry(function, signature, borrowed, options):
    """The kernel ``function`` as an entry that passes its C-contiguous array arguments (``borrowed``) to the body
    as ``borrow`` views. The body is inlined into the entry by Numba (one level: its own helpers stay LLVM-inlined
    calls; 11% more first-compile time than the kernel alone, where LLVM inlining cost 40%). The entry is compiled
    from generated source attributed to ``function``'s file and line (so Numba caches it there), with the body under
    the name ``<name>__body``."""
    code = function.__code__
    names = code.co_varnames[:code.co_argcount]
    function.__qualname__ += "__body"
    body = numba.njit(inline="always", **options)(function)
    passed = ", ".join(f"_borrow({n})" if b else n for n, b in zip(names, borrowed))
    source = "\n" * (code.co_firstlineno - 1) + f"def {code.co_name}({', '.join(names)}):\n    return _body({passed})\n"
    namespace = {"_body": body, "_borrow": borrow}
    exec(compile(source, code.co_filename, "exec"), namespace)
    entry = namespace[code.co_name]
    entry.__module__, entry.__doc__ = function.__module__, function.__doc__
    entry.__qualname__ = function.__qualname__[: -len("__body")]
    return numba.njit(signature, **options)(entry)


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


def _fence(ordering):
    @intrinsic
    def fence(typingctx):
        def codegen(context, builder, signature, args):
            builder.fence(ordering)
            return context.get_dummy_value()

        return t.void(), codegen

    return fence


@intrinsic
def _bitcast(typingctx, value, to):
    target = to.instance_type  # to: a NumPy scalar type (np.int64, np.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(target))

    return target(value, to), codegen


if config.DISABLE_JIT:

    def float_bits(x):
        return int(np.float64(x).view(np.int64))

    def bits_float(i):
        return float(np.int64(i).view(np.float64))

    def release_fence():
        pass

    def acquire_fence():
        pass

    def borrow(arr):
        return arr

    def view_at(address, shape, dtype):
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        return np.frombuffer((ctypes.c_char * size).from_address(int(address)), dtype).reshape(shape)

else:
    release_fence = _fence("release")
    release_fence.__doc__ = """Order the stores before this point before the stores after it (a compiler barrier on x86)."""
    acquire_fence = _fence("acquire")
    acquire_fence.__doc__ = """Order the loads before this point before the loads after it (a compiler barrier on x86)."""

    @numba.njit(inline="always")
    def float_bits(x):
        """The IEEE-754 bits of the float64 ``x`` as an int64 (a register move)."""
        return _bitcast(x, np.int64)

    @numba.njit(inline="always")
    def bits_float(i):
        """The float64 whose IEEE-754 bits are the int64 ``i`` (a register move)."""
        return _bitcast(i, np.float64)

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


@numba.njit(inline="always")
def shares_memory(state, other):
    """True when the 1-d array ``other`` overlaps the float64 buffer ``state`` (a work space or output inside a state
    would let a kernel overwrite the state itself). Allocates: nothing."""
    lo, start = state.ctypes.data, other.ctypes.data
    return start < lo + 8 * state.shape[0] and lo < start + other.itemsize * other.shape[0]
