"""Telemetry quality figures: quantile accuracy (P-square and the sketch against exact values on lognormal samples) and
drift detection (false alarms on a stationary stream, delay after a 1-sigma step), with river's PageHinkley beside
ours on the same streams when river is installed.

    python -m bench.telemetry_quality [--out docs/telemetry-quality.md] [--quick]

Prints the tables and writes them, with the command and the machine, to ``--out``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

import arqon
from arqon.kernels import drop_stale_cache, telemetry


def _cache_probe():
    pass


drop_stale_cache(_cache_probe)  # this module's cached functions inline kernels: drop them when a kernel changed



@numba.njit(cache=True)
def _emit_stream(tel, ring_header, values):
    """Emit every value; return the indices at which the detector fired (as a count and a filled prefix)."""
    fired = np.empty(values.shape[0], np.int64)
    n = 0
    for i in range(values.shape[0]):
        if telemetry.emit(tel, ring_header, 0, values[i], i) & 32:  # DRIFT
            fired[n] = i
            n += 1
    return fired[:n]


def quantile_accuracy(n: int, seeds: range) -> list[tuple[str, float, float, float]]:
    """(estimator, q, median relative error, max relative error) over ``seeds``, on ``n`` lognormal(0, 1) samples."""
    errors: dict[tuple[str, float], list[float]] = {}
    for seed in seeds:
        x = np.random.default_rng(seed).lognormal(0.0, 1.0, n)
        tel = arqon.Telemetry({"metrics": [{"name": "m", "quantiles": [0.5, 0.99, 0.999]}]})
        _emit_stream(tel.state, tel.ring.state, x)
        p2 = tel.summary("m").quantiles
        for q in (0.5, 0.99, 0.999):
            exact = np.quantile(x, q)
            errors.setdefault(("P-square (shared markers)", q), []).append(abs(p2[q] / exact - 1))
            lower = np.quantile(x, q, method="lower")  # the rank the sketch's guarantee is stated for
            errors.setdefault(("sketch (accuracy 0.01)", q), []).append(abs(tel.quantile("m", q) / lower - 1))
    return [(name, q, float(np.median(e)), float(np.max(e))) for (name, q), e in errors.items()]


def _river_fired(values, detector_factory):
    detector, fired = detector_factory(), []
    for i, v in enumerate(values.tolist()):
        detector.update(v)
        if detector.drift_detected:
            fired.append(i)
    return fired


def drift_figures(stationary: int, trials: int, quick: bool) -> list[dict]:
    """Per detector: false alarms per 1e6 records of N(0, 1), and the delay (records after the change) to detect a
    step from N(0, 1) to N(1, 1) placed after 2000 records (median, p90, missed within 2000)."""
    detectors = {
        "arqon CUSUM (h=10, k=0.5, warm-up 100)": {"method": "cusum"},
        "arqon Page-Hinkley (h=10, k=0.5, warm-up 100)": {"method": "page_hinkley"},
    }
    rows = []
    for name, drift in detectors.items():
        alarms = 0
        for seed in range(2 if quick else 5):
            tel = arqon.Telemetry({"metrics": [{"name": "m", "sketch": False, "drift": drift}]})
            alarms += len(_emit_stream(tel.state, tel.ring.state, np.random.default_rng(seed).normal(0, 1, stationary)))
        false_rate = alarms / ((2 if quick else 5) * stationary) * 1e6
        delays = []
        for seed in range(trials):
            rng = np.random.default_rng(10_000 + seed)
            x = np.concatenate([rng.normal(0, 1, 2000), rng.normal(1, 1, 2000)])
            tel = arqon.Telemetry({"metrics": [{"name": "m", "sketch": False, "drift": drift}]})
            after = [i - 2000 for i in _emit_stream(tel.state, tel.ring.state, x) if i >= 2000]
            delays.append(after[0] if after else np.inf)
        rows.append(_drift_row(name, false_rate, delays))
    try:
        from river import drift as river_drift
    except ImportError:
        return rows
    for label, factory in [("river PageHinkley (defaults)", river_drift.PageHinkley),
                           ("river PageHinkley (threshold 10)", lambda: river_drift.PageHinkley(threshold=10.0))]:
        n = stationary // (5 if not quick else 10)  # river runs in Python: a shorter stream, rate scaled per 1e6
        alarms = len(_river_fired(np.random.default_rng(0).normal(0, 1, n), factory))
        delays = []
        for seed in range(min(trials, 100)):
            rng = np.random.default_rng(10_000 + seed)
            x = np.concatenate([rng.normal(0, 1, 2000), rng.normal(1, 1, 2000)])
            after = [i - 2000 for i in _river_fired(x, factory) if i >= 2000]
            delays.append(after[0] if after else np.inf)
        rows.append(_drift_row(label, alarms / n * 1e6, delays))
    return rows


def _drift_row(name, false_rate, delays):
    delays = np.asarray(delays, dtype=float)
    found = delays[np.isfinite(delays)]
    return {"detector": name, "false_per_1e6": false_rate,
            "delay_median": float(np.median(found)) if len(found) else np.inf,
            "delay_p90": float(np.percentile(found, 90)) if len(found) else np.inf,
            "missed": int((~np.isfinite(delays)).sum()), "trials": len(delays)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/telemetry-quality.md", help="Markdown file to write")
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    n, seeds = (100_000, range(2)) if args.quick else (1_000_000, range(5))
    print(f"[1/2] quantile accuracy: {len(seeds)} x {n:,} lognormal samples", file=sys.stderr, flush=True)
    accuracy = quantile_accuracy(n, seeds)
    stationary, trials = (200_000, 50) if args.quick else (1_000_000, 500)
    print(f"[2/2] drift: {stationary:,}-record stationary streams, {trials} step changes", file=sys.stderr, flush=True)
    drift = drift_figures(stationary, trials, args.quick)
    lines = [
        "# Telemetry quality", "",
        f"Written by `python -m bench.telemetry_quality{' --quick' if args.quick else ''}` in "
        f"{time.perf_counter() - started:.0f} s on {platform.machine()} / Python {platform.python_version()} / "
        f"numba {numba.__version__} / numpy {np.__version__}.", "",
        f"## Quantiles of {n:,} lognormal(0, 1) samples, {len(seeds)} seeds", "",
        "Relative error against the exact quantile (the sketch: against the exact value at rank floor(q(n-1)), the "
        "rank its guarantee is stated for).", "",
        "| estimator | q | median rel. error | max rel. error |", "|---|---|---|---|",
        *[f"| {name} | {q} | {med:.2e} | {mx:.2e} |" for name, q, med, mx in accuracy], "",
        "## Drift: a step of one standard deviation", "",
        "False alarms per 1e6 records of N(0, 1); delay in records after the step from N(0, 1) to N(1, 1) placed "
        "after 2000 records (a detection before the step restarts the detector; missed: not found within 2000).", "",
        "| detector | false alarms per 1e6 | delay median | delay p90 | missed |", "|---|---|---|---|---|",
        *[f"| {r['detector']} | {r['false_per_1e6']:.1f} | {r['delay_median']:.0f} | {r['delay_p90']:.0f} | "
          f"{r['missed']}/{r['trials']} |" for r in drift], "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
