"""Where a cold start goes: each program below runs in a fresh process with an empty Numba cache (a temporary
NUMBA_CACHE_DIR), and reports its wall time per phase and the kernels whose compilation took longest (Numba's
``numba:compile`` events; a kernel's time includes the kernels compiled inside it). Then the same programs again on
the cache the first run filled, which is what a warm container image gives.

    python bench/cold_start.py [--repeats 3] [--top 12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROGRAMS = {  # name: the code of its first use (after `import arqon`)
    "SPSA Tuner.step": """
        t = arqon.Tuner({"params": [{"name": "x", "min": 0.0, "max": 1.0}], "strategy": "spsa"})
        t.step(t.ask()[0])""",
    "CMA-ES Tuner.step": """
        t = arqon.Tuner({"params": [{"name": "x", "min": 0.0, "max": 1.0}, {"name": "y", "min": 0.0, "max": 1.0}],
                         "strategy": "cmaes"})
        t.step(float(t.ask()[0]))""",
    "Executor.step": """
        t = arqon.Tuner({"params": [{"name": "x", "min": 0.0, "max": 1.0}]})
        ex = arqon.Executor({"params": {"x": {}}, "metrics": ["m"], "slos": ["m <= 1"]}, t)
        ex.step(t, {"m": 0.5}, 0.5, 0)""",
    "Telemetry.emit": """
        tel = arqon.Telemetry({"metrics": [{"name": "m"}]})
        tel.emit("m", 1.0)""",
    "Selector.step": """
        sel = arqon.Selector({"arms": ["a", "b", "c"], "policy": "thompson"})
        sel.select()
        sel.step(1.0)""",
    "arqon warmup": """
        from arqon.cli import main
        main(["warmup"])""",
}

_CHILD = """
import json, sys, time
from numba.core import event
spans = []

class Listener(event.Listener):
    def on_start(self, ev):
        self._start = getattr(self, "_start", [])
        self._start.append(time.perf_counter())
    def on_end(self, ev):
        began = self._start.pop()
        spans.append((str(getattr(ev.data.get("dispatcher"), "__qualname__", "?")), time.perf_counter() - began))

event.register("numba:compile", Listener())
t0 = time.perf_counter()
import arqon
t1 = time.perf_counter()
{body}
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "first use": t2 - t1, "spans": spans}}))
"""


def measure(body: str, cache: str) -> dict:
    code = _CHILD.format(body=textwrap.dedent(body).strip())
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"cold start program failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per program and cache state")
    parser.add_argument("--top", type=int, default=12, help="kernels listed per program, longest compile first")
    args = parser.parse_args()
    if args.repeats < 1 or args.top < 0:
        parser.error("--repeats must be >= 1 and --top >= 0")
    print(f"| program | cold: import s | cold: first use s | cold total s | warm total s | kernels compiled |")
    print("|---|---|---|---|---|---|")
    details = {}
    for name, body in PROGRAMS.items():
        cold, warm = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(measure(body, cache))
                warm.append(measure(body, cache))
        med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
        total = lambda runs: statistics.median(r["import"] + r["first use"] for r in runs)  # noqa: E731
        print(f"| {name} | {med(cold, 'import'):.2f} | {med(cold, 'first use'):.2f} | {total(cold):.2f} | "
              f"{total(warm):.2f} | {len(cold[0]['spans'])} |")
        details[name] = cold[0]["spans"]
    for name, spans in details.items():
        longest = sorted(spans, key=lambda s: -s[1])[:args.top]
        print(f"\n{name}: longest compiles (inclusive seconds, first cold run)")
        for kernel, seconds in longest:
            print(f"  {seconds:7.3f}  {kernel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
