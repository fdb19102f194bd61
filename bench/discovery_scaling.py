"""Discovery's throughput on local processes: 1 and 2 workers, and its overhead per evaluation against a plain
``ProcessPoolExecutor.map`` of the same evaluations, all in the same run (repeats interleaved, medians).

    python bench/discovery_scaling.py [--repeats 3]

The spec: 10 generations of 8 candidates of a one-knob space plus the gates' 2 x 5 paired evaluations: 90
evaluations of about 50 ms each (bench/discovery/busy.py). Wall time includes starting the pool, as a user sees it.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec

HERE = Path(__file__).parent / "discovery"
SPEC = {"name": "busy", "evaluate": "busy:evaluate", "objective": "cost", "seed": 1, "generations": 10,
        "population": 8, "path": [str(HERE)], "baseline": {"x": 0.0},
        "knobs": [{"name": "x", "min": -1.0, "max": 1.0}], "gates": {"top": 1, "seeds": 5}}
EVALUATIONS = 10 * 8 + 2 * 5


def _plain(workers: int) -> float:
    sys.path.insert(0, str(HERE))
    import busy

    start = time.perf_counter()
    context = multiprocessing.get_context("forkserver")
    with cf.ProcessPoolExecutor(workers, mp_context=context) as pool:
        n = EVALUATIONS
        list(pool.map(busy.evaluate, [{"x": 0.1}] * n, range(n), [{"name": "nominal"}] * n))
    return time.perf_counter() - start


def _discover(workers: int) -> float:
    from arqon.discovery import discover

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        path.write_bytes(msgspec.json.encode(SPEC))
        start = time.perf_counter()
        out = discover(path, workers=workers)
        elapsed = time.perf_counter() - start
    assert len(out.evaluations) == 80
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = {k: [] for k in ("plain 1", "plain 2", "discover 1", "discover 2")}
    sys.path.insert(0, str(HERE))
    import busy

    busy.evaluate({"x": 0.0}, 0, {})
    start = time.perf_counter()
    for i in range(10):
        busy.evaluate({"x": 0.0}, i, {})
    one = (time.perf_counter() - start) / 10
    for _ in range(args.repeats):
        for workers in (1, 2):
            runs[f"plain {workers}"].append(_plain(workers))
            runs[f"discover {workers}"].append(_discover(workers))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"one evaluation in this process: {one * 1e3:.1f} ms; {EVALUATIONS} evaluations per run; "
          f"medians of {args.repeats} runs (wall time, pool start included)")
    print("| run | 1 worker (s) | 2 workers (s) | speed-up 1 -> 2 |")
    print("|---|---|---|---|")
    for what in ("plain", "discover"):
        a, b = med[f"{what} 1"], med[f"{what} 2"]
        print(f"| {'ProcessPoolExecutor.map' if what == 'plain' else 'arqon discover'} | {a:.2f} | {b:.2f} | "
              f"{a / b:.2f}x |")
    for workers in (1, 2):
        extra = (med[f"discover {workers}"] - med[f"plain {workers}"]) / EVALUATIONS
        print(f"overhead per evaluation against the plain loop, {workers} worker(s): {extra * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
