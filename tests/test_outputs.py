"""What arqon writes for a person: private files (0600, folders 0700), never through a symbolic link; exports that name
what the records' indices and flags mean; reports of logs whose steps are timestamps or negative."""

import json
import stat

import numpy as np
import pytest

import arqon
from arqon.audit import AuditLog, read_log, replay
from arqon.cli import main as cli
from arqon.executor import Flags
from arqon.kernels import audit as audit_kernels
from arqon.report import read_trace, report
from arqon.status import Status

PARAMS = [{"name": "alpha", "min": 0, "max": 10, "init": 5}, {"name": "beta", "min": 0, "max": 10, "init": 5}]


def _executor_log(path, steps=300, step_of=lambda now: now):
    tuner = arqon.Tuner({"params": PARAMS, "seed": 3})
    ex = arqon.Executor({"params": {"alpha": {"max_delta": 0.5}, "beta": {"max_delta": 0.5}},
                         "metrics": ["latency", "errors"], "slos": ["latency <= 50"], "mode": "reject"}, tuner)
    live, latency = [], []  # in force during each step, and measured
    with AuditLog(path, tuner, executor=ex):
        for now in range(steps):
            x = ex.live
            lat = 60.0 if now % 37 == 0 else 10 + float(np.sum((x - 3) ** 2))
            ex.step(tuner, {"latency": lat, "errors": 0.0}, lat, step_of(now))
            live.append(x)
            latency.append(lat)
    return np.array(live), np.array(latency)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_logs_reports_and_exports_are_private_and_never_written_through_a_symlink(tmp_path, capsys):
    log = tmp_path / "run.arqlog"
    _executor_log(log)
    assert _mode(log) == 0o600
    out = tmp_path / "report" / "inner"
    assert cli(["report", str(log), "--out", str(out)]) == 0
    assert _mode(out) == 0o700 and _mode(out.parent) == 0o700
    written = list(out.iterdir())
    assert {p.suffix for p in written} == {".png", ".html"} and all(_mode(p) == 0o600 for p in written)
    assert cli(["log", "export", str(log), "-o", str(tmp_path / "rows.jsonl")]) == 0
    assert _mode(tmp_path / "rows.jsonl") == 0o600
    capsys.readouterr()
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    (tmp_path / "link.jsonl").symlink_to(target)
    assert cli(["log", "export", str(log), "-o", str(tmp_path / "link.jsonl")]) == 2
    assert "link.jsonl: a symbolic link; arqon does not write through one" in capsys.readouterr().err
    (tmp_path / "linked-dir").symlink_to(tmp_path / "report", target_is_directory=True)
    assert cli(["report", str(log), "--out", str(tmp_path / "linked-dir")]) == 2
    assert "linked-dir: a symbolic link" in capsys.readouterr().err
    (out / "knobs.png").unlink()
    (out / "knobs.png").symlink_to(target)
    assert cli(["report", str(log), "--out", str(out)]) == 2
    assert "knobs.png: a symbolic link" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_exports_name_parameters_metrics_and_every_flag(tmp_path):
    path = tmp_path / "run.arqlog"
    _executor_log(path)
    assert cli(["log", "export", str(path), "-o", str(tmp_path / "rows.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    records = read_log(path).records
    assert len(rows) == len(records)
    seen = set()
    for row, r in zip(rows, records):
        kind = int(r["kind"])
        if kind in (audit_kernels.LIVE, audit_kernels.OFFERED):
            assert row["name"] == ("alpha", "beta")[r["status"]]
        elif kind == audit_kernels.METRIC:
            assert row["name"] == ("latency", "errors")[r["status"]]
        else:
            assert "name" not in row
        flags = Flags if kind in (audit_kernels.OFFER, audit_kernels.OBSERVE) else Status
        if kind in (audit_kernels.OFFER, audit_kernels.OBSERVE, audit_kernels.STEP, audit_kernels.TELL):
            named = [n for n in row["flags"].split("|") if n]
            assert sum(flags[n].value for n in named) == r["status"]  # every bit named once, nothing else
            seen.update(named)
    assert {"APPLIED", "SLO_BREACH", "MAX_DELTA", "REJECTED", "STAGED"} <= seen, seen
    csv = cli(["log", "export", str(path), "--format", "csv", "-o", str(tmp_path / "rows.csv")])
    assert csv == 0 and "MAX_DELTA" in (tmp_path / "rows.csv").read_text()


@pytest.mark.parametrize("step_of", [lambda now: 1_733_500_000_000_000_000 + 1_000_003 * now, lambda now: now - 10_000],
                         ids=["nanosecond-timestamps", "negative"])
def test_report_reads_logs_whose_steps_are_timestamps_or_negative(tmp_path, step_of):
    path = tmp_path / "run.arqlog"
    live, latency = _executor_log(path, 200, step_of)
    trace = read_trace(path)
    steps = np.array([step_of(now) for now in range(200)])
    assert np.array_equal(trace.at, steps) and trace.steps == 200
    assert np.array_equal(trace.breaches(), steps[np.arange(200) % 37 == 0])
    assert np.array_equal(trace.knobs, live) and np.array_equal(trace.metrics["latency"], latency)
    assert len(np.unique(live[:, 0])) > 1  # the live values changed during the run
    assert report(path, tmp_path / "r").is_file()


def test_a_tuner_only_log_can_record_its_proposals_by_name(tmp_path):
    config = {"params": [{"name": "x", "min": -2, "max": 2}, {"name": "y", "min": 1, "max": 9}], "seed": 5}
    proposals = []
    with AuditLog(tmp_path / "p.arqlog", arqon.Tuner(config), proposals=True) as log:
        x = log.ask(step=-1)
        for t in range(100):
            proposals.append(x.copy())
            x = log.step(float((x[0] - 1) ** 2 + (x[1] - 3) ** 2), step=t)
    records = read_log(tmp_path / "p.arqlog").records
    recorded = records[records["kind"] == audit_kernels.PROPOSAL]
    assert len(recorded) == 2 * 101 and np.array_equal(recorded["value"][:200].reshape(100, 2), np.array(proposals))
    assert read_trace(tmp_path / "p.arqlog").knobs_are == "proposed"
    assert np.array_equal(read_trace(tmp_path / "p.arqlog").knobs, np.array(proposals))
    assert replay(tmp_path / "p.arqlog").identical
    assert cli(["log", "export", str(tmp_path / "p.arqlog"), "-o", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    named = [(r["name"], r["value"]) for r in rows if r["kind"] == "proposal"]
    assert named[:4] == [("x", proposals[0][0]), ("y", proposals[0][1]), ("x", proposals[1][0]), ("y", proposals[1][1])]
    with AuditLog(tmp_path / "q.arqlog", arqon.Tuner(config)) as log:  # off by default
        log.step(1.0, step=0)
    assert not np.any(read_log(tmp_path / "q.arqlog").records["kind"] == audit_kernels.PROPOSAL)
    with pytest.raises(arqon.ConfigError, match="proposals must be True or False"):
        AuditLog(tmp_path / "r.arqlog", arqon.Tuner(config), proposals="yes")


def test_proposals_are_recorded_for_steps_from_a_telemetry_window_too(tmp_path):
    def run(path, proposals):
        tel = arqon.Telemetry({"metrics": [{"name": "cost", "settle": 1}]})
        tuner = arqon.Tuner({"params": [{"name": "x", "min": -5, "max": 5}], "seed": 3})
        with AuditLog(path, tuner, proposals=proposals) as log:
            x, windows = log.ask(), 0
            while windows < 100:
                tel.emit("cost", (x[0] - 1) ** 2 + 1)
                windows += log.step_from(tel, "cost", "p90", min_samples=8) is not None
        return read_trace(path).knobs

    recorded, replayed = run(tmp_path / "p.arqlog", True), run(tmp_path / "q.arqlog", False)
    assert len(np.unique(recorded)) > 50 and np.array_equal(recorded, replayed)
