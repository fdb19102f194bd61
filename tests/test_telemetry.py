"""Telemetry's Python face: config errors, summaries, the sidecar path, drift_detected, and tuning from a window
statistic (from Python and inside @njit, identically), with exploration re-opened after drift."""

import math

import attrs
import numba
import numpy as np
import pytest

import arqon
from arqon.kernels import ask, proposal, ring, stats, telemetry
from tests.conftest import SNAPSHOTS, snapshot


@pytest.mark.parametrize("config,message", [
    ({"metrics": []}, "metrics"),
    ({"metrics": [{"name": "a"}, {"name": "a"}]}, "duplicate metric name 'a'"),
    ({"metrics": [{"name": "a", "quantiles": [0.5, 0.9, 0.99, 0.999]}]}, r"metrics\[0\].quantiles"),
    ({"metrics": [{"name": "a", "quantiles": [1.0]}]}, r"metrics\[0\].quantiles\[0\]"),
    ({"metrics": [{"name": "a", "half_life": 0}]}, r"metrics\[0\].half_life"),
    ({"metrics": [{"name": "a", "accuracy": 0.5}]}, r"metrics\[0\].accuracy"),
    ({"metrics": [{"name": "a", "smallest": 10, "largest": 1}]}, "`smallest`"),
    ({"metrics": [{"name": "a", "settle": -1}]}, r"metrics\[0\].settle"),
    ({"metrics": [{"name": "a", "drift": {"method": "adwin"}}]}, r"metrics\[0\].drift.method"),
    ({"metrics": [{"name": "a", "drift": {"stat": "p100"}}]}, "unknown statistic 'p100'"),
    ({"metrics": [{"name": "a", "drift": {"warmup": 1}}]}, r"drift.warmup"),
    ({"metrics": [{"name": "a", "sketch": False, "drift": {"on": "windows", "stat": "p99"}}]}, "needs `sketch = true`"),
    ({"metrics": [{"name": "a"}], "ring": {"capacity": 1000}}, "power of two"),
    ({"metrics": [{"name": "a"}], "ring": {"policy": "block"}}, r"ring.policy"),
    ({"metrics": [{"name": "a", "colour": 1}]}, "unknown field `colour`"),
])
def test_bad_configs_are_one_clear_error(config, message):
    with pytest.raises(arqon.ConfigError, match=message):
        arqon.Telemetry(config)


def test_config_from_toml_text():
    text = '[[metrics]]\nname = "lat"\nsettle = 2\n[metrics.drift]\nmethod = "page_hinkley"\n[ring]\ncapacity = 64\n'
    tel = arqon.Telemetry(arqon.load_telemetry_config(text + 'policy = "drop_newest"\n', format="toml"))
    assert tel.names == ("lat",) and tel.ring.capacity == 64 and tel.ring.policy == "drop_newest"


def test_unknown_metric_and_stat_are_clear_errors():
    tel = arqon.Telemetry({"metrics": [{"name": "lat", "sketch": False}]})
    with pytest.raises(KeyError, match="unknown metric 'latency'; known: lat"):
        tel.emit("latency", 1.0)
    with pytest.raises(ValueError, match="unknown statistic 'median'"):
        tel.stat("lat", "median")
    with pytest.raises(ValueError, match="keeps no sketch"):
        tel.stat("lat", "p99")
    t = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}]})
    with pytest.raises(ValueError, match="stat: metric 'lat' keeps no sketch"):
        t.step_from(tel, "lat", "p99")


def test_emit_stamps_ring_records_with_generation_and_variant():
    tel = arqon.Telemetry({"metrics": [{"name": "a"}, {"name": "b"}]})
    tel.emit("a", 1.5, step=10)
    tel.new_generation()
    stats.tel_header(tel.state)["variant"] = 4
    tel.emit("b", 2.5, step=11)
    got = tel.ring.drain()
    assert got[["step", "metric", "value", "generation", "variant", "flags"]].tolist() == [
        (10, 0, 1.5, 0, 0, 0), (11, 1, 2.5, 1, 4, 0)]


def test_a_sidecar_ingesting_the_ring_sees_the_same_statistics():
    config = {"metrics": [{"name": "lat", "settle": 2}, {"name": "err"}], "ring": {"capacity": 1 << 12}}
    live, sidecar = arqon.Telemetry(config), arqon.Telemetry(config)
    rng = np.random.default_rng(0)
    for g in range(30):
        for _ in range(50):
            live.emit("lat", rng.lognormal())
            live.emit("err", rng.random())
        live.new_generation()
        sidecar.ingest(live.ring.drain())
    live.emit("lat", 1.0)
    sidecar.ingest(live.ring.drain())
    for name in ("lat", "err"):
        np.testing.assert_equal(attrs.asdict(live.summary(name)), attrs.asdict(sidecar.summary(name)))  # NaN == NaN


def test_drift_detected_reports_each_detection_once():
    tel = arqon.Telemetry({"metrics": [{"name": "m", "drift": {"warmup": 30, "threshold": 5}}]})
    rng = np.random.default_rng(1)
    for v in rng.normal(0, 1, 200):
        tel.emit("m", v)
    assert not tel.drift_detected("m")
    for v in rng.normal(3, 1, 50):
        tel.emit("m", v)
    assert tel.drift_detected("m") and not tel.drift_detected("m")
    events = tel.ring.drain()
    assert (events["flags"] == ring.DRIFT_EVENT).sum() == tel.summary("m").drifts >= 1


def _tracking_run(drift, n_windows=1000, jump_at=500, seed=0):
    """SPSA with decaying gains tunes x against a noisy cost measured 8 times per window (p90); the optimum jumps
    from 1 to 4 at window `jump_at`. Returns (x just before the jump, windows after it until x stays within 0.1 of 4,
    reopen count)."""
    metric = {"name": "cost", "settle": 1}
    if drift:
        metric["drift"] = {"on": "windows", "stat": "p90", "warmup": 20, "threshold": 6.0}
    tel = arqon.Telemetry({"metrics": [metric]})
    t = arqon.Tuner({"params": [{"name": "x", "min": -5, "max": 5}], "seed": 3})
    rng = np.random.default_rng(seed)
    x, path, reopened = t.ask(), [], 0
    while len(path) < n_windows:
        optimum = 4.0 if len(path) >= jump_at else 1.0
        tel.emit("cost", (x[0] - optimum) ** 2 + 1.0 + 0.1 * rng.random())
        if t.step_from(tel, "cost", "p90", min_samples=8) is not None:
            path.append(t.recommend()["x"])
            reopened += bool(t.last_status & arqon.Status.REOPENED)
    far = [i for i, v in enumerate(path[jump_at:]) if abs(v - 4.0) >= 0.1]
    return path[jump_at - 1], (far[-1] + 1 if far else 0), reopened


def test_drift_on_the_objective_reopens_exploration_and_the_tuner_follows_the_jump(capsys):
    before, windows, reopened = _tracking_run(drift=True)
    stuck_before, stuck_windows, _ = _tracking_run(drift=False)
    assert abs(before - 1.0) < 0.05 and abs(stuck_before - 1.0) < 0.05
    assert reopened >= 1 and windows < 500
    assert windows * 2 <= stuck_windows  # decaying gains alone are small by then: at least twice as slow
    with capsys.disabled():
        print(f"\n  windows to re-converge after the jump: {windows} with drift re-opening, {stuck_windows} without")


@numba.njit
def _njit_tuning(state, tel, ring_header, costs, stat, q):
    """The same loop as the Python one, inside @njit: emit the next cost (read from a table indexed by the proposal),
    tune from the window."""
    ask(state)
    steps = 0
    for i in range(costs.shape[0]):
        x = proposal(state)[0]
        telemetry.emit(tel, ring_header, 0, (x - 1.0) ** 2 + costs[i], i)
        if telemetry.tune_from_window(state, tel, ring_header, 0, stat, q, 4, i) & 64 == 0:  # not WAITING
            steps += 1
    return steps


def test_tuning_from_a_window_is_identical_from_python_and_inside_njit():
    config = {"params": [{"name": "x", "min": -5, "max": 5}], "seed": 11}
    tconfig = {"metrics": [{"name": "cost", "settle": 1, "drift": {"on": "windows", "warmup": 10}}]}
    noise = np.random.default_rng(2).random(4000)
    py_tuner, py_tel = arqon.Tuner(config), arqon.Telemetry(tconfig)
    x = py_tuner.ask()
    for i, n in enumerate(noise):
        py_tel.emit("cost", (x[0] - 1.0) ** 2 + n, step=i)
        py_tuner.step_from(py_tel, "cost", "p99", min_samples=4)
    nj_tuner, nj_tel = arqon.Tuner(config), arqon.Telemetry(tconfig)
    steps = _njit_tuning(nj_tuner.state, nj_tel.state, nj_tel.ring.state, noise, stats.QUANTILE, 0.99)
    assert steps == py_tel.generation == nj_tel.generation > 500
    np.testing.assert_array_equal(py_tuner.state, nj_tuner.state)
    np.testing.assert_array_equal(py_tel.state, nj_tel.state)
    assert not math.isnan(py_tuner.recommend()["x"])


def _busy_telemetry():
    tel = arqon.Telemetry({"metrics": [{"name": "lat", "drift": {"method": "cusum", "warmup": 5}}, {"name": "err"}]})
    for i in range(30):
        tel.emit("lat", 1.0 + i % 4)
        tel.emit("err", 0.01 * (i % 3))
    return tel


@pytest.mark.parametrize("how", SNAPSHOTS)
def test_a_snapshot_of_the_telemetry_buffer_keeps_the_same_statistics(how):
    tel = _busy_telemetry()
    copy = snapshot(tel.state, how)
    assert stats.open_telemetry(copy) == 0
    ring_a, ring_b = arqon.Ring(64), arqon.Ring(64)
    for i in range(50):
        a = telemetry.emit(tel.state, ring_a.state, i % 2, 2.0 + i % 7, 100 + i)
        b = telemetry.emit(copy, ring_b.state, i % 2, 2.0 + i % 7, 100 + i)
        assert a == b
    assert tel.state.tobytes() == copy.tobytes()
    assert [telemetry.window_stat(copy, 0, s, 0.5) for s in range(7)] == \
        [telemetry.window_stat(tel.state, 0, s, 0.5) for s in range(7)]


@numba.njit
def _telemetry_calls(tel, ring_header, records):
    return (telemetry.emit(tel, ring_header, 0, 1.0, 5) | telemetry.ingest(tel, records, records.shape[0]),
            np.isnan(telemetry.window_stat(tel, 0, stats.MEAN, 0.0)))


def test_anything_but_a_whole_telemetry_state_is_refused_untouched():
    tel = _busy_telemetry()
    s, words = tel.state, stats.TEL_HEADER_WORDS
    other_layout = s.copy()
    other_layout[1:2].view(np.int64)[0] ^= 1
    bad_record = s.copy()
    stats.metric_records(bad_record)[0]["hi"] = 1 << 30  # a sketch range past the buckets
    arrays = {"header alone": s[:words].copy(), "truncated by one word": s[:-1].copy(),
              "one word longer": np.append(s, 0.0), "another layout id": other_layout,
              "a tuner state": arqon.Tuner({"params": [{"name": "a", "min": 0, "max": 1}]}).state,
              "zeros": np.zeros(s.shape[0]), "empty": np.zeros(0), "a metric record out of range": bad_record}
    ring_ = arqon.Ring(64)
    records = np.zeros(2, ring.RECORD)
    tuner = arqon.Tuner({"params": [{"name": "a", "min": 0, "max": 1}]})
    for what, array in arrays.items():
        before, ring_before, tuner_before = array.copy(), ring_.header.tobytes(), tuner.state.copy()
        assert _telemetry_calls(array, ring_.state, records) == (arqon.kernels.BAD_STATE, True), what
        assert telemetry.emit(array, ring_.state, 0, 1.0, 5) == arqon.kernels.BAD_STATE, what
        assert telemetry.tune_from_window(tuner.state, array, ring_.state, 0, stats.MEAN, 0.0, 1, 5) == \
            arqon.kernels.BAD_STATE, what
        np.testing.assert_array_equal(array, before, err_msg=what)
        assert ring_.header.tobytes() == ring_before and tuner.state.tobytes() == tuner_before.tobytes(), what
        if what != "a metric record out of range":
            with pytest.raises(ValueError, match="not a telemetry state"):
                stats.tel_header(array)
    assert stats.open_telemetry(bad_record) == 0  # the header is whole: the record check is open_metric's
    assert telemetry.emit(bad_record, ring_.state, 1, 1.0, 5) == 0  # ... and the other metric still runs


def test_new_telemetry_state_runs_as_it_is():
    state = stats.new_telemetry_state(2, 0)
    r = arqon.Ring(16)
    for i, x in enumerate([3.0, 5.0, 4.0]):
        assert telemetry.emit(state, r.state, 1, x, i) == 0
    assert telemetry.window_stat(state, 1, stats.MEAN, 0.0) == 4.0
    assert math.isnan(telemetry.window_stat(state, 0, stats.MEAN, 0.0))
    assert math.isnan(telemetry.window_stat(state, 1, stats.P2, 0.0))  # keeps no P-square estimate


def test_an_estimate_whose_marker_is_out_of_range_reads_as_nan():
    """The P-square estimate's marker and probability are checked where they are read: NaN, never a stray read."""
    tel = _busy_telemetry()
    assert not math.isnan(telemetry.window_stat(tel.state, 0, stats.P2, 0.0))
    r = stats.metric_records(tel.state)[0]
    for field, value in (("q_marker", 1 << 40), ("q_marker", -1), ("q_p", np.nan), ("q_p", 7.0)):
        saved = r[field][0]
        r[field][0] = value
        assert math.isnan(telemetry.window_stat(tel.state, 0, stats.P2, 0.0)), (field, value)
        r[field][0] = saved
    assert math.isnan(telemetry.window_stat(tel.state, 0, stats.P2, 3.0))  # three estimates: 0, 1, 2
