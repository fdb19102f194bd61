"""The audit log: every tuner decision, from an audit ring in memory to an append-only, checksummed, hash-chained file
that survives a crash, and a replay that checks every decision bit for bit.

File layout (little-endian). A *segment* file starts with ``ARQONLOG``, a u32 format version, a u32 header length, the
header as JSON (format, library version, tuner state layout, seed, the full tuner config, segment number, the chain
value the segment starts from) and a u32 CRC-32 of that JSON. Frames follow, each ``[u32 magic][u32 length][u32 crc][16-byte chain]``
then ``length`` bytes of ``AUDIT_RECORD``s; ``crc`` is the CRC-32 of length, chain and payload, and
``chain = BLAKE2b-128(previous chain + payload)`` links every frame to all before it (the first previous chain is the
BLAKE2b-128 of the first segment's header). When a segment reaches ``rotate_bytes`` (or the run changes: a catalog, a
selector's arms) the next one is ``LOG.1``, ``LOG.2`` and so on, its header carrying the chain value reached, and the
chain goes on from ``BLAKE2b-128(that value + the header)``, so no header can be changed unseen. A segment is written
to ``LOG.N.tmp`` with its header, fsynced, then linked into place: a crash never leaves a segment without a header.

Reading a log checks everything. A damaged last frame of the last segment (a write cut short by a crash) is a *torn
tail*: reported, and cut off with ``repair=True``. Any other damage stops with ``LogCorrupt`` naming the file and the
byte offset; damage is never skipped. ``close()`` ends the log with an empty frame, the end marker: a log that lacks it
(``Log.closed`` False) was cut short, by a crash or by a truncation at a frame boundary.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Literal

import attrs
import msgspec
import numpy as np

import arqon
from arqon.config import ConfigError, load_config
from arqon.outputs import FILE_MODE
from arqon.policy import ordered_metrics
from arqon.kernels import audit as audit_kernels
from arqon.kernels import bandit as bandit_kernels
from arqon.kernels import bandit_audit
from arqon.kernels._jit import entry_point
from arqon.kernels._status import WAITING as _WAITING
from arqon.kernels.state import header as _state_header, layout_name
from arqon.status import Status
from arqon.telemetry import Ring, window_args

FORMAT = 2  # 2: the header of every segment after the first is in the hash chain too (1: only the first's)
READS = (1, 2)
FILE_MAGIC = b"ARQONLOG"
FRAME_MAGIC = 0x31465241  # b"ARF1"
_FRAME = struct.Struct("<III16s")
_HEAD = struct.Struct("<8sII")
KINDS = {audit_kernels.ASK: "ask", audit_kernels.TELL: "tell", audit_kernels.STEP: "step", audit_kernels.LOST: "lost",
         audit_kernels.OFFER: "offer", audit_kernels.PROPOSE: "propose", audit_kernels.APPLY: "apply",
         audit_kernels.OBSERVE: "observe", audit_kernels.SNAPBACK: "snapback", audit_kernels.KILL: "kill",
         audit_kernels.RESUME: "resume", audit_kernels.DRIFT: "drift", audit_kernels.REOPEN: "reopen",
         audit_kernels.LIVE: "live", audit_kernels.METRIC: "metric", bandit_audit.SEL_MASK: "selector-mask",
         bandit_audit.SEL_CONTEXT: "selector-context", bandit_audit.SEL_METRIC: "selector-metric",
         bandit_audit.SEL_UPDATE: "selector-update", bandit_audit.SEL_REWARD: "selector-reward",
         bandit_audit.SEL_CHOICE: "selector-choice", bandit_audit.SEL_ARMS: "selector-arms",
         audit_kernels.LIFECYCLE: "lifecycle", audit_kernels.VARIANTS: "variants",
         audit_kernels.PROPOSAL: "proposal", audit_kernels.OFFERED: "offered"}
LIFECYCLES = ("absent", "candidate", "approved", "retired")  # a LIFECYCLE record's status: FROM * 4 + TO
RECORD = audit_kernels.AUDIT_RECORD
_ASK = entry_point(audit_kernels.audited_ask)
_TELL = entry_point(audit_kernels.audited_tell)
_STEP = entry_point(audit_kernels.audited_step)
_DRAIN = entry_point(audit_kernels.audit_drain)
_GUARD = entry_point(audit_kernels.audit_guard)
_VALUES = entry_point(audit_kernels.audit_values)
_TUNE_FROM_WINDOW = entry_point(audit_kernels.audited_tune_from_window)
_EVENT = entry_point(audit_kernels.audit_event)
_ARMS = entry_point(bandit_audit.audited_arms)


class LogCorrupt(ValueError):
    """The log is damaged somewhere a crash cannot explain; the message names the file and the byte offset."""


class LogIncompatible(ValueError):
    """The log was written under another tuner state layout: its decisions cannot be re-run bit for bit here."""


def state_layout(state: np.ndarray) -> str:
    """The layout of a tuner state, e.g. ``tuner.spsa/3f9c...``: the state digests in a log depend on it. Derived from
    the strategy's declared layout, so a change to one strategy's blocks leaves the others' logs replayable."""
    return layout_name(int(_state_header(state)["strategy"]))


def selector_layout() -> str:
    """The layout of a selector state, e.g. ``bandit/3f9c...``: the selector digests in a log depend on it."""
    return f"bandit/{bandit_kernels.BANDIT_LAYOUT:016x}"


def _chain(previous: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(previous + payload, digest_size=16).digest()


def variant_key_digest(key: str) -> int:
    """The digest field of a LIFECYCLE record: a 64-bit hash of the build's ``id@version``."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def segment_path(path: Path, index: int) -> Path:
    return path if index == 0 else path.with_name(f"{path.name}.{index}")


class AuditLog:
    """Audited ``ask``/``tell``/``step`` of ``tuner`` and, with ``executor``, every executor decision (offer, observe,
    snapback, kill, ... with their reason and event flags), written to ``path`` by a background thread.

    ``fsync`` says when written records become durable (acknowledged in ``durable``):

    - ``"record"``: after every frame the writer writes (each holds what it drained at once): no acknowledged record is
      ever lost; a crash loses only records not yet acknowledged;
    - ``"every"``: once ``every`` records are waiting: a crash loses at most the unacknowledged ones, at most ``every - 1``
      written plus what the ring holds;
    - ``"interval"``: every ``interval_ms``: a crash loses at most the last ``interval_ms`` of records.

    The ring between the hot path and the writer holds ``capacity`` records; when it is full a record is refused, never
    waited for; the refusal is counted and the next record carries the count (``lost``), so replay stops at the gap.

    ``metrics`` names the values ``record_metrics`` takes (default: the executor policy's metrics, which every
    ``Executor.observe`` records). With an executor the log also holds the live values after every flip (LIVE records
    at step t: in force from step t + 1), starting with the snapshot live at creation (at step -1): with the metrics,
    what ``arqon report`` plots. An executor that swaps catalog variants is recorded too (with ``selector=`` and no
    tuner when it has no knobs): the catalog in force is in every segment header, each change of it (``use_catalog``,
    ``allow``) is recorded with its lifecycle transitions and starts a new segment, and a selector grown with
    ``with_arms`` stays recorded (docs/audit.md, "Catalog variants").

    ``proposals=True`` also records the tuner's proposal after every ``ask`` and ``step`` (PROPOSAL records, one per
    parameter, in force from the step after): what ``arqon report`` plots and ``arqon log export`` lists for a run
    with no executor; without it the report rebuilds the proposals by replay. It costs a second kernel call per step.
    """

    def __init__(self, path, tuner=None, *, selector=None, executor=None, metrics=None,
                 fsync: Literal["record", "every", "interval"] = "record", every: int = 1000, interval_ms: float = 10.0,
                 rotate_bytes: int = 64 << 20, capacity: int = 1 << 16, proposals: bool = False):
        if fsync not in ("record", "every", "interval"):
            raise ConfigError(f"fsync must be 'record', 'every' or 'interval', got {fsync!r}")
        if not (isinstance(every, int) and every >= 1):
            raise ConfigError(f"every must be a whole number of records >= 1, got {every!r}")
        if not interval_ms > 0:
            raise ConfigError(f"interval_ms must be > 0, got {interval_ms!r}")
        if rotate_bytes < 4096:
            raise ConfigError(f"rotate_bytes must be at least 4096, got {rotate_bytes!r}")
        if not isinstance(proposals, bool):
            raise ConfigError(f"proposals must be True or False, got {proposals!r}")
        if proposals and tuner is None:
            raise ConfigError("proposals=True records a tuner's proposals: pass tuner=")
        self._proposals = proposals
        if tuner is None and selector is None:
            raise ConfigError("an audit log records a tuner, a selector, or both: pass tuner= or selector=")
        knobs = () if executor is None else executor.names[: len(executor.names) - bool(executor.variants)]
        if knobs and tuner is None:
            raise ConfigError("an executor with knobs is recorded with the tuner whose proposals it applies: pass "
                              "tuner=")
        if selector is not None and getattr(selector, "_log", None) is not None:
            raise ConfigError("this selector is already recorded by another audit log: close that one first")
        self.path = Path(path)
        for existing in (self.path, segment_path(self.path, 1)):
            if existing.exists():
                raise FileExistsError(f"{existing} exists: an audit log is never overwritten (nor continued from an "
                                      "earlier run's segments); pick a new path")
        if tuner is not None and executor is not None and knobs != tuner.names:
            raise ConfigError("the executor was built for other parameters than the tuner's")
        if executor is not None and executor._log is not None:
            raise ConfigError("this executor is already recorded by another audit log: close that one first")
        self.tuner, self.executor, self.selector = tuner, executor, selector
        if metrics is None:
            metrics = executor.policy.metrics if executor is not None else []
        if executor is not None and list(metrics) != list(executor.policy.metrics):
            raise ConfigError("metrics must be the executor policy's metrics (Executor.observe records those)")
        if len(set(metrics)) != len(metrics) or not all(isinstance(m, str) and m for m in metrics):
            raise ConfigError(f"metrics must be distinct non-empty names, got {metrics!r}")
        self.metrics = list(metrics)
        self._values = np.zeros(max(len(self.metrics), 1))
        self.ring = Ring(capacity, "drop_newest")
        self._ring, self._header = self.ring.state, self.ring.header
        self._fsync, self._every, self._interval = fsync, every, interval_ms / 1000.0
        self._rotate = rotate_bytes
        self._step = 0
        self._last_step, self._lost = -1, 0  # the writer's view: last step drained, refusals already on record
        self._durable = 0  # records on disk and fsynced
        self._written = 0  # records handed to the OS
        self._own = 0  # of those, LOST records the writer wrote itself (not in the ring's count)
        self._acked = 0  # records from the ring on disk and fsynced: what flush() waits for
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._flush_now = False  # flush() asks the writer to fsync now, whatever the policy
        self._segment, self._file = 0, None
        self._chain = b""
        self._context = self._describe()  # what every segment's header says about the run (see new_segment)
        self._rotate_requested = False
        self._open_segment()
        self._thread = threading.Thread(target=self._run, name=f"arqon-audit:{self.path.name}", daemon=True)
        self._thread.start()
        if executor is not None:
            executor._log = self  # from now on every executor decision is recorded, and Executor.step's ask/tell too
            live = executor.live
            _VALUES(self._ring, audit_kernels.LIVE, -1, live, len(live))  # in force from step 0
            if executor.variants:  # the catalog in force from step 0: the header names it
                self.record_guard(audit_kernels.VARIANTS, -1, 0)
        if selector is not None:
            selector._attach_log(self)  # from now on every select, update and step is recorded

    # -- the hot path (one kernel call each) ----------------------------------------------------------------------

    def ask(self, step: int | None = None) -> np.ndarray:
        """``tuner.ask()``, audited. Returns the proposal view."""
        now = self._next(step)
        _ASK(self._tuner().state, self._ring, now)
        return self._proposed(now)

    def tell(self, value: float, step: int | None = None) -> int:
        """``tuner.tell(value)``, audited. Returns the status flags (an int; ``arqon.Status`` names them)."""
        return _TELL(self._tuner().state, self._ring, value + 0.0, self._next(step))

    def step(self, value: float, step: int | None = None) -> np.ndarray:
        """``tuner.step(value)``, audited. Returns the next proposal view."""
        now = self._next(step)
        _STEP(self._tuner().state, self._ring, value + 0.0, now)
        return self._proposed(now)

    def step_from(self, telemetry, metric, stat: str = "mean", min_samples: int = 1) -> np.ndarray | None:
        """``tuner.step_from(...)``, audited: the step with the window's value, and the drift and re-opening before it
        when the objective drifted for the worse. Returns the new proposal, or None while the window fills."""
        if self._error is not None:
            self._raise_writer_error()
        now = telemetry.next_step
        status = _TUNE_FROM_WINDOW(self._tuner().state, telemetry.state, telemetry.ring.state, self._ring,
                                   *window_args(telemetry, metric, stat, min_samples), now)
        return None if status & _WAITING else self._proposed(now)

    def _proposed(self, now: int) -> np.ndarray:
        """The tuner's proposal view, recorded at step ``now`` first when the log records proposals."""
        x = self.tuner._x
        if self._proposals:
            _VALUES(self._ring, audit_kernels.PROPOSAL, now, x, len(x))
        return x

    def record_guard(self, kind: int, now: int, flags: int) -> None:
        """One executor decision (called by the executor itself)."""
        if self._error is not None:
            self._raise_writer_error()
        _GUARD(self._ring, self.executor.state, kind, int(now), int(flags))

    def record_metrics(self, values, now: int) -> None:
        """One METRIC record per name in ``metrics``: ``values`` as a mapping by name (a missing name: NaN) or a
        sequence in that order. ``Executor.observe`` calls this itself."""
        self._values[: len(self.metrics)] = ordered_metrics(values, self.metrics, "this log records")
        _VALUES(self._ring, audit_kernels.METRIC, int(now), self._values, len(self.metrics))

    def record_offered(self, values, now: int) -> None:
        """One OFFERED record per column of the vector an executor offers or proposes at step ``now`` (called by the
        executor itself, before the decision): what replay re-runs the decision with."""
        _VALUES(self._ring, audit_kernels.OFFERED, int(now), values, len(values))

    def record_live(self, values, now: int) -> None:
        """One LIVE record per parameter: the values (in ``tuner.names`` order) the system runs with from the step
        after ``now``, as the executor's records mean, for a run without an executor whose live values are not
        always the tuner's proposals."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        if values.shape != (len(self._tuner().names),):
            raise ValueError(f"expected {len(self.tuner.names)} live values {list(self.tuner.names)}, got shape "
                             f"{values.shape}")
        _VALUES(self._ring, audit_kernels.LIVE, int(now), values, len(values))

    def check_writer(self) -> None:
        """Raise now if the writer stopped (its error, or that it is gone): called before a change that must be
        recorded, so that nothing changes unrecorded."""
        self._raise_writer_error()
        if not self._thread.is_alive():
            raise RuntimeError(f"audit writer for {self.path} is not running (the log was closed)")

    def record_variants(self, transitions, now: int, flags: int, **extra) -> None:
        """A change of the executor's approved variants (called by the executor itself, after the change): one
        LIFECYCLE record per ``transitions`` entry (a build's ``(id@version, from, to)`` between two catalog
        versions), the VARIANTS decision with its ``flags``, then a new segment whose header names the catalog and the
        approved set in force from here (and ``extra``)."""
        for key, old, new in transitions:
            index = next((i for i, b in enumerate(self.executor.builds) if f"{b[0]}@{b[1]}" == key), None)
            _EVENT(self._ring, audit_kernels.LIFECYCLE, int(now), np.nan if index is None else float(index),
                   variant_key_digest(key), LIFECYCLES.index(old) * 4 + LIFECYCLES.index(new))
        self.record_guard(audit_kernels.VARIANTS, now, flags)
        self.new_segment(transitions=[{"variant": k, "from": a, "to": b} for k, a, b in transitions], **extra)

    def record_arms(self, old, grown) -> None:
        """The selector ``old`` recorded here grew into ``grown`` (called by ``Selector.with_arms``): from now on
        ``grown`` is recorded; a SEL_ARMS record, then a new segment whose header holds ``grown``'s config."""
        if old is not self.selector:
            raise ValueError("record_arms: that selector is not the one this log records")
        self.check_writer()
        old._attach_log(_Superseded(grown))
        self.selector = grown
        grown._attach_log(self)
        _ARMS(grown.state, self._ring, self._next(None))
        self.new_segment()

    def new_segment(self, **extra) -> None:
        """Start a new segment after every record logged so far, its header describing the run as it is now (the
        tuner, the selector's arms, the executor's policy and catalog) plus ``extra``; returns once it is on disk.
        Called between steps when one of those changes (a rare event: it costs an fsync or two)."""
        self.flush()
        self._context = {**self._describe(), **extra}
        self._rotate_requested = True
        deadline = time.monotonic() + 10.0
        while self._rotate_requested:
            self._raise_writer_error()
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"audit writer for {self.path} did not start a new segment")
            time.sleep(0.0005)
        self._context = self._describe()  # a later rotation (by size) does not repeat ``extra``

    def _describe(self) -> dict:
        tuner, selector, executor = self.tuner, self.selector, self.executor
        catalog = None if executor is None or not executor.variants else executor.catalog
        return {"state_layout": None if tuner is None else state_layout(tuner.state),
                "seed": None if tuner is None else tuner.config.seed,
                "config": None if tuner is None else msgspec.to_builtins(tuner.config),
                "selector": None if selector is None else msgspec.to_builtins(selector.config),
                "selector_layout": None if selector is None else selector_layout(),
                "metrics": self.metrics,
                "policy": None if executor is None else msgspec.to_builtins(executor.policy),
                "executor": None if executor is None else {"names": list(executor.names)},
                "catalog": None if catalog is None else {
                    "name": catalog.name, "version": catalog.version, "scope": catalog.scope,
                    "digest": catalog.digest, "expires": catalog.expires, "signers": list(catalog.signers),
                    "variants": list(executor.variants), "builds": [[i, v] for i, v in executor.builds],
                    "approved": [n for n, b in zip(executor.variants, executor.builds) if b in executor._allowed],
                    "allowed": list(executor.approved)}}

    def _tuner(self):
        if self.tuner is None:
            raise ValueError("this audit log records no tuner (it was made with selector= only)")
        return self.tuner

    def _next(self, step):
        if self._error is not None:  # the writer stopped: every recording call says so from the next one on
            self._raise_writer_error()
        if step is None:
            step = self._step
        self._step = step + 1
        return step

    # -- acknowledgements ------------------------------------------------------------------------------------------

    @property
    def durable(self) -> int:
        """Records written and fsynced: a crash from now on loses none of them."""
        return self._durable

    def counters(self) -> dict[str, int]:
        """logged (accepted by the ring), refused (ring full), written (to the file), durable (written and fsynced)."""
        c = self.ring.counters()
        return {"logged": c["written"], "refused": c["dropped"], "written": self._written, "durable": self._durable}

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every record logged so far is durable (whatever the fsync policy)."""
        target = int(self._header[0]["head"])
        deadline = time.monotonic() + timeout
        while self._acked < target:
            self._flush_now = True  # again each turn: the writer may have used it on a sync that came too early
            self._raise_writer_error()
            if time.monotonic() > deadline:
                raise TimeoutError(f"audit writer did not make {target} records durable in {timeout} s: {self.counters()}")
            time.sleep(0.0005)

    def close(self) -> None:
        """Write what is left, fsync, stop the writer and close the file."""
        if self.executor is not None:
            self.executor._log = None
        if self.selector is not None:
            self.selector._attach_log(None)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        self._raise_writer_error()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _raise_writer_error(self):
        if self._error is not None:
            raise RuntimeError(f"audit writer for {self.path} failed: {self._error}") from self._error

    # -- the writer thread -----------------------------------------------------------------------------------------

    def _open_segment(self):
        header = {"format": FORMAT, "library": arqon.__version__, **self._context, "segment": self._segment,
                  "chain": self._chain.hex(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        text = json.dumps(header, sort_keys=True).encode()
        first = self._segment == 0
        self._chain = hashlib.blake2b(text, digest_size=16).digest() if first else _chain(self._chain, text)
        path = segment_path(self.path, self._segment)
        partial = path.with_name(path.name + ".tmp")  # a crash before the link leaves only this, which no reader reads
        partial.unlink(missing_ok=True)  # a crashed run's: made afresh, private, by this writer alone
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW, FILE_MODE)
        os.write(fd, _HEAD.pack(FILE_MAGIC, FORMAT, len(text)) + text + struct.pack("<I", zlib.crc32(text)))
        os.fsync(fd)
        os.link(partial, path)  # refuses an existing segment, as O_EXCL would
        os.unlink(partial)
        if self._segment > 0:
            os.close(self._file)
        self._file, self._size = fd, os.fstat(fd).st_size
        _fsync_directory(path.parent)

    def _run(self):
        out = np.zeros(min(self.ring.capacity, 1 << 14) + 1, RECORD)
        drained = out[:-1]  # the last slot is room for a LOST record
        unsynced, last_sync = 0, time.monotonic()
        try:
            while True:
                stopping = self._stop.is_set()
                n = _DRAIN(self._ring, drained)
                if n < 0:
                    raise RuntimeError("the audit ring's header was overwritten (magic, record size or capacity "
                                       "changed): no record can be trusted, logging stopped")
                if n:
                    self._last_step, self._lost = int(out[n - 1]["step"]), int(out[n - 1]["lost"])
                refused = int(self._header[0]["dropped"])
                if refused > self._lost and self._header[0]["head"] == self._header[0]["tail"]:
                    out[n] = (0, self._last_step, np.nan, 0, audit_kernels.LOST, Status.DROPPED, refused)
                    self._lost = refused
                    self._own += 1
                    n += 1
                if n:
                    self._write_frame(out[:n].tobytes())
                    self._written += n
                    unsynced += n
                now = time.monotonic()
                due = (self._fsync == "record" or (self._fsync == "every" and unsynced >= self._every)
                       or (self._fsync == "interval" and now - last_sync >= self._interval)
                       or self._flush_now or stopping)
                if unsynced and due:
                    os.fsync(self._file)
                    self._synced()
                    unsynced, last_sync = 0, now
                    self._flush_now = False
                rotate = self._rotate_requested  # read once: new_segment sets it only once the ring is drained
                if self._size >= self._rotate or rotate:
                    if unsynced:
                        os.fsync(self._file)
                        self._synced()
                        unsynced, last_sync = 0, now
                    self._segment += 1
                    self._open_segment()
                    if rotate:
                        self._rotate_requested = False
                if stopping and not n:
                    self._write_frame(b"")  # the end marker: a log without one was not closed (a crash)
                    os.fsync(self._file)
                    break
                if not n:
                    time.sleep(0.0002)
        except BaseException as e:  # surfaced by flush/close
            self._error = e
        finally:
            if self._file is not None:
                os.close(self._file)
                self._file = None


    def _synced(self) -> None:
        self._durable, self._acked = self._written, self._written - self._own

    def _write_frame(self, payload: bytes) -> None:
        self._chain = _chain(self._chain, payload)
        crc = zlib.crc32(struct.pack("<I", len(payload)) + self._chain + payload)
        os.write(self._file, _FRAME.pack(FRAME_MAGIC, len(payload), crc, self._chain) + payload)
        self._size += _FRAME.size + len(payload)


class _Superseded:
    """What a recorded selector logs into once ``with_arms`` replaced it: every decision is refused, by name."""

    def __init__(self, grown):
        self._arms = list(grown.names)

    def __getattr__(self, name):
        raise ValueError(f"this selector grew into a new one over {self._arms} (with_arms), which its audit log "
                         "records from then on: decide with that one")


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading ------------------------------------------------------------------------------------------------------------


@attrs.frozen
class TornTail:
    """A damaged last frame (a write a crash cut short)."""

    file: str
    offset: int  # where the valid log ends
    dropped_bytes: int
    repaired: bool  # the file was truncated at ``offset``


@attrs.frozen
class Log:
    header: dict  # the first segment's header
    records: np.ndarray  # every record in order (AUDIT_RECORD)
    segments: tuple[str, ...]
    torn_tail: TornTail | None
    closed: bool  # the writer closed the log (it ends with the end marker); False after a crash or a truncation
    headers: tuple[dict, ...] = ()  # every segment's header: the run as it was from that segment on
    starts: tuple[int, ...] = ()  # the index of each segment's first record
    beyond_gap: tuple[str, ...] = ()  # segment files after a missing one (LOG.3 with no LOG.2): not read

    @property
    def missing(self) -> tuple[str, ...]:
        """What this log lacks to be the whole run, one sentence each; empty for a closed log read to its end."""
        found = []
        if self.beyond_gap:
            found.append(f"segment {segment_path(Path(self.segments[0]), len(self.segments))} is missing: "
                         f"{', '.join(self.beyond_gap)} after it not read")
        if self.torn_tail is not None:
            t = self.torn_tail
            found.append(f"{t.file}: a torn tail at offset {t.offset} ({t.dropped_bytes} bytes of a write cut short"
                         f"{', truncated' if t.repaired else ''})")
        if not self.closed:
            found.append("no end marker: the log was not closed (a crash, a truncation at a frame boundary, or a "
                         "writer still running)")
        return tuple(found)

    def header_at(self, index: int) -> dict:
        """The header in force at record ``index``: that of the last segment starting at or before it."""
        return self.headers[max(bisect.bisect_right(self.starts, index) - 1, 0)]

    def names(self) -> Names:
        """What a person reads instead of indices: the arms, the variants, the lifecycle transitions, the parameters
        and the metrics."""
        last = self.headers[-1] if self.headers else self.header
        selector, catalog = last.get("selector"), last.get("catalog")
        executor = last.get("executor") or {}
        arms, selector_metrics = None, ()
        if selector is not None:
            from arqon.selector import load_selector_config

            chosen = load_selector_config(selector)
            arms, selector_metrics = chosen.names, tuple(chosen.metrics)
        keys = {}
        for h in self.headers:
            for t in h.get("transitions") or []:
                keys[variant_key_digest(t["variant"])] = t["variant"]
        variants = tuple(catalog["variants"]) if catalog else None
        column = executor["names"].index("variant") if variants and "variant" in executor.get("names", ()) else None
        params = executor.get("names") or [p["name"] for p in (last.get("config") or {}).get("params", [])]
        return Names(arms, variants, column, keys, tuple(params), tuple(last.get("metrics") or ()), selector_metrics)


@attrs.frozen
class Names:
    """Names for a log's indices: a selector's arms and a catalog's variants (both only ever grow, so the last
    segment's lists name every index used before), the executor's variant column, LIFECYCLE records' builds."""

    arms: tuple[str, ...] | None
    variants: tuple[str, ...] | None
    variant_column: int | None
    builds: dict  # a LIFECYCLE record's digest -> the build's id@version
    params: tuple[str, ...] = ()  # what LIVE, OFFERED and PROPOSAL records index (the executor's, else the tuner's)
    metrics: tuple[str, ...] = ()  # the metrics METRIC records index
    selector_metrics: tuple[str, ...] = ()  # the metrics SEL_METRIC records index


def read_log(path, repair: bool = False) -> Log:
    """Read and check every segment of the log at ``path``. A torn tail is reported (and truncated with ``repair``);
    anything else damaged raises ``LogCorrupt`` naming the file and offset."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no audit log at {path}")
    header, chain, chunks, segments, torn, closed = None, b"", [], [], None, False
    headers, starts, count = [], [], 0
    index = 0
    while segment_path(path, index).is_file():
        file = segment_path(path, index)
        if closed:
            raise LogCorrupt(f"{file}: a segment after the end marker of {segments[-1]}, at offset 0")
        if torn is not None:
            raise LogCorrupt(f"{torn.file}: damaged frame at offset {torn.offset}, yet a later segment {file} exists")
        data = file.read_bytes()
        seg_header, offset = _read_header(file, data)
        if seg_header["segment"] != index:
            raise LogCorrupt(f"{file}: header says segment {seg_header['segment']}, expected {index}, at offset 0")
        if index == 0:
            header = seg_header
            chain = hashlib.blake2b(data[_HEAD.size:offset - 4], digest_size=16).digest()
        elif bytes.fromhex(seg_header["chain"]) != chain:
            raise LogCorrupt(f"{file}: does not continue the chain of segment {index - 1}, at offset 0")
        elif header["format"] >= 2:
            chain = _chain(chain, data[_HEAD.size:offset - 4])
        headers.append(seg_header)
        starts.append(count)
        while offset < len(data):
            problem = _frame_problem(data, offset, chain)
            if problem:
                if _valid_frame_after(data, offset + 1):
                    raise LogCorrupt(f"{file}: {problem} at offset {offset}")
                torn = TornTail(str(file), offset, len(data) - offset, repair)
                if repair:
                    with open(file, "r+b") as f:
                        f.truncate(offset)
                        f.flush()
                        os.fsync(f.fileno())
                break
            if closed:
                raise LogCorrupt(f"{file}: frame after the end marker at offset {offset}")
            _, length, _, chain = _FRAME.unpack_from(data, offset)
            chunks.append(data[offset + _FRAME.size: offset + _FRAME.size + length])
            count += length // RECORD.itemsize
            closed = length == 0
            offset += _FRAME.size + length
        segments.append(str(file))
        index += 1
    records = np.frombuffer(b"".join(chunks), RECORD).copy()
    numbered = {int(n): f for f in path.parent.glob(path.name + ".*") if (n := f.name[len(path.name) + 1:]).isdigit()}
    beyond = tuple(str(numbered[i]) for i in sorted(numbered) if i > index)  # segments after a missing one
    return Log(header, records, tuple(segments), torn, closed, tuple(headers), tuple(starts), beyond)


def _read_header(file: Path, data: bytes) -> tuple[dict, int]:
    if len(data) < _HEAD.size or data[:8] != FILE_MAGIC:
        raise LogCorrupt(f"{file}: not an arqon audit log (bad magic) at offset 0")
    _, version, length = _HEAD.unpack_from(data)
    end = _HEAD.size + length
    if version not in READS:
        raise LogCorrupt(f"{file}: format version {version}, this arqon reads {', '.join(map(str, READS))}, at "
                         "offset 8")
    if end + 4 > len(data) or struct.unpack_from("<I", data, end)[0] != zlib.crc32(data[_HEAD.size:end]):
        raise LogCorrupt(f"{file}: header fails its checksum at offset {_HEAD.size}")
    return json.loads(data[_HEAD.size:end]), end + 4


def _frame_problem(data: bytes, offset: int, chain: bytes) -> str | None:
    """Why the frame at ``offset`` is not valid (None when it is)."""
    if offset + _FRAME.size > len(data):
        return "incomplete frame header"
    magic, length, crc, link = _FRAME.unpack_from(data, offset)
    if magic != FRAME_MAGIC:
        return "bad frame magic"
    end = offset + _FRAME.size + length
    if length % RECORD.itemsize or end > len(data):
        return "frame length runs past the end"
    payload = data[offset + _FRAME.size:end]
    if zlib.crc32(data[offset + 4:offset + 8] + link + payload) != crc:
        return "frame fails its checksum"
    if _chain(chain, payload) != link:
        return "frame breaks the hash chain"
    return None


def _valid_frame_after(data: bytes, start: int) -> bool:
    """Whether a frame that passes its checksum starts anywhere at or after ``start`` (then the damage before it is not
    a torn tail but corruption in the middle)."""
    magic = struct.pack("<I", FRAME_MAGIC)
    at = data.find(magic, start)
    while at != -1:
        if at + _FRAME.size <= len(data):
            _, length, crc, link = _FRAME.unpack_from(data, at)
            end = at + _FRAME.size + length
            if length % RECORD.itemsize == 0 and end <= len(data) and \
                    zlib.crc32(data[at + 4:at + 8] + link + data[at + _FRAME.size:end]) == crc:
                return True
        at = data.find(magic, at + 1)
    return False


# -- replay -------------------------------------------------------------------------------------------------------------


@attrs.frozen
class Replay:
    events: int  # records in the log
    verified: int  # records re-run with an identical status and state digest, from the first
    divergence: dict | None  # the first record that differs: index, step, kind, logged and replayed digests
    gap: dict | None  # the first record after refused ones (lost > 0): replay cannot go past it
    missing: tuple[str, ...] = ()  # what the log lacks to be the whole run (``Log.missing``): identical so far only
    # per component the log records ("tuner", "selector", "executor"): (decisions re-run identical, decisions logged)
    components: dict = attrs.field(factory=dict)

    @property
    def identical(self) -> bool:
        return self.verified == self.events


def replay(path, policy=None) -> Replay:
    """Rebuild the tuner, the selector and the executor the log records from its configs, seeds and policy, re-run
    every logged event with its logged inputs, and check that each decision (status and state digest; a selector's
    arm too) is bit-identical to the logged one. ``policy`` (an executor policy source, see ``load_policy``) replays
    the executor under another policy: the first decision it changes is the divergence. Raises ``LogIncompatible``
    for a log written under another state layout (each record's digest covers the state, so none could match)."""
    return replay_log(read_log(path), policy)


_EXECUTOR_KINDS = {audit_kernels.OFFER, audit_kernels.PROPOSE, audit_kernels.APPLY, audit_kernels.OBSERVE,
                   audit_kernels.SNAPBACK, audit_kernels.KILL, audit_kernels.RESUME, audit_kernels.VARIANTS}
_DECISIONS = {"tuner": (audit_kernels.ASK, audit_kernels.TELL, audit_kernels.STEP),
              "selector": (bandit_audit.SEL_UPDATE, bandit_audit.SEL_REWARD, bandit_audit.SEL_CHOICE,
                           bandit_audit.SEL_ARMS),
              "executor": tuple(sorted(_EXECUTOR_KINDS))}
_GUARD_REPLAY = entry_point(audit_kernels.guard_replay)
_GUARD_DIGEST = entry_point(audit_kernels.guard_record_digest)


def _rebuilt_executor(log: Log, policy):
    """The executor the log's first header describes, under ``policy`` (or the logged one), fresh."""
    from arqon.catalog import in_memory
    from arqon.executor import Executor
    from arqon.policy import load_policy

    header = log.header
    tuner = arqon.Tuner(load_config(header["config"])) if header.get("config") is not None else None
    catalog = header.get("catalog")
    source = policy if policy is not None else header["policy"]
    return Executor(load_policy(source), tuner,
                    None if catalog is None else in_memory(catalog["name"], catalog["variants"], catalog["scope"]))


def _replay_executor(log: Log, policy) -> tuple[int, np.ndarray]:
    """Re-run the executor's decisions: the index of the first record not verified (len(records) when all were) and
    the replayed executor state."""
    from arqon.executor import _SET_VARIANTS
    from arqon.kernels import guard as g

    records, n = log.records, len(log.records)
    executor = _rebuilt_executor(log, policy)
    state = executor.state
    offered = np.zeros(len(executor.names))
    metrics = np.full(g.guard_matrix(state).shape[1], np.nan)
    i = 0
    while True:
        i = _GUARD_REPLAY(state, records, i, n, offered, metrics)
        if i >= n or records[i]["kind"] != audit_kernels.VARIANTS or records[i]["lost"] != 0:
            return i, state
        r = records[i]
        if not (r["step"] == -1 and r["status"] == 0):  # the catalog in force at the start changes nothing
            after = i + 1  # the segment naming the new approved set starts after the decision's LIVE records
            while after < n and records[after]["kind"] == audit_kernels.LIVE:
                after += 1
            if after not in log.starts:
                return (n if after == n else i), state  # a log cut there (a crash before that segment): as far
                # as it goes, identical; the log is incomplete, which replay reports
            catalog = log.header_at(after).get("catalog") or {}
            variants, allowed = catalog.get("variants", []), set(catalog.get("allowed", []))
            slots = int(g.guard_header(state)["slots"])
            if not allowed or len(variants) > slots:
                return i, state
            mask = np.array([float(k < len(variants) and variants[k] in allowed) for k in range(slots)])
            known_good = executor.policy.variant.known_good
            fallback = variants.index(known_good if known_good in allowed else
                                      next(v for v in variants if v in allowed))
            if _SET_VARIANTS(state, mask, fallback, int(r["step"])) != r["status"]:
                return i, state
        if _GUARD_DIGEST(state) != r["digest"]:
            return i, state
        i += 1


def replay_log(log: Log, policy=None) -> Replay:
    """``replay`` of a log already read (``read_log``): its records are re-run as they are."""
    path = log.segments[0] if log.segments else "log"
    records = log.records
    n = len(records)
    verified, state = n, None
    stops = {}

    def incompatible(layout, here):
        written = f"state layout {layout}" if layout else "an older state layout (not recorded in the log)"
        return LogIncompatible(f"{path}: written by arqon {log.header.get('library', '?')} under {written}; this arqon "
                               f"{arqon.__version__} uses {here}, so its decisions cannot be re-run bit for "
                               "bit: replay it with the arqon that wrote it")

    if log.header.get("config") is not None:
        tuner = arqon.Tuner(load_config(log.header["config"]))
        layout, here = log.header.get("state_layout"), state_layout(tuner.state)
        if layout != here:
            raise incompatible(layout, here)
        verified = stops["tuner"] = audit_kernels.audit_replay(tuner.state, records, n)
        state, digest = tuner.state, audit_kernels.state_digest
    if log.header.get("selector") is not None:
        from arqon.selector import Selector

        selector = Selector(log.header["selector"])
        layout, here = log.header.get("selector_layout"), selector_layout()
        if layout != here:
            raise incompatible(layout, here)
        checked = bandit_audit.selector_replay(selector.state, records, n)
        while checked < n and records[checked]["kind"] == bandit_audit.SEL_ARMS and records[checked]["lost"] == 0:
            if checked + 1 not in log.starts:  # the segment naming the new arms must start right after it
                checked += checked + 1 == n  # unless the log ends there (a crash before that segment): verified
                break
            grown = Selector(log.header_at(checked + 1)["selector"])
            if len(grown.names) != records[checked]["value"]:
                break
            try:
                bandit_kernels.extend_bandit_state(selector.state, grown.state)
            except ValueError:
                break
            selector = grown
            if bandit_audit.bandit_digest(grown.state) != records[checked]["digest"]:
                break
            checked += 1 + bandit_audit.selector_replay(selector.state, records[checked + 1:], n - checked - 1)
        stops["selector"] = checked
        if checked < verified:
            verified, state, digest = checked, selector.state, bandit_audit.bandit_digest
    if log.header.get("policy") is not None:
        checked, guard_state = _replay_executor(log, policy)
        stops["executor"] = checked
        if checked < verified:
            verified, state, digest = checked, guard_state, _GUARD_DIGEST
    first = min(stops, key=stops.get) if stops else None  # the component whose replay stopped first
    kinds = records["kind"]
    components = {name: (int(np.isin(kinds[:stop], _DECISIONS[name]).sum()),
                         int(np.isin(kinds, _DECISIONS[name]).sum())) for name, stop in stops.items()}
    divergence = gap = None
    if verified < n:
        r = records[verified]
        where = {"index": int(verified), "step": int(r["step"]), "kind": KINDS.get(int(r["kind"]), int(r["kind"]))}
        if r["lost"] != 0:
            gap = {**where, "lost": int(r["lost"])}
        else:
            divergence = {**where, "component": first, "logged_status": int(r["status"]),
                          "logged_flags": flag_names(int(r["kind"]), int(r["status"])),
                          "logged_digest": f"{int(r['digest']):016x}", "replayed_digest": f"{int(digest(state)):016x}"}
            if first == "executor" and int(r["kind"]) in _EXECUTOR_KINDS:  # the flags the replayed decision returned
                from arqon.kernels.guard import guard_header

                replayed = int(guard_header(state)["last_flags"])
                divergence |= {"replayed_status": replayed, "replayed_flags": flag_names(int(r["kind"]), replayed)}
    return Replay(n, int(verified), divergence, gap, log.missing, components)


_TUNER_KINDS = {audit_kernels.ASK, audit_kernels.TELL, audit_kernels.STEP, audit_kernels.REOPEN,
                bandit_audit.SEL_UPDATE, bandit_audit.SEL_REWARD, bandit_audit.SEL_CHOICE, bandit_audit.SEL_ARMS}


def flag_names(kind: int, status: int) -> str:
    """A record's status as the names of its flags, joined by ``|`` ("" for none): the tuner's and selector's
    ``Status`` for their records, the executor's ``Flags`` (reasons and events) for its decisions, "" for the
    kinds whose status is an index (LIVE, METRIC, DRIFT's direction, the selector's inputs, LIFECYCLE)."""
    if kind in _TUNER_KINDS:
        from arqon.status import Status as flags
    elif kind in _EXECUTOR_KINDS:
        from arqon.executor import Flags as flags
    else:
        return ""
    return "|".join(f.name for f in flags if f.value and status & f.value == f.value)


def record_dicts(records: np.ndarray, start: int = 0, names: Names | None = None):
    """Each record as a plain dict (index, step, kind, value, status, digest as hex, lost, and ``flags``: the status's
    flag names); with ``names`` (``Log.names()``) ``name`` says what a record's index refers to (a LIVE record's
    parameter, a METRIC or selector-metric record's metric), a selector choice names its arm (``arm``), a LIVE
    record of the variant column its variant (``variant``), and a LIFECYCLE record its build (``variant``) and
    ``transition`` (e.g. ``approved -> retired``)."""
    arms = names.arms if names is not None else None
    variants = names.variants if names is not None else None
    indexed = {} if names is None else {audit_kernels.LIVE: names.params, audit_kernels.PROPOSAL: names.params,
                                        audit_kernels.OFFERED: names.params, audit_kernels.METRIC: names.metrics,
                                        bandit_audit.SEL_METRIC: names.selector_metrics}
    for i, r in enumerate(records.tolist(), start):
        _, step, value, digest, kind, status, lost = r
        row = {"index": i, "step": step, "kind": KINDS.get(kind, kind), "value": None if value != value else value,
               "status": status, "flags": flag_names(kind, status), "digest": f"{digest:016x}", "lost": lost}
        labels = indexed.get(kind)
        if labels is not None:
            row["name"] = labels[status] if 0 <= status < len(labels) else None
        if arms is not None and kind == bandit_audit.SEL_CHOICE and 0 <= value < len(arms):
            row["arm"] = arms[int(value)]
        elif (variants is not None and kind in (audit_kernels.LIVE, audit_kernels.OFFERED)
              and status == names.variant_column and 0 <= value < len(variants)):
            row["variant"] = variants[int(value)]
        elif kind == audit_kernels.LIFECYCLE and names is not None and 0 <= status < 16:
            row["variant"] = names.builds.get(digest, "?")
            row["transition"] = f"{LIFECYCLES[status // 4]} -> {LIFECYCLES[status % 4]}"
        yield row
