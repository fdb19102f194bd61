"""Contracts of the hot path: no allocation, determinism in fresh processes, cache use, a light kernel import."""

import importlib
import json
import os
import re
import sys
import threading
import tracemalloc
from pathlib import Path

import numba
import numpy as np
import pytest

import arqon
from arqon.kernels import ask, header, proposal, step
from tests.conftest import run_in_fresh_process, space, sphere

needs_jit = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="measures compiled code")


@numba.njit
def _loop(state, n):
    ask(state)
    for _ in range(n):
        x = proposal(state)
        y = 0.0
        for j in range(x.shape[0]):
            y += (x[j] - 0.3) ** 2
        step(state, y)


STRATEGIES = [("spsa", 16), ("es", 16), ("pbt", 16), ("cmaes", 16), ("cmaes", 4)]  # cmaes at d = 4: with its model


@needs_jit
@pytest.mark.parametrize("strategy,d", STRATEGIES)
def test_njit_step_allocates_nothing(strategy, d):
    code = f"""
        import numba
        from numba.core.runtime import rtsys
        import arqon
        from tests.test_contracts import _loop
        from tests.conftest import space
        t = arqon.Tuner(space({d}, seed=1, strategy="{strategy}"))
        _loop(t.state, 10)  # compile
        def allocs(n):
            before = rtsys.get_allocation_stats()
            _loop(t.state, n)
            after = rtsys.get_allocation_stats()
            return after.alloc - before.alloc, after.free - before.free
        boundary = allocs(0)  # one meminfo per array crossing the Python boundary
        print(allocs(100_000)[0] - boundary[0], allocs(100_000)[1] - boundary[1])
    """
    allocated, freed = map(int, run_in_fresh_process(code, {"NUMBA_NRT_STATS": "1"}).split())
    assert allocated == 0 and freed == 0


@needs_jit
def test_guard_kernels_allocate_nothing():
    code = """
        import numba, numpy as np
        from numba.core.runtime import rtsys
        from arqon.contracts import executor, guard_offers
        from arqon.kernels import guard

        @numba.njit
        def observe_loop(state, metrics, start, n):
            for i in range(start, start + n):
                metrics[0] = 60.0 if i % 97 == 0 else 10.0  # some breaches: rollbacks happen too
                guard.guard_observe(state, metrics, i)

        ex = executor(16, canary={"metric": "lat", "stages": [{"min_samples": 3}]})
        proposals, metrics = np.array([np.full(16, 4.0), np.full(16, 6.0)]), np.array([10.0, 0.0])
        guard_offers(ex.state, proposals, 0, 10); observe_loop(ex.state, metrics, 0, 10)
        def allocs(f, *args):
            before = rtsys.get_allocation_stats(); f(*args); after = rtsys.get_allocation_stats()
            return after.alloc - before.alloc
        boundary = allocs(guard_offers, ex.state, proposals, 10, 0), allocs(observe_loop, ex.state, metrics, 10, 0)
        print(allocs(guard_offers, ex.state, proposals, 20, 100_000) - boundary[0],
              allocs(observe_loop, ex.state, metrics, 200_000, 100_000) - boundary[1], ex.counters()["applied"],
              ex.counters()["rollbacks"])
    """
    offers, observes, applied, rollbacks = map(int, run_in_fresh_process(code, {"NUMBA_NRT_STATS": "1"}).split())
    assert offers == 0 and observes == 0 and applied > 50_000 and rollbacks > 0


@needs_jit
def test_telemetry_kernels_allocate_nothing():
    code = """
        import numba, numpy as np
        from numba.core.runtime import rtsys
        import arqon
        from arqon.kernels import ask, ring, stats, telemetry

        @numba.njit
        def loop(state, tel, header, out, n):
            ask(state)
            for i in range(n):
                telemetry.emit(tel, header, 0, 1.0 + (i % 17) * 0.1 + (i // 50_000), i)  # drifts upward twice
                telemetry.emit(tel, header, 1, (i % 5) * 1e-3, i)
                telemetry.tune_from_window(state, tel, header, 0, stats.QUANTILE, 0.99, 8, i)
                if i % 1000 == 0:
                    telemetry.ingest(tel, out, ring.ring_drain(header, out))

        t = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}]})
        tel = arqon.Telemetry({"metrics": [{"name": "lat", "settle": 1, "drift": {"on": "windows", "warmup": 20}},
                                           {"name": "err", "drift": {"method": "page_hinkley"}}]})
        out = np.zeros(256, ring.RECORD)
        loop(t.state, tel.state, tel.ring.state, out, 10)
        def allocs(n):
            before = rtsys.get_allocation_stats()
            loop(t.state, tel.state, tel.ring.state, out, n)
            after = rtsys.get_allocation_stats()
            return after.alloc - before.alloc
        boundary = allocs(0)
        print(allocs(150_000) - boundary, tel.generation, tel.summary("lat").drifts)
    """
    allocated, generations, drifts = map(int, run_in_fresh_process(code, {"NUMBA_NRT_STATS": "1"}).split())
    assert allocated == 0 and generations > 10_000 and drifts >= 1


def _bytes_kept(run, warm=1000, n=100_000):
    """Bytes still allocated after ``run(n)`` that were not after ``run(warm)`` (both traced), outside the harness."""
    tracemalloc.start(4)  # enough frames to reach threading.py from another thread's allocation (tqdm's monitor)
    try:
        run(warm)  # traced too: objects replaced on every call (a counter's int) are then in both snapshots
        before = tracemalloc.take_snapshot()
        run(n)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # other threads (started by earlier tests, e.g. tqdm's monitor) run from threading.py, and hypothesis's gc callback
    # (installed by earlier property tests) runs whenever a collection does: their allocations are not the step's
    harness = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__),
               tracemalloc.Filter(False, threading.__file__, all_frames=True),
               tracemalloc.Filter(False, "*/hypothesis/*", all_frames=True)]
    diff = after.filter_traces(harness).compare_to(before.filter_traces(harness), "lineno")  # by allocation site
    return sum(s.size_diff for s in diff if s.size_diff > 0), diff[:3]


@needs_jit
@pytest.mark.parametrize("checked", [False, True])  # Telemetry.emit's builtin path (a name, a float) and its checked one
def test_python_emit_does_not_grow_memory(checked):
    tel = arqon.Telemetry({"metrics": [{"name": "lat", "drift": {}}]})
    kind = np.float64 if checked else float

    def run(n):
        for i in range(n):
            tel.emit("lat", kind(1.0 + i % 7))

    kept, top = _bytes_kept(run)
    assert kept == 0, top


@needs_jit
@pytest.mark.parametrize("value_type", [float, np.float64])  # Tuner.step's builtin path and its checked path
@pytest.mark.parametrize("strategy,d", STRATEGIES)
def test_python_step_does_not_grow_memory(strategy, d, value_type):
    t = arqon.Tuner(space(d, seed=1, strategy=strategy))
    x = [t.ask()]

    def run(n):
        for _ in range(n):
            x[0] = t.step(value_type(1.0 + x[0][0]))

    kept, top = _bytes_kept(run)
    assert kept == 0, top


_SEQUENCE = """
    import json, numba, numpy as np, arqon
    from arqon.kernels import ask, proposal, step

    @numba.njit
    def cost(x):
        return np.sum((x[:6] - 1.0) ** 2) + np.log(x[6]) ** 2 + (x[7] - 4.0) ** 2

    @numba.njit
    def inside(state, out):
        ask(state)
        x = proposal(state)
        for i in range(out.shape[0]):
            out[i] = x
            step(state, cost(x))

    runs = {}
    for strategy in ("spsa", "es", "pbt", "cmaes"):
        config = {"params": [{"name": f"x{i}", "min": -5, "max": 5} for i in range(6)]
                  + [{"name": "lr", "min": 1e-4, "max": 1, "scale": "log"}, {"name": "n", "min": 1, "max": 9,
                     "integer": True}], "seed": 1234, "strategy": strategy}
        t = arqon.Tuner(config)
        x, from_python = t.ask(), []
        for i in range(300):
            from_python.append(x.tolist())
            x = t.step(cost(x))
        from_njit = np.zeros((300, 8))
        inside(arqon.Tuner(config).state, from_njit)
        runs[strategy] = [from_python, from_njit.tolist()]
    print(json.dumps(runs))
"""


def _assert_same_proposals(runs, reference=None):
    for strategy, (from_python, from_njit) in runs.items():
        assert from_python == from_njit, strategy  # bit-identical from Python and @njit
        if reference is not None:
            assert from_python == reference[strategy][0], strategy  # and with the other process
        distinct = len({tuple(v) for v in from_python})  # and it is really exploring (PBT re-measures kept members)
        assert distinct > (60 if strategy == "pbt" else 200), strategy


def test_same_seed_same_proposals_from_python_and_njit_in_a_fresh_process():
    """Every strategy in a new process loading the cached kernels: the same proposals from Python and @njit."""
    here = json.loads(run_in_fresh_process(_SEQUENCE))
    _assert_same_proposals(here)


@pytest.mark.slow
def test_same_seed_same_proposals_with_kernels_compiled_afresh():
    """One process loading the cached kernels and one compiling them all afresh (no cache): bit-identical."""
    cached = json.loads(run_in_fresh_process(_SEQUENCE))
    _assert_same_proposals(json.loads(run_in_fresh_process(_SEQUENCE, {"ARQON_JIT_CACHE": "0"})), cached)


def test_golden_values():
    """Seeded runs must keep producing these exact numbers: a change here changes every user's decisions."""
    t = arqon.Tuner(space(3, seed=42))
    x = t.ask()
    for _ in range(100):
        x = t.step(sphere(x, 1.0))
    assert x.tolist() == GOLDEN_X
    assert header(t.state)["rng"].tolist() == GOLDEN_RNG


GOLDEN_X = [1.3362289456581342, 1.3362462140095497, 0.6637932740964017]  # automatic `a` from the largest early gradient
GOLDEN_RNG = [12076384475130097176, 369311121492955621, 141620021633738520, 7052854690756931278]


def test_kernels_import_without_the_shell():
    code = """
        import sys
        import arqon.kernels
        print(",".join(sorted(m for m in ("msgspec", "attrs", "arqon.config", "arqon.tuner") if m in sys.modules)))
    """
    assert run_in_fresh_process(code).strip() == ""


def test_kernel_states_start_on_a_page_boundary():
    """Every state is page-aligned, so its records sit on the same cache lines in every process."""
    import mmap

    tuner = arqon.Tuner(space(16))
    executor = arqon.Executor({"params": {n: {} for n in tuner.names}, "metrics": ["m"], "slos": ["m <= 1"]}, tuner)
    telemetry = arqon.Telemetry({"metrics": [{"name": "m"}]})
    for state in (tuner.state, executor.state, telemetry.state):
        assert state.ctypes.data % mmap.PAGESIZE == 0 and state.flags.writeable


@needs_jit
def test_a_tuner_alone_compiles_no_telemetry_guard_or_audit_kernel():
    """Start-up time: a tuner's first step compiles the tuner kernels only; the statistics, guard and audit kernels
    compile when a telemetry, executor or audit log is made."""
    code = """
        import sys
        import arqon
        t = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}]}); t.step(1.0)
        modules = ("arqon.kernels.stats", "arqon.kernels.telemetry", "arqon.kernels.guard", "arqon.kernels.audit")
        print(",".join(m for m in modules if m in sys.modules))
    """
    assert run_in_fresh_process(code).strip() == ""


def _compiled_functions(asm):
    """(module, function) of each arqon kernel defined in an assembly listing (Itanium-mangled labels)."""
    found = set()
    for label in re.findall(r"^_ZN5arqon7kernels(\w+):$", asm, re.M):
        parts = []
        while len(parts) < 2 and (m := re.match(r"(\d+)", label)):
            n = int(m.group(1))
            parts.append(label[m.end():m.end() + n])
            label = label[m.end() + n:]
        found.add(tuple(parts))
    return found


@needs_jit
@pytest.mark.slow  # compiles step, emit and guard_offer afresh
def test_hot_kernels_leave_no_call_to_an_inlined_helper():
    """Helpers declared ``inline=True`` are inlined by LLVM: none is left as a function in the compiled code of the
    kernels that use them (one left there would be called, costing the call and the constants it no longer sees).
    Compiled afresh in a new process: Numba cannot show the assembly of cached code."""
    code = """
        import importlib, json
        found = {}
        for module, name in [("api", "step"), ("telemetry", "emit"), ("guard", "guard_offer")]:
            k = getattr(importlib.import_module(f"arqon.kernels.{module}"), name)
            found[f"{module}.{name}"] = k.inspect_asm(k.signatures[0])
        print(json.dumps(found))
    """
    listings = json.loads(run_in_fresh_process(code, {"ARQON_JIT_CACHE": "0"}))
    for kernel, asm in listings.items():
        functions = _compiled_functions(asm)
        assert tuple(kernel.split(".")) in functions
        left = [f for f in functions
                if getattr(importlib.import_module(f"arqon.kernels.{f[0]}"), f[1]).targetoptions.get("forceinline")]
        assert left == [], kernel


@needs_jit
def test_second_process_loads_compiled_kernels_from_cache():
    """This process compiled (or loaded) the kernels into the cache at import; a fresh one loads them all from it."""
    code = """
        import arqon
        from tests.conftest import space
        t = arqon.Tuner(space(4)); x = t.ask(); t.step(1.0); t.recommend()
        from arqon.kernels import api
        kernels = [api.ask, api.tell, api.step, api.step_at, api.recommend, api.open_state]
        print(sum(sum(k.stats.cache_hits.values()) for k in kernels), sum(sum(k.stats.cache_misses.values()) for k in kernels))
    """
    hits, misses = map(int, run_in_fresh_process(code).split())
    assert hits == 6 and misses == 0


_CALLER = """
import numba
from arqon.kernels import drop_stale_cache, splitmix64_next

def _probe():
    pass

drop_stale_cache(_probe)

@numba.njit(cache=True)
def caller(x):
    return splitmix64_next(x)
"""


def test_cached_callers_outside_the_kernels_are_dropped_when_a_kernel_source_changes(tmp_path):
    """Numba checks a cache entry only against its own file, yet a cache=True function calling a kernel inlines it:
    its module's call to drop_stale_cache drops it when the stamp of the kernel sources differs. A tiny package in
    tmp_path (its own cache beside it) calls a small kernel; the arqon kernels load from this session's cache."""
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "__init__.py").write_text(_CALLER)
    code = f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        import tiny
        tiny.caller(np.array([1], np.uint64))
        from numba.core.caching import FunctionCache
        print(sum(tiny.caller.stats.cache_hits.values()), FunctionCache(tiny._probe)._cache_path)
    """

    def hits():
        n, folder = run_in_fresh_process(code).split(maxsplit=1)
        return int(n), Path(folder.strip())

    assert hits()[0] == 0  # compiled and cached
    n, folder = hits()
    assert n == 1  # warm
    assert str(tmp_path) in str(folder) or "NUMBA_CACHE_DIR" in os.environ  # its own folder, not the kernels'
    (folder / "arqon-kernels.sha256").write_text("sources as they were before an edit")
    assert hits()[0] == 0  # stale: recompiled, not loaded
    assert hits()[0] == 1


@needs_jit
def test_the_kernels_own_cache_folder_carries_the_stamp_of_their_sources():
    """The kernels' cache is dropped by the same function (``drop_stale_cache`` at the import of ``_jit``), keyed to
    the hash of every kernel source: the stamp beside the cached kernels is that hash (the cold recompile that
    follows a changed stamp is checked in the slow tier)."""
    import hashlib

    from numba.core.caching import FunctionCache

    from arqon.kernels import _jit

    here = Path(_jit.__file__).parent
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py")))).hexdigest()
    stamp = Path(FunctionCache(_jit._cache_probe)._cache_path) / "arqon-kernels.sha256"
    assert stamp.read_text() == digest


@pytest.mark.slow
@needs_jit
def test_cached_kernels_are_dropped_when_any_kernel_source_changes(tmp_path):
    """Numba checks a cache entry only against its own file, yet kernels inline helpers from other files."""
    code = """
        from arqon.kernels import api
        print(sum(api.step.stats.cache_hits.values()))
    """
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    run_in_fresh_process(code, env)
    assert run_in_fresh_process(code, env).strip() == "1"  # warm
    (stamp,) = tmp_path.rglob("arqon-kernels.sha256")
    stamp.write_text("sources as they were before an edit")
    assert run_in_fresh_process(code, env).strip() == "0"  # stale: recompiled, not loaded
    assert run_in_fresh_process(code, env).strip() == "1"


