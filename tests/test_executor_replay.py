"""Replay re-runs the safety executor: every decision from its logged inputs (the vectors offered, the metrics observed,
the operator's calls and their steps), checked against an independent re-run through the Python shell."""

import json
import subprocess
import sys

import msgspec
import numpy as np

import arqon
from arqon.audit import AuditLog, read_log, replay
from arqon.executor import Flags
from arqon.kernels import audit as ka

EXECUTOR_KINDS = (ka.OFFER, ka.PROPOSE, ka.APPLY, ka.OBSERVE, ka.SNAPBACK, ka.KILL, ka.RESUME, ka.VARIANTS)
POLICY = {"params": {"x": {"max_delta": 2.0}, "y": {"cooldown": 3}}, "metrics": ["lat", "err"],
          "slos": ["lat <= 50", "err <= 0.05"], "safe_mode_after": 4,
          "canary": {"metric": "lat", "stages": [{"min_samples": 3, "max_regression": 0.2},
                                                 {"min_samples": 6, "max_regression": 0.1}]}}


def _run(path, policy=POLICY, steps=600, seed=0):
    """A tuned service under the executor: steps, a direct offer, a propose + apply, an operator's kill, resume and
    snapback, a resume whenever safe mode is entered. Returns the executor."""
    tuner = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 10}, {"name": "y", "min": 0, "max": 1}],
                         "seed": 3})
    ex = arqon.Executor(policy, tuner)
    rng = np.random.default_rng(seed)
    with AuditLog(path, tuner, executor=ex):
        for t in range(steps):
            x = ex.live
            lat = 10 + (x[0] - 3) ** 2 + 5 * x[1] + rng.normal(0, 1) + (60 if t % 97 == 0 else 0)
            err = 0.1 if t % 131 == 0 else 0.0
            ex.step(tuner, {"lat": lat, "err": err}, lat, t)
            if t == 200:
                ex.kill(t)
            if t == 230:
                ex.resume(t)
            if t == 300:
                ex.offer([9.5, 0.5], t)
            if t == 350:
                ex.propose([2.0, 0.25], t)
                ex.apply(t)
            if t == 400:
                ex.snapback(t)
            if ex.safe_mode:
                ex.resume(t)
    return ex


def _decisions(records):
    return np.flatnonzero(np.isin(records["kind"], EXECUTOR_KINDS))


def test_every_executor_decision_replays_bit_identical(tmp_path):
    ex = _run(tmp_path / "run.arqlog")
    log = read_log(tmp_path / "run.arqlog")
    result = replay(tmp_path / "run.arqlog")
    decisions = _decisions(log.records)
    kinds = log.records["kind"][decisions]
    counters = ex.counters()
    assert result.identical and result.divergence is None
    assert result.components["executor"] == (len(decisions), len(decisions))
    assert result.components["tuner"][0] == result.components["tuner"][1] > 0
    # the log holds every decision the run made: an offer per proposal, rollbacks and breaches among the observes
    assert int(np.sum(kinds == ka.OFFER) + np.sum(kinds == ka.PROPOSE)) == counters["proposals"]
    observes = log.records["status"][decisions][kinds == ka.OBSERVE].astype(np.int64)
    assert 0 < int(np.count_nonzero(observes & Flags.ROLLED_BACK)) <= counters["rollbacks"]
    assert {ka.KILL, ka.RESUME, ka.SNAPBACK, ka.APPLY} <= set(kinds.tolist())


def _python_rerun(log, policy):
    """The executor's decisions re-made through the Python shell (Executor methods) from the log's inputs, under
    ``policy``: (flags, live) per executor record, in order. Independent of ``guard_replay``."""
    tuner = arqon.Tuner(log.header["config"])
    ex = arqon.Executor(policy, tuner)
    offered, metrics, out = {}, {}, []
    names = log.header["metrics"]
    for r in log.records:
        kind, step = int(r["kind"]), int(r["step"])
        if kind == ka.OFFERED:
            offered[int(r["status"])] = float(r["value"])
        elif kind == ka.METRIC:
            metrics[names[int(r["status"])]] = float(r["value"])
        elif kind in EXECUTOR_KINDS:
            ex._log = None
            call = {ka.OFFER: lambda: ex.offer([offered[i] for i in range(len(offered))], step),
                    ka.PROPOSE: lambda: ex.propose([offered[i] for i in range(len(offered))], step),
                    ka.APPLY: lambda: ex.apply(step), ka.OBSERVE: lambda: ex.observe(metrics, step),
                    ka.SNAPBACK: lambda: ex.snapback(step), ka.KILL: lambda: ex.kill(step),
                    ka.RESUME: lambda: ex.resume(step)}[kind]
            out.append((int(call()), ex.live.tolist(), int(ex.phase), ex.generation))
            if kind == ka.OBSERVE:
                metrics = {}
    return out


def test_a_changed_slo_is_caught_at_the_first_decision_it_changes(tmp_path):
    _run(tmp_path / "run.arqlog")
    log = read_log(tmp_path / "run.arqlog")
    stricter = {**POLICY, "slos": ["lat <= 15", "err <= 0.05"]}
    logged = _python_rerun(log, POLICY)
    changed = _python_rerun(log, stricter)
    first = next(k for k, (a, b) in enumerate(zip(logged, changed)) if a != b)
    decisions = _decisions(log.records)
    result = replay(tmp_path / "run.arqlog", policy=stricter)
    assert not result.identical and result.divergence["index"] == int(decisions[first])
    assert result.divergence["kind"] == "observe"  # a window the new SLO calls a breach
    assert result.divergence["component"] == "executor"
    assert result.divergence["logged_status"] == logged[first][0]
    assert result.divergence["replayed_status"] == changed[first][0]  # the flags the changed rule returns
    assert result.divergence["replayed_flags"] == "|".join(f.name for f in Flags if f and f in Flags(changed[first][0]))
    assert result.components["executor"] == (first, len(decisions))
    # the Python shell's re-run under the logged policy makes the logged decisions (flags) too
    assert [d[0] for d in logged] == log.records["status"][decisions].astype(int).tolist()


def test_replay_with_a_policy_from_the_command_line(tmp_path):
    _run(tmp_path / "run.arqlog")
    (tmp_path / "same.json").write_bytes(msgspec.json.encode(POLICY))
    (tmp_path / "other.json").write_text(json.dumps({**POLICY, "slos": ["lat <= 15", "err <= 0.05"]}))
    same = subprocess.run([sys.executable, "-m", "arqon", "replay", str(tmp_path / "run.arqlog"), "--policy",
                           str(tmp_path / "same.json")], capture_output=True, text=True)
    assert same.returncode == 0 and "every decision bit-identical" in same.stdout
    assert "executor" in same.stdout and "tuner" in same.stdout
    other = subprocess.run([sys.executable, "-m", "arqon", "replay", str(tmp_path / "run.arqlog"), "--policy",
                            str(tmp_path / "other.json")], capture_output=True, text=True)
    assert other.returncode == 1 and "first divergence at event" in other.stdout
    assert "(executor observe, step" in other.stdout and "replayed SLO_BREACH" in other.stdout


def test_the_replay_kernels_refuse_a_wrong_or_truncated_state(tmp_path):
    from arqon.kernels.guard import guard_matrix

    _run(tmp_path / "run.arqlog", steps=50)
    log = read_log(tmp_path / "run.arqlog")
    ex = arqon.Executor(POLICY, arqon.Tuner(log.header["config"]))
    width = guard_matrix(ex.state).shape[1]
    for bad in (ex.state[: len(ex.state) // 2].copy(), np.zeros_like(ex.state), ex.state[::2].copy()):
        before = bad.copy()
        assert ka.guard_replay(bad, log.records, 0, len(log.records), np.zeros(2), np.zeros(width)) == 0
        assert ka.guard_record_digest(bad) == 0
        assert np.array_equal(bad, before, equal_nan=True)  # nothing touched
    state = ex.state.copy()
    assert ka.guard_replay(state, log.records, 3, len(log.records), np.zeros(1), np.zeros(width)) == 3  # too short
    assert ka.guard_replay(state, log.records, 0, len(log.records), np.zeros(2), np.zeros(1)) == 0
    assert np.array_equal(state, ex.state, equal_nan=True)
    assert ka.guard_replay(state, log.records, 0, len(log.records), np.zeros(2), np.zeros(width)) == len(log.records)
