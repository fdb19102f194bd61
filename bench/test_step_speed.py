"""Step cost from Python (``Tuner.step``) and inside ``@njit`` (``arqon.kernels.step``), beside empty @njit calls.

Run: ``.venv/bin/python -m pytest bench --benchmark-enable -q``. Kernels are compiled before timing. Inside @njit a
benchmark round runs STEPS steps in one call; its median is reported per step (``extra_info["steps"]``).
"""

import numba
import numpy as np
import pytest

import arqon
from arqon.kernels import ask, step
from arqon.kernels.state import STATE_TYPE

STEPS = 10_000
DIMS = [2, 16, 128]


def tuner(d):
    t = arqon.Tuner({"params": [{"name": f"x{i}", "min": -5, "max": 5} for i in range(d)], "seed": 1})
    t.ask()
    return t


@numba.njit("void()")
def empty():
    pass


@numba.njit(numba.int64(STATE_TYPE, numba.float64))
def empty_like_step(state, value):
    return 0


# Measured values come from a table: an objective that reads the proposal straight after the kernel wrote it would time
# a store-forwarding stall of this loop rather than the kernel (about 20 ns here).
VALUES = np.random.default_rng(0).normal(1.0, 0.1, 1024)


@numba.njit
def njit_steps(state, values, n):
    for i in range(n):
        step(state, values[i & 1023])


def test_empty_njit_call(benchmark):
    benchmark(empty)


def test_empty_njit_call_with_step_arguments(benchmark):
    benchmark(empty_like_step, tuner(16).state, 1.0)


@pytest.mark.parametrize("d", DIMS)
def test_python_step(benchmark, d):
    t = tuner(d)
    benchmark(t.step, 1.0)
    assert t.n_evaluations > 0


@pytest.mark.parametrize("d", DIMS)
def test_njit_step(benchmark, d):
    t = tuner(d)
    ask(t.state)
    njit_steps(t.state, VALUES, 10)
    benchmark.extra_info["steps"] = STEPS
    benchmark(njit_steps, t.state, VALUES, STEPS)
    assert np.isfinite(t.ask()).all()
