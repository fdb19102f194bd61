"""An evaluation that costs a fixed amount of CPU work (about 50 ms here) and returns a deterministic cost."""

import numpy as np

WORK = 300  # passes over the array: about 50 ms on the 2-core machine the docs' figures come from


def evaluate(variant, seed, scenario):
    rng = np.random.default_rng(seed)
    a = rng.random(20_000)
    for _ in range(WORK):
        a = np.sin(a + variant["x"])
    return {"cost": float((variant["x"] - 0.3) ** 2 + 1e-3 * a.mean())}
