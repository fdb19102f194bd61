import numpy as np
import pytest

import arqon


def space(d, lo=-5.0, hi=5.0, **extra):
    """A config dict with ``d`` linear parameters x0..x{d-1} in [lo, hi]."""
    return {"params": [{"name": f"x{i}", "min": lo, "max": hi} for i in range(d)], **extra}


def sphere(x, centre=1.2345):
    return float(np.sum((np.asarray(x) - centre) ** 2))


@pytest.fixture
def tuner16():
    t = arqon.Tuner(space(16, seed=7))
    t.ask()
    return t
