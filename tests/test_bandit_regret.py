"""The regret benchmark's problems and loops (bench/selection_regret.py): a smoke run of every library, and arqon's
Thompson sampling far below a uniformly random policy, whose regret is known exactly."""

import numpy as np
import pytest

from bench import selection_regret as sr


def test_every_library_runs_on_every_problem():
    pytest.importorskip("mabwiser", reason="the peers extra: pip install 'arqon[peers]' (make test installs it)")
    pytest.importorskip("river", reason="the peers extra: pip install 'arqon[peers]' (make test installs it)")
    for problem in ("a", "b", "c"):
        results = sr.measure(problem, runs=1, horizon=120)
        assert {lib for lib, _ in results} == {"arqon", "mabwiser", "river"}
        for regrets, seconds in results.values():
            assert all(np.isfinite(r) and r >= 0 for r in regrets) and all(s > 0 for s in seconds)


def test_streams_are_the_same_for_every_policy_and_change_where_declared():
    a, b = sr.piecewise(3, 10_000), sr.piecewise(3, 10_000)
    assert np.array_equal(a[1], b[1])
    best = a[0].argmax(axis=1)
    assert all(best[t - 1] != best[t] for t in (2000, 4000, 6000, 8000))


def test_thompson_regret_is_far_below_a_random_policy():
    horizon = 2000
    thompson = sr.arqon_policy({"policy": "thompson"})
    for run in range(3):
        means, rewards, _ = sr.stationary(run, horizon)
        chosen = thompson(rewards, None, run)
        regret = (means.max(axis=1) - means[np.arange(horizon), chosen]).sum()
        random_regret = horizon * (means[0].max() - means[0].mean())  # exact expectation of uniform choice
        assert regret * 5 < random_regret
