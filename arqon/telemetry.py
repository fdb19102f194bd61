"""The telemetry data plane's Python face: ``Ring`` (fixed records, optionally in shared memory) and ``Telemetry``
(per-metric statistics, quantiles and drift over a ring). Both hold their state in arrays that the kernels in
``arqon.kernels.ring``, ``.stats`` and ``.telemetry`` take, so the same work runs inside the user's ``@njit`` loop.
"""

from __future__ import annotations

import gc
import math
import operator
import re
import sys
import weakref
from multiprocessing import resource_tracker, shared_memory
from typing import Annotated, Literal

import attrs
import msgspec
import numpy as np
from msgspec import Meta

from arqon._fastemit import fast_emit
from arqon.config import ConfigError, Name, _Struct, check_unique_names, decode, real
from arqon.kernels import ring as ring_kernels
from arqon.kernels import stats as stats_kernels
from arqon.kernels import telemetry as tel_kernels
from arqon.kernels._jit import entry_point
from arqon.kernels._status import BAD_STATE as _BAD_STATE
from arqon.status import Status

_CREATED: set[str] = set()  # shared-memory rings this process created (and will unlink)
_POLICIES = {"overwrite": ring_kernels.OVERWRITE, "drop_newest": ring_kernels.DROP_NEWEST}
_PUSH = entry_point(ring_kernels.ring_push)
_DRAIN = entry_point(ring_kernels.ring_drain)
_EMIT_AT = entry_point(tel_kernels.emit_at)
_WINDOW_STAT = entry_point(tel_kernels.window_stat)
TUNE_FROM_WINDOW = entry_point(tel_kernels.tune_from_window)
_STATS = {"mean": stats_kernels.MEAN, "std": stats_kernels.STD, "min": stats_kernels.MIN, "max": stats_kernels.MAX,
          "ema": stats_kernels.EMA}


def parse_stat(text: str) -> tuple[int, float]:
    """``"mean"``, ``"std"``, ``"min"``, ``"max"``, ``"ema"`` or a quantile ``"p50"``, ``"p99"``, ``"p99.9"`` as the
    kernels' (stat, q). Raises ValueError naming what is accepted."""
    if text in _STATS:
        return _STATS[text], 0.0
    match = re.fullmatch(r"p(\d{1,2}(?:\.\d+)?)", text)
    if match and 0.0 < float(match[1]) < 100.0:
        return stats_kernels.QUANTILE, float(match[1]) / 100.0
    raise ValueError(f"unknown statistic {text!r}: use mean, std, min, max, ema or a quantile such as p50, p99, p99.9")


def window_args(telemetry, metric, stat: str, min_samples: int) -> tuple[int, int, float, int]:
    """Check the arguments of a step from a telemetry window and return them as the kernels take them:
    (metric index, stat code, q, min_samples). Raises a ValueError naming the argument."""
    m, code, q = telemetry.stat_args(metric, stat)
    if not 1 <= min_samples <= 2**62:
        raise ValueError(f"min_samples must be at least 1, got {min_samples}")
    return m, code, q, int(min_samples)


class RingConfig(_Struct):
    capacity: Annotated[int, Meta(ge=2, le=2**30)] = 4096  # records; a power of two
    policy: Literal["overwrite", "drop_newest"] = "overwrite"

    def __post_init__(self):
        if self.capacity & (self.capacity - 1):
            raise ValueError(f"`capacity` must be a power of two, got {self.capacity}")


class Drift(_Struct):
    """A two-sided drift detector on a metric's standardized stream (see ``arqon.kernels.stats``)."""

    method: Literal["cusum", "page_hinkley"] = "cusum"
    on: Literal["samples", "windows"] = "samples"  # windows: one value per config generation, the window's `stat`
    stat: str = "mean"
    threshold: Annotated[float, Meta(gt=0.0)] = 10.0  # h, in standard deviations of the warm-up
    allowance: Annotated[float, Meta(ge=0.0)] = 0.5  # k: half the shift (in standard deviations) to detect fastest
    warmup: Annotated[int, Meta(ge=2, le=2**40)] = 100  # values that set the level and spread after each (re)start

    def __post_init__(self):
        parse_stat(self.stat)
        if not math.isfinite(self.threshold) or not math.isfinite(self.allowance):
            raise ValueError("`threshold` and `allowance` must be finite")


Probability = Annotated[float, Meta(gt=0.0, lt=1.0)]


class Metric(_Struct):
    """One metric: its statistics, window and detector options."""

    name: Name
    half_life: Annotated[float, Meta(gt=0.0, le=1e12)] = 100.0  # samples for the EMA weight to halve
    quantiles: Annotated[list[Probability], Meta(max_length=stats_kernels.N_QUANTILES)] = msgspec.field(
        default_factory=lambda: [0.5, 0.9, 0.99])  # P-square estimates kept over each window
    sketch: bool = True  # keep the log-bucket sketch (any quantile of the window, within `accuracy`)
    accuracy: Annotated[float, Meta(ge=1e-9, le=0.2)] = 0.01  # the sketch's relative error bound
    smallest: Annotated[float, Meta(gt=0.0)] = 1e-9  # magnitudes below count as zero in the sketch
    largest: Annotated[float, Meta(gt=0.0)] = 1e12  # magnitudes above land in the top bucket (counted out_of_range)
    settle: Annotated[int, Meta(ge=0, le=2**40)] = 0  # samples discarded at the start of each new window
    drift: Drift | None = None

    def __post_init__(self):
        if not self.smallest < self.largest or not math.isfinite(self.largest):
            raise ValueError(f"`smallest` ({self.smallest}) must be less than `largest` ({self.largest}), both finite")
        if self.drift is not None and self.drift.on == "windows" and self.drift.stat.startswith("p") \
                and not self.sketch:
            raise ValueError(f"drift on window quantile {self.drift.stat!r} needs `sketch = true`")


class TelemetryConfig(_Struct):
    """The metrics (each with its settle time, quantiles, sketch and drift detector) and the ring's size and policy."""

    metrics: Annotated[list[Metric], Meta(min_length=1, max_length=65_536)]
    ring: RingConfig = msgspec.field(default_factory=RingConfig)

    def __post_init__(self):
        check_unique_names(self.metrics, "metric", "metrics")


def load_telemetry_config(source, format: str | None = None) -> TelemetryConfig:
    """Decode a telemetry config from a dict, a JSON/TOML/YAML string or a file (see ``arqon.config.decode``)."""
    return decode(source, TelemetryConfig, format)


class Ring:
    """A single-producer single-consumer ring of fixed records (``arqon.kernels.ring.RECORD``).

    ``Ring(capacity, policy)`` lives in this process; ``Ring(..., shared=True)`` in shared memory, which another
    process opens with ``Ring.attach(ring.name)``. ``state`` (the whole buffer as float64 words) is what the kernels
    take; ``header`` is a view of its header record, for reading the counters. The creator unlinks the shared memory
    on ``close``."""

    def __init__(self, capacity: int = 4096, policy: str = "overwrite", *, shared: bool = False):
        config = decode({"capacity": capacity, "policy": policy}, RingConfig)
        size = ring_kernels.ring_bytes(config.capacity)
        self._shm = shared_memory.SharedMemory(create=True, size=size) if shared else None
        if shared:
            _CREATED.add(self._shm.name)
        self._owner = shared
        self._buffer = np.ndarray(size, np.uint8, self._shm.buf) if shared else np.zeros(size, np.uint8)
        self.state = ring_kernels.init_ring(self._buffer, config.capacity, _POLICIES[config.policy])
        self.header = ring_kernels.ring_header(self.state)
        self._capacity = config.capacity
        self._out = np.zeros(min(config.capacity, 65_536), ring_kernels.RECORD)

    @classmethod
    def attach(cls, name: str) -> Ring:
        """Open the shared-memory ring ``name`` made by another process (as its consumer, or its producer)."""
        try:
            shm = shared_memory.SharedMemory(name=name)
        except FileNotFoundError:
            raise ValueError(f"no shared-memory ring named {name!r}") from None
        buffer = np.ndarray(shm.size, np.uint8, shm.buf)
        state = ring_kernels.attach_ring(buffer)
        if state is None:
            shm.close()
            raise ValueError(f"shared memory {name!r} does not hold an arqon ring")
        # before Python 3.13 attaching also registers the segment with this process's resource tracker, which would
        # unlink it under the creator's feet when this process exits: the creator owns it, so unregister
        if sys.version_info < (3, 13) and shm.name not in _CREATED:
            resource_tracker.unregister(shm._name, "shared_memory")
        self = cls.__new__(cls)
        self._shm, self._owner, self._buffer, self.state = shm, False, buffer, state
        self.header = ring_kernels.ring_header(state)
        self._capacity = int(self.header[0]["capacity"])  # what is mapped: every kernel checks the header still fits
        self._out = np.zeros(min(self._capacity, 65_536), ring_kernels.RECORD)
        return self

    @property
    def name(self) -> str | None:
        """The shared-memory name to pass to ``Ring.attach``; None for a ring in private memory."""
        return self._shm.name if self._shm else None

    @property
    def capacity(self) -> int:
        """Records the ring holds."""
        return self._capacity

    @property
    def policy(self) -> str:
        """``"overwrite"`` (a full ring overwrites its oldest record) or ``"drop_newest"`` (it refuses the new one)."""
        return "drop_newest" if self.header[0]["policy"] == ring_kernels.DROP_NEWEST else "overwrite"

    def push(self, metric: int, value: float, step: int = 0, generation: int = 0, variant: int = 0,
             flags: int = 0) -> Status:
        """Append one record (producer side). Returns ``Status.DROPPED`` when a drop-newest ring is full."""
        if self.state is None:
            raise ValueError("the ring is closed")
        status = _PUSH(self.state, step, metric, value + 0.0, generation, variant, flags)
        if status & _BAD_STATE:
            raise ValueError(self._overwritten())
        return Status(status)

    def _overwritten(self) -> str:
        return (f"ring {self.name or '(private)'}: its header no longer describes a ring of {self._capacity} records "
                "(magic, record size or capacity overwritten): nothing read or written")

    def drain(self, out: np.ndarray | None = None) -> np.ndarray:
        """Read the unread records, oldest first (consumer side): into ``out`` (a RECORD array; returns the filled
        part) or into the ring's own buffer (valid until the next drain). Never returns an overwritten record."""
        target = self._out if out is None else out
        if target.dtype != ring_kernels.RECORD or target.ndim != 1 or not target.flags.c_contiguous:
            raise TypeError("out must be a contiguous 1-D array of arqon.kernels.ring.RECORD")
        if self.state is None:
            raise ValueError("the ring is closed")
        n = _DRAIN(self.state, target)
        if n < 0:
            raise ValueError(self._overwritten())
        return target[:n]

    def counters(self) -> dict[str, int]:
        """written, read, dropped (refused by drop-newest), overrun (overwritten before read), torn (overwritten
        while being read; also in overrun), pending (written, not yet read or lost)."""
        h = self.header[0]
        written, tail = int(h["head"]), int(h["tail"])
        lapped = max(0, written - tail - int(h["capacity"]))  # overwritten, not yet noticed by a drain
        return {"written": written, "read": tail - int(h["overrun"]), "dropped": int(h["dropped"]),
                "overrun": int(h["overrun"]) + lapped, "torn": int(h["torn"]), "pending": written - tail - lapped}

    def close(self) -> None:
        """Release the shared memory (and unlink it if this ring created it). Raises RuntimeError, and leaves the
        ring open, while anything else still holds a view of it (a ``Telemetry`` on it, its ``emit``, ``header``):
        its next write would land in unmapped memory."""
        if self._shm is not None:
            buffer = weakref.ref(self._buffer)  # every view of the ring (its header included) keeps the buffer alive
            self.header = self.state = self._buffer = None
            if buffer() is not None:
                gc.collect()  # a view held only by unreachable objects does not count
            if buffer() is not None:
                self._buffer = buffer()
                self.state = self._buffer[:ring_kernels.ring_bytes(self._capacity)].view(np.float64)
                self.header = ring_kernels.ring_header(self.state)
                raise RuntimeError(f"ring {self._shm.name} is still in use (a Telemetry on it, its emit, or a view of "
                                   "its header): drop those first, then close it")
            self._shm.close()
            if self._owner:
                self._shm.unlink()
                _CREATED.discard(self._shm.name)
            self._shm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@attrs.frozen
class Summary:
    """A metric's statistics: the current window (samples under the current config generation, after `settle`) and
    the EMA and extremes since creation."""

    metric: str
    generation: int
    n: int  # samples in the window
    mean: float
    std: float
    min: float
    max: float
    quantiles: dict  # P-square estimates over the window, {probability: value}
    ema: float  # since creation
    ew_std: float
    count: int  # samples counted since creation
    discarded: int  # samples dropped by `settle`
    rejected: int  # NaN/inf samples ignored
    drifts: int
    last_drift: int  # step of the last detection (-1: none)


def _metric_index(names, ids, metric) -> int:
    """The index of ``metric`` (a name or an index into ``names``; ``ids``: name -> index); a KeyError or TypeError
    saying why not."""
    if isinstance(metric, str):
        try:
            return ids[metric]
        except KeyError:
            raise KeyError(f"unknown metric {metric!r}; known: {', '.join(names)}") from None
    if isinstance(metric, (bool, np.bool_)) or not isinstance(metric, (int, np.integer)):
        raise TypeError(f"metric must be a name or an index, got {type(metric).__name__}")
    if not 0 <= metric < len(names):
        raise KeyError(f"metric index {metric} out of range 0..{len(names) - 1}")
    return int(metric)


def _checked_emit(state, ring, names, ids, next_step):
    """``Telemetry.emit`` as a Python function (see its slot's docstring), which converts its arguments or raises.
    It holds the arrays the builtin emit reads (state, ring, step counter), not the telemetry: no cycle, and a
    kept ``emit`` stays valid after the telemetry is dropped."""
    address, words, ring_address, ring_words = state.ctypes.data, state.shape[0], ring.ctypes.data, ring.shape[0]

    def emit(metric, value, step=None):
        index = ids.get(metric, -1) if metric.__class__ is str else _metric_index(names, ids, metric)
        try:
            at = next_step[0] if step is None else operator.index(step)
        except TypeError:
            raise TypeError(f"step must be an integer, got {type(step).__name__}") from None
        if not -2**63 <= at < 2**63 - 1:
            raise OverflowError(f"step must be an int64 below 2**63 - 1, got {step}")
        flags = _EMIT_AT(address, words, ring_address, ring_words, index, real(value, "value"), at)
        if flags & _BAD_STATE:
            _metric_index(names, ids, metric)  # raises the clear error for an unknown metric
        next_step[0] = at + 1
        return flags

    emit.__qualname__ = "Telemetry.emit"
    emit.memory = (state, ring)  # what the two addresses point into, kept alive as long as emit is
    return emit


class Telemetry:
    """Per-metric statistics over a ring: ``emit`` records a sample (ring record + window statistics + EMA + drift);
    ``summary``, ``quantile`` and ``drift_detected`` read them. ``state`` and ``ring.state`` go to
    ``arqon.kernels.telemetry.emit`` inside @njit code. Samples carry the current ``generation``: after applying a new
    config, call ``new_generation()`` so the old config's samples never count for the new one."""

    __slots__ = {
        "__dict__": None, "__weakref__": None,
        "emit": """emit(metric, value, step=None) -> int

        Record one sample of ``metric`` (a name or an index). ``step`` defaults to a counter of emits. Returns status
        bits as an int (``arqon.Status(flags)`` names them; an int because building the flag object would cost more
        than the emit): DRIFT when the metric's detector fired, DROPPED when the ring refused the record, NONFINITE
        when the statistics ignored the value. A builtin function bound to this telemetry (see ``arqon._fastemit``):
        a call with a name or an int index and a ``float`` costs no Python frame.""",
    }

    def __init__(self, config, ring: Ring | None = None):
        self.config = load_telemetry_config(config)
        self.names = tuple(m.name for m in self.config.metrics)
        self._ids = {name: i for i, name in enumerate(self.names)}
        self.ring = ring or Ring(self.config.ring.capacity, self.config.ring.policy)
        self.state = _build_state(self.config)  # the whole buffer: a copy of it is a state too
        self._header = stats_kernels.tel_header(self.state)
        # emit passes addresses; holding the ring's buffer keeps its memory mapped (closing it raises meanwhile)
        self._ring_state = self.ring.state
        self._address, self._ring_address = self.state.ctypes.data, self._ring_state.ctypes.data
        self._records = stats_kernels.metric_records(self.state)
        self._seen_drifts = [0] * len(self.names)
        self._next_step = np.zeros(1, np.int64)
        checked = _checked_emit(self.state, self._ring_state, self.names, self._ids, self._next_step)
        self.emit = fast_emit(self._address, self.state.shape[0], self._ring_address, self._ring_state.shape[0],
                              self._next_step, self.names, checked)

    def metric_id(self, metric: str | int) -> int:
        """The index of ``metric`` (a name or an index) in declaration order."""
        return _metric_index(self.names, self._ids, metric)

    @property
    def next_step(self) -> int:
        """The step the next ``emit`` without an explicit step will carry (one past the last emit's)."""
        return int(self._next_step[0])

    @property
    def generation(self) -> int:
        """The config generation new samples are stamped with (``new_generation`` advances it)."""
        return int(self._header["generation"])

    def new_generation(self) -> int:
        """Start a new config generation (call after applying a new config); returns it."""
        self._header["generation"] += 1
        return self.generation

    def stat_args(self, metric: str | int, stat: str) -> tuple[int, int, float]:
        """``metric`` and ``stat`` as the kernels take them: (metric index, stat code, q). Raises a ValueError naming
        ``stat`` when it is unknown, or a quantile of a metric that keeps no sketch."""
        m = self.metric_id(metric)
        try:
            code, q = parse_stat(stat)
        except ValueError as e:
            raise ValueError(f"stat: {e}") from None
        if code == stats_kernels.QUANTILE and not self.config.metrics[m].sketch:
            raise ValueError(f"stat: metric {self.names[m]!r} keeps no sketch, so {stat!r} is not available")
        return m, code, q

    def stat(self, metric: str | int, stat: str = "mean") -> float:
        """One statistic of ``metric``'s current window (see ``parse_stat``); NaN while the window is empty."""
        return _WINDOW_STAT(self.state, *self.stat_args(metric, stat))

    def quantile(self, metric: str | int, q: float) -> float:
        """Quantile ``q`` of the window from the sketch: within ``accuracy`` (relative) of the exact value."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q}")
        m = self.metric_id(metric)
        if not self.config.metrics[m].sketch:
            raise ValueError(f"metric {self.names[m]!r} keeps no sketch")
        return _WINDOW_STAT(self.state, m, stats_kernels.QUANTILE, float(q))

    def summary(self, metric: str | int) -> Summary:
        """Everything known about ``metric``: the current window's statistics and quantiles, its EMA, and the
        counters of the whole run (records, discarded while settling, rejected, drifts)."""
        m = self.metric_id(metric)
        r = self._records[m]
        window = {name: _WINDOW_STAT(self.state, m, code, 0.0) for name, code in _STATS.items() if name != "ema"}
        return Summary(
            metric=self.names[m], generation=int(r["generation"]), n=int(r["n"]), **window,
            quantiles={p: _WINDOW_STAT(self.state, m, stats_kernels.P2, float(j))
                       for j, p in enumerate(self.config.metrics[m].quantiles)},
            ema=math.nan if r["count"] == 0 else float(r["ema"]), ew_std=math.sqrt(r["ew_var"]),
            count=int(r["count"]), discarded=int(r["discarded"]), rejected=int(r["rejected"]),
            drifts=int(r["drifts"]), last_drift=int(r["last_drift"]),
        )

    def drift_detected(self, metric: str | int) -> bool:
        """True if ``metric``'s detector fired since the last call for it."""
        m = self.metric_id(metric)
        drifts = int(self._records[m]["drifts"])
        fired = drifts != self._seen_drifts[m]
        self._seen_drifts[m] = drifts
        return fired

    def ingest(self, records: np.ndarray) -> Status:
        """Feed drained ring records (e.g. from another process's ring) to the statistics."""
        return Status(tel_kernels.ingest(self.state, records, len(records)))


def _build_state(config: TelemetryConfig) -> np.ndarray:
    """Allocate a telemetry state and fill in every metric's options."""
    layouts = []
    for m in config.metrics:
        gamma = (1.0 + m.accuracy) / (1.0 - m.accuracy)
        offset = math.ceil(math.log(m.smallest) / math.log(gamma))
        buckets = math.ceil(math.log(m.largest) / math.log(gamma)) - offset + 1 if m.sketch else 0
        layouts.append((gamma, offset, buckets))
    n_buckets = max(b for _, _, b in layouts)
    if len(config.metrics) * 2 * n_buckets > 2**28:
        raise ConfigError("the sketches would need over 2 GiB: raise `accuracy` or narrow `smallest`..`largest`")
    state = stats_kernels.new_telemetry_state(len(config.metrics), n_buckets)
    records = stats_kernels.metric_records(state)
    sketches = stats_kernels.sketch_buckets(state)
    detectors = {"cusum": stats_kernels.CUSUM, "page_hinkley": stats_kernels.PAGE_HINKLEY}
    for i, (m, (gamma, offset, buckets)) in enumerate(zip(config.metrics, layouts, strict=True)):
        r = records[i]
        r["alpha"] = 1.0 - 0.5 ** (1.0 / m.half_life)
        r["n_q"] = len(m.quantiles)
        r["q_p"][: len(m.quantiles)] = m.quantiles
        distinct = sorted(set(m.quantiles))  # the estimates share one extended P-square's markers
        dn = [0.0, *(x for lo, p in zip([0.0, *distinct], distinct) for x in ((lo + p) / 2, p)), (distinct[-1] + 1) / 2,
              1.0] if distinct else []
        r["n_markers"] = len(dn)
        r["q_dn"][: len(dn)] = dn
        r["q_marker"][: len(m.quantiles)] = [2 * distinct.index(p) + 2 for p in m.quantiles]
        r["sketch"], r["n_buckets"], r["key_offset"] = int(m.sketch), buckets, offset
        r["gamma"], r["inv_log_gamma"], r["min_value"] = gamma, 1.0 / math.log(gamma), m.smallest
        r["last_drift"] = -1
        stats_kernels.open_window(records[i:i + 1], sketches[i], 0)  # empty; no settle at creation
        r["settle"] = m.settle
        if m.drift is not None:
            r["detector"] = detectors[m.drift.method]
            r["on_windows"] = int(m.drift.on == "windows")
            r["window_stat"], r["window_q"] = parse_stat(m.drift.stat)
            r["warmup"], r["threshold"], r["allowance"] = m.drift.warmup, m.drift.threshold, m.drift.allowance
    return state
