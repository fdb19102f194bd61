"""Step cost from Python (``Tuner.step``) and inside ``@njit`` (``arqon.kernels.step``), beside empty @njit calls.

Run: ``make bench``. Kernels are compiled before timing. Inside @njit a benchmark round runs STEPS steps in one call;
its median is reported per step (``extra_info["steps"]``).
"""

import numba
import numpy as np
import pytest

from arqon.kernels.state import STATE_TYPE
from bench.asv.common import STEPS, VALUES, njit_steps, tuner

DIMS = [2, 16, 128]


@numba.njit("void()")
def empty():
    pass


@numba.njit(numba.int64(STATE_TYPE, numba.float64))
def empty_like_step(state, value):
    return 0


def test_empty_njit_call(benchmark):
    benchmark(empty)


def test_empty_njit_call_with_step_arguments(benchmark):
    benchmark(empty_like_step, tuner(16).state, 1.0)


@pytest.mark.parametrize("d", DIMS)
def test_python_step(benchmark, d):
    t = tuner(d)
    benchmark(t.step, 1.0)
    assert t.n_evaluations > 0


@pytest.mark.parametrize("gains", ["decaying", "constant"])
@pytest.mark.parametrize("d", DIMS)
def test_njit_step(benchmark, d, gains):
    t = tuner(d, gains)
    njit_steps(t.state, VALUES, 10)
    benchmark.extra_info["steps"] = STEPS
    benchmark(njit_steps, t.state, VALUES, STEPS)
    assert np.isfinite(t.ask()).all()
