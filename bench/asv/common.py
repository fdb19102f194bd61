"""What the pytest-benchmark and asv benchmarks share: a tuner builder and the @njit stepping loop."""

import numba
import numpy as np

import arqon
from arqon.kernels import step

STEPS = 10_000
# Measured values come from a table: an objective that reads the proposal straight after the kernel wrote it would
# time a store-forwarding stall of this loop rather than the kernel (about 20 ns here).
VALUES = np.random.default_rng(0).normal(1.0, 0.1, 1024)


def tuner(d, gains="decaying"):
    """A Tuner over ``d`` parameters in [-5, 5] with one proposal out."""
    t = arqon.Tuner({"params": [{"name": f"x{i}", "min": -5, "max": 5} for i in range(d)], "seed": 1,
                     "spsa": {"gains": gains}})
    t.ask()
    return t


@numba.njit
def njit_steps(state, values, n):
    for i in range(n):
        step(state, values[i & 1023])
