"""The live-tuning demo and ``arqon report``: the simulated service against a plain NumPy model of its means, the three
runs and their summary, and the report read back from the audit logs alone."""

import math

import attrs
import numpy as np
import pytest

import arqon
from arqon import cli
from arqon.demo import runs as demo
from arqon.demo import scenarios as sc
from arqon.demo import service as sv
from arqon.kernels import audit as k
from arqon.report import read_trace, report


def test_the_simulated_window_matches_its_model():
    """Mean latency of a window against the model's mean computed in plain Python (cache hits, batch fill, queueing
    and service), and the error rate against stale reads + failed retries + shed requests."""
    knobs = np.array([32.0, 1.0, 8.0, 20.0, 15.0])
    row = sc.SCENARIOS["load-step"].environment()[0]
    load, heavy, cores, fail, burst, stale_max = row
    batch, timeout, workers, ttl, backoff = knobs
    hit = (1 - heavy) * 0.7 * (1 - math.exp(-ttl / sv.CACHE_REUSE_S))
    lam = load * (1 - hit) * (1 + fail)
    size = max(1.0, min(batch, lam * timeout))
    service = sv.SETUP_MS + sv.ITEM_MS * (1 + 4 * heavy) * size
    rho = lam * service / (min(workers, cores) * size)
    wait = service / min(workers, cores) * rho / (1 - rho)
    miss_latency = min(timeout, batch / lam) / 2 + wait + service + fail * (backoff + service)
    mean = hit * sv.CACHE_MS + (1 - hit) * miss_latency
    retry_fails = fail + burst * math.exp(-backoff / sv.BURST_MS)
    errors = hit * stale_max * ttl / (ttl + sv.DATA_CHANGE_S) + (1 - hit) * fail * retry_fails
    assert rho < 0.97  # the model's queueing formula holds below its cap
    s = demo.Service(sc.SCENARIOS["load-step"], 200_000, seed=1)
    s.telemetry.new_generation()
    sv.serve_window(knobs, row, s.rng, s.telemetry.state, s.telemetry.ring.state, 200_000, 0)
    assert s.telemetry.stat("latency", "mean") == pytest.approx(mean, rel=0.02)
    assert s.telemetry.stat("errors", "mean") == pytest.approx(errors, rel=0.05)


def test_scenarios_script_what_they_say():
    load = sc.SCENARIOS["load-step"].environment()
    assert load[599, sc.LOAD] == 20.0 and load[600, sc.LOAD] == 50.0
    cores = sc.SCENARIOS["resource-limit"].environment()
    assert cores[599, sc.CORES] == 16.0 and cores[600, sc.CORES] == 4.0
    mix = sc.SCENARIOS["mix-drift"].environment()[:, sc.HEAVY]
    assert mix[0] == 0.1 and np.all(np.diff(mix) >= 0) and mix[-1] == pytest.approx(0.6, abs=1e-3)


def short(name, steps=300, change=100, fault=None):
    return attrs.evolve(sc.SCENARIOS[name], steps=steps, change=change, fault=fault)


def test_three_runs_share_load_and_noise_and_the_guards_contain_a_faulty_push(tmp_path):
    scenario = short("fault", fault=(100, 200))
    static = np.array([64.0, 1.0, 6.0, 10.0, 5.0])
    runs = demo.run_scenario(scenario, tmp_path, requests=500, seed=3, static=static)
    s, u, g = runs["static"], runs["no guardrails"], runs["arqon"]
    assert np.all(s.live[100:200] == sc.FAULTY_CONFIG) and np.all(u.live[100:200] == sc.FAULTY_CONFIG)
    assert np.all(s.breaches[100:200]) and np.all(u.breaches[100:200])  # the faulty config breaches wherever live
    # guarded: the push moves live values one clipped step at a time, every breach of a candidate is rolled back in
    # its step, and safe mode holds known-good until the operator resumes: far fewer breaching steps
    assert g.breaches[100:200].sum() < 0.5 * u.breaches[100:200].sum() and len(g.rollbacks) > 0
    assert np.all(np.abs(np.diff(g.live, axis=0)) <= 0.25 * np.ptp([[k["min"], k["max"]] for k in sc.KNOBS], axis=1)
                  + 1e-9)  # max delta held (rollbacks move back to known-good, which is within it here too)
    rows = demo.summarize(scenario, runs)
    assert [r["run"] for r in rows] == ["static", "no guardrails", "arqon"]
    assert rows[0]["cost / static"] == 1.0 and rows[2]["SLO breaches"] == int(g.breaches.sum())
    assert rows[1]["breaches in fault"] == 100
    # same seed, same decisions: a second run of the guarded tuner is identical, and its log replays bit for bit
    again = demo.run_guarded(scenario, static, tmp_path / "again.arqlog", 500, 3)
    assert np.array_equal(again.live, g.live) and np.array_equal(again.cost, g.cost)
    assert arqon.audit.replay(g.log).identical and arqon.audit.replay(u.log).identical


def test_report_reads_everything_back_from_the_logs(tmp_path):
    scenario = short("load-step")
    static = np.array([64.0, 1.0, 6.0, 10.0, 5.0])
    runs = demo.run_scenario(scenario, tmp_path, requests=500, seed=4, static=static)
    g, u = runs["arqon"], runs["no guardrails"]
    trace = read_trace(g.log)
    assert trace.knobs_are == "live" and np.array_equal(trace.knobs, g.live)
    assert np.allclose(trace.metrics["p99_latency"], g.p99) and np.allclose(trace.metrics["cost"], g.cost)
    assert np.array_equal(trace.breaches(), np.flatnonzero(g.breaches))
    assert trace.rollbacks.tolist() == g.rollbacks
    trace_u = read_trace(u.log)
    assert np.array_equal(trace_u.knobs, u.live)  # the unguarded run recorded what it ran
    page = report(g.log, tmp_path / "rep")
    assert page.is_file() and {p.name for p in (tmp_path / "rep").glob("*.png")} == {
        "knobs.png", "objective.png", "slo.png"}


def test_report_of_a_tuner_only_log_rebuilds_the_proposals_by_replay(tmp_path):
    tuner = arqon.Tuner({"params": [{"name": "x", "min": -2, "max": 2}, {"name": "y", "min": 1, "max": 9}],
                         "seed": 5})
    proposals = []
    with arqon.AuditLog(tmp_path / "t.arqlog", tuner) as log:
        x = log.ask(step=-1)  # before step 0: in force during it
        for t in range(200):
            proposals.append(x.copy())
            x = log.step(float((x[0] - 1) ** 2 + (x[1] - 3) ** 2), step=t)  # measured at t, next one from t + 1
    trace = read_trace(tmp_path / "t.arqlog")
    assert trace.knobs_are == "proposed"
    assert np.array_equal(trace.knobs[: 200], np.array(proposals))  # the proposal in force at each step
    assert np.isfinite(trace.told).all() and len(trace.slos) == 0
    assert report(tmp_path / "t.arqlog", tmp_path / "r").is_file()


def test_cli_demo_report_validate_warmup(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sc, "SCENARIOS", {"load-step": short("load-step", 200, 80)})
    assert cli.main(["demo", "--scenario", "load-step", "--out", str(tmp_path / "d"), "--requests", "300",
                     "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "static" in out and "no guardrails" in out and (tmp_path / "d" / "index.html").is_file()
    html = (tmp_path / "d" / "index.html").read_text()
    assert "load-step-comparison.png" in html and "load-step-arqon-knobs.png" in html
    assert cli.main(["report", str(tmp_path / "d" / "load-step-arqon.arqlog"), "--out", str(tmp_path / "r")]) == 0
    assert cli.main(["report", str(tmp_path / "missing.arqlog")]) == 2
    assert cli.main(["demo", "--requests", "5", "--out", str(tmp_path / "x")]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[[params]]\nname = "x"\nmin = 1\nmax = 0\n')
    capsys.readouterr()
    assert cli.main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`min` (1.0) must be less than `max` (0.0)" in err and "$.params[0]" in err
    policy = tmp_path / "policy.json"
    policy.write_text('{"params": {"x": {"max_delta": 1}}, "metrics": ["m"], "slos": ["m <= 5"]}')
    assert cli.main(["validate", str(policy)]) == 0 and "executor policy" in capsys.readouterr().out
    policy.write_text('{"params": {"x": {}}, "metrics": ["m"], "slos": ["q <= 5"]}')
    assert cli.main(["validate", str(policy)]) == 2 and "unknown metric 'q'" in capsys.readouterr().err
    odd = tmp_path / "odd.json"
    odd.write_text('{"hello": 1}')
    assert cli.main(["validate", str(odd)]) == 2 and "--kind" in capsys.readouterr().err
    assert cli.main(["validate", str(odd), "--kind", "telemetry"]) == 2
    assert cli.main(["warmup"]) == 0 and "ready" in capsys.readouterr().out


def test_inference_scenario_never_runs_a_variant_outside_its_envelope_and_finds_each_contexts_best():
    """Phase 2: every live variant is approved and admitted by its envelope at that step (checked here against the
    model's memory sizes, not the catalog the run used); in every context the variant most often live is the oracle's
    (the best one meeting the SLO by the latency distribution); the regret against the oracle is below the best single
    variant's; a rollback follows only windows over the SLO."""
    from arqon.demo import inference as inf

    out = inf.run(seed=3)
    ids = out["ids"]
    assert out["violations"].sum() == 0
    for t in range(0, inf.STEPS, 7):
        hardware = inf.context_at(t)[0]
        assert inf.QUANT[ids[out["live"][t]].split("-")[0]][1] <= inf.MEMORY_GIB[hardware]
    for c, context in enumerate(inf.CONTEXTS):
        live = out["live"][out["context"] == c]
        best = np.flatnonzero(out["feasible"][context])[np.argmax(out["table"][context][out["feasible"][context]])]
        assert np.bincount(live, minlength=len(ids)).argmax() == best, context
        assert inf.true_p99(inf.knobs_of(ids[best]), context) <= inf.SLO_MS
    rows = {r["run"].split(" ")[0]: r for r in inf.summarize(out)}
    assert rows["arqon"]["regret vs oracle"] < 0.75 * rows["best"]["regret vs oracle"]
    assert rows["arqon"]["regret vs best fixed"] < 0 and rows["oracle"]["regret vs oracle"] == 0.0
    assert set(np.flatnonzero(out["rolled_back"])) <= set(np.flatnonzero(out["breach"]))



def _short_inference(monkeypatch):
    """The inference scenario cut to its first three phases of 150 steps (a GPU, then the CPU host)."""
    from arqon.demo import inference as inf

    schedule = [(150, *phase[1:]) for phase in (inf.SCHEDULE[0], inf.SCHEDULE[1], inf.SCHEDULE[3])]
    monkeypatch.setattr(inf, "SCHEDULE", schedule)
    monkeypatch.setattr(inf, "STEPS", 450)
    return inf


def test_inference_scenario_same_seed_same_decisions(monkeypatch):
    inf = _short_inference(monkeypatch)
    one, two = inf.run(seed=5), inf.run(seed=5)
    assert np.array_equal(one["live"], two["live"]) and np.array_equal(one["p99"], two["p99"])
    assert one["violations"].sum() == 0


def test_cli_demo_inference_writes_its_table_and_plot(tmp_path, capsys, monkeypatch):
    _short_inference(monkeypatch)
    assert cli.main(["demo", "--scenario", "inference", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "best fixed (" in out and "oracle (per context)" in out and "envelope violations" in out
    assert "inference-variants.png" in (tmp_path / "d" / "index.html").read_text()


def test_cli_demo_kernels_runs_the_real_variants_and_reports_them(tmp_path, capsys, monkeypatch):
    """The kernels scenario through the CLI: the gate's refusal, a table against the best and the worst single build,
    the plot; every live build is one the signed catalog approves."""
    from arqon.demo import kernels, runs

    monkeypatch.setattr(runs, "KERNEL_DECISIONS", 120)
    seen = {}
    original = kernels.run
    monkeypatch.setattr(kernels, "run", lambda *a, **k: seen.setdefault("out", original(*a, **k)))
    assert cli.main(["demo", "--scenario", "kernels", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Refused by the gate: skip_t48" in printed and "best single (" in printed and "worst single (" in printed
    out = seen["out"]
    assert len(out["live"]) == 120 and {v for _, v in out["live"]} <= set(out["catalog"].ids)
    assert all(v.lifecycle == "approved" for v in out["catalog"].variants) and "skip_t48" not in out["ids"]
    assert "kernels-variants.png" in (tmp_path / "d" / "index.html").read_text()
