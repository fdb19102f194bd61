"""Telemetry per record: ring push, statistics update and emit inside @njit (the contracts checker's loops), emit from
Python, and river's equivalents (EWMean + EWVar + three P-square Quantiles; PageHinkley) on the same samples."""

import pytest

from arqon.contracts import PROBES, SAMPLES

CALLS = 10_000


@pytest.mark.parametrize("kernel", ["ring.push", "stats.update.ema_p2x3", "stats.update.full", "telemetry.emit",
                                    "telemetry.emit.python"])
def test_telemetry_kernel(benchmark, kernel):
    run = PROBES[kernel]()
    run(CALLS)
    benchmark.extra_info["steps"] = CALLS
    benchmark(run, CALLS)


def _river_loop(river_stats, river_drift):
    from river import drift, stats

    alpha = 1.0 - 0.5 ** (1 / 100.0)  # arqon's default half-life of 100 samples
    updates = []
    if river_stats:
        updates += [stats.EWMean(alpha).update, stats.EWVar(alpha).update]
        updates += [stats.Quantile(q).update for q in (0.5, 0.9, 0.99)]
    if river_drift:
        updates.append(drift.PageHinkley().update)
    samples = SAMPLES.tolist()

    def run(n):
        for i in range(n):
            x = samples[i & 65535]
            for update in updates:
                update(x)

    return run


@pytest.mark.parametrize("work,versus", [("stats", "stats.update.ema_p2x3"), ("stats+drift", "telemetry.emit.python")])
def test_river(benchmark, work, versus):
    pytest.importorskip("river", reason="the peers extra: pip install 'arqon[peers]'")
    run = _river_loop(True, work.endswith("drift"))
    run(CALLS)
    benchmark.extra_info["steps"] = CALLS
    benchmark.extra_info["versus"] = f"test_telemetry_kernel[{versus}]"
    benchmark(run, CALLS)
