"""The decaying gains' log and exp against NumPy's in extended precision (80-bit long double on x86)."""

import numba
import numpy as np
import pytest

from arqon.kernels.power import FAST_LIMIT, exp_not_positive, log_at_least_one

ULP = 2.0**-53


@numba.njit
def _each(f, xs):
    out = np.empty_like(xs)
    for i in range(xs.size):
        out[i] = f(xs[i])
    return out


@numba.njit
def _powers(xs, p):
    out = np.empty_like(xs)
    for i in range(xs.size):
        out[i] = exp_not_positive(-p * log_at_least_one(xs[i]))
    return out


def _bases():
    """Update counts, log-uniform values up to the fast path's limit, values just above 1, and every power of two
    with its neighbours (where the exponent and the table index change)."""
    rng = np.random.default_rng(7)
    twos = 2.0 ** np.arange(52)
    return np.concatenate([np.arange(1.0, 200_001.0), np.exp(rng.uniform(0, np.log(FAST_LIMIT), 200_000)),
                           1.0 + rng.uniform(0, 1, 50_000), twos, np.nextafter(twos, np.inf),
                           np.nextafter(twos[1:], 0), [np.nextafter(FAST_LIMIT, 0)]])


def test_log_is_within_three_ulps_of_the_exact_log():
    xs = _bases()
    exact = np.log(xs.astype(np.longdouble))
    error = np.abs(_each(log_at_least_one, xs) - exact) / np.maximum(exact, 1.0)
    assert error.max() <= 3 * ULP
    assert _each(log_at_least_one, np.array([1.0]))[0] == pytest.approx(0.0, abs=1e-17)


def test_exp_is_within_four_ulps_of_the_exact_exp():
    rng = np.random.default_rng(8)
    zs = np.concatenate([-rng.uniform(0, 700, 200_000), -rng.uniform(0, 1e-3, 50_000), [0.0, -0.0, -1e-300]])
    exact = np.exp(zs.astype(np.longdouble))
    assert (np.abs(_each(exp_not_positive, zs) - exact) / exact).max() <= 4 * ULP
    assert _each(exp_not_positive, np.array([0.0, -1e-300])).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("p", [0.602, 0.101, 1.0, 0.5, 1e-9, 0.0])
def test_power_from_them_is_within_3e_14_of_the_exact_power(p):
    """x^-p as the SPSA step works it out, over the bases of its gains (Spall's alpha and gamma and the config's
    limits), and beyond the fast path (an enormous Spall A) through the library log."""
    xs = np.concatenate([_bases(), [FAST_LIMIT, 1e30, 1e300]])
    exact = xs.astype(np.longdouble) ** -np.longdouble(p)
    powers = _powers(xs, p)
    assert (np.abs(powers - exact) / exact).max() <= 3e-14
    assert _powers(np.array([1.0]), p)[0] == 1.0
