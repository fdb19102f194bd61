"""Timing contracts: measure every hot-path kernel in-process and check it against checked-in budgets.

Each kernel runs in batches sized to about 20 us, timed with the thread's CPU clock (``time.thread_time_ns``), so time
the thread spends preempted by other work does not count; a batch's mean is one sample. A repetition is ``samples``
batches; its p50 and p99 are over them. Repetitions run round-robin: round r measures a calibration loop (a fixed chain
of dependent integer operations inside @njit), then repetition r of every kernel, so each kernel's figures are spread
over the whole run. The report gives, per kernel, the median p50 and median p99 over the rounds, the largest p99
("max-of-p99") and the smallest p50 ("best": the kernel on a quiet machine). Each figure is also a ratio to the
calibration's p50 of its round: on a slower machine both move together, and ratio budgets (the ns budgets divided by
the calibration's time on the machine that set them) still hold. A shared core can slow memory-bound kernels and not
the calibration (on one VM, load/store-heavy kernels ran 1.5-2.5x slower in spells of about half a second); the
medians over rounds weigh such spells by how long they last.

Use ``arqon contracts`` or ``check(...)``; pass your own budgets file to check your hardware.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import msgspec
import numba
import numpy as np

from arqon.config import ConfigError, Positive, _Struct, decode
from arqon.kernels import guard, ring, rng_next, rng_rademacher, stats, step
from arqon.kernels import audit as audit_kernels
from arqon.kernels import telemetry as tel_kernels
from arqon.kernels._jit import borrow, drop_stale_cache


def _cache_probe():
    pass


drop_stale_cache(_cache_probe)  # this module's cached functions inline kernels: drop them when a kernel changed


Mode = Literal["ratio", "ns", "both"]


class Budget(_Struct):
    p50_ns: Positive
    p99_ns: Positive
    max_p99_ns: Positive


class Calibration(_Struct):
    reference_ns: Positive  # the calibration loop's median on the machine the budgets were set on
    machine: str = ""


class Budgets(_Struct):
    calibration: Calibration
    kernels: dict[str, Budget]


def load_budgets(path: str | Path | None = None) -> Budgets:
    """Decode a budgets file, TOML or JSON or YAML by its suffix (default: the TOML shipped with arqon)."""
    if path is None:
        with resources.as_file(resources.files("arqon").joinpath("contracts.toml")) as shipped:
            return decode(shipped, Budgets)
    return decode(Path(path), Budgets)


# -- what is measured -------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _calibration_loop(n):
    """n passes of a fixed chain of 64 dependent multiply-xor-shift steps."""
    x = np.uint64(0x9E3779B97F4A7C15)
    for _ in range(n):
        for _ in range(64):
            x = (x ^ (x >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
    return x


@numba.njit(cache=True)
def njit_steps(state, values, n):
    """n steps of ``state`` inside @njit, telling values[i % 1024]."""
    for i in range(n):
        step(state, values[i & 1023])


@numba.njit(cache=True)
def _rng_next_loop(s, n):
    acc = np.uint64(0)
    for _ in range(n):
        acc ^= rng_next(s)
    return acc


@numba.njit(cache=True)
def _rng_rademacher_loop(s, out, n):
    for _ in range(n):
        rng_rademacher(s, out)


def tuner(d, gains="decaying", strategy="spsa"):
    """A Tuner over ``d`` parameters in [-5, 5] with one proposal out."""
    from arqon.tuner import Tuner

    t = Tuner({"params": [{"name": f"x{i}", "min": -5, "max": 5} for i in range(d)], "seed": 1,
               "spsa": {"gains": gains}, "strategy": strategy})
    t.ask()
    return t


# Measured values come from a table: an objective that reads the proposal straight after the kernel wrote it would
# time a store-forwarding stall of the loop rather than the kernel (about 20 ns here).
VALUES = np.random.default_rng(0).normal(1.0, 0.1, 1024)


def _njit_step_probe(d, gains="decaying", strategy="spsa"):
    t = tuner(d, gains, strategy)
    return lambda n: njit_steps(t.state, VALUES, n)


def _python_step_probe(d, strategy="spsa"):
    step_once = tuner(d, strategy=strategy).step

    def run(n):
        for _ in range(n):
            step_once(1.0)

    return run


def _rng_next_probe():
    s = np.array([1, 2, 3, 4], dtype=np.uint64)
    return lambda n: _rng_next_loop(s, n)


def _rng_rademacher_probe(d):
    s, out = np.array([1, 2, 3, 4], dtype=np.uint64), np.zeros(d)
    return lambda n: _rng_rademacher_loop(s, out, n)


@numba.njit(cache=True)
def guard_offers(state, proposals, start, n):
    """n offers at steps start.. alternating between the two rows of ``proposals``."""
    rows = borrow(proposals)  # picking rows[i & 1] from a borrowed table adds no reference counting to the loop
    flags = 0
    for i in range(start, start + n):
        flags |= guard.guard_offer(state, rows[i & 1], i)
    return flags


@numba.njit(cache=True)
def _guard_observes(state, metrics, start, n):
    flags = 0
    for i in range(start, start + n):
        flags |= guard.guard_observe(state, metrics, i)
    return flags


def executor(d, rule=None, **policy):
    """An Executor over ``d`` parameters in [0, 10] (known-good 5), each under ``rule`` (a params entry of the policy),
    with metrics lat and err under two SLOs."""
    from arqon.executor import Executor
    from arqon.tuner import Tuner

    t = Tuner({"params": [{"name": f"x{i}", "min": 0, "max": 10, "init": 5} for i in range(d)]})
    rule = rule or {}
    return Executor({"params": {f"x{i}": rule for i in range(d)}, "metrics": ["lat", "err"], "safe_mode_after": 0,
                     "slos": ["lat <= 50", "err <= 0.01"], "progress_deadline": 2**40, **policy}, t)


def _guard_offer_probe(d, **policy):
    """Offers alternating 4.0 and 6.0 everywhere; time moves on across batches, so every offer is really checked."""
    ex = executor(d, **policy)
    proposals = np.array([np.full(d, 4.0), np.full(d, 6.0)])
    clock = [0]

    def run(n):
        guard_offers(ex.state, proposals, clock[0], n)
        clock[0] += n

    return run


def _guard_observe_probe():
    ex = executor(16)
    metrics, clock = np.array([10.0, 0.0]), [0]

    def run(n):
        _guard_observes(ex.state, metrics, clock[0], n)
        clock[0] += n

    return run


# Telemetry samples: a long lognormal table, so that the P-square markers' moves do not repeat with a short period
SAMPLES = np.random.default_rng(0).lognormal(0.0, 1.0, 1 << 16)


def telemetry(**metric):
    """A Telemetry with one metric ``m`` (options ``metric``) over a 64Ki-record ring."""
    from arqon.telemetry import Telemetry

    return Telemetry({"metrics": [{"name": "m", **metric}], "ring": {"capacity": 1 << 16}})


@numba.njit(cache=True)
def _push_loop(header, samples, start, n):
    for i in range(start, start + n):
        ring.ring_push(header, i, 0, samples[i & 65535], 0, 0, 0)


@numba.njit(cache=True)
def _update_loop(tel, samples, start, n):
    """n samples into metric 0's statistics (window, EMA, P-square, sketch and detector as configured)."""
    for i in range(start, start + n):
        stats.metric_add(stats.tel_of(tel), 0, samples[i & 65535], 0, i)


@numba.njit(cache=True)
def _emit_loop(tel, header, samples, start, n):
    for i in range(start, start + n):
        tel_kernels.emit(tel, header, 0, samples[i & 65535], i)


def _counting(loop, *args):
    """run(n) over ``loop(*args, start, n)``, moving ``start`` on across batches."""
    clock = [0]

    def run(n):
        loop(*args, clock[0], n)
        clock[0] += n

    return run


def _push_probe():
    return _counting(_push_loop, telemetry().ring.state, SAMPLES)


def _update_probe(**metric):
    return _counting(_update_loop, telemetry(**metric).state, SAMPLES)


def _emit_probe():
    tel = telemetry(drift={})
    return _counting(_emit_loop, tel.state, tel.ring.state, SAMPLES)


def _python_emit_probe():
    emit, samples = telemetry(drift={}).emit, SAMPLES.tolist()  # a name and a Python float: the builtin's path

    def run(n):
        for i in range(n):
            emit("m", samples[i & 65535])

    return run


@numba.njit(cache=True)
def _audited_steps(state, audit, out, values, start, n):
    """n audited steps; the audit ring drained every 1024 (the drain's cost is part of logging)."""
    for i in range(start, start + n):
        audit_kernels.audited_step(state, audit, values[i & 1023], i)
        if i & 1023 == 0:
            audit_kernels.audit_drain(audit, out)


def _audited_step_probe(d):
    from arqon.telemetry import Ring

    t, ring_ = tuner(d), Ring(4096, "drop_newest")
    out = np.zeros(4096, audit_kernels.AUDIT_RECORD)
    return _counting(_audited_steps, t.state, ring_.state, out, VALUES)


# name -> a factory returning run(n): perform n calls of the kernel
PROBES: dict[str, Callable[[], Callable[[int], object]]] = {
    "step.njit.d2": lambda: _njit_step_probe(2),
    "step.njit.d16": lambda: _njit_step_probe(16),
    "step.njit.d128": lambda: _njit_step_probe(128),
    "step.njit.d16.constant": lambda: _njit_step_probe(16, "constant"),
    "step.python.d16": lambda: _python_step_probe(16),
    # population strategies: a step is one member; the generation's update is spread over its members
    "step.njit.d16.es": lambda: _njit_step_probe(16, strategy="es"),
    "step.njit.d16.pbt": lambda: _njit_step_probe(16, strategy="pbt"),
    "step.njit.d16.cmaes": lambda: _njit_step_probe(16, strategy="cmaes"),
    "step.python.d16.cmaes": lambda: _python_step_probe(16, "cmaes"),
    "rng.next": _rng_next_probe,
    "rng.rademacher.d16": lambda: _rng_rademacher_probe(16),
    "guard.offer.accept.d16": lambda: _guard_offer_probe(16),  # validate + stage + flip, every offer applied
    # ... every parameter clipped to max delta (the reasons are worked out too), then applied
    "guard.offer.clip.d16": lambda: _guard_offer_probe(16, rule={"max_delta": 0.5}),
    # ... with a per-parameter cooldown of one step (an apply records when each changed parameter may change again)
    "guard.offer.accept.cooldown.d16": lambda: _guard_offer_probe(16, rule={"cooldown": 1}),
    "guard.offer.reject.d16": lambda: _guard_offer_probe(16, rule={"max_delta": 0.1}, mode="reject"),  # rejected
    "guard.observe.d16": _guard_observe_probe,
    "ring.push": _push_probe,
    "stats.update.ema_p2x3": lambda: _update_probe(sketch=False),  # window moments + EMA + 3 P-square estimates
    "stats.update.full": lambda: _update_probe(drift={}),  # ... + the sketch + a CUSUM detector
    "telemetry.emit": _emit_probe,  # ring record + full update
    "telemetry.emit.python": _python_emit_probe,
    "audit.step.njit.d16": lambda: _audited_step_probe(16),  # step + one audit record with the state digest
}
CALIBRATION = "calibration"


# -- measuring --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    p50_ns: float  # median over repetitions of each repetition's p50 (per call)
    p99_ns: float  # median over repetitions of each repetition's p99
    max_p99_ns: float  # largest p99 of any repetition
    best_p50_ns: float  # smallest p50 of any repetition: the kernel on a quiet machine

    @classmethod
    def of(cls, p50: Sequence[float], p99: Sequence[float]) -> Timing:
        return cls(float(np.median(p50)), float(np.median(p99)), float(np.max(p99)), float(np.min(p50)))


class _Timer:
    """Times ``run(n)`` (n calls of a kernel) in batches of about ``batch_ns``, on the thread's CPU clock."""

    def __init__(self, run: Callable[[int], object], read_cost: float, batch_ns: float = 20_000.0):
        self.run, self.read_cost = run, read_cost
        run(1)  # compile / warm
        n = 1
        while True:  # grow the batch until the median of three lasts batch_ns (one slow first call must not stop it at
            durations = []  # n=1, where the Python call around the batch, not the kernel, would be measured)
            for _ in range(3):
                t0 = time.thread_time_ns()
                run(n)
                durations.append(time.thread_time_ns() - t0)
            if sorted(durations)[1] >= batch_ns or n >= 1 << 20:
                break
            n *= 2
        self.n = n

    def repetition(self, samples: int) -> tuple[float, float]:
        """One repetition: ``samples`` batches. Returns (p50, p99) per call, in ns."""
        clock, run, n = time.thread_time_ns, self.run, self.n
        per_call = np.empty(samples)
        for i in range(samples):
            t0 = clock()
            run(n)
            per_call[i] = max(clock() - t0 - self.read_cost, 0.0) / n
        return float(np.percentile(per_call, 50)), float(np.percentile(per_call, 99))


def _clock_read_cost() -> float:
    """The cost of a batch's two clock reads, about one read (a system call, ~300 ns here): taken off each batch."""
    pairs = [(time.thread_time_ns(), time.thread_time_ns()) for _ in range(1001)]
    return float(np.median([second - first for first, second in pairs]))


# -- checking ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    timing: Timing
    ratio: Timing  # timing / calibration p50 of the same round
    budget: Budget | None
    breaches: tuple[str, ...]  # e.g. "p99 ratio 12.3 > 8.0"
    attempts: int = 1  # measurements taken: a kernel that breached is measured again (see check's ``retries``)


@dataclass(frozen=True)
class Report:
    calibration: Timing
    rows: tuple[Row, ...]
    mode: Mode
    seconds: float

    @property
    def breaches(self) -> list[str]:
        return [f"{row.name}: {b}" for row in self.rows for b in row.breaches]

    def to_dict(self) -> dict:
        return {
            "mode": self.mode, "seconds": self.seconds, "calibration_ns": vars(self.calibration),
            "kernels": {r.name: {"ns": vars(r.timing), "ratio": vars(r.ratio),
                                 "budget_ns": msgspec.to_builtins(r.budget) if r.budget else None,
                                 "breaches": list(r.breaches), "attempts": r.attempts} for r in self.rows},
            "ok": not self.breaches,
        }


def _breaches(timing: Timing, ratio: Timing, budget: Budget, reference_ns: float, mode: Mode) -> tuple[str, ...]:
    found = []
    for field in ("p50_ns", "p99_ns", "max_p99_ns"):
        limit = getattr(budget, field)
        label = field.removesuffix("_ns").replace("_", "-")
        if mode in ("ns", "both") and getattr(timing, field) > limit:
            found.append(f"{label} {getattr(timing, field):.1f} ns > {limit:g} ns")
        if mode in ("ratio", "both") and getattr(ratio, field) > limit / reference_ns:
            found.append(f"{label} ratio {getattr(ratio, field):.3f} > {limit / reference_ns:.3f}")
    return tuple(found)


def check(budgets: Budgets | None = None, mode: Mode = "ratio", only: list[str] | None = None,
          probes: Mapping[str, Callable] | None = None, repetitions: int = 20, samples: int = 200,
          progress: Callable[[str], None] | None = None, retries: int = 1) -> Report:
    """Measure the kernels (all of ``probes``, or those named in ``only``) and check them against ``budgets``. A kernel
    that breaches is measured again, up to ``retries`` more times, and is reported as breaching only if every
    measurement breached: a real regression (an allocation, object mode, lost inlining) breaches every time, a moment
    of a busy machine does not. Its row holds its last measurement."""
    budgets = budgets or load_budgets()
    probes = dict(PROBES if probes is None else probes)
    unknown = sorted(set(budgets.kernels) - set(probes))
    if unknown:
        raise ConfigError(f"budgets name kernels that are not measured: {', '.join(unknown)}")
    names = list(probes) if only is None else only
    missing = [n for n in names if n not in probes]
    if missing:
        raise ConfigError(f"unknown kernels: {', '.join(missing)}; known: {', '.join(probes)}")
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    read_cost = _clock_read_cost()
    timers = {}
    for i, name in enumerate([CALIBRATION, *names], 1):
        say(f"[{i}/{len(names) + 1}] {name}: compiling and sizing")
        timers[name] = _Timer(_calibration_loop if name == CALIBRATION else probes[name](), read_cost)
    calibration, rows = _measure(timers, names, budgets, mode, repetitions, samples, say)
    for attempt in range(2, retries + 2):
        again = [row.name for row in rows.values() if row.breaches]
        if not again:
            break
        say(f"measuring again (attempt {attempt}): {', '.join(again)}")
        _, retried = _measure(timers, again, budgets, mode, repetitions, samples, say)
        rows.update({name: dataclasses.replace(row, attempts=attempt) for name, row in retried.items()})
    return Report(calibration, tuple(rows.values()), mode, time.perf_counter() - started)


def _measure(timers: dict[str, _Timer], names: list[str], budgets: Budgets, mode: Mode, repetitions: int,
             samples: int, say: Callable[[str], None]) -> tuple[Timing, dict[str, Row]]:
    """``repetitions`` rounds, each the calibration and then one repetition of every kernel in ``names`` (why: the
    module docstring). Returns the calibration's timing and each kernel's row."""
    measured = [CALIBRATION, *names]
    p50 = {name: [] for name in measured}
    p99 = {name: [] for name in measured}
    for r in range(repetitions):
        say(f"round {r + 1}/{repetitions}")
        for name in measured:
            median, tail = timers[name].repetition(samples)
            p50[name].append(median)
            p99[name].append(tail)
    units = np.array(p50[CALIBRATION])
    rows = {}
    for name in names:
        timing = Timing.of(p50[name], p99[name])
        ratio = Timing.of(np.array(p50[name]) / units, np.array(p99[name]) / units)
        budget = budgets.kernels.get(name)
        found = _breaches(timing, ratio, budget, budgets.calibration.reference_ns, mode) if budget else ()
        rows[name] = Row(name, timing, ratio, budget, found)
    return Timing.of(p50[CALIBRATION], p99[CALIBRATION]), rows


def format_table(report: Report, budgets: Budgets) -> str:
    ref = budgets.calibration.reference_ns
    w = max([len(CALIBRATION), *(len(r.name) for r in report.rows)])
    head = (f"{'kernel':{w}s} {'p50 ns':>8s} {'p99 ns':>8s} {'max ns':>8s} {'best ns':>8s}   {'p50 x':>7s} "
            f"{'p99 x':>7s} {'max x':>7s}   {'budget ns p50/p99/max':>22s}  result")
    lines = [head, "-" * len(head)]
    c = report.calibration
    lines.append(f"{CALIBRATION:{w}s} {c.p50_ns:8.1f} {c.p99_ns:8.1f} {c.max_p99_ns:8.1f} {c.best_p50_ns:8.1f}   "
                 f"{1:7.3f} {c.p99_ns / c.p50_ns:7.3f} {c.max_p99_ns / c.p50_ns:7.3f}   "
                 f"{'reference ' + format(ref, 'g'):>22s}")
    for r in report.rows:
        t, x, b = r.timing, r.ratio, r.budget
        budget = f"{b.p50_ns:g}/{b.p99_ns:g}/{b.max_p99_ns:g}" if b else "none"
        result = "BREACH" if r.breaches else ("ok" if b else "-")
        if r.attempts > 1:
            result += f" (measured {r.attempts}x)"
        lines.append(f"{r.name:{w}s} {t.p50_ns:8.1f} {t.p99_ns:8.1f} {t.max_p99_ns:8.1f} {t.best_p50_ns:8.1f}   "
                     f"{x.p50_ns:7.3f} {x.p99_ns:7.3f} {x.max_p99_ns:7.3f}   {budget:>22s}  {result}")
    lines.append(f"\nbest = the lowest p50 of any round (a quiet machine); x = ratio to the calibration p50 of the "
                 f"same round; mode {report.mode}; checked in {report.seconds:.1f} s")
    lines += [f"BREACH {b}" for b in report.breaches]
    return "\n".join(lines)


def main(args) -> int:
    """``arqon contracts``: print the table (or JSON), return 1 on a breach."""
    budgets = load_budgets(args.budgets)
    only = [name for arg in args.only or () for name in arg.split(",") if name]
    report = check(budgets, args.mode, only or None, repetitions=args.repetitions, samples=args.samples,
                   retries=args.retries,
                   progress=None if args.quiet else lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print(msgspec.json.encode(report.to_dict()).decode())
    else:
        print(format_table(report, budgets))
    return 1 if report.breaches else 0
