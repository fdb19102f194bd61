"""Selector decisions in the audit log: every select, update and step recorded with its inputs, replayed bit for bit,
a changed input found at its record, arm names in exports."""

import json
import subprocess
import sys

import numba
import numpy as np
import pytest

import arqon
from arqon.audit import read_log, replay
from arqon.kernels import bandit as kb
from arqon.kernels import bandit_audit as kba
from tests.conftest import ROOT


def _run(sel, log, steps, seed=0):
    rng = np.random.default_rng(seed)
    d = sel.config.context
    ctx = (lambda: rng.normal(size=d)) if d else (lambda: None)
    met = (lambda: {"lat": float(rng.uniform(1, 8))}) if sel.config.metrics else (lambda: None)
    arm = sel.select(context=ctx())
    chosen = [arm]
    for i in range(steps):
        mask = rng.random(len(sel.names)) < 0.7 if i % 3 == 0 else None
        if i % 5 == 0:
            sel.update(arm, float(rng.random()), metrics=met())
            arm = sel.select(eligible=mask, context=ctx())
        else:
            arm = sel.step(float(rng.random()), eligible=mask, context=ctx(), metrics=met())
        chosen.append(arm)
    return chosen


CONFIGS = [{"arms": ["int8", "fp16", "fp32"], "seed": 2},
           {"arms": 4, "policy": "linucb", "context": 3, "metrics": ["lat"], "constraints": [{"metric": "lat", "max": 5}]},
           {"arms": 70, "policy": "glr-klucb", "glr_klucb": {"history": 50}},
           {"arms": 6, "policy": "sliding-window-thompson", "sliding_window_thompson": {"window": 40}}]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.get("policy", "thompson") for c in CONFIGS])
def test_every_selector_decision_replays_bit_for_bit(tmp_path, config):
    sel = arqon.Selector(config)
    with arqon.AuditLog(tmp_path / "log", selector=sel) as log:
        chosen = _run(sel, log, 400)
    assert chosen == _run(arqon.Selector(config), None, 400)  # recording changes no decision
    result = replay(tmp_path / "log")
    assert result.identical and result.events > 400
    records = read_log(tmp_path / "log").records
    choices = records[records["kind"] == kba.SEL_CHOICE]
    assert choices["value"].astype(int).tolist() == chosen
    # a changed reward, context or mask bit is found at the first decision it alters
    for kind in (kba.SEL_REWARD, kba.SEL_UPDATE, kba.SEL_MASK, kba.SEL_CONTEXT):
        where = np.flatnonzero(records["kind"] == kind)
        if where.size == 0:
            continue
        tampered = records.copy()
        i = int(where[len(where) // 2])
        if kind == kba.SEL_MASK:  # mask out the arm a decision chose (masking a loser, or the fallback, may change
            # nothing): the first masked decision from the middle on whose choice was not the fallback
            next_choice = [j + int(np.argmax(records["kind"][j:] == kba.SEL_CHOICE)) for j in where]
            i, choice = next((j, c) for j, c in zip(where, next_choice) if j >= i and records[c]["status"] == 0)
            arm = int(records[choice]["value"])
            i = next(j for j in range(choice, -1, -1) if records[j]["kind"] == kba.SEL_MASK
                     and records[j]["status"] == arm // 64)
            tampered[i]["digest"] &= ~np.uint64(1 << (arm % 64))
        else:
            tampered[i]["value"] += 0.25 if kind != kba.SEL_CONTEXT else 1.0
        fresh = arqon.Selector(config)
        verified = kba.selector_replay(fresh.state, tampered, tampered.shape[0])
        assert i <= verified < tampered.shape[0], kind


def test_a_log_of_a_tuner_and_a_selector_replays_both(tmp_path):
    tuner = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}], "seed": 3})
    sel = arqon.Selector({"arms": 3, "policy": "ucb1"})
    with arqon.AuditLog(tmp_path / "log", tuner, selector=sel) as log:
        arm = sel.select()
        x = log.ask()
        for _ in range(200):
            x = log.step(float((x[0] - 0.3) ** 2))
            arm = sel.step(float(arm == 2))
    assert replay(tmp_path / "log").identical
    with pytest.raises(ValueError, match="records no tuner"):
        with arqon.AuditLog(tmp_path / "only", selector=arqon.Selector({"arms": 2})) as log:
            log.ask()


def test_exports_name_the_chosen_arm(tmp_path):
    sel = arqon.Selector({"arms": ["int8", "fp16", "fp32"], "seed": 2})
    with arqon.AuditLog(tmp_path / "log", selector=sel) as log:
        _run(sel, log, 30)
    out = subprocess.run([sys.executable, "-m", "arqon", "log", "export", str(tmp_path / "log"), "--format", "jsonl"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    choices = [r for r in rows if r["kind"] == "selector-choice"]
    assert choices and all(r["arm"] == ["int8", "fp16", "fp32"][int(r["value"])] for r in choices)
    shown = subprocess.run([sys.executable, "-m", "arqon", "replay", str(tmp_path / "log")], capture_output=True,
                           text=True, cwd=ROOT, timeout=300)
    assert shown.returncode == 0 and "every decision bit-identical" in shown.stdout


@numba.njit
def _audited_loop(state, ring, n):
    mask = np.ones(5, np.bool_)
    empty = np.zeros(0)
    arm = kba.audited_select(state, ring, mask, empty, 0)
    for i in range(n):
        mask[i % 5] = i % 4 != 0
        arm = kba.audited_step(state, ring, 1.0 if (i + arm) % 3 == 0 else 0.0, empty, mask, empty, i + 1)
        mask[i % 5] = True
    return arm


def test_audited_kernels_inside_njit_replay_bit_for_bit():
    from arqon.kernels import ring as ring_kernels
    from arqon.kernels.audit import AUDIT_RECORD, audit_drain

    sel = arqon.Selector({"arms": 5, "seed": 8})
    ring = arqon.Ring(1 << 14, "drop_newest")
    _audited_loop(sel.state, ring.state, 2000)
    out = np.zeros(1 << 14, AUDIT_RECORD)
    n = audit_drain(ring.state, out)
    assert n > 2000 and ring_kernels.ring_header(ring.state)[0]["dropped"] == 0
    fresh = arqon.Selector({"arms": 5, "seed": 8})
    assert kba.selector_replay(fresh.state, out, n) == n
    assert np.array_equal(fresh.state.view(np.uint64), sel.state.view(np.uint64))
