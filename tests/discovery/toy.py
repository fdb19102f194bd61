"""A discovery problem for the tests: seeded, deterministic, fast (ARQON_TOY_SLEEP seconds per evaluation if set).

cost = (x - target)^2 + 0.05 (n - 5)^2 + (0.3 if mode b) + noise; the nominal target is 0.7 and the `drift`
scenario's is 0.2, so a candidate near 0.7 beats the baseline (x = 0) nominally; one near 1 regresses under drift.
"""

import os
import time

import numpy as np


def evaluate(variant, seed, scenario):
    delay = float(os.environ.get("ARQON_TOY_SLEEP", "0"))
    if delay:
        time.sleep(delay)
    if variant.get("mode") == "boom":
        raise ValueError("mode boom is not implemented")
    rng = np.random.default_rng(seed)
    x, n = variant["x"], variant.get("n", 5)
    target = {"drift": 0.2}.get(scenario["name"], 0.7)
    cost = (x - target) ** 2 + 0.05 * (n - 5) ** 2 + (0.3 if variant.get("mode") == "b" else 0.0)
    samples = cost + rng.normal(0.0, 0.05, 8)
    return {"cost": samples.tolist(), "mem": 10.0 * n, "latency": (20.0 + 30.0 * x * x + rng.exponential(1.0, 8))}


def check(variant, seed):
    return ["n_not_7"] if variant.get("n") == 7 else []


def broken(variant, seed, scenario):
    return {"cost": "fast"}


def crash(variant, seed, scenario):
    """A worker that dies (as a segfault in native code would) at one seed in five."""
    if seed % 5 == 0:
        os._exit(1)
    return evaluate(variant, seed, scenario)
