"""Variant swaps through the safety executor: the snapshot's `variant` column (an index among a catalog's approved,
in-scope variants) obeys the same guardrails as the knobs and changes atomically with them."""

import numba
import numpy as np
import pytest

import arqon
from arqon import catalog as cat
from arqon.config import ConfigError
from arqon.executor import Flags
from arqon.kernels import bandit as kb
from arqon.kernels import guard as g


def make_catalog(d, approved=("int8", "fp16", "fp32"), scope="prod", name="variants"):
    """A signed catalog in ``d``: ``approved`` in prod, ``exit3`` a candidate, ``int4`` retired; loaded for ``scope``."""
    cat.generate_key(d / "k")
    path = d / "cat.json"
    cat.init_catalog(path, name)
    for name in (*approved, "exit3", "int4"):
        (d / f"{name}.bin").write_bytes(name.encode())
        cat.add_variant(path, name, 1, d / f"{name}.bin", {"scopes": ["prod"]})
    for name in (*approved, "int4"):
        cat.promote(path, name, "approved", by="test")
    cat.promote(path, "int4", "retired", by="test")
    cat.sign_catalog(path, d / "k")
    return cat.load_catalog(path, [d / "k.pub"], scope=scope, state=False)


def policy(**extra):
    return {"params": {"x": {"max_delta": 1.0}}, "metrics": ["lat"], "slos": ["lat <= 10"], "safe_mode_after": 0,
            "variant": {"cooldown": 5, "known_good": "fp16"}, **extra}


def tuner():
    return arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 10, "init": 5}], "seed": 1})


@pytest.fixture
def catalog(tmp_path):
    return make_catalog(tmp_path)


def test_the_variant_starts_known_good_and_swaps_under_its_cooldown(catalog):
    ex = arqon.Executor(policy(mode="reject"), tuner(), catalog)
    assert (ex.names, ex.variants, ex.variant) == (("x", "variant"), ("int8", "fp16", "fp32"), "fp16")
    assert ex.swap("fp32", now=0) & Flags.APPLIED and ex.variant == "fp32"
    assert ex.live.tolist() == [5.0, 2.0]
    ex.observe({"lat": 1.0}, now=1)  # clean: promoted
    flags = ex.swap("int8", now=3)  # within the 5-step cooldown of the last swap
    assert flags & Flags.REJECTED and flags & Flags.COOLDOWN and ex.variant == "fp32"
    assert ex.swap("int8", now=5) & Flags.APPLIED and ex.variant == "int8"
    assert ex.baseline == {"x": 5.0, "variant": "fp32"}  # promoted at its clean observation


def test_clip_mode_keeps_the_live_variant_while_it_cools_down(catalog):
    ex = arqon.Executor(policy(), tuner(), catalog)
    ex.swap("fp32", now=0)
    ex.observe({"lat": 1.0}, now=1)
    flags = ex.swap("int8", now=2)
    assert flags & Flags.COOLDOWN and flags & Flags.NO_CHANGE and ex.variant == "fp32"


def test_knobs_and_variant_go_live_together_and_roll_back_together(catalog):
    ex = arqon.Executor(policy(), tuner(), catalog)
    generation = ex.generation
    assert ex.offer({"x": 6.0, "variant": "int8"}, now=0) & Flags.APPLIED
    assert (ex.live.tolist(), ex.generation) == ([6.0, 0.0], generation + 1)  # one flip for both
    flags = ex.observe({"lat": 50.0}, now=1)  # a hard SLO breach
    assert flags & Flags.SLO_BREACH and flags & Flags.ROLLED_BACK
    assert (ex.live.tolist(), ex.variant, ex.generation) == ([5.0, 1.0], "fp16", generation + 2)


def test_kill_snapback_and_resume_cover_the_variant(catalog):
    ex = arqon.Executor(policy(), tuner(), catalog)
    ex.swap("int8", now=0)
    assert ex.kill(now=1) & Flags.KILLED and ex.variant == "fp16"
    assert ex.swap("fp32", now=10) & Flags.HALTED and ex.variant == "fp16"
    ex.resume(now=11)
    ex.swap("fp32", now=12)
    assert ex.variant == "fp32"
    ex.snapback(now=13)
    assert ex.variant == "fp16"


@pytest.mark.parametrize("variant", ["exit3", "int4", "nope", 3, -1])
def test_a_candidate_retired_unknown_or_out_of_range_variant_is_refused_by_name(catalog, variant):
    ex = arqon.Executor(policy(), tuner(), catalog)
    with pytest.raises(ValueError, match="not an approved variant in scope \\(approved: int8, fp16, fp32\\)"):
        ex.swap(variant, now=0)
    assert ex.variant == "fp16" and ex.generation == 0


@numba.njit
def _offer(state, proposal, now):
    return g.guard_offer(state, proposal, now)


@pytest.mark.parametrize("mode", ["clip", "reject"])
def test_inside_njit_a_fractional_or_out_of_range_index_never_goes_live(catalog, mode):
    ex = arqon.Executor(policy(mode=mode), tuner(), catalog)
    before = g.guard_matrix(ex.state)[: g.SCRATCH].copy()  # every row but the validation's scratch row
    for index, reason in ((1.5, g.NOT_WHOLE), (np.nan, g.NONFINITE)):
        flags = _offer(ex.state, np.array([5.0, index]), 0)
        assert flags & g.REJECTED and flags & reason
        assert np.array_equal(g.guard_matrix(ex.state)[: g.SCRATCH], before, equal_nan=True)
    # no variant is "near" another: an index of no approved variant is refused in both modes, never clipped
    slots = int(g.guard_header(ex.state)["slots"])
    for index in (3.0, 7.0, slots - 1.0, float(slots), 1e9, -1.0, -0.0 - 1e-300):
        flags = _offer(ex.state, np.array([5.0, index]), 0)
        assert flags & g.REJECTED and flags & (g.NOT_APPROVED | g.NOT_WHOLE), index
        assert np.array_equal(g.guard_matrix(ex.state)[: g.SCRATCH], before, equal_nan=True)
    assert ex.variant == "fp16" and ex.generation == 0


def test_guard_swap_inside_njit_changes_one_column_and_refuses_a_column_outside(catalog):
    ex = arqon.Executor(policy(), tuner(), catalog)
    work = np.zeros(2)
    assert g.guard_swap(ex.state, work, 1, 2.0, 0) & g.APPLIED
    assert ex.live.tolist() == [5.0, 2.0] and ex.variant == "fp32"
    before = ex.state.copy()
    for column in (-1, 2):
        assert g.guard_swap(ex.state, work, column, 0.0, 1) == g.BAD_STATE
    assert g.guard_swap(ex.state, np.zeros(1), 1, 0.0, 1) == g.BAD_STATE  # work space shorter than the snapshot
    assert np.array_equal(ex.state, before)


def test_an_integer_knob_is_never_live_with_a_fraction():
    t = arqon.Tuner({"params": [{"name": "batch", "min": 1, "max": 64, "integer": True, "init": 8}]})
    ex = arqon.Executor({"params": {"batch": {}}, "mode": "clip"}, t)
    flags = ex.offer([3.7], now=0)
    assert flags & Flags.REJECTED and ex.live.tolist() == [8.0]
    with pytest.raises(ConfigError, match="baseline batch = 2.5: batch is an integer parameter"):
        arqon.Executor({"params": {"batch": {}}, "baseline": {"batch": 2.5}}, t)


def test_a_selector_picks_the_variant_and_learns_only_from_what_was_live(catalog):
    """The best variant (fp32) wins most of the live time; every live variant is approved."""
    rng = np.random.default_rng(0)
    quality = {"int8": 0.3, "fp16": 0.5, "fp32": 0.8}
    sel = arqon.Selector({"arms": list(catalog.ids), "policy": "thompson", "seed": 3})
    ex = arqon.Executor({**policy(variant={"cooldown": 2}), "params": {}}, None, catalog)
    assert ex.names == ("variant",)
    live, played = [], 0
    for now in range(2000):
        variant = ex.variant
        live.append(variant)
        reward = float(rng.random() < quality[variant])
        before = sel.pending
        ex.step(None, {"lat": 1.0}, float("nan"), now, selector=sel, reward=reward)
        played += before is not None and before == ex.variants.index(variant)
    assert set(live) <= set(catalog.ids)
    assert live[-500:].count("fp32") > 400, {v: live.count(v) for v in quality}
    assert sel.stats()["fp32"]["plays"] + sel.stats()["int8"]["plays"] + sel.stats()["fp16"]["plays"] == played


def test_mismatches_between_policy_catalog_and_selector_are_config_errors(catalog, tmp_path):
    with pytest.raises(ConfigError, match="needs a catalog"):
        arqon.Executor(policy(), tuner())
    with pytest.raises(ConfigError, match="allows no variant swap"):
        arqon.Executor({k: v for k, v in policy().items() if k != "variant"}, tuner(), catalog)
    with pytest.raises(ConfigError, match="known_good 'int4' is not an approved variant"):
        arqon.Executor(policy(variant={"known_good": "int4"}), tuner(), catalog)
    with pytest.raises(ConfigError, match="`variant` is not a knob"):
        arqon.Executor({**policy(), "params": {"variant": {}}}, tuner(), catalog)
    ex = arqon.Executor(policy(), tuner(), catalog)
    with pytest.raises(ValueError, match="selector: its arms"):
        ex.step(None, {"lat": 1.0}, 0.0, 0, selector=arqon.Selector({"arms": ["fp16", "int8", "fp32"]}), reward=1.0)


def test_a_step_without_a_reward_tells_the_selector_nothing(catalog):
    """reward=None (nothing measured for the live variant): no arm's statistics change and the arm out stays pending."""
    sel = arqon.Selector({"arms": list(catalog.ids), "policy": "thompson", "seed": 3})
    ex = arqon.Executor({**policy(variant={"cooldown": 0}), "params": {}}, None, catalog)
    ex.step(None, {"lat": 1.0}, float("nan"), 0, selector=sel, reward=None)
    arm = sel.pending
    assert arm is not None
    for now in range(1, 6):
        ex.step(None, {"lat": 1.0}, float("nan"), now, selector=sel, reward=None)
        assert sel.pending == arm
    assert sum(s["plays"] for s in sel.stats().values()) == 0
    ex.step(None, {"lat": 1.0}, float("nan"), 6, selector=sel, reward=1.0)
    assert sum(s["plays"] for s in sel.stats().values()) == 1


def _next_version(d, retire=(), add=()):
    """The catalog in ``d`` (made by make_catalog) with ``retire`` retired and ``add`` added and approved, signed
    again: the next version, loaded for prod."""
    path = d / "cat.json"
    for name in add:
        (d / f"{name}.bin").write_bytes(name.encode())
        cat.add_variant(path, name, 1, d / f"{name}.bin", {"scopes": ["prod"]})
        cat.promote(path, name, "approved", by="test")
    for name in retire:
        cat.promote(path, name, "retired", by="test")
    cat.sign_catalog(path, d / "k")
    return cat.load_catalog(path, [d / "k.pub"], scope="prod", state=False)


def test_a_new_version_adds_variants_at_new_indices_and_a_retired_live_variant_goes_at_once(tmp_path):
    catalog = make_catalog(tmp_path)
    ex = arqon.Executor(policy(variant={"cooldown": 0, "known_good": "fp16"}), tuner(), catalog)
    assert ex.swap("fp32", now=0) & Flags.APPLIED and ex.variant == "fp32"
    generation = ex.generation
    v2 = _next_version(tmp_path, retire=["fp32"], add=["bf16"])
    flags = ex.use_catalog(v2, now=1)
    assert flags & Flags.VARIANT_WITHDRAWN and flags & Flags.ROLLED_BACK
    assert (ex.variant, ex.generation) == ("fp16", generation + 1)  # known-good live, in one flip
    assert ex.variants == ("int8", "fp16", "fp32", "bf16") and ex.approved == ("int8", "fp16", "bf16")
    assert ex.counters()["rollbacks"] == 0  # an operator's withdrawal, not a failed candidate
    with pytest.raises(ValueError, match="'fp32' is not an approved variant in scope \\(approved: int8, fp16, bf16\\)"):
        ex.swap("fp32", now=2)
    for mode in ("clip", "reject"):  # inside @njit too, the retired index never goes live again
        state = ex.state.copy()
        g.guard_header(state)["reject_mode"] = int(mode == "reject")
        flags = _offer(state, np.array([5.0, 2.0]), 3)
        assert flags & g.REJECTED and flags & g.NOT_APPROVED
        assert g.guard_matrix(state)[int(g.guard_header(state)["live"]), 1] == 1.0
    assert ex.swap("bf16", now=4) & Flags.APPLIED and ex.live.tolist() == [5.0, 3.0]  # the next free index


def test_a_withdrawn_known_good_or_staged_variant_is_replaced(tmp_path):
    catalog = make_catalog(tmp_path)
    ex = arqon.Executor(policy(variant={"cooldown": 0, "known_good": "fp16"}), tuner(), catalog)
    assert ex.propose({"x": 5.0, "variant": "fp32"}, now=0) & Flags.STAGED
    flags = ex.use_catalog(_next_version(tmp_path, retire=["fp32"]), now=1)
    assert flags & Flags.ABORTED and flags & Flags.VARIANT_WITHDRAWN and not flags & Flags.ROLLED_BACK
    assert ex.apply(now=2) & Flags.NOTHING_STAGED and ex.variant == "fp16"
    # the known-good itself retired: the policy's known_good is gone too, so the first approved variant takes over
    flags = ex.use_catalog(_next_version(tmp_path, retire=["fp16"]), now=3)
    assert flags & Flags.VARIANT_WITHDRAWN and flags & Flags.ROLLED_BACK
    assert ex.variant == "int8" and ex.baseline == {"x": 5.0, "variant": "int8"} and ex.approved == ("int8",)


def test_a_catalog_change_that_cannot_be_taken_changes_nothing(tmp_path):
    catalog = make_catalog(tmp_path)
    ex = arqon.Executor(policy(variant={"capacity": 4}), tuner(), catalog)
    before = ex.state.copy()
    (tmp_path / "other").mkdir()
    with pytest.raises(ConfigError, match="catalog 'elsewhere' in scope 'prod' is not the one in use"):
        ex.use_catalog(make_catalog(tmp_path / "other", name="elsewhere"), now=0)
    v2 = _next_version(tmp_path, add=["bf16"])
    with pytest.raises(ConfigError, match="v1 is older than v2"):
        arqon.Executor(policy(), tuner(), v2).use_catalog(catalog, now=0)
    v3 = _next_version(tmp_path, add=["q4", "q3"])  # 6 builds in all, room for 4
    with pytest.raises(ConfigError, match="6 builds in all, retired ones included, but this executor has room for 4 "
                                          "\\(policy variant.capacity\\): nothing changed; did not add bf16@1, q4@1"):
        ex.use_catalog(v3, now=0)
    with pytest.raises(ConfigError, match="approves no variant"):
        ex.use_catalog(_next_version(tmp_path, retire=["int8", "fp16", "fp32", "bf16", "q4", "q3"]), now=0)
    with pytest.raises(ConfigError, match="v1 is another file than v1"):
        (tmp_path / "twin").mkdir()
        ex.use_catalog(make_catalog(tmp_path / "twin", approved=("int8", "fp16")), now=0)  # v1 with other contents
    with pytest.raises(TypeError, match="catalog must be an arqon.catalog.Catalog"):
        ex.use_catalog(None, now=0)
    assert np.array_equal(ex.state, before) and ex.variants == ("int8", "fp16", "fp32")
    with pytest.raises(ConfigError, match="variant.capacity 2 is smaller than the 3 approved"):
        arqon.Executor(policy(variant={"capacity": 2}), tuner(), catalog)


def test_the_kernel_refuses_a_malformed_approved_set_and_touches_nothing(catalog):
    ex = arqon.Executor(policy(), tuner(), catalog)
    slots = int(g.guard_header(ex.state)["slots"])
    good = np.zeros(slots)
    good[:3] = 1.0
    before = ex.state.copy()
    for approved, fallback in ((good[:-1], 0), (np.r_[good, 1.0], 0), (np.where(good > 0, 0.5, 0.0), 0),
                               (np.where(good > 0, np.nan, 0.0), 0), (good, 3), (good, -1), (good, slots)):
        assert g.guard_set_variants(ex.state, approved, fallback, 5) == g.BAD_STATE
    assert np.array_equal(ex.state, before)
    plain = arqon.Executor({"params": {"x": {}}}, tuner())  # no variant column
    assert g.guard_set_variants(plain.state, good[:0], 0, 5) == g.BAD_STATE


@pytest.mark.parametrize("config", [{"policy": "ucb1"}, {"policy": "klucb"},
                                    {"policy": "glr-klucb", "glr_klucb": {"history": 20, "forced": 0.0}},
                                    {"policy": "sliding-window-ucb", "sliding_window_ucb": {"window": 30}},
                                    {"policy": "linucb", "context": 3}])
def test_a_grown_selector_with_its_new_arms_masked_decides_as_the_old_one(config):
    """The deterministic policies: every statistic and the arm out carry over, so with the new arms masked the grown
    selector makes the old one's choices, reward for reward (GLR-klUCB without forced exploration: its schedule,
    every floor(K / alpha) steps, depends on K)."""
    rng = np.random.default_rng(4)
    old = arqon.Selector({"arms": ["a", "b", "c"], "seed": 2, **config})
    context = (lambda: rng.normal(size=3)) if "context" in config else (lambda: None)
    arm = old.select(context=context())
    for _ in range(80):
        arm = old.step(float(rng.random() < 0.3 + 0.2 * arm), context=context())
    grown = old.with_arms(["a", "b", "c", "d", "e"])
    assert grown.names == ("a", "b", "c", "d", "e") and grown.pending == old.pending
    assert {k: grown.stats()[k] for k in "abc"} == old.stats()
    assert grown.stats()["d"]["plays"] == 0
    mask = [True, True, True, False, False]
    for _ in range(600):
        reward, x = float(rng.random() < 0.5), context()
        a = old.step(reward, context=x)
        b = grown.step(reward, eligible=mask, context=x)
        assert a == b
    with pytest.raises(ValueError, match="must start with \\['a', 'b', 'c', 'd', 'e'\\]"):
        grown.with_arms(["a", "b", "d", "c", "e", "f"])


def test_a_selector_and_executor_follow_a_catalog_change_without_a_restart(tmp_path):
    """The selector learns fp32 is best; fp32 is retired and bf16 (better still) added: fp32 is never live again and
    bf16 wins most of the live time after the change."""
    catalog = make_catalog(tmp_path)
    rng = np.random.default_rng(5)
    quality = {"int8": 0.3, "fp16": 0.5, "fp32": 0.8, "bf16": 0.9}
    sel = arqon.Selector({"arms": list(catalog.ids), "policy": "thompson", "seed": 3})
    ex = arqon.Executor({**policy(variant={"cooldown": 0}), "params": {}}, None, catalog)
    live = []
    for now in range(1000):
        if now == 500:
            ex.use_catalog(_next_version(tmp_path, retire=["fp32"], add=["bf16"]), now)
            sel = sel.with_arms(ex.variants)
        reward = float(rng.random() < quality[ex.variant])
        ex.step(None, {"lat": 1.0}, float("nan"), now, selector=sel, reward=reward)
        live.append(ex.variant)
    assert live[400:500].count("fp32") > 80
    assert "fp32" not in live[500:] and live[-300:].count("bf16") > 250, {v: live[500:].count(v) for v in quality}


def test_allow_narrows_the_live_set_and_widens_it_back(catalog):
    ex = arqon.Executor(policy(variant={"cooldown": 0, "known_good": "fp16"}), tuner(), catalog)
    ex.swap("fp32", now=0)
    flags = ex.allow(["int8", "fp16"], now=1)  # e.g. the hardware now holds only these
    assert flags & Flags.VARIANT_WITHDRAWN and ex.variant == "fp16" and ex.approved == ("int8", "fp16")
    with pytest.raises(ValueError, match="not an approved variant"):
        ex.swap("fp32", now=2)
    assert not ex.allow(["int8", "fp16", "fp32"], now=3) & Flags.VARIANT_WITHDRAWN
    assert ex.swap("fp32", now=4) & Flags.APPLIED and ex.variants == ("int8", "fp16", "fp32")
    for bad in (["int4"], ["exit3"], [], ["nope", "int8"]):
        with pytest.raises(ValueError, match="give one or more of the catalog's approved variants"):
            ex.allow(bad, now=5)
    assert ex.variant == "fp32"


def test_a_new_build_of_an_id_gets_its_own_index_and_the_old_build_is_withdrawn(tmp_path):
    """fp32@1 retired and fp32@2 approved: a table indexed by variant must never run build 1 again."""
    catalog = make_catalog(tmp_path)
    ex = arqon.Executor(policy(variant={"cooldown": 0, "known_good": "fp16"}), tuner(), catalog)
    ex.swap("fp32", now=0)
    path = tmp_path / "cat.json"
    cat.promote(path, "fp32", "retired", by="test")
    (tmp_path / "fp32.bin").write_bytes(b"fp32 build 2")
    cat.add_variant(path, "fp32", 2, tmp_path / "fp32.bin", {"scopes": ["prod"]})
    cat.promote(path, "fp32", "approved", version=2, by="test")
    cat.sign_catalog(path, tmp_path / "k")
    flags = ex.use_catalog(cat.load_catalog(path, [tmp_path / "k.pub"], scope="prod", state=False), now=1)
    assert flags & Flags.VARIANT_WITHDRAWN and flags & Flags.ROLLED_BACK and ex.variant == "fp16"
    assert ex.variants == ("int8", "fp16", "fp32", "fp32@2") and ex.approved == ("int8", "fp16", "fp32@2")
    assert ex.builds == (("int8", 1), ("fp16", 1), ("fp32", 1), ("fp32", 2))
    assert ex.swap("fp32@2", now=2) & Flags.APPLIED and ex.live.tolist() == [5.0, 3.0]


def test_a_full_executor_still_withdraws_what_a_new_version_retires(tmp_path):
    catalog = make_catalog(tmp_path)
    ex = arqon.Executor(policy(variant={"cooldown": 0, "known_good": "fp16", "capacity": 3}), tuner(), catalog)
    ex.swap("fp32", now=0)
    with pytest.raises(ConfigError, match="withdrew fp32; did not add bf16@1"):
        ex.use_catalog(_next_version(tmp_path, retire=["fp32"], add=["bf16"]), now=1)
    assert ex.variant == "fp16" and ex.approved == ("int8", "fp16")
    with pytest.raises(ValueError, match="'fp32': give one or more of the catalog's approved variants \\(int8, fp16\\)"):
        ex.allow(["int8", "fp16", "fp32"], now=2)  # the withdrawn build cannot come back through allow
    with pytest.raises(TypeError, match="allow: variants must be a list of variant names, got str"):
        ex.allow("fp16", now=2)


def test_a_work_space_or_output_inside_the_state_is_refused_untouched(catalog):
    ex = arqon.Executor(policy(), tuner(), catalog)
    m = g.guard_matrix(ex.state)
    before = ex.state.copy()
    assert g.guard_swap(ex.state, m[g.APPROVED], 1, 0.0, 0) == g.BAD_STATE
    assert g.guard_swap(ex.state, ex.state, 1, 0.0, 0) == g.BAD_STATE
    assert g.guard_shadow(ex.state, np.array([5.0, 0.0]), m[g.APPROVED], 0) == g.BAD_STATE
    assert np.array_equal(ex.state.view(np.uint64), before.view(np.uint64))
    sel = arqon.Selector({"arms": 8})
    inside = sel.state[kb.BANDIT_HEADER_WORDS:kb.BANDIT_HEADER_WORDS + 1].view(np.bool_)
    state = sel.state.copy()
    assert kb.bandit_candidates(sel.state, np.ones(8, np.bool_), inside) == -kb.BAD_ARGUMENT
    assert np.array_equal(sel.state.view(np.uint64), state.view(np.uint64))


@pytest.mark.parametrize("mode", ["clip", "reject"])
def test_whatever_the_kernels_are_called_with_live_and_known_good_stay_approved(mode):
    """A random walk over the guard kernels on a state with a variant column whose bounds and max delta are finite
    (so clipping moves an index) and whose approved set changes: after every call the live and the known-good
    variants are approved slots; an unapproved one is never made live."""
    rng = np.random.default_rng(11 if mode == "clip" else 12)
    slots = 8
    state = g.new_guard_state(2, 1, 1, 1, slots)
    m, h = g.guard_matrix(state), g.guard_header(state)
    h["reject_mode"] = int(mode == "reject")
    m[g.HI, 1], m[g.MAX_STEP, 1] = 6.0, 2.0  # finite: clipping can land on any index in reach
    m[g.SLO_METRIC, 0], m[g.SLO_OP, 0], m[g.SLO_LIMIT, 0] = 0.0, 0.0, 10.0  # metric 0 <= 10
    m[g.STAGE_SAMPLES, 0], m[g.STAGE_REGRESSION, 0] = 2.0, 0.5
    approved = np.zeros(slots)
    approved[0] = 1.0
    applied = 0
    for now in range(3000):
        op = rng.integers(8)
        if op == 0:
            approved = (rng.random(slots) < 0.5).astype(float)
            approved[rng.integers(slots)] = 1.0
            assert g.guard_set_variants(state, approved, int(np.flatnonzero(approved)[0]), now) != g.BAD_STATE
        elif op in (1, 2):
            applied += bool(g.guard_offer(state, np.array([rng.normal(), rng.integers(-1, slots + 2) + 0.0]), now)
                            & g.APPLIED)
        elif op == 3:
            g.guard_propose(state, np.array([0.0, float(rng.integers(slots))]), now)
        elif op == 4:
            g.guard_apply(state, now)
        elif op == 5:
            g.guard_observe(state, np.array([rng.choice([1.0, 50.0])]), now)
        elif op == 6:
            g.guard_swap(state, np.zeros(2), 1, float(rng.integers(slots)) + rng.choice([0.0, 0.5]), now)
        else:
            (g.guard_snapback, g.guard_kill, g.guard_resume)[rng.integers(3)](state, now)
        for row in (int(h["live"]), g.BASELINE):
            index = m[row, 1]
            assert index == int(index) and approved[int(index)] == 1.0, (now, op, row, index)
    assert applied > 50  # the walk did make variants live


def test_extending_a_state_refuses_other_settings():
    old = arqon.Selector({"arms": 2, "seed": 1})
    other = arqon.Selector({"arms": 3, "seed": 1, "thompson": {"prior_a": 50.0}})
    before = other.state.copy()
    with pytest.raises(ValueError, match="differ: prior_a"):
        kb.extend_bandit_state(old.state, other.state)
    with pytest.raises(ValueError, match="at least its 3 arms"):
        kb.extend_bandit_state(other.state, old.state)
    assert np.array_equal(other.state.view(np.uint64), before.view(np.uint64))
