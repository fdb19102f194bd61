"""Offline discovery: the spec, the searches, the gates' statistics, determinism over executors, resume, promotion."""

import concurrent.futures as cf
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest
from scipy import stats

from arqon import catalog as cat
from arqon.config import ConfigError
from arqon.discovery import discover, load_spec
from arqon.discovery.gates import signed_rank_less
from arqon.discovery.journal import MAGIC, JournalRefused, read_frames

TOY = Path(__file__).parent / "discovery"
ROOT = Path(__file__).parent.parent

SPEC = {
    "name": "toy", "evaluate": "toy:evaluate", "objective": "cost", "seed": 3, "generations": 4, "population": 8,
    "path": [str(TOY)],
    "baseline": {"x": 0.0, "n": 2, "mode": "a"},
    "knobs": [{"name": "x", "min": -2.0, "max": 2.0}, {"name": "n", "min": 1, "max": 8, "integer": True},
              {"name": "mode", "choices": ["a", "b"]}],
    "gates": {"top": 3, "most": 3, "seeds": 8, "check": "toy:check",
              "constraints": ["mem max <= 70", "latency p99 <= 200"],
              "scenarios": [{"name": "drift"}],
              "canary": {"steps": 40, "warmup": 10, "policy": {
                  "metrics": ["cost"], "slos": ["cost <= 3.0"],
                  "canary": {"metric": "cost", "stages": [{"min_samples": 8, "max_regression": 0.0}]}}}},
}


def write_spec(folder: Path, spec: dict = SPEC, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.json"
    path.write_bytes(msgspec.json.encode({**spec, **changes}))
    return path


class Scrambled(cf.ThreadPoolExecutor):
    """Threads that start each task after a seeded random delay, so tasks complete out of submission order (the
    order they completed in is kept in ``completed``)."""

    def __init__(self, seed):
        super().__init__(4)
        self.rng = np.random.default_rng(seed)
        self.completed, self.submitted = [], 0

    def submit(self, fn, *args):
        delay, number = float(self.rng.random()) * 0.02, self.submitted
        self.submitted += 1

        def late():
            time.sleep(delay)
            out = fn(*args)
            self.completed.append(number)
            return out

        return super().submit(late)


# --- the spec ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, field", [
    ({"baseline": {"x": 0.0, "n": 2}}, "missing ['mode']"),
    ({"baseline": {"x": 5.0, "n": 2, "mode": "a"}}, "baseline.x: 5.0 is outside"),
    ({"baseline": {"x": 0.0, "n": 2.5, "mode": "a"}}, "baseline.n: 2.5 is not a whole number"),
    ({"baseline": {"x": 0.0, "n": 2, "mode": "c"}}, "baseline.mode: 'c' is not one of"),
    ({"knobs": [{"name": "x", "min": 0, "max": 1, "choices": [1, 2]}], "baseline": {"x": 1}}, "not both"),
    ({"knobs": [{"name": "x", "min": 1, "max": 0}], "baseline": {"x": 0}}, "finite `min` < `max`"),
    ({"knobs": [{"name": "x", "choices": ["a", "a"]}], "baseline": {"x": "a"}}, "repeat a value"),
    ({"evaluate": "toy"}, "$.evaluate"),
    ({"gates": {"constraints": ["mem < 3"]}}, "gates.constraints[0]: cannot read"),
    ({"gates": {"scenarios": [{"name": "nominal"}]}}, "reserved"),
    ({"gates": {"scenarios": [{"noise": 1}]}}, "needs a `name`"),
    ({"gates": {"seeds": 4}}, "$.gates.seeds"),
    ({"gates": {"approval": {"trust": ["k.pub"]}}}, "add a `promote` section"),
    ({"gates": {"canary": {"policy": {"metrics": ["cost"], "params": {}}}}}, "leave out `params`"),
    ({"gates": {"canary": {"policy": {"metrics": ["cost"], "slos": ["p99 <= 3"]}}}}, "unknown metric 'p99'"),
    ({"search": {"elite": 8}}, "search.elite (8) must be less than population"),
])
def test_a_bad_spec_is_refused_naming_the_field(tmp_path, change, field):
    with pytest.raises(ConfigError) as e:
        load_spec(write_spec(tmp_path, **change))
    assert field in str(e.value)


def test_the_spec_loads_from_toml_with_paths_from_its_folder(tmp_path):
    text = """
name = "t"
evaluate = "toy:evaluate"
objective = "cost"
baseline = { x = 0.0 }
[[knobs]]
name = "x"
min = -1.0
max = 1.0
"""
    (tmp_path / "s.toml").write_text(text)
    spec, folder = load_spec(tmp_path / "s.toml")
    assert folder == tmp_path.resolve() and spec.knobs[0].name == "x" and spec.search.strategy == "auto"


# --- the statistics ---------------------------------------------------------------------------------------------------

def _brute_force(d):
    """P(W+ <= w) by enumerating every sign assignment of the nonzero |d| (mid-ranks for ties)."""
    d = np.asarray([x for x in d if x != 0.0])
    ranks = stats.rankdata(np.abs(d))
    w = ranks[d > 0].sum()
    sums = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=len(d))]
    return np.mean(np.array(sums) <= w + 1e-9)


def test_signed_rank_matches_scipy_exactly_without_ties():
    rng = np.random.default_rng(0)
    for n in (5, 8, 13, 25):
        for shift in (-0.8, 0.0, 0.5):
            d = rng.normal(shift, 1.0, n)
            p, m = signed_rank_less(d)
            assert m == n
            assert p == pytest.approx(stats.wilcoxon(d, alternative="less", method="exact").pvalue, rel=1e-12)


def test_signed_rank_with_ties_and_zeros_is_the_exact_conditional_distribution():
    rng = np.random.default_rng(1)
    for _ in range(30):
        d = rng.integers(-3, 4, size=int(rng.integers(3, 13))).astype(float)
        p, n = signed_rank_less(d)
        assert n == int(np.sum(d != 0))
        assert p == pytest.approx(_brute_force(d) if n else 1.0, abs=1e-12)


def test_signed_rank_beyond_the_exact_range_is_the_normal_approximation():
    rng = np.random.default_rng(2)
    d = np.round(rng.normal(0.05, 1.0, 600), 1)  # ties
    p, _ = signed_rank_less(d)
    ref = stats.wilcoxon(d, alternative="less", method="approx", correction=True, zero_method="wilcox").pvalue
    assert p == pytest.approx(ref, rel=1e-6)


# --- a run ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The toy run on two local processes: its outcome and its journal's bytes."""
    folder = tmp_path_factory.mktemp("reference")
    outcome = discover(write_spec(folder), workers=2)
    return outcome, (outcome.out / "journal").read_bytes()


def test_the_gates_refuse_what_breaks_an_invariant_or_regresses_under_drift(reference):
    outcome, _ = reference
    verdicts = {c.rank: {r["gate"]: r["verdict"] for r in c.evidence} for c in outcome.candidates}
    assert len(outcome.candidates) == 3
    failed = {c.failed_gate for c in outcome.candidates}
    assert {"correctness", "robustness"} <= failed
    for c in outcome.candidates:
        v = verdicts[c.rank]
        if c.variant["n"] == 7:
            assert v["correctness"] == "fail"
        regression = next(r for r in c.evidence if r["gate"] == "regression")
        assert regression["verdict"] == "pass"  # every gated candidate beats the baseline nominally ...
        assert set(regression) == {"gate", "verdict", "reason", "figures", "inputs"}
        drift = next(r for r in c.evidence if r["gate"] == "robustness")
        # ... and the robustness verdict follows the drift scenario's truth: the target moves to 0.2
        k = c.variant
        truth_worse = (k["x"] - 0.2) ** 2 + 0.05 * (k["n"] - 5) ** 2 + 0.3 * (k["mode"] == "b") > 0.2 ** 2 + 0.05 * 9
        assert (drift["verdict"] == "fail") == truth_worse
        if drift["verdict"] == "fail":
            f = drift["figures"]["drift"]
            assert f["p"] > 0.05 and f["candidate_median"] > f["baseline_median"]
            assert "drift: not shown no worse than the baseline" in drift["reason"]
        assert v["approval"] == "skipped"  # no promote section


def test_the_search_improves_on_the_baseline(reference):
    outcome, _ = reference
    first = [e["objective"] for e in outcome.evaluations if e["generation"] == 0]
    best = min(e["objective"] for e in outcome.evaluations)
    assert best < min(first) and best < 0.5 * np.mean(outcome.baseline["nominal"])


def test_same_digest_and_journal_for_one_worker_and_any_completion_order(reference, tmp_path):
    outcome, journal = reference
    one = discover(write_spec(tmp_path / "one"), workers=1)
    scrambled = Scrambled(5)
    shuffled = discover(write_spec(tmp_path / "shuffled"), executor=scrambled, chunk=3)
    assert scrambled.completed != sorted(scrambled.completed)  # the completion order was not the submission order
    assert one.digest == shuffled.digest == outcome.digest
    assert (one.out / "journal").read_bytes() == (shuffled.out / "journal").read_bytes() == journal


def test_same_digest_on_a_dask_local_cluster(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  scheduler_port=0, dashboard_address=None, local_directory=str(tmp_path / "dask"),
                                  silence_logs=50) as cluster:
        out = discover(write_spec(tmp_path / "dask"), scheduler=cluster.scheduler_address, chunk=2)
    assert out.digest == reference[0].digest


def test_a_finished_run_is_reported_done_and_an_unfinished_one_needs_resume(reference, tmp_path):
    outcome, journal = reference
    again = discover(outcome.out.parent / "spec.json", workers=2)
    assert again.finished_before and again.ran == 0 and again.digest == outcome.digest
    assert (outcome.out / "journal").read_bytes() == journal
    frames, _ = read_frames(outcome.out / "journal")
    cut = tmp_path / "cut"
    shutil.copytree(outcome.out.parent, cut)
    (cut / "toy.discovery" / "journal").write_bytes(journal[:len(journal) // 2])
    with pytest.raises(JournalRefused, match="pass --resume"):
        discover(cut / "spec.json")
    other = write_spec(tmp_path / "other", seed=4)
    shutil.copytree(outcome.out, tmp_path / "other" / "toy.discovery")
    with pytest.raises(JournalRefused, match="a journal of another spec"):
        discover(other, resume=True)


def test_a_journal_cut_anywhere_resumes_to_the_same_result(reference, tmp_path):
    """Every frame boundary and points inside frames: what a kill -9 at any write can leave."""
    outcome, journal = reference
    frames_end = []
    at = len(MAGIC)
    while at < len(journal):
        length = int.from_bytes(journal[at:at + 4], "little")
        at += 8 + length
        frames_end.append(at)
    rng = np.random.default_rng(0)
    cuts = sorted({0, 5, len(MAGIC), *rng.choice(frames_end, 12, replace=False).tolist(),
                   *(rng.integers(len(MAGIC), len(journal), 12)).tolist(), len(journal) - 1})
    for k in cuts:
        folder = tmp_path / f"cut{k}"
        out = folder / "toy.discovery"
        out.mkdir(parents=True)
        (out / "journal").write_bytes(journal[:k])
        resumed = discover(write_spec(folder), executor=cf.ThreadPoolExecutor(2), resume=True)
        assert resumed.digest == outcome.digest, k
        assert (out / "journal").read_bytes() == journal, k


def test_a_failing_evaluation_is_the_candidates_failure_not_the_runs(tmp_path):
    knobs = [{"name": "x", "min": -2.0, "max": 2.0}, {"name": "mode", "choices": ["a", "boom"]}]
    out = discover(write_spec(tmp_path, knobs=knobs, baseline={"x": 0.0, "mode": "a"},
                              gates={"seeds": 5}), executor=cf.ThreadPoolExecutor(2))
    errors = [e["error"] for e in out.evaluations if e["error"]]
    assert errors and all(e.startswith("ValueError: mode boom is not implemented (toy.py:") for e in errors)
    assert all(c.variant["mode"] == "a" for c in out.candidates)  # a failed variant is never gated
    bad = discover(write_spec(tmp_path / "bad", evaluate="toy:broken", gates={"seeds": 5}),
                   executor=cf.ThreadPoolExecutor(2))
    assert all(e["error"].startswith("TypeError: metric 'cost': a real number, got str") for e in bad.evaluations)
    assert bad.candidates == []
    with pytest.raises(ConfigError, match="cannot import nowhere:evaluate"):
        discover(write_spec(tmp_path / "missing", evaluate="nowhere:evaluate"), executor=cf.ThreadPoolExecutor(1))


def test_cmaes_and_es_search_a_continuous_space(tmp_path):
    knobs = [{"name": "x", "min": -2.0, "max": 2.0}, {"name": "n", "min": 1, "max": 8, "integer": True}]
    for strategy in ("cmaes", "es"):
        out = discover(write_spec(tmp_path / strategy, knobs=knobs, baseline={"x": -1.5, "n": 2}, generations=6,
                                  search={"strategy": strategy}, gates={"seeds": 5, "top": 1}),
                       executor=cf.ThreadPoolExecutor(2))
        assert out.strategy == strategy
        assert all(isinstance(e["variant"]["n"], int) for e in out.evaluations)
        best = min(e["objective"] for e in out.evaluations)
        assert best < 0.25 * np.mean(out.baseline["nominal"]), strategy


def test_a_candidate_that_breaches_in_staging_is_rolled_back(tmp_path):
    spec = json.loads(msgspec.json.encode(SPEC))
    spec["gates"]["canary"]["policy"]["slos"] = ["cost <= 0.35"]  # the baseline (about 0.9) breaches it too
    spec["gates"]["canary"]["policy"].pop("canary")
    out = discover(write_spec(tmp_path, spec), executor=cf.ThreadPoolExecutor(2))
    canaries = [next(r for r in c.evidence if r["gate"] == "canary") for c in out.candidates]
    for c, r in zip(out.candidates, canaries):
        if r["verdict"] == "fail":
            assert "rolled back" in r["reason"] and r["figures"]["breaches"] >= 1
        else:
            assert r["figures"]["promoted_at"] >= 10
    assert any(r["verdict"] == "fail" for r in canaries)


# --- promotion --------------------------------------------------------------------------------------------------------

def _promoting(folder: Path, keys: list[str], trust: list[str], threshold: int = 1) -> Path:
    pytest.importorskip("nacl")
    folder.mkdir(parents=True, exist_ok=True)
    for k in sorted(set(keys) | {t.removesuffix(".pub") for t in trust}):
        if not (folder / k).exists():
            cat.generate_key(folder / k)
    spec = json.loads(msgspec.json.encode(SPEC))
    spec["gates"]["approval"] = {"keys": keys, "trust": trust, "threshold": threshold}
    spec["promote"] = {"catalog": "variants.json", "scopes": ["prod"], "kind": "kernel"}
    return write_spec(folder, spec)


def test_passing_variants_are_approved_signed_and_loadable(tmp_path):
    spec = _promoting(tmp_path, ["ops"], ["ops.pub"])
    out = discover(spec, executor=cf.ThreadPoolExecutor(2))
    promoted = [c for c in out.candidates if c.promoted]
    assert promoted and all(not c.failed_gate for c in promoted)
    assert all(c.evidence[-1]["verdict"] == "pass" for c in promoted)
    loaded = cat.load_catalog(tmp_path / "variants.json", [tmp_path / "ops.pub"], scope="prod", state=False)
    assert [v.key for v in loaded.variants] == [c.promoted for c in promoted]
    payload = json.loads(loaded.payload_path(loaded.variants[0]).read_text())
    assert payload["knobs"] == promoted[0].variant
    assert [r["gate"] for r in payload["evidence"]] == ["correctness", "constraints", "robustness", "regression",
                                                         "canary"]
    assert loaded.variants[0].evidence[-1].figures["p_nominal"] <= 0.05
    again = discover(spec)  # finished: nothing evaluated, the catalog untouched
    assert again.finished_before and again.digest == out.digest


def test_an_edited_evidence_or_signature_is_refused_by_the_loader(tmp_path):
    spec = _promoting(tmp_path, ["ops"], ["ops.pub"])
    discover(spec, executor=cf.ThreadPoolExecutor(2))
    catalog = tmp_path / "variants.json"
    original = catalog.read_bytes()
    loaded = cat.load_catalog(catalog, [tmp_path / "ops.pub"], state=False)
    payload = loaded.payload_path(loaded.variants[0])
    evidence = payload.read_bytes()
    payload.write_bytes(evidence.replace(b'"verdict":"pass"', b'"verdict":"PASS"', 1))
    with pytest.raises(cat.CatalogRefused, match="another sha256 than the signed one"):
        cat.load_catalog(catalog, [tmp_path / "ops.pub"], state=False)
    payload.write_bytes(evidence)
    doc = json.loads(original)
    sig = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    catalog.write_bytes(cat.canonical(doc) + b"\n")
    with pytest.raises(cat.CatalogRefused, match="signature"):
        cat.load_catalog(catalog, [tmp_path / "ops.pub"], state=False)
    doc = json.loads(original)
    doc["signed"]["variants"][0]["evidence"][-1]["figures"]["objective"] = -1.0
    catalog.write_bytes(cat.canonical(doc) + b"\n")
    with pytest.raises(cat.CatalogRefused, match="signature"):
        cat.load_catalog(catalog, [tmp_path / "ops.pub"], state=False)


def test_k_of_n_approval_is_pending_until_enough_keys_sign(tmp_path):
    spec = _promoting(tmp_path, ["ops"], ["ops.pub", "sec.pub"], threshold=2)
    out = discover(spec, executor=cf.ThreadPoolExecutor(2))
    promoted = [c for c in out.candidates if c.promoted]
    assert promoted and all(c.evidence[-1]["verdict"] == "pending" for c in promoted)
    trust = [tmp_path / "ops.pub", tmp_path / "sec.pub"]
    with pytest.raises(cat.CatalogRefused):
        cat.load_catalog(tmp_path / "variants.json", trust, threshold=2, state=False)
    cat.sign_catalog(tmp_path / "variants.json", tmp_path / "sec")
    loaded = cat.load_catalog(tmp_path / "variants.json", trust, threshold=2, state=False)
    assert [v.key for v in loaded.variants] == [c.promoted for c in promoted]


# --- the command line and a kill -9 -----------------------------------------------------------------------------------

def _cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "arqon", "discover", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, **kw)


def test_the_command_prints_a_table_and_ends_with_the_digest(reference, tmp_path):
    done = _cli(reference[0].out.parent / "spec.json", "--quiet")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == f"digest {reference[0].digest}"
    assert "finished before, nothing evaluated" in lines[0]
    assert any("refused: robustness" in line for line in lines)
    bad = _cli(write_spec(tmp_path, baseline={"x": 9.0, "n": 2, "mode": "a"}))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "baseline.x: 9.0 is outside" in bad.stderr
    assert "--resume" in _cli("--help").stdout


def _kill_when(journal: Path, size: int, process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and journal.stat().st_size >= size:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.005)
    raise AssertionError("the run never reached the kill point")


@pytest.mark.parametrize("fraction", [0.55])  # 20 more points in the slow tier
def test_a_run_killed_with_sigkill_resumes_to_the_same_result(reference, tmp_path, fraction):
    outcome, journal = reference
    spec = write_spec(tmp_path)
    env = {**os.environ, "ARQON_TOY_SLEEP": "0.01"}
    process = subprocess.Popen([sys.executable, "-m", "arqon", "discover", str(spec), "--workers", "2", "--quiet"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    _kill_when(tmp_path / "toy.discovery" / "journal", int(fraction * len(journal)), process)
    assert process.returncode == -signal.SIGKILL
    assert (tmp_path / "toy.discovery" / "journal").read_bytes() != journal
    resumed = _cli(spec, "--resume", "--workers", "2", "--quiet", env={"ARQON_TOY_SLEEP": "0"})
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[-1] == f"digest {outcome.digest}"
    assert (tmp_path / "toy.discovery" / "journal").read_bytes() == journal


@pytest.mark.slow
@pytest.mark.parametrize("fraction", np.linspace(0.02, 0.98, 20).round(3).tolist())
def test_kills_across_the_whole_run_resume_to_the_same_result(reference, tmp_path, fraction):
    test_a_run_killed_with_sigkill_resumes_to_the_same_result(reference, tmp_path, fraction)


@pytest.mark.slow
@pytest.mark.parametrize("at", range(4))  # init, add, approve, sign: the one variant that passes
def test_a_kill_while_promoting_leaves_a_catalog_the_resumed_run_completes(tmp_path, at):
    """Killed with SIGKILL at one of the catalog's writes (a lagging filesystem hook: a kill at the at-th write of
    the catalog file), the resumed run ends with the uninterrupted run's digest and catalog contents."""
    reference = _promoting(tmp_path / "reference", ["ops"], ["ops.pub"])
    expected = discover(reference, executor=cf.ThreadPoolExecutor(2))
    spec = _promoting(tmp_path / "killed", ["ops"], ["ops.pub"])
    shutil.copy(tmp_path / "reference" / "ops", tmp_path / "killed" / "ops")  # the same key: the same signatures
    shutil.copy(tmp_path / "reference" / "ops.pub", tmp_path / "killed" / "ops.pub")
    code = f"""
import os, signal
from arqon import catalog
writes = [0]
original = catalog._write_atomically
def counting(path, data, mode=0o644):
    original(path, data, mode)
    if path.name == "variants.json":
        writes[0] += 1
        if writes[0] > {at}:
            os.kill(os.getpid(), signal.SIGKILL)
catalog._write_atomically = counting
from arqon.discovery import discover
discover({str(spec)!r}, workers=1)
"""
    killed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = discover(spec, executor=cf.ThreadPoolExecutor(2), resume=True)
    assert resumed.digest == expected.digest
    mine = cat.read_catalog(tmp_path / "killed" / "variants.json").signed
    theirs = cat.read_catalog(tmp_path / "reference" / "variants.json").signed
    assert [(v.key, v.lifecycle, v.payload.sha256) for v in mine.variants] == \
        [(v.key, v.lifecycle, v.payload.sha256) for v in theirs.variants]


def test_the_runtime_never_imports_discovery():
    code = ("import sys, arqon\n"
            "t = arqon.Tuner({'params': [{'name': 'x', 'min': 0, 'max': 1}]}); t.step(1.0)\n"
            "arqon.Executor({'params': {'x': {}}}, t)\n"
            "arqon.Selector({'arms': ['a', 'b']}).select()\n"
            "print(sorted(m for m in sys.modules if m.startswith('arqon.discovery') or m == 'distributed'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_worker_that_dies_stops_the_run_with_what_it_committed(tmp_path):
    spec = write_spec(tmp_path, evaluate="toy:crash", knobs=[{"name": "x", "min": -2.0, "max": 2.0}],
                      baseline={"x": 0.0}, gates={"seeds": 5})
    done = _cli(spec, "--workers", "2", "--quiet")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "were lost" in done.stderr and "--resume continues" in done.stderr
    frames, _ = read_frames(tmp_path / "toy.discovery" / "journal")
    assert frames[0]["t"] == "begin" and all(f["t"] == "eval" for f in frames[1:])
