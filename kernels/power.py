"""log and exp for the decaying gains' powers x^-p = exp(-p log x): table-driven, inlined, no library call.

log: x = 2^e m with m in [1, 2); m times the reciprocal of the nearest of 128 centres c_j is 1 + r with |r| <= 1/256,
so log x = e log 2 + log c_j + log1p(r), where six terms of log1p's series leave less than 1e-17.
exp: z = (128 n + j) log(2) / 128 + s with |s| <= log(2) / 256, and exp z = 2^n 2^(j/128) exp(s) (five terms), the 2^n
added straight into the exponent bits.
A whole power is a longer chain of dependent operations than a step can hide behind its other work; the SPSA step
does the log on one step and the exp on the next (d = 16: 41 ns with the library ``pow``, 43 with these two on one
step, 34 split over two, 37 with the library's log and exp split the same way). Only + - * and table loads: the same
result in every process and on every machine. Tests hold the log within 3 ulps, the exp within 4 and the powers made
of them within 3e-14 of the exact values.
"""

import numpy as np
from numba import types as t

from ._jit import bits_float, float_bits, kernel

TABLE_BITS = 7
TABLE_SIZE = 1 << TABLE_BITS
_CENTRES = 1.0 + (np.arange(TABLE_SIZE) + 0.5) / TABLE_SIZE
INV_CENTRE = 1.0 / _CENTRES
LOG_CENTRE = -np.log(INV_CENTRE)  # the log of the rounded reciprocal itself, so that r = m * INV_CENTRE - 1 as it is
EXP2_FRACTION = 2.0 ** (np.arange(TABLE_SIZE) / TABLE_SIZE)
LN2_HI = 6.93147180369123816490e-01  # log(2) split so that e * LN2_HI is exact for any exponent e
LN2_LO = 1.90821492927058770002e-10
INV_STEP = TABLE_SIZE / np.log(2.0)
MANTISSA = (1 << 52) - 1
ONE_EXPONENT = 1023 << 52
FAST_LIMIT = 2.0**52  # from here on (an enormous Spall A) the library log


@kernel(t.float64(t.float64), inline=True)
def log_at_least_one(x):
    """log x for 1 <= x < FAST_LIMIT (beyond: the library log). Allocates: nothing."""
    if not x < FAST_LIMIT:
        return np.log(x)
    b = float_bits(x)
    e = np.float64((b >> 52) - 1023)
    j = (b >> (52 - TABLE_BITS)) & (TABLE_SIZE - 1)
    r = bits_float((b & MANTISSA) | ONE_EXPONENT) * INV_CENTRE[j] - 1.0
    r2 = r * r
    log1p_r = r - r2 * ((0.5 - r * (1.0 / 3.0)) + r2 * ((0.25 - r * 0.2) + r2 * (1.0 / 6.0)))
    return (e * LN2_HI + LOG_CENTRE[j]) + (e * LN2_LO + log1p_r)


SHIFTER = 1.5 * 2.0**52  # adding it rounds a float of magnitude < 2^51 to an integer held in the low mantissa bits


@kernel(t.float64(t.float64), inline=True)
def exp_not_positive(z):
    """exp z for -700 < z <= 0 (the result stays a normal number). Allocates: nothing."""
    shifted = z * INV_STEP + SHIFTER
    n = float_bits(shifted) - float_bits(SHIFTER)
    nf = shifted - SHIFTER
    s = (z - nf * (LN2_HI / TABLE_SIZE)) - nf * (LN2_LO / TABLE_SIZE)
    s2 = s * s
    exp_s = 1.0 + (s + s2 * ((0.5 + s * (1.0 / 6.0)) + s2 * ((1.0 / 24.0) + s * (1.0 / 120.0))))
    return bits_float(float_bits(EXP2_FRACTION[n & (TABLE_SIZE - 1)] * exp_s) + ((n >> TABLE_BITS) << 52))
