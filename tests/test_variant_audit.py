"""Catalog variants in the audit log: the catalog a run starts with and every change of it (version, digest, signers,
lifecycle transitions, the approved set) in segment headers and records, every variant switch named in exports, and a
replay that re-runs the selector's decisions across a catalog change that grows its arms."""

import json
import subprocess
import sys

import attrs
import numpy as np
import pytest

import arqon
from arqon.audit import read_log, record_dicts, replay, replay_log
from arqon.config import ConfigError
from arqon.kernels import audit as ka
from arqon.kernels import bandit_audit as kba
from tests.conftest import ROOT
from tests.test_variant_swaps import _next_version, make_catalog, policy, tuner

QUALITY = {"int8": 0.3, "fp16": 0.5, "fp32": 0.8, "bf16": 0.9}


def _run(d, steps=600, change=300, log_path=None):
    """A selector choosing the variant through the executor; at ``change`` fp32 is retired and bf16 added. Returns
    the executor and the (step, variant) of every change of the live variant, seen from outside."""
    catalog = make_catalog(d)
    rng = np.random.default_rng(5)
    sel = arqon.Selector({"arms": list(catalog.ids), "policy": "thompson", "seed": 3})
    ex = arqon.Executor({**policy(variant={"cooldown": 0}), "params": {}}, None, catalog)
    log = arqon.AuditLog(log_path, selector=sel, executor=ex) if log_path else None
    switches, live = [], ex.variant
    for now in range(steps):
        if now == change:
            ex.use_catalog(_next_version(d, retire=["fp32"], add=["bf16"]), now)
            sel = sel.with_arms(ex.variants)
        else:
            reward = float(rng.random() < QUALITY[ex.variant])
            ex.step(None, {"lat": 1.0}, float("nan"), now, selector=sel, reward=reward)
        if ex.variant != live:
            switches.append((now, ex.variant))
            live = ex.variant
    if log is not None:
        log.close()
    return ex, switches


def test_a_catalog_change_is_recorded_and_the_selector_replays_across_it(tmp_path):
    path = tmp_path / "run.log"
    ex, switches = _run(tmp_path, log_path=path)
    assert (ex.variants, ex.approved) == (("int8", "fp16", "fp32", "bf16"), ("int8", "fp16", "bf16"))
    (tmp_path / "again").mkdir()
    _, unrecorded = _run(tmp_path / "again")
    assert switches == unrecorded  # recording changes no decision

    log = read_log(path)
    first, after = log.headers[0]["catalog"], log.header_at(len(log.records) - 1)["catalog"]
    assert (first["name"], first["version"], first["approved"]) == ("variants", 1, ["int8", "fp16", "fp32"])
    assert (after["version"], after["variants"], after["approved"]) == (2, list(ex.variants), list(ex.approved))
    assert first["signers"] and after["digest"] == ex.catalog.digest and after["signers"] == list(ex.catalog.signers)
    change = [h for h in log.headers if h.get("transitions")]
    assert len(change) == 1 and change[0]["transitions"] == [
        {"variant": "fp32@1", "from": "approved", "to": "retired"},
        {"variant": "bf16@1", "from": "absent", "to": "approved"}]
    grown = int(np.flatnonzero(log.records["kind"] == kba.SEL_ARMS)[0])
    assert log.header_at(grown)["selector"]["arms"] == ["int8", "fp16", "fp32"]
    assert log.header_at(grown + 1)["selector"]["arms"] == ["int8", "fp16", "fp32", "bf16"]

    rows = list(record_dicts(log.records, names=log.names()))
    lifecycle = [(r["variant"], r["transition"], r["value"]) for r in rows if r["kind"] == "lifecycle"]
    assert lifecycle == [("fp32@1", "approved -> retired", 2.0), ("bf16@1", "absent -> approved", 3.0)]
    decisions = [r for r in rows if r["kind"] == "variants"]
    assert [r["step"] for r in decisions] == [-1, 300]  # the start, and the change
    # every switch of the live variant is a LIVE record of the variant column, named, at the step it was decided
    named = [(r["step"], r["variant"]) for r in rows if r["kind"] == "live" and "variant" in r]
    changes = [(s, v) for i, (s, v) in enumerate(named) if i == 0 or v != named[i - 1][1]]
    assert changes[0] == (-1, "int8") and changes[1:] == switches
    assert not any(v == "fp32" for s, v in named if s >= 300)

    result = replay(path)
    assert result.identical and result.events == len(log.records)
    choices = np.flatnonzero(log.records["kind"] == kba.SEL_CHOICE)
    assert (choices > grown).sum() > 250  # replay went on past the growth, with the grown selector
    tampered = log.records.copy()
    late = int(choices[choices > grown][100])
    tampered[late - 1]["value"] = 1.0 - tampered[late - 1]["value"]  # the reward that decision learnt from
    result = replay_log(attrs.evolve(log, records=tampered))
    assert grown < result.verified <= late and result.divergence["kind"].startswith("selector")


def test_the_cli_shows_the_catalog_and_names_every_variant(tmp_path):
    path = tmp_path / "run.log"
    ex, switches = _run(tmp_path, steps=400, change=200, log_path=path)
    shown = subprocess.run([sys.executable, "-m", "arqon", "log", "show", str(path), "-n", "5"], capture_output=True,
                           text=True, cwd=ROOT, timeout=300)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    v1 = next(line for line in lines if "from record 0: catalog variants v1" in line)
    v2 = next(line for line in lines if "catalog variants v2" in line)
    assert f"signed by {ex.catalog.signers[0]}" in v1 and v1.endswith("approved: int8, fp16, fp32")
    assert v2.endswith("approved: int8, fp16, bf16; lifecycle: fp32@1 approved -> retired; bf16@1 absent -> approved")
    out = subprocess.run([sys.executable, "-m", "arqon", "log", "export", str(path), "--format", "csv"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0 and out.stdout.splitlines()[0].endswith(",arm,variant,transition")
    assert "fp32@1,approved -> retired" in out.stdout
    rows = [json.loads(line) for line in subprocess.run(
        [sys.executable, "-m", "arqon", "log", "export", str(path)], capture_output=True, text=True, cwd=ROOT,
        timeout=300).stdout.splitlines()]
    live = [(r["step"], r["variant"]) for r in rows if r["kind"] == "live"]
    assert all(v in ex.variants for _, v in live) and [v for _, v in live][-1] == ex.variant


def test_allow_and_a_manual_swap_are_recorded_with_a_tuner(tmp_path):
    """Knobs and a variant in one executor: the tuner still replays, allow() is a recorded change of the approved set,
    and a log refuses an executor whose knobs are not the tuner's."""
    catalog = make_catalog(tmp_path)
    t = tuner()
    ex = arqon.Executor(policy(variant={"cooldown": 0, "known_good": "fp16"}), t, catalog)
    with arqon.AuditLog(tmp_path / "log", t, executor=ex) as log:
        ex.swap("fp32", now=0)
        ex.allow(["int8", "fp16"], now=1)  # fp32 live: withdrawn, fp16 goes live
        for now in range(2, 50):
            ex.step(t, {"lat": 1.0}, float((ex.live[0] - 3.0) ** 2), now)
    assert ex.variant == "fp16"
    rec = read_log(tmp_path / "log")
    assert [h["catalog"]["approved"] for h in rec.headers] == [["int8", "fp16", "fp32"], ["int8", "fp16"]]
    rows = list(record_dicts(rec.records, names=rec.names()))
    assert [(r["step"], r["variant"]) for r in rows if r["kind"] == "live" and "variant" in r][:3] == [
        (-1, "fp16"), (0, "fp32"), (1, "fp16")]
    withdrawn = next(r for r in rows if r["kind"] == "variants" and r["step"] == 1)
    assert withdrawn["status"] & arqon.executor.Flags.VARIANT_WITHDRAWN
    assert replay(tmp_path / "log").identical
    other = arqon.Tuner({"params": [{"name": "y", "min": 0, "max": 10}], "seed": 1})
    with pytest.raises(ConfigError, match="with knobs is recorded with the tuner"):
        arqon.AuditLog(tmp_path / "no-tuner", selector=arqon.Selector({"arms": 3}), executor=ex)
    with pytest.raises(ConfigError, match="other parameters than the tuner's"):
        arqon.AuditLog(tmp_path / "other", other, executor=ex)


def test_a_lifecycle_record_is_one_fixed_record_per_transition(tmp_path):
    """The record fields against their definition: value the build's index (NaN without one), status FROM * 4 + TO."""
    path = tmp_path / "log"
    _run(tmp_path, steps=60, change=30, log_path=path)
    records = read_log(path).records
    lifecycle = records[records["kind"] == ka.LIFECYCLE]
    assert lifecycle["status"].tolist() == [2 * 4 + 3, 0 * 4 + 2] and lifecycle["value"].tolist() == [2.0, 3.0]


def test_the_report_plots_the_live_variant_from_the_log_alone(tmp_path):
    pytest.importorskip("matplotlib")
    from arqon.report import read_trace, report, trace_rows

    path = tmp_path / "run.log"
    ex, switches = _run(tmp_path, steps=400, change=200, log_path=path)
    trace = read_trace(path)
    assert trace.variants == ex.variants and trace.names == () and trace.catalog_changes.tolist() == [200]
    expected = np.zeros(400)  # int8 (index 0) until the first switch; a switch at step t is in force from t + 1
    for step, variant in switches:
        expected[step + 1:] = ex.variants.index(variant)
    assert np.array_equal(trace.variant, expected)
    rows = {r["what"]: r["value"] for r in trace_rows(trace)}
    assert rows["variant switches"] == len(switches) and rows["approved-set changes"] == 1
    page = report(path, tmp_path / "rep")
    assert (tmp_path / "rep" / "variants.png").stat().st_size > 5000 and "variant switches" in page.read_text()
