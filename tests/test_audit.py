"""The audit log: bit-exact replay (fresh process, many seeds), divergence and gap detection, corruption detection
(every truncation of the last frames, random bit flips), crash safety under SIGKILL, the CLI, and no allocation."""

import json
import os
import re
import random
import selectors
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numba
import numpy as np
import pytest

import arqon
from arqon.audit import FRAME_MAGIC, AuditLog, LogCorrupt, LogIncompatible, read_log, replay, state_layout
from arqon.cli import main as cli
from arqon.kernels import audit as audit_kernels
from tests.conftest import ROOT, run_in_fresh_process

CONFIG = {"params": [{"name": f"x{i}", "min": -5, "max": 5} for i in range(5)]
          + [{"name": "lr", "min": 1e-4, "max": 1, "scale": "log"}, {"name": "n", "min": 1, "max": 9, "integer": True}]}


def _cost(x):
    return float(np.sum((x[:5] - 1.0) ** 2) + np.log(x[5]) ** 2 + (x[6] - 4.0) ** 2)


def _run(path, seed, steps, flush_every=0, **options):
    """A logged run mixing ask, tell and step, with a NaN now and then (rejected, logged all the same); with
    ``flush_every``, a flush every so many steps (frames, hence segments, no longer depend on the writer's pace)."""
    tuner = arqon.Tuner({**CONFIG, "seed": seed})
    with AuditLog(path, tuner, **options) as log:
        x = log.ask()
        for i in range(steps):
            if flush_every and i % flush_every == 0:
                log.flush()
            value = np.nan if i % 997 == 5 else _cost(x)
            if i % 3 == 0:
                log.tell(value)
                x = log.ask()
            else:
                x = log.step(value)
    return tuner


def test_replay_in_a_fresh_process_is_bit_identical_over_seeds(tmp_path, capsys):
    paths = [tmp_path / f"seed{seed}.arqlog" for seed in range(10)]
    for seed, path in enumerate(paths):
        _run(path, seed, 100_000, rotate_bytes=1 << 21)
    code = f"""
        import json, attrs
        from arqon.audit import replay
        results = [replay(p) for p in {[str(p) for p in paths]}]
        print(json.dumps([attrs.asdict(r) | {{"identical": r.identical}} for r in results]))
    """
    results = json.loads(run_in_fresh_process(code))
    assert [r["identical"] for r in results] == [True] * 10
    assert {r["events"] for r in results} == {100_000 + 100_000 // 3 + 2}  # every step, and an ask after each tell
    assert len(read_log(paths[0]).segments) > 1  # rotation happened and the chain crossed segments
    with capsys.disabled():
        print(f"\n  replay in a fresh process: 10 seeds x {results[0]['events']:,} events, all bit-identical")


def test_replay_finds_the_first_divergence(tmp_path):
    path = tmp_path / "run.arqlog"
    _run(path, 1, 2000)
    records = read_log(path).records
    # one observation off by one part in 1e9 (an ulp can vanish in the update's rounding: then nothing differs)
    other_value = records.copy()
    other_value[777]["value"] *= 1 + 1e-9
    other_digest = records.copy()
    other_digest[1500]["digest"] ^= np.uint64(1)
    for changed, first in ((other_value, 777), (other_digest, 1500)):
        tuner = arqon.Tuner({**CONFIG, "seed": 1})
        assert audit_kernels.audit_replay(tuner.state, changed, len(changed)) == first
    other_seed = arqon.Tuner({**CONFIG, "seed": 2})
    assert audit_kernels.audit_replay(other_seed.state, records, len(records)) == 0


@pytest.mark.parametrize("written", ["arqon_S6", "tuner.spsa/0123456789abcdef", None])
def test_a_log_from_another_state_layout_is_refused_by_name(tmp_path, monkeypatch, capsys, written):
    """Every record's digest covers the whole state: under another layout none could match, so replay says why
    instead of reporting a divergence at record 0. "arqon_S6": the single layout digit logs carried before layouts were
    declared per strategy; None: a log from before the layout was recorded."""
    path = tmp_path / "old.arqlog"
    with monkeypatch.context() as m:
        m.setattr("arqon.audit.state_layout", lambda state: written)
        _run(path, 1, 50)
    assert read_log(path).header["state_layout"] == written
    expected = f"state layout {written}" if written else r"an older state layout \(not recorded in the log\)"
    here = state_layout(arqon.Tuner({**CONFIG, "seed": 1}).state)
    assert re.fullmatch(r"tuner\.spsa/[0-9a-f]{16}", here)
    with pytest.raises(LogIncompatible, match=f"{expected}; this arqon .* uses {re.escape(here)}"):
        replay(path)
    assert cli(["replay", str(path)]) != 0
    assert "replay it with the arqon that wrote it" in capsys.readouterr().err
    _run(tmp_path / "new.arqlog", 1, 50)
    assert replay(tmp_path / "new.arqlog").identical


@numba.njit
def _flood(state, audit, n):
    for i in range(n):
        audit_kernels.audited_step(state, audit, 1.0 + (i % 7), i)


def test_a_full_ring_refuses_counts_and_replay_stops_at_the_gap(tmp_path):
    path = tmp_path / "run.arqlog"
    tuner = arqon.Tuner({**CONFIG, "seed": 3})
    with AuditLog(path, tuner, capacity=8) as log:
        audit_kernels.audited_ask(tuner.state, log.ring.state, 0)
        _flood(tuner.state, log.ring.state, 200_000)  # far faster than the writer
        counters = log.counters()
    assert counters["refused"] > 0 and counters["logged"] + counters["refused"] == 200_001
    result = replay(path)
    assert result.gap is not None and result.divergence is None
    assert result.verified == result.gap["index"] > 0 and result.gap["lost"] > 0
    assert cli(["replay", str(path)]) == 1


def _small_log(path):
    """A closed log of several frames (flushes between bursts)."""
    tuner = arqon.Tuner({**CONFIG, "seed": 9})
    with AuditLog(path, tuner) as log:
        x = log.ask()
        for burst in range(6):
            for _ in range(5):
                x = log.step(_cost(x))
            log.flush()
    return path.read_bytes()


def test_every_truncation_of_the_last_frames_is_detected(tmp_path):
    data = _small_log(tmp_path / "full.arqlog")
    full = read_log(tmp_path / "full.arqlog")
    assert full.closed and full.torn_tail is None and len(full.records) == 31
    last_frames = 2 * (28 + 5 * 48) + 28  # about the last two frames and the end marker
    checked = 0
    for cut in range(len(data) - last_frames, len(data)):
        path = tmp_path / f"cut{cut}.arqlog"
        path.write_bytes(data[:cut])
        log = read_log(path)
        assert log.torn_tail is not None or not log.closed, cut  # reported: never taken for a whole log
        assert log.records.tobytes() == full.records[: len(log.records)].tobytes()  # what is kept is a prefix
        checked += 1
    repaired = read_log(tmp_path / f"cut{len(data) - 7}.arqlog", repair=True)
    assert repaired.torn_tail.repaired
    again = read_log(tmp_path / f"cut{len(data) - 7}.arqlog")
    assert again.torn_tail is None and len(again.records) == len(repaired.records)
    assert checked == last_frames


def test_random_bit_flips_are_always_detected(tmp_path):
    data = _small_log(tmp_path / "full.arqlog")
    rng = random.Random(0)
    outcomes = {"corrupt": 0, "torn": 0}
    for trial in range(600):
        flipped = bytearray(data)
        position = rng.randrange(len(data))
        flipped[position] ^= 1 << rng.randrange(8)
        path = tmp_path / "flipped.arqlog"
        path.write_bytes(bytes(flipped))
        try:
            log = read_log(path)
        except LogCorrupt as e:
            assert "offset" in str(e)
            outcomes["corrupt"] += 1
            continue
        assert log.torn_tail is not None, position  # the only other outcome: the damaged last frame, reported
        outcomes["torn"] += 1
    assert outcomes["corrupt"] > 500  # most flips are in the middle, and stop reading


def test_corruption_in_the_middle_names_the_offset(tmp_path):
    data = bytearray(_small_log(tmp_path / "full.arqlog"))
    first_frame = bytes(data).find(FRAME_MAGIC.to_bytes(4, "little"))
    data[first_frame + 40] ^= 0xFF  # inside the first frame's payload
    path = tmp_path / "bad.arqlog"
    path.write_bytes(bytes(data))
    with pytest.raises(LogCorrupt, match=f"frame fails its checksum at offset {first_frame}"):
        read_log(path)
    assert cli(["replay", str(path)]) == 2


_ZYGOTE = """
    import os, sys, tempfile, numpy as np
    import arqon
    from arqon.audit import AuditLog
    config = {"params": [{"name": f"x{i}", "min": -5, "max": 5} for i in range(4)]}
    with tempfile.TemporaryDirectory() as warm:  # load every kernel once, so a worker logs from its first moment
        with AuditLog(os.path.join(warm, "warm.arqlog"), arqon.Tuner(config)) as log:
            x = log.ask()
            for _ in range(100):
                x = log.step(float(np.sum((x - 1.0) ** 2)))
    print("ready", flush=True)
    for line in sys.stdin:
        path, seed, rotate, fsync = line.split()
        pid = os.fork()
        if pid == 0:  # the worker: log as fast as it can, acknowledging what is durable, until killed
            tuner = arqon.Tuner({**config, "seed": int(seed)})
            log = AuditLog(path, tuner, fsync=fsync, every=64, interval_ms=2.0, rotate_bytes=int(rotate))
            print(f"pid {os.getpid()}", flush=True)
            x, acked = log.ask(), 0
            while True:
                x = log.step(float(np.sum((x - 1.0) ** 2)))
                if log.durable != acked:
                    acked = log.durable
                    print(f"ack {acked}", flush=True)
        os.waitpid(pid, 0)
        print("\\nreaped", flush=True)  # on a line of its own even when the kill cut an ack line short
"""


ROTATE_BYTES = (4 << 10, 64 << 10, 1 << 20, 64 << 20)  # 4 KiB rotates every ~60 records
FSYNC_MODES = ("record", "every", "interval")


def _crash_trials(tmp_path, kills):
    """``kills`` workers logging as fast as they can, each SIGKILLed after a random time, across every rotate size and
    fsync mode in turn. Returns: acknowledged records lost, the median recovery time, records kept per log, logs
    that had rotated, and kills per (rotate size, fsync mode)."""
    zygote = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_ZYGOTE)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1)
    rng = random.Random(1)
    lost, recovery, records_kept, rotated, settings = 0, [], [], 0, {}
    with zygote:
        sel = selectors.DefaultSelector()
        sel.register(zygote.stdout, selectors.EVENT_READ)
        assert zygote.stdout.readline().strip() == "ready"
        for trial in range(kills):
            path = tmp_path / f"crash{trial}.arqlog"
            rotate, fsync = ROTATE_BYTES[trial % len(ROTATE_BYTES)], FSYNC_MODES[trial // len(ROTATE_BYTES) % 3]
            settings[rotate, fsync] = settings.get((rotate, fsync), 0) + 1
            zygote.stdin.write(f"{path} {trial} {rotate} {fsync}\n")
            zygote.stdin.flush()
            first = zygote.stdout.readline().split()
            assert first[0] == "pid", first
            pid, acked = int(first[1]), 0
            deadline = time.monotonic() + rng.uniform(0.0, 0.05)
            while time.monotonic() < deadline:
                if sel.select(timeout=max(deadline - time.monotonic(), 0)):
                    acked = int(zygote.stdout.readline().split()[1])
            os.kill(pid, signal.SIGKILL)  # a process this test started, by its id
            while True:
                line = zygote.stdout.readline().split()
                if line == ["reaped"]:
                    break
                if len(line) == 2:  # an ack printed before the kill landed (cut short, it only understates)
                    acked = int(line[1])
            started = time.perf_counter()
            log = read_log(path, repair=True)
            recovery.append(time.perf_counter() - started)
            lost += max(acked - len(log.records), 0)
            records_kept.append(len(log.records))
            rotated += len(log.segments) > 1
            replayed = replay(path)
            assert replayed.identical  # what survived is a prefix that replays exactly
            assert replayed.missing  # and is never called complete: a killed writer wrote no end marker
            for part in tmp_path.glob(f"crash{trial}.arqlog*"):
                part.unlink()
        zygote.stdin.close()
    return lost, statistics.median(recovery), records_kept, rotated, settings


@pytest.mark.parametrize("kills", [36, pytest.param(1008, marks=pytest.mark.slow)])
def test_sigkill_never_loses_an_acknowledged_record(tmp_path, capsys, kills):
    lost, recovery, kept, rotated, settings = _crash_trials(tmp_path, kills)
    assert lost == 0
    assert len(settings) == len(ROTATE_BYTES) * len(FSYNC_MODES) and min(settings.values()) >= kills // 12
    # the kills land across rotations too (in the quick tier too few for a count: a kill at each boundary of a
    # rotation is tests/test_audit_faults.py's job)
    assert rotated >= kills // 8 or kills < 500
    with capsys.disabled():
        print(f"\n  {kills} SIGKILLs over rotate sizes 4 KiB-64 MiB x fsync record/every/interval: acknowledged-then-"
              f"lost records 0, unreadable logs 0, replays identical and reported incomplete {kills}; logs that had "
              f"rotated {rotated}; recovery median {recovery * 1e3:.2f} ms; records kept median "
              f"{statistics.median(kept):.0f}")


def test_cli_show_tail_export(tmp_path, capsys):
    path = tmp_path / "run.arqlog"
    _run(path, 4, 50)
    assert cli(["log", "show", str(path), "-n", "3"]) == 0
    shown = capsys.readouterr().out
    assert "seed 4" in shown and "params: x0, x1, x2, x3, x4, lr, n" in shown and " ask " in shown
    assert cli(["log", "tail", str(path), "-n", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    out = tmp_path / "run.jsonl"
    assert cli(["log", "export", str(path), "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(read_log(path).records) and rows[0]["kind"] == "ask" and rows[0]["value"] is None
    assert cli(["log", "export", str(path), "--format", "csv", "-o", str(tmp_path / "run.csv")]) == 0
    assert (tmp_path / "run.csv").read_text().splitlines()[0] == "index,step,kind,name,value,status,flags,digest,lost"
    assert cli(["replay", str(path)]) == 0
    assert "every decision bit-identical" in capsys.readouterr().out


def test_bad_options_and_existing_files_are_clear_errors(tmp_path):
    tuner = arqon.Tuner(CONFIG)
    with pytest.raises(arqon.ConfigError, match="fsync must be"):
        AuditLog(tmp_path / "a", tuner, fsync="sometimes")
    with pytest.raises(arqon.ConfigError, match="every must be"):
        AuditLog(tmp_path / "a", tuner, fsync="every", every=0)
    (tmp_path / "b").write_bytes(b"")
    with pytest.raises(FileExistsError, match="never overwritten"):
        AuditLog(tmp_path / "b", tuner)
    with pytest.raises(LogCorrupt, match="not an arqon audit log"):
        read_log(tmp_path / "b")


def test_audited_step_allocates_nothing():
    code = """
        import numba, numpy as np
        from numba.core.runtime import rtsys
        import arqon
        from arqon.kernels import audit, ring

        @numba.njit
        def loop(state, header, out, n):
            for i in range(n):
                audit.audited_step(state, header, 1.0 + (i % 5), i)
                if i % 1000 == 0:
                    audit.audit_drain(header, out)

        t = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}]})
        r = arqon.Ring(4096, "drop_newest")
        out = np.zeros(4096, audit.AUDIT_RECORD)
        audit.audited_ask(t.state, r.state, 0)
        loop(t.state, r.state, out, 10)
        def allocs(n):
            before = rtsys.get_allocation_stats(); loop(t.state, r.state, out, n)
            return rtsys.get_allocation_stats().alloc - before.alloc
        boundary = allocs(0)
        print(allocs(100_000) - boundary)
    """
    assert int(run_in_fresh_process(code, {"NUMBA_NRT_STATS": "1"})) == 0


def test_throughput_script_measures_every_setting(tmp_path, capsys):
    from bench import audit_throughput

    assert audit_throughput.main(["--records", "20000", "--dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert table.count("| True |") == 4 and "| record |" in table and "| interval 10 ms |" in table


def test_executor_decisions_are_recorded_and_the_tuner_still_replays(tmp_path):
    from arqon.executor import Flags

    tuner = arqon.Tuner({"params": [{"name": f"x{i}", "min": 0, "max": 10, "init": 5} for i in range(4)], "seed": 2})
    rules = {f"x{i}": {"max_delta": 2.0, "cooldown": 2 if i == 0 else 0} for i in range(4)}  # x0: every other step
    ex = arqon.Executor({"params": rules, "metrics": ["lat", "err"],
                         "slos": ["lat <= 50"], "safe_mode_after": 0, "mode": "reject"}, tuner)
    path = tmp_path / "ex.arqlog"
    lats, lives = [], [ex.live]
    with AuditLog(path, tuner, executor=ex) as log:
        for now in range(3000):
            x = ex.live
            lat = 60.0 if now % 97 == 0 else 10 + float(np.sum((x - 3) ** 2))  # a breach now and then
            ex.step(tuner, {"lat": lat, "err": 0.0}, lat, now)
            lats.append(lat)
            lives.append(ex.live)
        ex.kill(3000)
        ex.resume(3001)
    assert ex._log is None  # closed: the executor no longer records
    log = read_log(path)
    assert log.header["metrics"] == ["lat", "err"] and log.header["policy"]["slos"] == ["lat <= 50"]
    records = log.records
    metric = records[records["kind"] == audit_kernels.METRIC]  # every observation's inputs, in order
    assert np.array_equal(metric["value"][metric["status"] == 0], lats) and np.all(metric["value"][1::2] == 0.0)
    # the LIVE records (the snapshot after every flip) give back the live values after every step
    live, seen = lives[0].copy(), {}
    for r in records:
        if r["kind"] == audit_kernels.LIVE:
            live[r["status"]] = r["value"]
        seen[int(r["step"])] = live.copy()  # the live values once every record of this step is in
    assert np.array_equal(np.array([seen[now] for now in range(3000)]), np.array(lives[1:]))
    records = records[records["kind"] < audit_kernels.LIVE]
    kinds, flags = records["kind"], records["status"].astype(np.int64)
    observes, offers = flags[kinds == audit_kernels.OBSERVE], flags[kinds == audit_kernels.OFFER]
    counters = ex.counters()
    assert len(offers) == counters["proposals"] == 3000 and len(observes) == 3000
    assert int(np.count_nonzero(observes & Flags.ROLLED_BACK)) == counters["rollbacks"] > 0
    rejected = offers[(offers & Flags.REJECTED) != 0]
    reasons = Flags.NONFINITE | Flags.OUT_OF_BOUNDS | Flags.MAX_DELTA | Flags.COOLDOWN | Flags.DWELL | \
        Flags.RATE_LIMIT | Flags.NOT_ALLOWED | Flags.RISK_BUDGET | Flags.HALTED | Flags.SAFE_MODE
    assert len(rejected) == counters["rejected"] > 0 and np.all(rejected & reasons)  # every rejection says why
    assert [int(k) for k in kinds[-2:]] == [audit_kernels.KILL, audit_kernels.RESUME]
    assert replay(path).identical  # executor records are passed over; every tuner event re-runs identically


def test_steps_from_a_telemetry_window_with_drift_are_recorded_and_replay(tmp_path):
    """The tracking scenario of tests/test_telemetry.py, audited: the drift and the re-opening are on record, and the
    replay (which re-applies the re-opening) is bit-identical."""
    tel = arqon.Telemetry({"metrics": [{"name": "cost", "settle": 1,
                                        "drift": {"on": "windows", "stat": "p90", "warmup": 20, "threshold": 6.0}}]})
    tuner = arqon.Tuner({"params": [{"name": "x", "min": -5, "max": 5}], "seed": 3})
    rng = np.random.default_rng(0)
    path = tmp_path / "window.arqlog"
    with AuditLog(path, tuner) as log:
        x, windows = log.ask(), 0
        while windows < 1000:
            optimum = 4.0 if windows >= 500 else 1.0
            tel.emit("cost", (x[0] - optimum) ** 2 + 1.0 + 0.1 * rng.random())
            windows += log.step_from(tel, "cost", "p90", min_samples=8) is not None
    records = read_log(path).records
    kinds = records["kind"].tolist()
    assert kinds.count(audit_kernels.STEP) == 1000
    assert kinds.count(audit_kernels.REOPEN) == kinds.count(audit_kernels.DRIFT) >= 1
    first = kinds.index(audit_kernels.REOPEN)
    assert kinds[first - 1] == audit_kernels.DRIFT and kinds[first + 1] == audit_kernels.STEP
    result = replay(path)
    assert result.identical, result
    assert abs(tuner.recommend()["x"] - 4.0) < 0.1


def test_metric_and_live_records_refuse_bad_arguments(tmp_path):
    tuner = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}]})
    ex = arqon.Executor({"params": {"x": {}}, "metrics": ["lat"]}, tuner)
    with pytest.raises(arqon.ConfigError, match="executor policy's metrics"):
        AuditLog(tmp_path / "a.arqlog", tuner, executor=ex, metrics=["err"])
    with pytest.raises(arqon.ConfigError, match="distinct non-empty names"):
        AuditLog(tmp_path / "b.arqlog", tuner, metrics=["lat", "lat"])
    with AuditLog(tmp_path / "c.arqlog", tuner, metrics=["lat", "err"]) as log:
        with pytest.raises(ValueError, match=r"unknown metrics \['p99'\]; this log records"):
            log.record_metrics({"p99": 1.0}, 0)
        with pytest.raises(ValueError, match="expected 2 metrics"):
            log.record_metrics([1.0], 0)
        with pytest.raises(ValueError, match=r"expected 1 live values \['x'\], got shape \(2,\)"):
            log.record_live([0.1, 0.2], 0)
        log.record_metrics({"lat": 3.0}, 0)  # a missing name is no data
    metric = read_log(tmp_path / "c.arqlog").records
    assert metric["value"][0] == 3.0 and np.isnan(metric["value"][1]) and metric["status"].tolist() == [0, 1]


def _segments_of(path):
    return read_log(path).segments


def test_replay_never_calls_an_incomplete_log_complete(tmp_path, capsys):
    """A cut tail, a missing end marker and a missing middle segment each replay as identical-but-incomplete (exit
    3, what is missing on stderr); over random cuts and deletions, no damaged log replays as complete."""
    from arqon.audit import _FRAME

    path = tmp_path / "run.arqlog"
    _run(path, 2, 3000, flush_every=100, rotate_bytes=1 << 14)
    files = [Path(f).read_bytes() for f in _segments_of(path)]
    assert len(files) >= 4 and cli(["replay", str(path)]) == 0
    capsys.readouterr()

    def rewrite(contents):
        for f in tmp_path.glob("cut.arqlog*"):
            f.unlink()
        for i, data in enumerate(contents):
            if data is not None:
                (tmp_path / ("cut.arqlog" + (f".{i}" if i else ""))).write_bytes(data)
        return tmp_path / "cut.arqlog"

    cases = {"a torn tail": [*files[:-1], files[-1][:-7]],
             "no end marker": [*files[:-1], files[-1][:-_FRAME.size]],
             "is missing": [*files[:2], None, *files[3:]]}
    for words, contents in cases.items():
        assert cli(["replay", str(rewrite(contents))]) == 3, words
        out, err = capsys.readouterr()
        assert "but the log is incomplete" in out and words in err, (words, err)
    rng = random.Random(5)
    outcomes = {"incomplete": 0, "unreadable": 0, "diverged": 0}
    for trial in range(1000):
        contents = list(files)
        i = rng.randrange(len(files))
        if trial % 4 == 0 and i > 0:
            contents[i] = None
        else:
            contents[i] = files[i][:rng.randrange(len(files[i]))]
        try:
            result = replay(rewrite(contents))
        except LogCorrupt:
            outcomes["unreadable"] += 1
            continue
        assert result.missing, trial  # never complete
        outcomes["incomplete" if result.identical else "diverged"] += 1
    assert outcomes["incomplete"] > 0 and sum(outcomes.values()) == 1000
    with capsys.disabled():
        print(f"\n  1000 cuts and deletions of a {len(files)}-segment log: {outcomes}; called complete: 0")
