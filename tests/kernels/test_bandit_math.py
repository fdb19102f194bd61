"""The linear policies' algebra against the plain one-row-at-a-time loops: the blocked sums keep every row's order, so
every bit, which is what lets logs written before the blocking replay."""

import math

import numpy as np

from arqon.kernels.bandit_math import mean_and_width, sherman_morrison


def _plain_mean_and_width(a_inv, theta, x):
    d = len(x)
    mean = quad = 0.0
    for i in range(d):
        acc = 0.0
        for j in range(d):
            acc += a_inv[i, j] * x[j]
        quad += x[i] * acc
        mean += theta[i] * x[i]
    return mean, math.sqrt(max(quad, 0.0))


def _plain_sherman_morrison(a_inv, x):
    d = len(x)
    u = [sum_in_order(a_inv[i], x) for i in range(d)]
    denom = 1.0
    for i in range(d):
        denom += x[i] * u[i]
    for i in range(d):
        ui = u[i] / denom
        for j in range(d):
            a_inv[i, j] -= ui * u[j]
    return np.array(u)


def sum_in_order(row, x):
    acc = 0.0
    for j in range(len(x)):
        acc += row[j] * x[j]
    return acc


def test_blocked_sums_are_bit_identical_to_the_plain_loops():
    rng = np.random.default_rng(0)
    for d in range(1, 17):
        for _ in range(20):
            m = rng.normal(size=(d, d))
            a = np.linalg.inv(m @ m.T + np.eye(d))
            theta, x = rng.normal(size=d), rng.normal(size=d)
            assert mean_and_width(a, theta, x) == _plain_mean_and_width(a, theta, x), d
            fast, plain, u = a.copy(), a.copy(), np.zeros(d)
            sherman_morrison(fast, x, u)
            assert u.tobytes() == _plain_sherman_morrison(plain, x).tobytes(), d
            assert fast.tobytes() == plain.tobytes(), d
            np.testing.assert_allclose(fast, np.linalg.inv(np.linalg.inv(a) + np.outer(x, x)), rtol=1e-6, atol=1e-9)
