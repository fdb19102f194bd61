"""Audit-log writer throughput at each fsync setting: a producer logs audited SPSA steps (d=16) from @njit as fast as
the audit ring lets it (it waits for room rather than have records refused), and the time runs until every record is
durable.

    python -m bench.audit_throughput [--records N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

import arqon
from arqon.audit import AuditLog, read_log, replay
from arqon.kernels import audit as audit_kernels
from arqon.kernels._jit import acquire_fence, drop_stale_cache
from arqon.kernels.ring import ring_header_of


def _cache_probe():
    pass


drop_stale_cache(_cache_probe)  # this module's cached functions inline kernels: drop them when a kernel changed



@numba.njit(nogil=True, cache=True)
def _produce(state, audit, values, n):
    """n audited steps, waiting (spinning, without the GIL) whenever the ring is nearly full."""
    h = ring_header_of(audit)  # the ring is the whole buffer; its counters are in the header
    capacity = h[0]["capacity"]
    for i in range(n):
        while h[0]["head"] - h[0]["tail"] >= capacity - 1:
            acquire_fence()  # re-read tail every turn (the writer thread moves it)
        audit_kernels.audited_step(state, audit, values[i & 1023], i)


def measure(records: int, folder: Path) -> list[dict]:
    values = np.random.default_rng(0).normal(1.0, 0.1, 1024)
    rows = []
    settings = [("record", {}), ("every", {"every": 1000}), ("every", {"every": 100_000}),
                ("interval", {"interval_ms": 10.0})]
    for i, (fsync, extra) in enumerate(settings):
        tuner = arqon.Tuner({"params": [{"name": f"x{j}", "min": -5, "max": 5} for j in range(16)], "seed": i})
        path = folder / f"throughput{i}.arqlog"
        with AuditLog(path, tuner, fsync=fsync, capacity=1 << 16, **extra) as log:
            audit_kernels.audited_ask(tuner.state, log.ring.state, 0)
            _produce(tuner.state, log.ring.state, values, 1000)  # compile / warm
            log.flush()
            started = time.perf_counter()
            _produce(tuner.state, log.ring.state, values, records)
            log.flush(timeout=600)
            seconds = time.perf_counter() - started
            refused = log.counters()["refused"]
        log_read = read_log(path)
        label = fsync + (f" {extra['every']}" if "every" in extra else "") + \
            (f" {extra['interval_ms']:g} ms" if "interval_ms" in extra else "")
        rows.append({"fsync": label, "records_per_s": records / seconds, "seconds": seconds, "refused": refused,
                     "bytes": sum(Path(s).stat().st_size for s in log_read.segments),
                     "replayed": replay(path).identical})
        print(f"  {label}: {records / seconds:,.0f} records/s", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2_000_000, help="records per setting (default 2,000,000)")
    parser.add_argument("--dir", help="where to write the logs (default: a temporary folder, removed after)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        rows = measure(args.records, Path(folder))
    print("| fsync | records/s | seconds | refused | bytes on disk | replay identical |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['fsync']} | {r['records_per_s']:,.0f} | {r['seconds']:.2f} | {r['refused']} | {r['bytes']:,} | "
              f"{r['replayed']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
