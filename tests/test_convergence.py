"""Convergence of SPSA with decaying gains: 10-D sphere, optimum 1.2345 in every coordinate, bounds [-5, 5]."""

import numpy as np
import pytest

import arqon

OPTIMUM = 1.2345


def solve(seed, **spsa):
    cfg = {"params": [{"name": f"x{i}", "min": -5, "max": 5} for i in range(10)], "seed": seed, "budget": 2000,
           "spsa": spsa}
    t = arqon.Tuner(cfg)
    x = t.ask()
    while not t.done:
        x = t.step(float(np.sum((x - OPTIMUM) ** 2)))
    recommended = np.array(list(t.recommend().values()))
    return float(np.sum((recommended - OPTIMUM) ** 2)), t.best.value


@pytest.mark.parametrize("spsa", [{}, {"c": 0.001}], ids=["default", "c=0.001"])
def test_sphere_10d_all_seeds_within_1e3(spsa):
    results = np.array([solve(seed, **spsa) for seed in range(20)])
    recommended, best_measured = results[:, 0], results[:, 1]
    print(f"\n{spsa or 'defaults'}: recommendation within 1e-3: {(recommended <= 1e-3).sum()}/20 "
          f"(median {np.median(recommended):.3g}); best measured within 1e-3: {(best_measured <= 1e-3).sum()}/20 "
          f"(median {np.median(best_measured):.3g})")
    assert (recommended <= 1e-3).all()
    if spsa:  # measured points sit at theta +- c_k*delta: only a small c puts them within 1e-3 too
        assert (best_measured <= 1e-3).all()
