"""Decision cost of the bandit selector inside ``@njit`` (``arqon.kernels.bandit``) and from Python (``Selector.step``),
beside the empty @njit call of ``test_step_speed.py``, at K = 8 arms (LinUCB / linear Thompson at d = 8), and the peer a
user would reach for (mabwiser, Thompson sampling, K = 8) in the same run.

Run: ``make bench``. Inside @njit a round runs STEPS calls in one call; its median is reported per call
(``extra_info["steps"]``). ``select`` is one decision (scores and choice); ``step`` is update + select.
The reward stream is Bernoulli with distinct arm means, so the arms' statistics move as in use.
"""

import numba
import numpy as np
import pytest

import arqon
from arqon.kernels import bandit as kb
from arqon.kernels._jit import borrow

K, D, STEPS = 8, 8, 10_000
MEANS = np.linspace(0.2, 0.8, K)
REWARDS = (np.random.default_rng(0).random((STEPS, K)) < MEANS).astype(np.float64)
CONTEXTS = np.random.default_rng(1).normal(size=(STEPS, D)) / np.sqrt(D)
POLICIES = ["thompson", "gaussian-thompson", "ucb1", "klucb", "discounted-thompson", "discounted-ucb",
            "sliding-window-ucb", "sliding-window-thompson", "glr-klucb", "linucb", "lints"]


def selector(policy):
    linear = policy in ("linucb", "lints")
    return arqon.Selector({"arms": K, "policy": policy, "seed": 1, **({"context": D} if linear else {})})


@numba.njit
def njit_steps(state, rewards, contexts, n, linear):
    """``n`` steps (update + select) over the reward stream; returns the last arm. The loop keeps its own cost out
    of the figure: the row index wraps by a comparison, not a division, and the context rows are views with no
    reference count (an array chosen by a conditional expression costs Numba an atomic increment and decrement)."""
    mask = np.ones(rewards.shape[1], np.bool_)
    empty = np.zeros(0)
    rows = borrow(contexts)
    arm = kb.select(state, mask, rows[0] if linear else empty)
    j = 0
    if linear:
        for _ in range(n):
            arm = kb.step(state, rewards[j, arm], empty, mask, rows[j])
            j = j + 1 if j + 1 < rewards.shape[0] else 0
    else:
        for _ in range(n):
            arm = kb.step(state, rewards[j, arm], empty, mask, empty)
            j = j + 1 if j + 1 < rewards.shape[0] else 0
    return arm


@numba.njit
def njit_selects(state, rewards, contexts, n, linear):
    """``n`` decisions in a row with no update between them (a decision replaces the one out): the choice alone.
    KL-UCB's cached indices then all stay valid, its cheapest case; ``njit_steps`` has the case with updates."""
    mask = np.ones(rewards.shape[1], np.bool_)
    empty = np.zeros(0)
    rows = borrow(contexts)
    arm = 0
    j = 0
    if linear:
        for _ in range(n):
            arm = kb.select(state, mask, rows[j])
            j = j + 1 if j + 1 < rewards.shape[0] else 0
    else:
        for _ in range(n):
            arm = kb.select(state, mask, empty)
    return arm


@pytest.mark.parametrize("policy", POLICIES)
def test_njit_select_step(benchmark, policy):
    sel = selector(policy)
    linear = policy in ("linucb", "lints")
    njit_steps(sel.state, REWARDS, CONTEXTS, 2000, linear)  # compiled, and arms' statistics in use
    benchmark.extra_info["steps"] = STEPS
    arm = benchmark(njit_steps, sel.state, REWARDS, CONTEXTS, STEPS, linear)
    assert 0 <= arm < K


@pytest.mark.parametrize("policy", POLICIES)
def test_njit_select(benchmark, policy):
    sel = selector(policy)
    linear = policy in ("linucb", "lints")
    njit_steps(sel.state, REWARDS, CONTEXTS, 2000, linear)
    njit_selects(sel.state, REWARDS, CONTEXTS, 10, linear)
    benchmark.extra_info["steps"] = STEPS
    arm = benchmark(njit_selects, sel.state, REWARDS, CONTEXTS, STEPS, linear)
    assert 0 <= arm < K


def test_python_selector_step_thompson(benchmark):
    sel = selector("thompson")
    arm = sel.select()
    for i in range(2000):
        arm = sel.step(float(REWARDS[i, arm]))
    step = sel.step
    benchmark(step, 1.0)


def fitted_mabwiser():
    mabwiser = pytest.importorskip("mabwiser.mab")
    mab = mabwiser.MAB(list(range(K)), mabwiser.LearningPolicy.ThompsonSampling(), seed=1)
    arms = np.arange(200) % K
    mab.fit(arms, REWARDS[np.arange(200), arms])
    return mab


def test_mabwiser_thompson_predict(benchmark):
    mab = fitted_mabwiser()
    benchmark.extra_info["versus"] = "test_python_selector_step_thompson"
    benchmark(mab.predict)


def test_mabwiser_thompson_update(benchmark):
    mab = fitted_mabwiser()
    benchmark.extra_info["versus"] = "test_python_selector_step_thompson"
    benchmark(mab.partial_fit, [3], [1.0])
