"""xoshiro256** pseudo-random generator seeded through splitmix64 (Blackman and Vigna, 2018).

The generator state is a ``uint64[4]`` array owned by the caller; nothing global is ever used.
"""

import numpy as np
from numba import types as t

from ._jit import kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U64 = np.uint64


@kernel(t.uint64(t.uint64[:]), inline=True)
def splitmix64_next(s):
    """Advance a one-word splitmix64 state ``s[0]``. Mutates: s. Allocates: nothing. Returns: the next output."""
    s[0] += _GOLDEN
    z = s[0]
    z = (z ^ (z >> _U64(30))) * _MIX1
    z = (z ^ (z >> _U64(27))) * _MIX2
    return z ^ (z >> _U64(31))


@kernel(t.void(t.uint64[:], t.uint64))
def rng_seed(s, seed):
    """Fill the xoshiro256** state ``s[0:4]`` from ``seed`` with splitmix64. Mutates: s. Allocates: nothing."""
    s[0] = seed
    a = splitmix64_next(s)
    b = splitmix64_next(s)
    c = splitmix64_next(s)
    d = splitmix64_next(s)
    s[0] = a
    s[1] = b
    s[2] = c
    s[3] = d


@kernel(t.uint64(t.uint64[:]), inline=True)
def rng_next(s):
    """Advance xoshiro256** state ``s[0:4]``. Mutates: s. Allocates: nothing. Returns: 64 random bits."""
    x = s[1] * _U64(5)
    result = ((x << _U64(7)) | (x >> _U64(57))) * _U64(9)
    t_ = s[1] << _U64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t_
    s[3] = (s[3] << _U64(45)) | (s[3] >> _U64(19))
    return result


@kernel(t.float64(t.uint64[:]), inline=True)
def rng_uniform(s):
    """A float in [0, 1) from the top 53 bits of the next output. Mutates: s. Allocates: nothing."""
    return np.float64(rng_next(s) >> _U64(11)) * (1.0 / 9007199254740992.0)


@kernel(t.void(t.uint64[:], t.float64[::1]), inline=True)
def rng_rademacher(s, out):
    """Fill ``out`` with independent +1.0/-1.0 signs, one bit each. Mutates: s, out. Allocates: nothing."""
    n = out.shape[0]
    for start in range(0, n, 64):
        bits = rng_next(s)
        chunk = out[start:start + 64]  # indexing from 0 and a select, not a conversion: LLVM vectorizes the loop
        for j in range(chunk.shape[0]):
            chunk[j] = 1.0 if (bits >> _U64(j)) & _U64(1) else -1.0


@kernel(t.float64(t.uint64[:]), inline=True)
def rng_normal(s):
    """A standard normal variate (Box-Muller, the cosine branch only). Mutates: s. Allocates: nothing."""
    u1 = 1.0 - rng_uniform(s)  # in (0, 1]: the logarithm stays finite
    u2 = rng_uniform(s)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
