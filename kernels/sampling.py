"""Normal, Gamma and Beta variates from a caller-owned xoshiro256** state (``rng.py``): nothing global is used.

``sample_normal`` is Marsaglia and Tsang's ziggurat (2000) with 128 layers, taking its layer and its 32-bit value
from different bits of one 64-bit draw (the original shares them, a known flaw). ``sample_gamma`` is Marsaglia and
Tsang's squeeze method (2000) for shape >= 1, boosted by ``U^(1/a)`` below 1; its constants ``(d, c)`` depend on the
shape only, so callers that draw many times from one shape precompute them with ``gamma_constants``. The squeeze's
uniform is 25 further bits of the normal's draw, so a Gamma variate costs one 64-bit draw nearly always.
"""

import math

import numpy as np
from numba import types as t

from ._jit import kernel
from .rng import rng_next, rng_uniform

_U64 = np.uint64


def _ziggurat_tables():
    """Marsaglia and Tsang's 128-layer tables for the standard normal, for a signed 32-bit value: ``k`` (the layer's
    fast-accept bound), ``w`` (value scale), ``f`` (the density at each layer's edge)."""
    m1, dn, vn = 2147483648.0, 3.442619855899, 9.91256303526217e-3
    k, w, f = np.zeros(128, np.int64), np.zeros(128), np.zeros(128)
    tn = dn
    q = vn / math.exp(-0.5 * dn * dn)
    k[0], k[1] = int(dn / q * m1), 0
    w[0], w[127] = q / m1, dn / m1
    f[0], f[127] = 1.0, math.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = int(dn / tn * m1)
        tn = dn
        f[i] = math.exp(-0.5 * dn * dn)
        w[i] = dn / m1
    return k, w, f


ZIG_K, ZIG_W, ZIG_F = _ziggurat_tables()
ZIG_R = 3.442619855899  # the base layer's edge: beyond it, the tail


@kernel(t.float64(t.uint64[:], t.int64, t.int64))
def _normal_slow(s, hz, iz):
    """The ziggurat's rare path (about 2% of draws): the tail, or a wedge test, then new draws. Mutates: s."""
    while True:
        x = hz * ZIG_W[iz]
        if iz == 0:  # the tail beyond ZIG_R (Marsaglia's method)
            while True:
                x = -math.log(1.0 - rng_uniform(s)) / ZIG_R
                y = -math.log(1.0 - rng_uniform(s))
                if y + y >= x * x:
                    break
            return ZIG_R + x if hz > 0 else -ZIG_R - x
        if ZIG_F[iz] + rng_uniform(s) * (ZIG_F[iz - 1] - ZIG_F[iz]) < math.exp(-0.5 * x * x):
            return x
        bits = rng_next(s)
        hz = np.int64(np.int32(bits >> _U64(32)))
        iz = np.int64(bits & _U64(127))
        if abs(hz) < ZIG_K[iz]:
            return hz * ZIG_W[iz]


@kernel(t.float64(t.uint64[:], t.uint64), inline=True)
def _normal_from(s, bits):
    """The standard normal variate whose layer is ``bits``' low 7 bits and whose value is its high 32 bits (more
    draws from ``s`` on the rare path). Mutates: s. Allocates: nothing."""
    hz = np.int64(np.int32(bits >> _U64(32)))
    iz = np.int64(bits & _U64(127))
    if abs(hz) < ZIG_K[iz]:
        return hz * ZIG_W[iz]
    return _normal_slow(s, hz, iz)


@kernel(t.float64(t.uint64[:]), inline=True)
def sample_normal(s):
    """A standard normal variate (ziggurat). Mutates: s. Allocates: nothing."""
    return _normal_from(s, rng_next(s))


@kernel(t.UniTuple(t.float64, 2)(t.float64), inline=True)
def gamma_constants(shape):
    """Marsaglia and Tsang's ``(d, c)`` for a Gamma(shape) variate: ``d = a - 1/3``, ``c = 1 / sqrt(9 d)`` with
    ``a = shape`` at or above 1 and ``shape + 1`` below (``sample_gamma`` then boosts). Allocates: nothing."""
    a = shape if shape >= 1.0 else shape + 1.0
    d = a - 1.0 / 3.0
    return d, 1.0 / math.sqrt(9.0 * d)


@kernel(t.boolean(t.float64, t.float64, t.float64, t.float64, t.float64), inline=True)
def _log_free_accept(u, x2, z, v, d):
    """Marsaglia and Tsang's test ``ln u < x^2 / 2 + d (1 - v + ln v)``, with ``v = z^3``, decided without a
    logarithm when bounds suffice: ``ln u <= 2 (u - 1) / (u + 1)`` for u <= 1, and ``ln z >= 2 (z - 1) / (z + 1)``
    for z >= 1, ``ln z >= (z - 1 / z) / 2`` below. True only when the exact test accepts; False means undecided.
    Allocates: nothing."""
    ln_z = 2.0 * (z - 1.0) / (z + 1.0) if z >= 1.0 else 0.5 * (z - 1.0 / z)
    return 2.0 * (u - 1.0) / (u + 1.0) < 0.5 * x2 + d * (1.0 - v + 3.0 * ln_z)


# The squeeze ``u < 1 - k x^4`` accepts only where the exact test does when ``k >= sup_x (1 - e^h(x)) / x^4``, h the
# log acceptance ratio; that supremum is 1.78594 / (81 d) at d = 2/3 (Marsaglia and Tsang's 0.0331) and falls as d
# grows (81 d times it: 1.24 at d = 2, 0.97 at 10, 0.84 at 100). So ``k = 1.79 / (81 d) = SQUEEZE c^2`` is valid for
# every d >= 2/3 and about d times tighter than 0.0331: it fails 0.066 / d of draws, not about 10%
# (tests/test_bandit.py checks the bound on a grid of d and x).
SQUEEZE = 1.79 / 9.0

_REGS = t.Tuple((t.float64, t.uint64, t.uint64, t.uint64, t.uint64))


@kernel(t.UniTuple(t.uint64, 5)(t.uint64, t.uint64, t.uint64, t.uint64), inline=True)
def _xoshiro(s0, s1, s2, s3):
    """``rng_next`` on a state held in four registers: (64 random bits, the next state). Allocates: nothing."""
    x = s1 * _U64(5)
    result = ((x << _U64(7)) | (x >> _U64(57))) * _U64(9)
    t_ = s1 << _U64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t_
    s3 = (s3 << _U64(45)) | (s3 >> _U64(19))
    return result, s0, s1, s2, s3


@kernel(t.boolean(t.float64, t.float64, t.float64), inline=True)
def gamma_constants_valid(shape, d, c):
    """True when ``(d, c)`` could be a positive ``shape``'s constants as far as the squeeze loop needs: c in [0, 0.41]
    (every shape's c is at most 1 / sqrt(6)), so ``u < 1 - SQUEEZE (c x)^2 x^2`` accepts a draw with probability
    near 0.9 whatever d is, and the loop ends (a corrupted state must not loop forever). Allocates: nothing."""
    return (d > 0.0) & (c >= 0.0) & (c <= 0.41) & (shape > 0.0)


@kernel(_REGS(t.uint64[:], t.uint64, t.uint64, t.uint64, t.uint64, t.float64, t.float64), inline=True)
def gamma_at_least_one(s, s0, s1, s2, s3, d, c):
    """A Gamma(a) variate for a >= 1 from its ``gamma_constants`` (d, c), which the caller has checked with
    ``gamma_constants_valid`` (callers drawing many variates check them all first, once), on the generator state
    (s0, s1, s2, s3) kept in registers (``s`` is its home array, used and updated only on the ziggurat's rare path).
    Allocates: nothing. Returns: (the variate, the next state)."""
    while True:
        bits, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
        hz = np.int64(np.int32(bits >> _U64(32)))
        iz = np.int64(bits & _U64(127))
        if abs(hz) < ZIG_K[iz]:
            x = hz * ZIG_W[iz]
        else:
            s[0], s[1], s[2], s[3] = s0, s1, s2, s3
            x = _normal_slow(s, hz, iz)
            s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
        cx = c * x
        z = 1.0 + cx
        if z <= 0.0:
            continue
        v = z * z * z
        u = (np.float64((bits >> _U64(7)) & _U64(0x1FFFFFF)) + 0.5) * (1.0 / 33554432.0)  # 25 bits, in (0, 1)
        x2 = x * x
        if u < 1.0 - SQUEEZE * cx * cx * x2 or _log_free_accept(u, x2, z, v, d) or \
                math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return d * v, s0, s1, s2, s3


@kernel(_REGS(t.uint64[:], t.uint64, t.uint64, t.uint64, t.uint64, t.float64, t.float64, t.float64), inline=True)
def gamma_in_registers(s, s0, s1, s2, s3, shape, d, c):
    """``sample_gamma`` on the generator state (s0, s1, s2, s3) kept in registers by a caller that draws many
    variates in a row (``s`` is its home array, used and updated only on the ziggurat's rare path).
    Allocates: nothing. Returns: (the variate, the next state); NaN, drawing nothing, for constants no positive
    shape has."""
    if not gamma_constants_valid(shape, d, c):
        return math.nan, s0, s1, s2, s3
    g, s0, s1, s2, s3 = gamma_at_least_one(s, s0, s1, s2, s3, d, c)
    if shape < 1.0:
        more, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
        g *= math.exp(math.log(1.0 - np.float64(more >> _U64(11)) * (1.0 / 9007199254740992.0)) / shape)
    return g, s0, s1, s2, s3


@kernel(t.float64(t.uint64[:], t.float64, t.float64, t.float64), inline=True)
def sample_gamma(s, shape, d, c):
    """A Gamma(shape, 1) variate, ``(d, c) = gamma_constants(shape)``, shape > 0. Mutates: s. Allocates: nothing."""
    g, s[0], s[1], s[2], s[3] = gamma_in_registers(s, s[0], s[1], s[2], s[3], shape, d, c)
    return g


@kernel(t.float64(t.uint64[:], t.float64, t.float64, t.float64, t.float64, t.float64, t.float64), inline=True)
def sample_beta(s, a, da, ca, b, db, cb):
    """A Beta(a, b) variate as X / (X + Y) of two Gamma variates, ``(da, ca)`` and ``(db, cb)`` the shapes'
    ``gamma_constants``. Mutates: s. Allocates: nothing."""
    x = sample_gamma(s, a, da, ca)
    y = sample_gamma(s, b, db, cb)
    return x / (x + y)
