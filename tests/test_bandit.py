"""Bandit selector: samplers against scipy's distributions, each policy's statistics and choices against a plain
Python/NumPy reference, eligibility as a property, determinism, no allocation, and errors that name the argument."""

import math
import subprocess
import sys
import tracemalloc

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import arqon
from arqon.config import ConfigError
from arqon.kernels import bandit as kb
from arqon.kernels.bandit_math import klucb_index
from arqon.kernels.rng import rng_seed
from arqon.kernels.bandit_audit import bandit_digest
from arqon.kernels.sampling import _log_free_accept, gamma_constants, sample_gamma, sample_normal
from arqon.status import Status
from tests.conftest import ROOT, run_in_fresh_process

NO = np.zeros(0)


@numba.njit
def _normals(s, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = sample_normal(s)
    return out


@numba.njit
def _gammas(s, shape, n):
    d, c = gamma_constants(shape)
    out = np.empty(n)
    for i in range(n):
        out[i] = sample_gamma(s, shape, d, c)
    return out


def _rng(seed):
    s = np.zeros(4, np.uint64)
    rng_seed(s, np.uint64(seed))
    return s


def test_normal_and_gamma_samplers_match_their_distributions():
    s = _rng(7)
    assert stats.kstest(_normals(s, 100_000), "norm").pvalue > 1e-3
    for shape in (0.3, 1.0, 2.5, 40.0, 1000.0):
        x = _gammas(s, shape, 50_000)
        assert stats.kstest(x, "gamma", args=(shape,)).pvalue > 1e-3, shape


def test_thompson_draws_are_beta_posteriors():
    # one arm out of two at a time: the state's score row holds Beta(prior + successes, prior + failures) draws
    sel = arqon.Selector({"arms": 2, "seed": 3})
    arm = sel.select()
    rewards = {0: [1, 1, 0, 1, 0, 1, 1, 1], 1: [0, 0, 1, 0]}
    seen = {0: 0, 1: 0}
    while seen[0] < 8 or seen[1] < 4:
        a = arm if seen[arm] < len(rewards[arm]) else 1 - arm
        if a != arm:
            arm = sel.select(eligible=[a])
        arm = sel.step(float(rewards[arm][seen[arm]]), eligible=[1 - arm] if seen[arm] + 1 >= len(rewards[arm])
                       else None)
        seen[a] += 1
    m = kb.bandit_matrix(sel.state)
    assert m[kb.ALPHA].tolist() == [1 + 6, 1 + 1] and m[kb.BETA].tolist() == [1 + 2, 1 + 3]
    draws = []
    for _ in range(20_000):
        sel.select()
        draws.append(m[kb.SCORE].copy())
    draws = np.array(draws)
    assert stats.kstest(draws[:, 0], "beta", args=(7, 3)).pvalue > 1e-3
    assert stats.kstest(draws[:, 1], "beta", args=(2, 4)).pvalue > 1e-3


def _kl(p, q):
    p, q = min(max(p, 1e-15), 1 - 1e-15), min(max(q, 1e-15), 1 - 1e-15)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def _klucb_bisection(mean, n, level):
    lo, hi = mean, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if n * _kl(mean, mid) <= level else (lo, mid)
    return lo


@pytest.mark.parametrize("mean,n,level", [(0.8, 100, 9.0), (0.8, 10, 9.0), (0.5, 1000, 10.0), (0.1, 50, 8.0),
                                          (0.3, 3, 8.0), (0.99, 500, 10.0), (0.0, 20, 5.0), (1.0, 5, 3.0),
                                          (0.42, 1, 0.5)])
def test_klucb_index_is_the_root_a_bisection_finds(mean, n, level):
    assert klucb_index(mean, n, level) == pytest.approx(_klucb_bisection(mean, n, level), abs=1e-9)


def _bernoulli_stream(k, horizon, seed):
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.1, 0.9, k)
    return means, (rng.random((horizon, k)) < means).astype(float)


def _reference_choices(policy, stream, **kw):
    """Arms chosen by a plain Python implementation of ``policy`` on ``stream`` (deterministic policies only)."""
    horizon, k = stream.shape
    n, s = np.zeros(k), np.zeros(k)
    window = []
    out = []
    for t in range(horizon):
        if policy == "ucb1":
            score = [s[a] / n[a] + math.sqrt(2 * math.log(max(t, 1)) / n[a]) if n[a] else math.inf for a in range(k)]
        elif policy == "klucb":
            level = math.log(max(t, 1))
            score = [_klucb_bisection(s[a] / n[a], n[a], level) if n[a] else math.inf for a in range(k)]
        elif policy == "discounted-ucb":
            total = n.sum()
            score = [s[a] / n[a] + 2 * math.sqrt(0.6 * math.log(max(total, 1)) / n[a]) if n[a] > 1e-300 else math.inf
                     for a in range(k)]
        else:  # sliding-window-ucb
            tau = kw["window"]
            score = [s[a] / n[a] + math.sqrt(0.6 * math.log(max(min(t, tau), 1)) / n[a]) if n[a] else math.inf
                     for a in range(k)]
        arm = int(np.argmax(score))  # the first of the highest: ties to the lower index
        out.append(arm)
        r = stream[t, arm]
        if policy == "discounted-ucb":
            n *= kw["gamma"]
            s *= kw["gamma"]
        if policy == "sliding-window-ucb":
            window.append((arm, r))
            if len(window) > kw["window"]:
                old, r_old = window.pop(0)
                n[old] -= 1
                s[old] -= r_old
        n[arm] += 1
        s[arm] += r
    return out


@pytest.mark.parametrize("policy,settings_", [("ucb1", {}), ("klucb", {}), ("discounted-ucb", {"gamma": 0.95}),
                                              ("sliding-window-ucb", {"window": 50})])
def test_deterministic_policies_choose_as_a_plain_reference_does(policy, settings_):
    _, stream = _bernoulli_stream(5, 600, 11)
    section = {policy.replace("-", "_"): settings_} if settings_ else {}
    sel = arqon.Selector({"arms": 5, "policy": policy, **section})
    arm = sel.select()
    chosen = []
    for t in range(stream.shape[0]):
        chosen.append(arm)
        arm = sel.step(stream[t, arm])
    reference = _reference_choices(policy, stream, **settings_)
    agree = sum(a == b for a, b in zip(chosen, reference))
    # KL-UCB's indices agree to ~1e-12, so an exact tie in floating point could break either way; none occurs here
    assert agree == len(reference), f"{agree} of {len(reference)} choices agree"


def test_linear_models_are_ridge_regressions():
    d, k = 4, 3
    sel = arqon.Selector({"arms": k, "policy": "linucb", "context": d, "linucb": {"ridge": 0.5}})
    rng = np.random.default_rng(2)
    xs = {a: [] for a in range(k)}
    ys = {a: [] for a in range(k)}
    x = rng.normal(size=d)
    arm = sel.select(context=x)
    weights = rng.normal(size=(k, d))
    for _ in range(60):
        y = float(x @ weights[arm] + 0.2 * rng.normal())
        xs[arm].append(x)
        ys[arm].append(y)
        x = rng.normal(size=d)
        arm = sel.step(y, context=x)
    v = sel.state[kb.BANDIT_HEADER_WORDS + kb.BASE_ROWS * k:]
    size = d * d + 2 * d
    for a in range(k):
        X, Y = np.array(xs[a]).reshape(-1, d), np.array(ys[a])
        A = 0.5 * np.eye(d) + X.T @ X
        base = a * size
        np.testing.assert_allclose(v[base:base + d * d].reshape(d, d), np.linalg.inv(A), atol=1e-10)
        np.testing.assert_allclose(v[base + d * d + d:base + size], np.linalg.solve(A, X.T @ Y), atol=1e-10)
    # each arm's noise sd: the ridge objective at its minimum, with a prior variance of 1 worth 2 observations
    m = kb.bandit_matrix(sel.state)
    sds = []
    for a in range(k):
        X, Y = np.array(xs[a]).reshape(-1, d), np.array(ys[a])
        theta = np.linalg.solve(0.5 * np.eye(d) + X.T @ X, X.T @ Y)
        rss = np.sum((Y - X @ theta) ** 2) + 0.5 * theta @ theta
        sds.append(math.sqrt((2.0 + rss) / (2.0 + len(Y))))
    np.testing.assert_allclose(m[kb.NOISE_SD], sds, rtol=1e-10)
    assert max(sds) < 0.5  # the noise measured (sd 0.2), not the prior's 1
    # the choice is the LinUCB argmax at the context
    state = sel.state.copy()
    chosen = kb.select(state, np.ones(k, np.bool_), x)
    scores = []
    for a in range(k):
        X, Y = np.array(xs[a]).reshape(-1, d), np.array(ys[a])
        A = 0.5 * np.eye(d) + X.T @ X
        scores.append(x @ np.linalg.solve(A, X.T @ Y) + sds[a] * math.sqrt(x @ np.linalg.solve(A, x)))
    assert chosen == int(np.argmax(scores))


def _full_state(policy, seed=5):
    d = 3 if policy in ("linucb", "lints") else 0
    sel = arqon.Selector({"arms": 6, "policy": policy, "seed": seed, **({"context": d} if d else {})})
    x = np.linspace(0.2, 0.7, d) if d else None
    arm = sel.select(context=x)
    rng = np.random.default_rng(seed)
    for _ in range(50):
        arm = sel.step(float(rng.random() < 0.2 + 0.1 * arm), context=x)
    return sel, (np.linspace(0.2, 0.7, d) if d else NO)


@settings(max_examples=60, deadline=None)
@given(policy=st.sampled_from(kb.POLICY_NAMES), bits=st.integers(1, 2**6 - 1))
def test_a_masked_arm_is_never_chosen_and_the_mask_changes_only_which_arm_wins(policy, bits):
    sel, x = _full_state(policy)
    mask = np.array([(bits >> a) & 1 == 1 for a in range(6)])
    full, masked = sel.state.copy(), sel.state.copy()
    arm_full = kb.select(full, np.ones(6, np.bool_), x)
    arm_masked = kb.select(masked, mask, x)
    assert mask[arm_masked]
    scores_full, scores_masked = kb.bandit_matrix(full)[kb.SCORE], kb.bandit_matrix(masked)[kb.SCORE]
    if policy in ("klucb", "glr-klucb"):  # arms that cannot win keep a lower bound of their index: recompute them
        h, m = kb.bandit_header(full), kb.bandit_matrix(full)
        t = int(h["t"])
        forced = t % max(int(6 / 0.01), 6) if policy == "glr-klucb" else 6
        level = [math.log(max(t - (m[kb.RESTART, a] if policy == "glr-klucb" else 0), 1)) for a in range(6)]
        exact = np.array([_klucb_bisection(m[kb.S, a] / m[kb.N, a], m[kb.N, a], level[a]) if m[kb.N, a] else math.inf
                          for a in range(6)])
        expected = forced if forced < 6 and mask[forced] else np.flatnonzero(mask)[np.argmax(exact[mask])]
        assert arm_masked == expected
        return
    else:  # the same scores, the same random stream
        assert np.array_equal(scores_full, scores_masked)
        assert np.array_equal(full[:kb.BANDIT_HEADER_WORDS].view(kb.BANDIT_HEADER)["rng"],
                              masked[:kb.BANDIT_HEADER_WORDS].view(kb.BANDIT_HEADER)["rng"])
    assert arm_masked == np.flatnonzero(mask)[np.argmax(scores_full[mask])]
    if mask[arm_full]:
        assert arm_masked == arm_full


def test_no_eligible_arm_returns_the_fallback_with_a_status():
    sel = arqon.Selector({"arms": ["a", "b", "c"], "fallback": "b"})
    assert sel.select(eligible=np.zeros(3, np.bool_)) == 1
    assert sel.last_status == Status.NONE_ELIGIBLE
    assert sel.update("b", 1.0) == Status.OK
    assert kb.select(sel.state, np.zeros(3, np.bool_), NO) == 1 and kb.bandit_status(sel.state) == kb.NONE_ELIGIBLE


def test_a_step_refused_for_a_corrupted_constraint_touches_nothing():
    """The choice's checks run before the update: a constraint naming no metric refuses the whole step."""
    sel = arqon.Selector({"arms": 3, "policy": "ucb1", "metrics": ["latency"],
                          "constraints": [{"metric": "latency", "max": 10.0}]})
    state = sel.state
    arm = kb.select(state, np.ones(3, np.bool_), NO)
    assert arm >= 0
    h = kb.bandit_header(state)
    cons = kb._blocks(int(h["k"]), int(h["d"]), int(h["window"]), int(h["history"]), int(h["n_cons"]))[3]
    vector = state[kb.BANDIT_HEADER_WORDS + kb.bandit_matrix(state).size:]  # the blocks follow the matrix
    vector[cons] = 7.0  # metric 7 of 1
    before = state.copy()
    assert kb.step(state, 0.5, np.ones(1), np.ones(3, np.bool_), NO) == -kb.BAD_STATE
    assert np.array_equal(state.view(np.uint64), before.view(np.uint64))  # the update did not land either


def test_constraints_mask_an_arm_once_its_metric_breaches_with_confidence():
    sel = arqon.Selector({"arms": ["fast", "slow"], "policy": "ucb1", "metrics": ["latency"],
                          "constraints": [{"metric": "latency", "max": 10.0}], "min_samples": 5, "fallback": "fast"})
    latency = {0: 5.0, 1: 20.0}  # "slow" pays more reward but breaches the latency limit
    reward = {0: 0.2, 1: 0.9}
    rng = np.random.default_rng(0)
    arm = sel.select()
    chosen = []
    for _ in range(300):
        chosen.append(arm)
        arm = sel.step(reward[arm], metrics={"latency": latency[arm] + rng.normal(0, 1)})
    assert chosen[-200:].count(1) == 0  # masked for good once judged
    assert 5 <= chosen.count(1) <= 8  # judged after min_samples samples
    assert "latency <= 10.0" in sel.describe()
    # every arm breaching: the fallback, with NONE_ELIGIBLE
    strict = arqon.Selector({"arms": 2, "policy": "ucb1", "metrics": ["latency"], "min_samples": 2,
                             "constraints": [{"metric": "latency", "max": 1.0}], "fallback": 1})
    arm = strict.select()
    for _ in range(10):
        arm = strict.step(0.5, metrics=[5.0 + 0.1 * rng.random()])
    assert arm == 1 and strict.last_status & Status.NONE_ELIGIBLE


def test_glr_restarts_an_arm_whose_mean_changes_and_the_choice_follows():
    sel = arqon.Selector({"arms": 3, "policy": "glr-klucb", "seed": 1})
    rng = np.random.default_rng(1)
    before, after = np.array([0.9, 0.5, 0.4]), np.array([0.1, 0.5, 0.8])
    arm = sel.select()
    late = []
    for t in range(6000):
        means = before if t < 3000 else after
        if t >= 5000:
            late.append(arm)
        arm = sel.step(float(rng.random() < means[arm]))
    assert int(kb.bandit_header(sel.state)["restarts"]) >= 1
    assert late.count(2) > 0.8 * len(late)


def test_discounted_thompson_discounts_every_arm_each_step():
    sel = arqon.Selector({"arms": 3, "policy": "discounted-thompson", "discounted_thompson": {"gamma": 0.9}})
    arm = sel.select()
    n, s = np.zeros(3), np.zeros(3)
    for t in range(40):
        r = float(t % 3 == 0)
        n *= 0.9
        s *= 0.9
        n[arm] += 1
        s[arm] += r
        arm = sel.step(r)
    m = kb.bandit_matrix(sel.state)
    np.testing.assert_allclose(m[kb.N], n, rtol=1e-12)
    np.testing.assert_allclose(m[kb.ALPHA], 1 + s, rtol=1e-12)
    np.testing.assert_allclose(m[kb.BETA], 1 + n - s, rtol=1e-12)


def test_tournament_picks_the_best_of_its_draws():
    sel = arqon.Selector({"arms": 2, "seed": 4})
    scores = np.arange(10.0)
    picks = np.array([sel.tournament(scores, size=2) for _ in range(20_000)])
    # P(item i wins) = P(i drawn and every other draw below it) = (2 i) / (10 * 9) for two draws without replacement
    expected = np.array([2 * i / 90 for i in range(10)])
    observed = np.bincount(picks, minlength=10) / picks.shape[0]
    assert stats.chisquare(np.bincount(picks, minlength=10)[1:], expected[1:] * picks.shape[0]).pvalue > 1e-3
    assert observed[0] == 0.0
    mask = np.zeros(10, bool)
    mask[[2, 5]] = True
    assert {sel.tournament(scores, eligible=mask, size=4) for _ in range(50)} == {5}


def _choices(seed, policy="thompson", n=300):
    sel = arqon.Selector({"arms": 8, "policy": policy, "seed": seed})
    arm = sel.select()
    out = []
    for t in range(n):
        out.append(arm)
        arm = sel.step(float((t * 7 + arm) % 3 == 0))
    return out


@numba.njit
def _njit_choices(state, n):
    mask = np.ones(8, np.bool_)
    empty = np.zeros(0)
    out = np.zeros(n, np.int64)
    arm = kb.select(state, mask, empty)
    for t in range(n):
        out[t] = arm
        arm = kb.step(state, 1.0 if (t * 7 + arm) % 3 == 0 else 0.0, empty, mask, empty)
    return out


@pytest.mark.parametrize("policy", ["thompson", "gaussian-thompson", "sliding-window-thompson"])
def test_same_seed_same_choices_from_python_njit_and_a_fresh_process(policy):
    ours = _choices(9, policy)
    assert ours == _choices(9, policy) and ours != _choices(10, policy)
    state = arqon.Selector({"arms": 8, "policy": policy, "seed": 9}).state
    assert _njit_choices(state, 300).tolist() == ours
    code = (f"from tests.test_bandit import _choices; print(_choices(9, {policy!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.stdout.strip() == str(ours), out.stderr[-2000:]


def test_a_copied_or_saved_state_continues_identically_and_a_truncated_one_is_refused(tmp_path):
    sel, _ = _full_state("thompson")
    np.save(tmp_path / "s.npy", sel.state)
    copy = np.load(tmp_path / "s.npy")
    mask = np.ones(6, np.bool_)
    assert [kb.select(copy, mask, NO) for _ in range(20)] == [kb.select(sel.state, mask, NO) for _ in range(20)]
    assert kb.select(sel.state[:-1].copy(), mask, NO) == -kb.BAD_STATE
    assert kb.select(sel.state[:kb.BANDIT_HEADER_WORDS].copy(), mask, NO) == -kb.BAD_STATE
    assert kb.select(arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}]}).state, mask, NO) == -kb.BAD_STATE
    out = sel.pending
    before = sel.state.copy()
    assert kb.select(sel.state, np.ones(5, np.bool_), NO) == -kb.BAD_ARGUMENT
    assert kb.update(sel.state, (out + 1) % 6, 0.5, NO) == kb.BAD_ARGUMENT  # not the arm out
    assert kb.update(sel.state, out, 1.5, NO) == kb.BAD_ARGUMENT  # a Bernoulli reward outside [0, 1]
    assert kb.update(sel.state, out, math.nan, NO) == kb.NONFINITE
    assert kb.update(sel.state, out, 0.5, np.ones(1)) == kb.BAD_ARGUMENT  # metrics it does not have
    assert kb.step(sel.state, 2.0, NO, mask, NO) == -kb.BAD_ARGUMENT
    assert kb.tournament(sel.state, np.ones(3), np.ones(3, np.bool_), 5) == -kb.BAD_ARGUMENT
    assert np.array_equal(before.view(np.uint64), sel.state.view(np.uint64))  # refused: nothing touched


@numba.njit
def _linear_loop(state, n):
    mask = np.ones(8, np.bool_)
    empty = np.zeros(0)
    x = np.linspace(-1.0, 1.0, 8)
    arm = kb.select(state, mask, x)
    for t in range(n):
        x[t % 8] = -x[t % 8]
        arm = kb.step(state, 0.5, empty, mask, x)
    return arm


@numba.njit
def _loop(state, n):
    mask = np.ones(8, np.bool_)
    empty = np.zeros(0)
    arm = kb.select(state, mask, empty)
    for t in range(n):
        arm = kb.step(state, 0.5, empty, mask, empty)
    return arm


def test_decisions_allocate_nothing():
    code = """
        from numba.core.runtime import rtsys
        import arqon
        from arqon.kernels import bandit as kb
        from tests.test_bandit import _loop, _linear_loop
        counts = []
        for policy in kb.POLICY_NAMES:
            linear = policy in ("linucb", "lints")
            sel = arqon.Selector({"arms": 8, "policy": policy, **({"context": 8} if linear else {})})
            loop = _linear_loop if linear else _loop
            loop(sel.state, 5)
            before = rtsys.get_allocation_stats(); loop(sel.state, 0); boundary = rtsys.get_allocation_stats()
            loop(sel.state, 20_000); after = rtsys.get_allocation_stats()
            counts.append((after.alloc - boundary.alloc) - (boundary.alloc - before.alloc))
        print(counts)
    """
    assert run_in_fresh_process(code, {"NUMBA_NRT_STATS": "1"}).strip() == str([0] * len(kb.POLICY_NAMES))


def test_selector_step_from_python_allocates_nothing():
    sel = arqon.Selector({"arms": 8, "seed": 1})
    arm = sel.select()
    for _ in range(100):
        arm = sel.step(0.5)
    tracemalloc.start()
    snap = tracemalloc.take_snapshot()
    for _ in range(5000):
        arm = sel.step(0.5)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap, "filename") if s.size_diff > 0)
    tracemalloc.stop()
    assert grown < 4096, grown


def test_bad_input_gets_an_error_naming_the_argument():
    sel = arqon.Selector({"arms": ["a", "b"], "seed": 1})
    with pytest.raises(ValueError, match="update: no arm is out"):
        sel.update("a", 1.0)
    with pytest.raises(ValueError, match="step: no arm is out"):
        sel.step(1.0)
    arm = sel.select()
    with pytest.raises(ValueError, match=r"reward: policy 'thompson' takes rewards in \[0, 1\]"):
        sel.step(1.5)
    with pytest.raises(ValueError, match="reward: must be finite"):
        sel.update(arm, math.nan)
    with pytest.raises(ValueError, match="arm: no arm named 'zz'"):
        sel.update("zz", 1.0)
    with pytest.raises(ValueError, match="arm: 7 is not an arm index"):
        sel.update(7, 1.0)
    with pytest.raises(ValueError, match="is not the arm out"):
        sel.update(1 - arm, 1.0)
    with pytest.raises(ValueError, match="context: policy 'thompson' takes no context"):
        sel.select(context=[1.0])
    with pytest.raises(ValueError, match="eligible: a mask of 2 booleans"):
        sel.select(eligible=np.ones(3, bool))
    lin = arqon.Selector({"arms": 2, "policy": "linucb", "context": 2})
    with pytest.raises(ValueError, match="context: expected a vector of length 2"):
        lin.select(context=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="context: policy 'linucb' needs a context vector"):
        lin.select()
    for bad, message in [({"arms": 2, "policy": "nope"}, "Invalid enum value 'nope' - at `$.policy`"),
                         ({"arms": 0}, "at `$.arms`"),
                         ({"arms": 2, "ucb1": {"explore": 2.0}}, "`ucb1` settings are given but the policy is"),
                         ({"arms": 2, "policy": "lints"}, "needs `context`"),
                         ({"arms": 2, "fallback": 2}, "`fallback` 2 is not an arm index"),
                         ({"arms": 2, "thompson": {"prior_a": 0}}, "at `$.thompson.prior_a`"),
                         ({"arms": 2, "metrics": ["x"], "constraints": [{"metric": "x"}]}, "exactly one of"),
                         ({"arms": 2, "colour": 1}, "unknown field `colour`")]:
        with pytest.raises(ConfigError, match=message.replace("$", r"\$").replace("[", r"\[").replace("(", r"\(")):
            arqon.Selector(bad)


def test_telemetry_windows_feed_the_eligibility_mask():
    tel = arqon.Telemetry({"metrics": [{"name": "lat_a", "quantiles": [0.99]}, {"name": "lat_b", "quantiles": [0.99]}]})
    sel = arqon.Selector({"arms": ["a", "b", "c"], "policy": "ucb1"})
    slos = {"a": ("lat_a", "p99", 10.0), "b": ("lat_b", "p99", 10.0)}
    rng = np.random.default_rng(0)
    for _ in range(500):
        tel.emit("lat_a", float(rng.uniform(1, 5)))
        tel.emit("lat_b", float(rng.uniform(1, 20)))  # its p99 is about 19.8: over its SLO
    mask = sel.eligible_from(tel, slos, min_samples=100)
    assert mask.tolist() == [True, False, True]
    assert all(sel.select(eligible=mask) != 1 for _ in range(20))
    with pytest.raises(ValueError, match="slos\\['a'\\]: a \\(metric, stat, limit\\) triple"):
        sel.eligible_from(tel, {"a": ("lat_a", "p99")})


def test_candidates_are_the_mask_and_the_constraints_as_a_plain_computation_gives_them():
    """``Selector.candidates`` against mean + z s.e. <= limit worked out in NumPy from the metrics each arm was
    given (arms with fewer than min_samples samples count as meeting it), over random masks."""
    from statistics import NormalDist

    sel = arqon.Selector({"arms": 5, "policy": "ucb1", "metrics": ["lat", "acc"], "min_samples": 3,
                          "constraints": [{"metric": "lat", "max": 10.0}, {"metric": "acc", "min": 0.5}]})
    rng = np.random.default_rng(7)
    seen = {a: [] for a in range(5)}
    centres = [(5.0, 0.9), (9.5, 0.8), (20.0, 0.9), (5.0, 0.3), (9.0, 0.55)]
    z = NormalDist().inv_cdf(0.95)
    arm = sel.select()
    for _ in range(60):
        lat, acc = centres[arm][0] + rng.normal(0, 2), centres[arm][1] + rng.normal(0, 0.1)
        seen[arm].append((lat, acc))
        arm = sel.step(0.5, eligible=rng.random(5) < 0.8, metrics=[lat, acc])
        mask = rng.random(5) < 0.7
        expected = []
        for a in range(5):
            x = np.array(seen[a]).reshape(-1, 2)
            ok = True
            if len(x) >= 3:
                mean, se = x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(len(x))
                ok = mean[0] + z * se[0] <= 10.0 and mean[1] - z * se[1] >= 0.5
            expected.append(bool(mask[a]) and ok)
        assert sel.candidates(eligible=mask).tolist() == expected
    with pytest.raises(ValueError, match="eligible"):
        sel.candidates(eligible=[True, False])


@settings(max_examples=3000, deadline=None)
@given(st.floats(1e-9, 1.0 - 1e-9), st.floats(-6.0, 6.0), st.floats(0.05, 1e6))
def test_log_free_accept_only_where_the_exact_test_accepts(u, x, shape):
    """Gamma's logarithm-free acceptance is a sufficient condition of Marsaglia and Tsang's exact test."""
    d, c = gamma_constants(shape)
    z = 1.0 + c * x
    if z <= 0.0:
        return
    v = z * z * z
    if _log_free_accept(u, x * x, z, v, d):
        assert math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)) + 1e-12 * max(1.0, d)


def _phi(e):
    """3e - 3e^2/2 + e^3 - 3 ln(1 + e): minus Marsaglia and Tsang's log acceptance ratio over d, at c x = e (its
    series 3 sum_{n >= 4} (-e)^n / n near 0, where the direct form cancels)."""
    series = sum(3.0 * (-e) ** n / n for n in range(4, 40))
    direct = 3.0 * e - 1.5 * e * e + e ** 3 - 3.0 * np.log1p(np.maximum(e, -1.0 + 1e-300))
    return np.where(np.abs(e) < 0.1, series, direct)


def test_gamma_squeeze_accepts_only_where_the_exact_test_accepts():
    """The squeeze ``u < 1 - SQUEEZE (c x)^2 x^2`` is a lower bound of the exact acceptance probability exp(h(x)) for
    every shape >= 1 (d >= 2/3) and every x with 1 + c x > 0, so it accepts only what the exact test accepts; and it is
    nearly tight at d = 2/3, where Marsaglia and Tsang's 0.0331 is."""
    from arqon.kernels.sampling import SQUEEZE

    e = np.concatenate([-1.0 + np.logspace(-9, -0.5, 4000), np.linspace(-0.7, 3.0, 40_000)])
    e = e[e != 0.0]
    phi = _phi(e)  # the same for every d
    for d in np.concatenate([[2.0 / 3.0], np.logspace(np.log10(2.0 / 3.0), 7, 300)]):
        bound = 1.0 - 9.0 * SQUEEZE * d * e ** 4  # SQUEEZE (c x)^2 x^2 with c^2 = 1 / (9 d)
        exact = np.exp(-d * phi)
        assert np.all(bound <= exact + 1e-15), d
    tight = 1.0 - 9.0 * (SQUEEZE * 0.995) * (2.0 / 3.0) * e ** 4
    assert np.any(tight > np.exp(-(2.0 / 3.0) * phi))  # 0.5% smaller would not be a bound


def test_corrupted_gamma_constants_give_nan_at_once_and_the_digest_covers_the_noise_sums():
    s = np.array([1, 2, 3, 4], np.uint64)
    for d, c in ((1.0, math.inf), (1.0, 5.0), (math.nan, 0.1), (1.0, -0.1)):
        assert math.isnan(sample_gamma(s, 2.0, d, c)), (d, c)  # refused, not an endless rejection loop
    sel = arqon.Selector({"arms": 3, "policy": "linucb", "context": 2, "seed": 1})
    x = np.array([0.3, -0.2])
    arm = sel.select(context=x)
    for r in (0.5, 0.1, 0.9, 0.4):
        arm = sel.step(r, context=x)
    state = sel.state.copy()
    before = bandit_digest(state)
    kb.bandit_matrix(state)[kb.NOISE_SS] *= 2.0
    assert bandit_digest(state) != before
