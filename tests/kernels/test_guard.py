"""The safety executor's kernels under random policies and random streams of proposals, metrics and operator calls.

A checker written apart from the kernels tracks what must hold after every call: live within bounds; every change of a
live value within max delta, cooldowns, dwell, rate limit and risk budget unless it is a rollback to known-good; every
rejection carries a reason; a hard SLO breach or the kill switch leaves known-good live in the same call; nothing
changes live while halted or in safe mode.
"""

import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import arqon
from arqon.executor import Executor, Flags
from arqon.kernels import guard as g
from arqon.kernels.rng import rng_seed, rng_uniform
from tests.conftest import SNAPSHOTS, snapshot

TOTAL = {"proposals": 0, "violations": 0}
SAFE_MODE_WORD, PHASE_WORD = (g.GUARD_HEADER.fields[f][1] // 8 for f in ("safe_mode", "phase"))


@numba.njit
def header_word(state, word):
    """An int64 field of the executor header, read from @njit code."""
    return state[word:word + 1].view(np.int64)[0]

# violation codes (the checker's, not the kernel's)
V_BOUNDS, V_DELTA, V_COOLDOWN, V_DWELL, V_RATE, V_RISK, V_NO_REASON, V_BREACH, V_KILL, V_BLOCKED, V_FOREIGN = range(11)


@numba.njit
def drive(state, lo, hi, max_step, cooldown, dwell, rate_n, rate_w, risk, seed, steps, violations):
    """Random calls against the executor; counts what the checker finds in ``violations``. Returns proposals made."""
    m = g.guard_live(state)  # noqa: F841  (compiles the view kernel too)
    d = lo.shape[0]
    rng = np.zeros(4, np.uint64)
    rng_seed(rng, np.uint64(seed))
    proposal = np.zeros(d)
    metrics = np.zeros(1)
    prev = g.guard_live(state).copy()
    baseline = prev.copy()
    last_change = np.full(d, -(2**62))
    applies = np.full(steps + 1, -(2**62))
    n_applies = 0
    last_apply = -(2**62)
    halted = False
    proposals = 0
    now = 0
    for _ in range(steps):
        now += 0 if rng_uniform(rng) < 0.1 else 1 + np.int64(rng_uniform(rng) * 3)
        u = rng_uniform(rng)
        if u < 0.55:  # a proposal: mostly near live, some far, some NaN
            for i in range(d):
                span = hi[i] - lo[i]
                r = rng_uniform(rng)
                if r < 0.7:
                    proposal[i] = prev[i] + (rng_uniform(rng) - 0.5) * 4 * min(max_step[i], span)
                elif r < 0.97:
                    proposal[i] = lo[i] - span + 3 * span * rng_uniform(rng)
                else:
                    proposal[i] = prev[i]
            if rng_uniform(rng) < 0.01:
                proposal[np.int64(rng_uniform(rng) * d)] = np.nan
            flags = g.guard_offer(state, proposal, now)
            proposals += 1
            if flags & g.REJECTED and not flags & (g.NONFINITE | g.NOT_ALLOWED | g.OUT_OF_BOUNDS | g.MAX_DELTA
                                                     | g.COOLDOWN | g.DWELL | g.RATE_LIMIT | g.RISK_BUDGET
                                                     | g.HALTED | g.SAFE_MODE):
                violations[V_NO_REASON] += 1
        elif u < 0.95:  # metrics: 3% breach the SLO "m <= 1"
            metrics[0] = 2.0 if rng_uniform(rng) < 0.03 else rng_uniform(rng)
            flags = g.guard_observe(state, metrics, now)
        elif u < 0.97:
            flags = g.guard_snapback(state, now)
        elif u < 0.985:
            flags = g.guard_kill(state, now)
        else:
            flags = g.guard_resume(state, now)
        live = g.guard_live(state)
        safe_mode, phase = header_word(state, SAFE_MODE_WORD), header_word(state, PHASE_WORD)
        if flags & g.KILLED:
            halted = True
        if flags & g.OPERATOR_RESUMED:
            halted = False
        if flags & g.PROMOTED:
            baseline[:] = live
        rollback = (flags & (g.ROLLED_BACK | g.KILLED)) != 0
        if rollback and flags & g.APPLIED:
            prev[:] = baseline  # one offer call: a candidate past its deadline rolled back, then a new one applied
        changed = False
        for i in range(d):
            if live[i] != prev[i]:
                changed = True
        for i in range(d):
            if not (lo[i] <= live[i] <= hi[i]):
                violations[V_BOUNDS] += 1
        if rollback and not flags & g.APPLIED:
            for i in range(d):
                if live[i] != baseline[i]:
                    violations[V_KILL if flags & g.KILLED else V_BREACH] += 1
        elif changed:
            if halted or safe_mode != 0 and not flags & g.SAFE_MODE_ENTERED:
                violations[V_BLOCKED] += 1
            if not flags & g.APPLIED:
                violations[V_FOREIGN] += 1
            differs = 0
            for i in range(d):
                if live[i] != prev[i]:
                    # within max delta up to the rounding of the values themselves (current +- step is rounded
                    # at the values' magnitude: a step 1e-4 of a value's size is off by up to 1e-12 of itself)
                    if abs(live[i] - prev[i]) > max_step[i] * (1 + 1e-12) + 4.5e-16 * max(abs(live[i]), abs(prev[i])):
                        violations[V_DELTA] += 1
                    if now - last_change[i] < cooldown[i]:
                        violations[V_COOLDOWN] += 1
                    last_change[i] = now
                if live[i] != baseline[i]:
                    differs += 1
            if risk > 0 and differs > risk:
                violations[V_RISK] += 1
            if now - last_apply < dwell:
                violations[V_DWELL] += 1
            last_apply = now
            applies[n_applies] = now
            n_applies += 1
            if rate_n > 0:
                in_window = 0
                for k in range(n_applies):
                    if applies[k] > now - rate_w:
                        in_window += 1
                if in_window > rate_n:
                    violations[V_RATE] += 1
        if flags & g.SLO_BREACH and (phase == g.CANARY or phase == g.PAUSED):
            violations[V_BREACH] += 1  # a breach must never leave a candidate live
        prev[:] = live
    return proposals


def policies():
    param = st.fixed_dictionaries({
        "lo": st.floats(-1e3, 1e3), "span": st.floats(1e-3, 1e3), "delta": st.one_of(st.none(), st.floats(0.01, 1.0)),
        "cooldown": st.integers(0, 5),
    })
    return st.fixed_dictionaries({
        "params": st.lists(param, min_size=1, max_size=8),
        "mode": st.sampled_from(["clip", "reject"]),
        "cooldown": st.integers(0, 4),
        "rate": st.one_of(st.none(), st.tuples(st.integers(1, 5), st.integers(1, 30))),
        "risk": st.one_of(st.none(), st.integers(1, 4)),
        "stages": st.lists(st.tuples(st.integers(1, 4), st.floats(0, 0.5)), max_size=3),
        "seed": st.integers(0, 2**63 - 1),
    })


def build(spec):
    tuner = arqon.Tuner({"params": [{"name": f"p{i}", "min": p["lo"], "max": p["lo"] + p["span"]}
                                    for i, p in enumerate(spec["params"])]})
    policy = {"params": {f"p{i}": ({"max_delta_fraction": p["delta"]} if p["delta"] else {}) | {
        "cooldown": p["cooldown"]} for i, p in enumerate(spec["params"])},
        "mode": spec["mode"], "cooldown": spec["cooldown"], "metrics": ["m"], "slos": ["m <= 1"],
        "safe_mode_after": 4, "progress_deadline": 50}
    if spec["rate"]:
        policy["rate_limit"] = {"applies": spec["rate"][0], "window": spec["rate"][1]}
    if spec["risk"]:
        policy["risk_budget"] = spec["risk"]
    if spec["stages"]:
        policy["canary"] = {"metric": "m", "stages": [{"min_samples": n, "max_regression": r}
                                                      for n, r in spec["stages"]]}
    ex = Executor(policy, tuner)
    lo = np.array([p["lo"] for p in spec["params"]])
    hi = lo + np.array([p["span"] for p in spec["params"]])
    step = np.array([p["delta"] * p["span"] if p["delta"] else np.inf for p in spec["params"]])
    cooldown = np.array([p["cooldown"] for p in spec["params"]], np.int64)
    rate_n, rate_w = spec["rate"] or (0, 1)
    return ex, (lo, hi, step, cooldown, spec["cooldown"], rate_n, rate_w, spec["risk"] or 0)


STEPS = 40_000


@settings(max_examples=50, deadline=None, derandomize=True)
@given(policies())
def test_random_policies_and_streams_never_break_the_guardrails(spec):
    ex, limits = build(spec)
    violations = np.zeros(11, np.int64)
    proposals = drive(ex.state, *limits, spec["seed"] % 2**63, STEPS, violations)
    TOTAL["proposals"] += proposals
    TOTAL["violations"] += int(violations.sum())
    assert violations.sum() == 0, dict(zip(["bounds", "delta", "cooldown", "dwell", "rate", "risk", "no reason",
                                            "breach", "kill", "blocked", "foreign"], violations.tolist()))


def test_the_random_check_covered_a_million_proposals():
    """Runs after the property test (file order): the total it checked."""
    print(f"\nrandom proposals checked: {TOTAL['proposals']:,}; violations: {TOTAL['violations']}")
    assert TOTAL["proposals"] >= 1_000_000 and TOTAL["violations"] == 0


def _executor(**policy):
    tuner = arqon.Tuner({"params": [{"name": "a", "min": 0, "max": 10, "init": 5},
                                    {"name": "b", "min": 0, "max": 1, "init": 0.5}]})
    return Executor({"params": {"a": {"max_delta": 1.0}, "b": {}}, "metrics": ["lat", "err"],
                     "slos": ["lat <= 50", "err < 0.01"], **policy}, tuner)


def test_breach_rolls_back_in_the_same_step_and_kill_too():
    ex = _executor()
    ex.observe({"lat": 10, "err": 0}, 0)
    assert ex.offer([6, 0.7], 1) & Flags.APPLIED
    assert ex.live.tolist() == [6, 0.7]
    flags = ex.observe({"lat": 60, "err": 0}, 2)
    assert flags & Flags.SLO_BREACH and flags & Flags.ROLLED_BACK
    assert ex.live.tolist() == [5, 0.5]  # steps from breach to baseline live: this one
    ex.offer([6, 0.5], 3)
    assert ex.kill(4) & Flags.KILLED and ex.live.tolist() == [5, 0.5]
    assert ex.offer([6, 0.5], 5) & Flags.HALTED and ex.live.tolist() == [5, 0.5]
    assert ex.phase.name == "HALTED"
    ex.resume(6)
    assert ex.offer([6, 0.5], 7) & Flags.APPLIED


def test_canary_stages_confidence_gate_and_promotion():
    ex = _executor(canary={"metric": "lat", "stages": [{"min_samples": 3, "max_regression": 0.1},
                                                       {"min_samples": 2, "max_regression": 0.1}]})
    for now in range(5):
        ex.observe({"lat": 10, "err": 0}, now)
    ex.offer([6, 0.5], 5)
    events = [ex.observe({"lat": 10.5, "err": 0}, now) for now in range(6, 11)]
    assert [bool(e & Flags.STAGE_PASSED) for e in events] == [False, False, True, False, True]
    assert events[-1] & Flags.PROMOTED and ex.baseline == {"a": 6.0, "b": 0.5}
    ex.observe({"lat": 10, "err": 0}, 11)
    ex.offer([7, 0.5], 12)
    ex.observe({"lat": math.nan, "err": 0}, 13)
    assert ex.phase.name == "PAUSED"  # no data: the analysis waits
    ex.observe({"lat": 13, "err": 0}, 14)
    ex.observe({"lat": 13, "err": 0}, 15)
    flags = ex.observe({"lat": 13, "err": 0}, 16)  # 30% worse than the known-good 10
    assert flags & Flags.CANARY_FAILED and ex.live.tolist() == [6, 0.5]


def test_relative_slo_deadline_and_safe_mode():
    ex = _executor(metrics=["thr"], slos=["thr >= 0.95 * baseline"], progress_deadline=5, safe_mode_after=2,
                   canary={"metric": "thr", "direction": "maximize", "stages": [{"min_samples": 100}]})
    ex.observe([100.0], 0)
    ex.offer([6, 0.5], 1)
    assert ex.observe([96.0], 2) == 0  # within 95% of the known-good level
    assert ex.observe([94.0], 3) & Flags.ROLLED_BACK
    ex.offer([6, 0.5], 4)
    flags = ex.observe([99.0], 10)  # the canary has waited past its deadline
    assert flags & Flags.DEADLINE and flags & Flags.SAFE_MODE_ENTERED and ex.safe_mode
    assert ex.offer([6, 0.5], 11) & Flags.SAFE_MODE and ex.live.tolist() == [5, 0.5]


def test_shadow_changes_nothing_live():
    ex = _executor(mode="reject")
    before = ex.state.copy()
    candidate, flags = ex.shadow([9, 0.5], 0)
    assert flags & Flags.MAX_DELTA and flags & Flags.REJECTED and candidate.tolist() == [5, 0.5]
    ex2 = _executor()
    candidate, flags = ex2.shadow([9, 2.0], 0)
    assert candidate.tolist() == [6, 1.0] and flags & Flags.OUT_OF_BOUNDS
    after = ex.state.copy()
    scratch = slice(g.GUARD_HEADER_WORDS + g.SCRATCH * 2, g.GUARD_HEADER_WORDS + g.SCRATCH * 2 + 2)
    after[scratch] = before[scratch]
    assert after.tobytes() == before.tobytes()


def test_policy_and_tuner_must_agree():
    tuner = arqon.Tuner({"params": [{"name": "a", "min": 0, "max": 10}]})
    with pytest.raises(arqon.ConfigError, match="does not allow changing it"):
        Executor({"params": {}}, tuner)
    with pytest.raises(arqon.ConfigError, match="do not contain the tuner's"):
        Executor({"params": {"a": {"min": 1}}}, tuner)
    with pytest.raises(arqon.ConfigError, match="baseline a = 20"):
        Executor({"params": {"a": {}}, "baseline": {"a": 20}}, tuner)
    with pytest.raises(arqon.ConfigError, match="params.a: give `max_delta` or `max_delta_fraction`"):
        Executor({"params": {"a": {"max_delta": 1, "max_delta_fraction": 0.1}}}, tuner)
    with pytest.raises(arqon.ConfigError, match=r"slos\[0\]: cannot read SLO"):
        Executor({"params": {"a": {}}, "metrics": ["x"], "slos": ["x == 3"]}, tuner)


def test_a_breaching_known_good_resets_the_count_toward_safe_mode():
    """Safe mode stops a tuner whose candidates keep breaching while the known-good is healthy; when the known-good
    breaches too the world changed, so its breach starts the count again."""
    ex = _executor(metrics=["lat"], slos=["lat <= 10"], safe_mode_after=2)
    ex.offer([6, 0.5], 0)
    assert ex.observe([20.0], 1) & Flags.ROLLED_BACK  # first candidate breach
    assert ex.observe([20.0], 2) & Flags.SLO_BREACH  # the known-good breaches too: count starts again
    ex.offer([6, 0.5], 3)
    flags = ex.observe([20.0], 4)
    assert flags & Flags.ROLLED_BACK and not flags & Flags.SAFE_MODE_ENTERED and not ex.safe_mode
    ex.offer([6, 0.5], 5)
    assert ex.observe([20.0], 6) & Flags.SAFE_MODE_ENTERED  # two candidate breaches in a row, known-good not seen


def test_a_promoted_candidate_brings_its_measured_level_to_the_canary():
    """A tuner offers a new candidate every step, so the known-good is rarely live alone: the level the next canary
    judges against is what the promoted candidate was measured at, not a level from before the promotions."""
    ex = _executor(canary={"metric": "lat", "stages": [{"min_samples": 1, "max_regression": 0.3}]})
    ex.observe({"lat": 10, "err": 0}, 0)  # the starting known-good: level 10
    for now, (a, lat) in enumerate([(6, 12.0), (7, 15.0), (8, 19.0)], start=1):  # each within 30% of the last
        ex.offer([a, 0.5], 2 * now - 1)
        assert ex.observe({"lat": lat, "err": 0}, 2 * now) & Flags.PROMOTED
    assert ex.baseline == {"a": 8.0, "b": 0.5}
    ex.offer([9, 0.5], 7)
    flags = ex.observe({"lat": 25.0, "err": 0}, 8)  # 32% above 19 (but 150% above the first 10): judged against 19
    assert flags & Flags.CANARY_FAILED and ex.live.tolist() == [8, 0.5]
    ex.offer([9, 0.5], 9)
    assert ex.observe({"lat": 24.0, "err": 0}, 10) & Flags.PROMOTED  # 26% above 19


def _reference_check(m, proposal, t, reject_mode, risk):
    """The validation rule as documented, in plain NumPy over the executor's rows: clip into bounds, then into max
    delta of live, then hold a cooling parameter; reasons are the union over parameters. Returns (flags, candidate)."""
    live, lo, hi, step = m[g.SNAP0], m[g.LO], m[g.HI], m[g.MAX_STEP]
    allowed, frozen = m[g.ALLOWED] != 0, t < m[g.UNTIL]
    if not np.isfinite(proposal).all():
        return g.REJECTED | g.NONFINITE, live
    want = np.clip(proposal, lo, hi)
    far = (np.abs(want - live) > step) & allowed
    want = np.clip(want, live - step, live + step)
    cooling = frozen & (want != live)
    want = np.where(frozen, live, want)
    reasons = ((g.NOT_ALLOWED if (~allowed & (proposal != live)).any() else 0)
               | (g.OUT_OF_BOUNDS if ((proposal < lo) | (proposal > hi)).any() else 0)
               | (g.MAX_DELTA if far.any() else 0) | (g.COOLDOWN if cooling.any() else 0))
    if reject_mode and reasons:
        return g.REJECTED | reasons, live
    if risk and (want != m[g.BASELINE]).sum() > risk:
        return g.REJECTED | reasons | g.RISK_BUDGET, live
    if (want == live).all():
        return reasons | g.NO_CHANGE, live
    return reasons, want


@pytest.mark.parametrize("mode", ["clip", "reject"])
def test_reasons_and_candidate_match_the_rule_written_in_numpy(mode):
    """Every reason and every clipped value, over random proposals against live values that sit at their bounds or
    inside, some parameters frozen by a cooldown, one outside the allowlist (max step 0), a risk budget."""
    d, rng = 7, np.random.default_rng(5)
    tuner = arqon.Tuner({"params": [{"name": f"p{i}", "min": -3, "max": 4} for i in range(d)]})
    ex = Executor({"params": {f"p{i}": {"max_delta": 0.5 + i / 4} if i % 3 else {} for i in range(d)},
                   "metrics": ["m"], "mode": mode, "risk_budget": 5}, tuner)
    m = g.guard_matrix(ex.state)
    m[g.ALLOWED, 6], m[g.MAX_STEP, 6] = 0.0, 0.0
    out, seen = np.zeros(d), 0
    for case in range(20_000):
        m[g.SNAP0, :d] = m[g.SNAP1, :d] = rng.choice([-3.0, 4.0, 0.25, 1.0], d)
        m[g.BASELINE, :d] = rng.choice([-3.0, 4.0, 0.25, 1.0], d)
        m[g.UNTIL, :d] = np.where(rng.random(d) < 0.15, 1e9, g.NEVER)
        proposal = m[g.SNAP0, :d] + rng.choice([0.0, 0.1, -0.4, 1.3, -2.5, 9.0], d) * (rng.random(d) < 0.6)
        if rng.random() < 0.02:
            proposal[rng.integers(d)] = rng.choice([np.nan, np.inf, -np.inf])
        g.guard_header(ex.state)["live"] = 0
        flags = g.guard_shadow(ex.state, proposal, out, case)
        want_flags, want = _reference_check(m[:, :d], proposal, float(case), mode == "reject", 5)
        assert flags == want_flags, (case, proposal, m[g.SNAP0, :d], flags, want_flags)
        np.testing.assert_array_equal(out, want)
        seen |= flags
    assert seen & g.NOT_ALLOWED and seen & g.COOLDOWN and seen & g.MAX_DELTA and seen & g.OUT_OF_BOUNDS
    assert seen & g.RISK_BUDGET and seen & g.NO_CHANGE and seen & g.NONFINITE


def test_flags_of_one_name_have_one_value_and_the_executors_are_distinct_bits():
    """A status name means one bit in every kernel module (BAD_STATE was 8 for the tuner and 8192 for the executor),
    and no two executor reasons or events share a bit."""
    from arqon.kernels import _status, ring, stats

    def flags(module):
        return {n: v for n, v in vars(module).items() if n.isupper() and isinstance(v, int) and not n.startswith("_")}

    status = {n: v for n, v in flags(_status).items() if n != "OK"}
    for module in (g, ring, stats):
        shared = set(flags(module)) & set(status)
        assert all(flags(module)[n] == status[n] for n in shared), module.__name__
    assert {"BAD_STATE", "NONFINITE"} <= set(flags(g))
    bits = [int(f) for f in Flags]
    assert all(b > 0 and b & (b - 1) == 0 for b in bits) and len(set(bits)) == len(bits)


def _guard_turns(state, n=40):
    """Flags and live values of ``n`` offer/observe turns of the executor ``state`` (a canary judges each offer)."""
    out = []
    for now in range(n):
        flags = g.guard_offer(state, np.array([5.0 + (now % 5) * 0.3, 0.5 + 0.01 * now]), 2 * now)
        flags |= g.guard_observe(state, np.array([10.0 + now % 7, 0.0]), 2 * now + 1)
        out.append((flags, g.guard_live(state).tolist()))
    return out


def _canary_executor():
    return _executor(canary={"metric": "lat", "stages": [{"min_samples": 2, "max_regression": 0.2}]},
                     rate_limit={"applies": 3, "window": 9})


@pytest.mark.parametrize("how", SNAPSHOTS)
def test_a_snapshot_of_the_executor_buffer_decides_as_the_original(how):
    ex = _canary_executor()
    _guard_turns(ex.state, 13)  # mid-canary, rate limit and cooldown history in the header
    copy = snapshot(ex.state, how)
    assert g.open_guard(copy) == 0 and copy.ctypes.data != ex.state.ctypes.data
    assert _guard_turns(ex.state) == _guard_turns(copy)
    assert ex.state.tobytes() == copy.tobytes()


@numba.njit
def _all_guard_calls(state, proposal, metrics, out):
    return (g.guard_offer(state, proposal, 1) | g.guard_propose(state, proposal, 2) | g.guard_apply(state, 3)
            | g.guard_observe(state, metrics, 4) | g.guard_shadow(state, proposal, out, 5) | g.guard_snapback(state, 6)
            | g.guard_kill(state, 7) | g.guard_resume(state, 8)), g.guard_live(state).shape[0]


def test_anything_but_a_whole_executor_state_is_refused_untouched():
    ex = _canary_executor()
    _guard_turns(ex.state, 5)
    s = ex.state
    words = g.GUARD_HEADER_WORDS
    other_layout = s.copy()
    other_layout[1:2].view(np.int64)[0] ^= 1
    tuner_state = arqon.Tuner({"params": [{"name": "a", "min": 0, "max": 1}]}).state
    arrays = {"header alone": s[:words].copy(), "truncated by one word": s[:-1].copy(),
              "one word longer": np.append(s, 0.0), "another layout id": other_layout, "a tuner state": tuner_state,
              "zeros": np.zeros(s.shape[0]), "empty": np.zeros(0)}
    proposal, metrics, out = np.array([6.0, 0.5]), np.array([10.0, 0.0]), np.zeros(2)
    for what, array in arrays.items():
        before = array.copy()
        assert g.open_guard(array) == g.BAD_STATE, what
        assert _all_guard_calls(array, proposal, metrics, out) == (g.BAD_STATE, 0), what
        for kernel in (g.guard_apply, g.guard_snapback, g.guard_kill, g.guard_resume):
            assert kernel(array, 9) == g.BAD_STATE, (what, kernel)
        assert g.guard_offer(array, proposal, 9) == g.guard_observe(array, metrics, 9) == g.BAD_STATE, what
        np.testing.assert_array_equal(array, before, err_msg=what)
        with pytest.raises(ValueError, match="not an executor state"):
            g.guard_header(array)
    # arguments shorter than the state's sizes: refused before anything is read or written
    before = s.copy()
    assert g.guard_offer(s, proposal[:1], 9) == g.guard_propose(s, proposal[:1], 9) == g.BAD_STATE
    assert g.guard_observe(s, metrics[:1], 9) == g.guard_shadow(s, proposal, out[:1], 9) == g.BAD_STATE
    slo = s.copy()
    g.guard_matrix(slo)[g.SLO_METRIC, 1] = 2.0  # an SLO on a metric the executor does not have
    assert g.guard_observe(slo, metrics, 9) == g.BAD_STATE
    np.testing.assert_array_equal(s, before)


def test_new_guard_state_runs_as_it_is():
    """The kernel-side builder makes a state that runs without the shell: everything allowed, no limits."""
    state = g.new_guard_state(3)
    assert g.open_guard(state) == 0
    flags = g.guard_offer(state, np.array([1.0, -2.0, 3.5]), 0)
    assert flags & g.APPLIED and g.guard_live(state).tolist() == [1.0, -2.0, 3.5]
    with pytest.raises(ValueError, match="d: 0"):
        g.new_guard_state(0)
