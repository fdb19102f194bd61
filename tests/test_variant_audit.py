"""Catalog variants in the audit log: the catalog a run starts with and every change of it (version, digest, signers,
lifecycle transitions, the approved set) in segment headers and records, every variant switch named in exports, and a
replay that re-runs the selector's decisions across a catalog change that grows its arms."""

import json
import struct
import subprocess
import zlib
import sys

import attrs
import numpy as np
import pytest

import arqon
from arqon.audit import LogCorrupt, read_log, record_dicts, replay, replay_log
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
    assert [h["catalog"]["allowed"] for h in rec.headers] == [["int8", "fp16", "fp32"], ["int8", "fp16"]]
    assert rec.headers[1]["catalog"]["approved"] == ["int8", "fp16", "fp32"]  # the catalog's, unchanged
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


def test_a_stopped_writer_refuses_a_catalog_change_before_anything_changes(tmp_path, monkeypatch):
    catalog = make_catalog(tmp_path)
    sel = arqon.Selector({"arms": list(catalog.ids), "seed": 1})
    ex = arqon.Executor({**policy(variant={"cooldown": 0}), "params": {}}, None, catalog)
    log = arqon.AuditLog(tmp_path / "log", selector=sel, executor=ex)
    ex.step(None, {"lat": 1.0}, float("nan"), 0, selector=sel, reward=1.0)
    log.flush()

    def disk_full(payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(log, "_write_frame", disk_full)
    sel.select()  # one more record: the writer fails on it and stops
    v2 = _next_version(tmp_path, retire=["fp32"], add=["bf16"])
    with pytest.raises(RuntimeError, match="No space left on device"):
        ex.use_catalog(v2, now=1)
    assert (ex.catalog.version, ex.variants, ex.approved) == (1, ("int8", "fp16", "fp32"), ("int8", "fp16", "fp32"))
    with pytest.raises(RuntimeError, match="No space left on device"):
        sel.with_arms([*sel.names, "bf16"])
    assert sel._log is log  # still the one recorded (and refused while its log is broken)
    with pytest.raises(RuntimeError):
        log.close()


def test_an_earlier_runs_segments_are_refused_and_a_crash_mid_rotation_leaves_a_readable_log(tmp_path, monkeypatch):
    (tmp_path / "old.log.1").write_bytes(b"from an earlier run")
    with pytest.raises(FileExistsError, match="old.log.1 exists"):
        arqon.AuditLog(tmp_path / "old.log", selector=arqon.Selector({"arms": 2}))
    # the writer dies between writing a new segment's header and linking it into place: what a SIGKILL there leaves
    catalog = make_catalog(tmp_path)
    sel = arqon.Selector({"arms": list(catalog.ids), "seed": 1})
    ex = arqon.Executor({**policy(variant={"cooldown": 0}), "params": {}}, None, catalog)
    log = arqon.AuditLog(tmp_path / "run.log", selector=sel, executor=ex)
    for now in range(20):
        ex.step(None, {"lat": 1.0}, float("nan"), now, selector=sel, reward=0.5)
    log.flush()

    def killed(*args):
        raise OSError("killed")

    monkeypatch.setattr("arqon.audit.os.link", killed)
    with pytest.raises(RuntimeError):
        ex.allow(["int8", "fp16"], now=20)
    monkeypatch.undo()
    assert (tmp_path / "run.log.1.tmp").is_file() and not (tmp_path / "run.log.1").exists()
    rec = read_log(tmp_path / "run.log")  # every record acknowledged is there, the partial segment is not read
    assert len(rec.records) == log.counters()["logged"] and not rec.closed  # the VARIANTS decision included
    assert rec.records[-1]["kind"] in (ka.VARIANTS, ka.LIVE)
    assert replay(tmp_path / "run.log").identical


def test_flush_waits_for_every_logged_record_even_after_refusals(tmp_path):
    """The writer's own LOST records do not count toward what flush() waits for."""
    sel = arqon.Selector({"arms": 3, "seed": 1})
    log = arqon.AuditLog(tmp_path / "log", selector=sel, capacity=16)
    for _ in range(40):
        for _ in range(30):  # more than the ring holds between two drains, at times
            sel.select()
        log.flush()
        records = read_log(tmp_path / "log").records
        assert np.count_nonzero(records["kind"] != ka.LOST) == log.counters()["logged"]
    log.close()


def test_segment_headers_are_in_the_chain_and_a_log_cut_after_a_growth_replays(tmp_path):
    path = tmp_path / "run.log"
    _run(tmp_path, steps=100, change=50, log_path=path)
    log = read_log(path)
    assert len(log.headers) == 3
    segment = tmp_path / "run.log.1"  # rewrite the catalog header's signers and fix its CRC: the chain still sees it
    data = segment.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    header = json.loads(data[16:16 + length])
    header["catalog"]["signers"] = ["0123456789abcdef"]
    text = json.dumps(header, sort_keys=True).encode()
    forged = data[:12] + struct.pack("<I", len(text)) + text + struct.pack("<I", zlib.crc32(text))
    segment.write_bytes(forged + data[16 + length + 4:])
    with pytest.raises(LogCorrupt, match="run.log.1: damaged frame"):  # its first frame no longer chains
        read_log(path)
    # a crash after the SEL_ARMS record but before the segment naming the new arms: every decision still verified
    grown = int(np.flatnonzero(log.records["kind"] == kba.SEL_ARMS)[0])
    cut = attrs.evolve(log, records=log.records[:grown + 1], headers=log.headers[:2], starts=log.starts[:2])
    result = replay_log(cut)
    assert result.identical and result.events == grown + 1
    forged = attrs.evolve(log, headers=log.headers[:2], starts=log.starts[:2])  # records go on without that segment
    assert replay_log(forged).verified == grown


def test_the_selector_a_growth_replaced_refuses_to_decide(tmp_path):
    catalog = make_catalog(tmp_path)
    sel = arqon.Selector({"arms": list(catalog.ids), "seed": 1})
    with arqon.AuditLog(tmp_path / "log", selector=sel):
        sel.select()
        grown = sel.with_arms([*sel.names, "bf16"])
        for call in (sel.select, lambda: sel.update(sel.pending, 1.0), lambda: sel.step(1.0)):
            with pytest.raises(ValueError, match="grew into a new one over \\['int8', 'fp16', 'fp32', 'bf16'\\]"):
                call()
        grown.step(1.0)
    assert replay(tmp_path / "log").identical


def test_a_capacity_refusal_records_what_it_withdrew(tmp_path):
    catalog = make_catalog(tmp_path)
    t = tuner()
    ex = arqon.Executor(policy(variant={"cooldown": 0, "known_good": "fp16", "capacity": 3}), t, catalog)
    with arqon.AuditLog(tmp_path / "log", t, executor=ex):
        ex.swap("fp32", now=0)
        with pytest.raises(ConfigError, match="withdrew fp32"):
            ex.use_catalog(_next_version(tmp_path, retire=["fp32"], add=["bf16"]), now=1)
    rec = read_log(tmp_path / "log")
    last = rec.headers[-1]
    assert last["transitions"] == [{"variant": "fp32@1", "from": "approved", "to": "retired"}]
    assert last["refused"]["version"] == 2 and "capacity 3" in last["refused"]["reason"]
    assert last["catalog"]["version"] == 1 and last["catalog"]["allowed"] == ["int8", "fp16"]


def test_the_new_audit_kernels_refuse_a_wrong_truncated_or_corrupted_state_untouched(tmp_path):
    """audited_arms and audit_event: a state or ring that does not open is BAD_STATE, with nothing written anywhere."""
    from arqon.kernels import bandit as kb
    from arqon.telemetry import Ring

    sel = arqon.Selector({"arms": 3, "seed": 1})
    ring = Ring(64, "drop_newest")
    good = ring.state.copy()
    corrupted = sel.state.copy()
    kb.bandit_header(corrupted)["k"] = 1000  # more arms than its words hold
    for state in (sel.state[:-1].copy(), corrupted, np.zeros(8), tuner().state):
        before = state.copy()
        assert kba.audited_arms(state, ring.state, 0) == ka.BAD_STATE
        assert state.tobytes() == before.tobytes() and ring.state.tobytes() == good.tobytes()
    for bad_ring in (ring.state[:-1].copy(), np.zeros(ring.state.shape[0]), sel.state.copy()):
        before = bad_ring.copy()
        assert kba.audited_arms(sel.state, bad_ring, 0) == ka.BAD_STATE
        assert ka.audit_event(bad_ring, ka.LIFECYCLE, 0, 1.0, np.uint64(7), 2) == ka.BAD_STATE
        assert bad_ring.tobytes() == before.tobytes()
    assert kba.audited_arms(sel.state, ring.state, 3) == 0 and ring.counters()["written"] == 1
