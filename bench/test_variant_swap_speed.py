"""A variant swap through the safety executor: inside @njit (``guard_offer`` with 4 knobs and the variant column,
alternating between two snapshots that differ in every knob and in the variant, each one validated, staged and made
live) and from Python (``Executor.swap``, alternating between two variant ids, each one applied).

Run: ``make bench``. Per-call medians via extra_info; compare with the empty @njit call of ``test_step_speed.py``.
"""

import numpy as np
import pytest

import arqon
from arqon.contracts import guard_offers

CALLS = 1000


class _Variant:
    def __init__(self, id_):
        self.id, self.version = id_, 1


class _Catalog:  # what the executor reads of a loaded catalog (verification is the catalog tests' business)
    name, version, scope, ids = "bench", 1, "prod", ("tile16", "tile32")
    variants = [_Variant("tile16"), _Variant("tile32")]


def executor(d=4):
    tuner = arqon.Tuner({"params": [{"name": f"x{i}", "min": 0, "max": 10, "init": 5} for i in range(d)]})
    return arqon.Executor({"params": {f"x{i}": {} for i in range(d)}, "variant": {}, "metrics": ["lat"],
                           "slos": ["lat <= 50"], "safe_mode_after": 0, "progress_deadline": 2**40},
                          tuner, _Catalog())


def test_njit_swap_with_knobs(benchmark):
    ex = executor()
    proposals = np.array([[4.0, 4.0, 4.0, 4.0, 0.0], [6.0, 6.0, 6.0, 6.0, 1.0]])
    clock = [0]

    def run():
        flags = guard_offers(ex.state, proposals, clock[0], CALLS)
        clock[0] += CALLS
        return flags

    assert run() & arqon.executor.Flags.APPLIED
    benchmark.extra_info["steps"] = CALLS
    benchmark(run)
    assert ex.counters()["applied"] == ex.counters()["proposals"]  # every offer went live


def test_python_swap(benchmark):
    ex = executor()
    clock = [1]  # step 0 would offer tile16, the known-good: no change

    def run():
        now = clock[0]
        for i in range(now, now + CALLS):
            ex.swap("tile32" if i & 1 else "tile16", i)
        clock[0] += CALLS

    run()
    benchmark.extra_info["steps"] = CALLS
    benchmark(run)
    assert ex.counters()["applied"] == ex.counters()["proposals"]
