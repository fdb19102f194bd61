"""Audit kernels: every tuner decision becomes one fixed record in an audit ring, with a digest of the tuner's
decision state after it, so a replay can check every decision bit for bit.

The audit ring is a ``ring`` ring (same header, same push/drain protocol) whose records are ``AUDIT_RECORD``s. It should
be created ``DROP_NEWEST``: a full ring refuses the record (the hot path never waits), the ring counts it in ``dropped``,
and the next record that gets in carries the count in ``lost``, so the gap is recorded where it happened (when none
gets in, the log writer records a LOST record).
"""

import numba
import numpy as np
from numba import types as t

from ._jit import borrow, kernel, shares_memory, view_at
from ._status import BAD_STATE, DROPPED, OK, REOPENED, WAITING
from .api import ask, open_state, reopen, step, tell
from .guard import (APPLIED, F8, GUARD_HEADER, GUARD_HEADER_BYTES, ROLLED_BACK, guard_apply, guard_kill, guard_observe,
                    guard_offer, guard_propose, guard_resume, guard_snapback, open_guard)
from .stats import F8 as TEL_STATE_TYPE, metrics_of, tel_of
from .telemetry import tune_from_window, window_stat
from .ring import RECORD_WORDS, RING_TYPE, _drain, begin_record, end_record, open_ring, ring_header_of, slots
from .state import BEST, DELTA, GRAD, HEADER, HEADER_BYTES, STATE_TYPE, THETA, X

assert (X, THETA, DELTA, GRAD) == (0, 1, 2, 3) and HEADER_BYTES % 64 == 0  # state_digest reads them as one run

# record kinds
ASK, TELL, STEP = 1, 2, 3  # tuner events: replay re-runs them
LOST = 4  # written by the log writer, not a kernel: the ring refused records and no later record says so
# safety-executor decisions (status: the guard kernel's flags, reasons and events; value: the generation after; digest:
# of the live snapshot, the phase and the generation). Their inputs are on record before them (OFFERED, METRIC; an
# operator's call is the record itself, its step the clock): ``guard_replay`` re-runs them.
OFFER, PROPOSE, APPLY, OBSERVE, SNAPBACK, KILL, RESUME = 5, 6, 7, 8, 9, 10, 11
# a step from a telemetry window: DRIFT (the objective's detector found it worse: value = detections so far, status =
# +1 rise / -1 fall) and REOPEN (exploration re-opened; replay re-applies it), then the STEP with the window's value
DRIFT, REOPEN = 12, 13
# values for reports (replay passes over them): LIVE, one per parameter (status = its index, value = the live value)
# after the executor flipped its snapshot; METRIC, one per observed metric (status = its index, value; NaN: no data)
LIVE, METRIC = 14, 15
# catalog variants (replay passes over them; the header of the segment the log starts right after them names what they
# refer to): LIFECYCLE, one per lifecycle transition a newer catalog brings (value = the build's variant index, NaN for
# one without; status = FROM * 4 + TO, each 0 absent, 1 candidate, 2 approved, 3 retired), then VARIANTS, the executor's
# decision to take the new approved set (as OFFER: status = flags, value = generation, digest of the live snapshot)
LIFECYCLE, VARIANTS = 22, 23
# the tuner's proposal after an ask or step, for reports of a run without an executor (``AuditLog(proposals=True)``;
# replay passes over them): one per parameter, status = its index, value; in force from the step after
PROPOSAL = 25
# the vector an OFFER or PROPOSE decided on (the executor's input), one per column before the decision: status = its
# index, value. With them and the METRIC records before each OBSERVE, replay re-runs every executor decision.
OFFERED = 26

AUDIT_RECORD = np.dtype([
    ("seq", np.uint64),  # the ring's sequence stamp
    ("step", np.int64),  # the caller's step
    ("value", np.float64),  # the told value (TELL, STEP); NaN for ASK
    ("digest", np.uint64),  # state_digest after the event
    ("kind", np.int32),
    ("status", np.int32),  # the kernel's status flags
    ("lost", np.int64),  # records the ring refused before this one, in total
], align=True)
assert AUDIT_RECORD.itemsize == RECORD_WORDS * 8
AUDIT_TYPE = numba.from_dtype(AUDIT_RECORD)[::1]

_PRIME = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@numba.njit(inline="always")
def _mix(x):
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@kernel(t.uint64(STATE_TYPE), inline=True)
def state_digest(state):
    """A 64-bit digest of everything in the tuner state that changes: the header's words (counters, gains, the
    measurement of the pair in flight, the best value, the RNG words) and the proposal, theta, perturbation, gradient
    and best rows, by their bits. Equal states give equal digests; any differing bit almost surely not.
    Allocates: nothing."""
    h = view_at(state.ctypes.data, 1, HEADER)  # the caller opened the state
    d = h[0]["d"]
    words = view_at(h.ctypes.data, HEADER_BYTES // 8 + 4 * d, np.uint64)  # header, then rows X, THETA, DELTA, GRAD
    best = view_at(h.ctypes.data + HEADER_BYTES + BEST * d * 8, d, np.uint64)
    # eight independent lanes (the header's words are a multiple of 8): multiplies overlap instead of chaining
    l0, l1, l2, l3 = _PRIME, _M1, _M2, _PRIME ^ _M1
    l4, l5, l6, l7 = _PRIME ^ _M2, _M1 ^ _M2, _PRIME + _M1, _M1 + _M2
    n8 = words.shape[0] & ~7
    for i in range(0, n8, 8):
        l0 = (l0 ^ words[i]) * _PRIME
        l1 = (l1 ^ words[i + 1]) * _PRIME
        l2 = (l2 ^ words[i + 2]) * _PRIME
        l3 = (l3 ^ words[i + 3]) * _PRIME
        l4 = (l4 ^ words[i + 4]) * _PRIME
        l5 = (l5 ^ words[i + 5]) * _PRIME
        l6 = (l6 ^ words[i + 6]) * _PRIME
        l7 = (l7 ^ words[i + 7]) * _PRIME
    for i in range(n8, words.shape[0]):
        l0 = (l0 ^ words[i]) * _M1
    for i in range(0, d - 1, 2):
        l1 = (l1 ^ best[i]) * _M2
        l2 = (l2 ^ best[i + 1]) * _M2
    if d & 1:
        l3 = (l3 ^ best[d - 1]) * _M2
    return _mix(_mix(_mix(l0 ^ _mix(l1)) ^ _mix(l2 ^ _mix(l3))) ^ _mix(_mix(l4 ^ _mix(l5)) ^ _mix(l6 ^ _mix(l7))))


@numba.njit(inline="always")
def _log_event(audit, kind, step_, value, digest, status):
    """Push one AUDIT_RECORD; returns 0 or DROPPED."""
    slot = begin_record(audit)
    if slot < 0:
        return DROPPED
    g = borrow(audit)[0]
    r = slots(audit, AUDIT_RECORD)
    r[slot]["step"] = step_
    r[slot]["value"] = value
    r[slot]["digest"] = digest
    r[slot]["kind"] = np.int32(kind)
    r[slot]["status"] = np.int32(status)
    r[slot]["lost"] = g["dropped"]
    end_record(audit, slot)
    return 0


@numba.njit(inline="always")
def _log(state, audit, kind, step_, value, status):
    return _log_event(audit, kind, step_, value, state_digest(state), status)


@kernel(t.int64(STATE_TYPE, RING_TYPE, t.float64, t.int64))
def audited_step(state, audit, value, step_):
    """``step`` then one STEP record (value, status, digest after). Mutates: state, audit ring. Allocates: nothing.
    Returns: the step's status, with DROPPED when the audit ring was full (the decision still happened)."""
    if open_state(state) != OK or open_ring(audit) != OK:
        return BAD_STATE
    audit = ring_header_of(audit)
    status = step(state, value)
    return status | _log(state, audit, STEP, step_, value, status)


@kernel(t.int64(STATE_TYPE, RING_TYPE, t.float64, t.int64))
def audited_tell(state, audit, value, step_):
    """``tell`` then one TELL record. Mutates, allocates and returns as ``audited_step``."""
    if open_state(state) != OK or open_ring(audit) != OK:
        return BAD_STATE
    audit = ring_header_of(audit)
    status = tell(state, value)
    return status | _log(state, audit, TELL, step_, value, status)


@kernel(t.int64(STATE_TYPE, RING_TYPE, t.int64))
def audited_ask(state, audit, step_):
    """``ask`` then one ASK record. Mutates, allocates and returns as ``audited_step``."""
    if open_state(state) != OK or open_ring(audit) != OK:
        return BAD_STATE
    audit = ring_header_of(audit)
    status = ask(state)
    return status | _log(state, audit, ASK, step_, np.nan, status)


@kernel(t.int64(STATE_TYPE, AUDIT_TYPE, t.int64))
def audit_replay(state, records, n):
    """Re-apply the first ``n`` records' events to ``state`` (a tuner rebuilt from the log's config and seed) and
    compare each digest and status with the logged one. Stops at a gap (``lost`` grows) or a mismatch.
    Executor records are passed over (see OFFER). Mutates: state. Allocates: nothing.
    Returns: the index of the first record not verified (n when all were; 0 for a state that does not open)."""
    if open_state(state) != OK:
        return 0
    r = borrow(records)
    reopened = False
    for i in range(n):
        if r[i]["lost"] != 0:  # records were refused before this one: what follows cannot be replayed
            return i
        kind = r[i]["kind"]
        if kind == REOPEN:  # no digest of its own: the STEP after it checks the state
            reopen(state)
            reopened = True
            continue
        if kind >= OFFER:
            continue
        if kind == STEP:
            status = step(state, r[i]["value"])
            if reopened:  # tune_from_window keeps REOPENED in the header's status, as the live run did
                view_at(state.ctypes.data, 1, HEADER)[0]["status"] = status | REOPENED
                reopened = False
        elif kind == TELL:
            status = tell(state, r[i]["value"])
        elif kind == ASK:
            status = ask(state)
        else:
            return i
        if status != r[i]["status"] or state_digest(state) != r[i]["digest"]:
            return i
    return n


@numba.njit(inline="always")
def _log_values(audit, kind, now, values, n):
    status = 0
    for i in range(n):
        status |= _log_event(audit, kind, now, values[i], np.uint64(0), i)
    return status


@numba.njit(inline="always")
def _live_row(guard_state):
    g = view_at(guard_state.ctypes.data, 1, GUARD_HEADER)[0]
    return view_at(guard_state.ctypes.data + GUARD_HEADER_BYTES + g["live"] * g["width"] * 8, g["d"], np.float64)


@numba.njit(inline="always")
def _guard_digest(guard_state):
    """The digest an executor record carries: the phase, the generation and the live snapshot's bits (the caller
    opened the state)."""
    g = view_at(guard_state.ctypes.data, 1, GUARD_HEADER)[0]
    live = view_at(guard_state.ctypes.data + GUARD_HEADER_BYTES + g["live"] * g["width"] * 8, g["d"], np.uint64)
    digest = np.uint64(g["phase"]) * _PRIME + np.uint64(g["generation"])
    for i in range(g["d"]):
        digest = (digest ^ live[i]) * _PRIME
    return _mix(digest)


@kernel(t.int64(RING_TYPE, F8, t.int64, t.int64, t.int64))
def audit_guard(audit, guard_state, kind, now, flags):
    """One executor record: ``kind`` (OFFER ... RESUME), the call's ``flags`` at step ``now``, the generation after it
    and a digest of the live snapshot; when ``flags`` say the snapshot flipped (APPLIED, ROLLED_BACK), then one LIVE
    record per parameter. Mutates: audit ring. Allocates: nothing. Returns: OK, DROPPED, or BAD_STATE (nothing
    logged) for an executor state ``open_guard`` refuses."""
    if open_guard(guard_state) != OK or open_ring(audit) != OK:
        return BAD_STATE
    audit = ring_header_of(audit)
    g = view_at(guard_state.ctypes.data, 1, GUARD_HEADER)[0]
    status = _log_event(audit, kind, now, np.float64(g["generation"]), _guard_digest(guard_state), flags)
    if flags & (APPLIED | ROLLED_BACK):
        status |= _log_values(audit, LIVE, now, _live_row(guard_state), g["d"])
    return status


@kernel(t.uint64(F8))
def guard_record_digest(guard_state):
    """The digest an executor record made now would carry (0 for a state ``open_guard`` refuses).
    Allocates: nothing."""
    if open_guard(guard_state) != OK:
        return np.uint64(0)
    return _guard_digest(guard_state)


@kernel(t.int64(F8, AUDIT_TYPE, t.int64, t.int64, F8, F8))
def guard_replay(guard_state, records, start, n, offered, metrics):
    """Re-run the executor decisions among ``records[start:n]`` on ``guard_state`` (an executor rebuilt from the log's
    policy), each with its inputs as logged: the OFFERED vector before an OFFER or PROPOSE, the METRIC values before an
    OBSERVE (a metric not recorded since the last OBSERVE is NaN), the step as the clock; compare each decision's flags
    and digest with the logged ones, and each LIVE record with the replayed live snapshot. ``offered`` (>= d words)
    and ``metrics`` (the guard matrix's width) are work space. Other components' records are passed over.
    Mutates: guard_state, offered, metrics. Allocates: nothing. Returns: the index of the first record not verified
    (a gap, a mismatch, or a VARIANTS record, which the caller re-runs from the next segment's header); n when all
    were; ``start`` for a state or work space that does not fit."""
    if open_guard(guard_state) != OK:
        return start
    g = view_at(guard_state.ctypes.data, 1, GUARD_HEADER)[0]
    d = g["d"]
    if offered.shape[0] < d or metrics.shape[0] < g["width"] or shares_memory(guard_state, offered) or \
            shares_memory(guard_state, metrics):
        return start
    r = borrow(records)
    for j in range(metrics.shape[0]):
        metrics[j] = np.nan
    for i in range(start, n):
        if r[i]["lost"] != 0:
            return i
        kind = r[i]["kind"]
        if kind == OFFERED:
            if not 0 <= r[i]["status"] < d:
                return i
            offered[r[i]["status"]] = r[i]["value"]
            continue
        if kind == METRIC:
            if not 0 <= r[i]["status"] < metrics.shape[0]:
                return i
            metrics[r[i]["status"]] = r[i]["value"]
            continue
        if kind == LIVE:
            k = r[i]["status"]
            if not 0 <= k < d:
                return i
            live, logged = _live_row(guard_state)[k], r[i]["value"]
            if live != logged and not (live != live and logged != logged):  # NaN equals NaN here
                return i
            continue
        now = r[i]["step"]
        if kind == OFFER:
            flags = guard_offer(guard_state, offered[:d], now)
        elif kind == PROPOSE:
            flags = guard_propose(guard_state, offered[:d], now)
        elif kind == APPLY:
            flags = guard_apply(guard_state, now)
        elif kind == OBSERVE:
            flags = guard_observe(guard_state, metrics, now)
            for j in range(metrics.shape[0]):
                metrics[j] = np.nan
        elif kind == SNAPBACK:
            flags = guard_snapback(guard_state, now)
        elif kind == KILL:
            flags = guard_kill(guard_state, now)
        elif kind == RESUME:
            flags = guard_resume(guard_state, now)
        elif kind == VARIANTS:
            return i
        else:
            continue
        if flags != r[i]["status"] or _guard_digest(guard_state) != r[i]["digest"]:
            return i
    return n


@kernel(t.int64(RING_TYPE, t.int32, t.int64, t.float64, t.uint64, t.int32))
def audit_event(audit, kind, now, value, digest, status):
    """One record of ``kind`` at step ``now`` with the given fields (the shell's records, e.g. LIFECYCLE).
    Mutates: audit ring. Allocates: nothing. Returns: OK, DROPPED, or BAD_STATE (nothing logged)."""
    if open_ring(audit) != OK:
        return BAD_STATE
    return _log_event(ring_header_of(audit), kind, now, value, digest, status)


@kernel(t.int64(RING_TYPE, t.int64, t.int64, F8, t.int64))
def audit_values(audit, kind, now, values, n):
    """``n`` records of ``kind`` (LIVE or METRIC) at step ``now``: status = index, value = ``values[index]``.
    Mutates: audit ring. Allocates: nothing. Returns: OK or DROPPED."""
    if open_ring(audit) != OK or n > values.shape[0]:
        return BAD_STATE
    return _log_values(ring_header_of(audit), kind, now, values, n)


@kernel(t.int64(STATE_TYPE, TEL_STATE_TYPE, RING_TYPE, RING_TYPE, t.int64, t.int64, t.float64, t.int64, t.int64))
def audited_tune_from_window(state, tel, ring, audit, metric, stat, q, min_samples, step_):
    """``telemetry.tune_from_window``, recorded: when it steps, a DRIFT and a REOPEN record if exploration re-opened,
    then a STEP record with the window's value. Mutates: state, tel, ring, audit ring. Allocates: nothing.
    Returns: as ``tune_from_window``, with DROPPED when the audit ring refused a record."""
    if open_ring(audit) != OK:
        return BAD_STATE
    audit = ring_header_of(audit)
    value = window_stat(tel, metric, stat, q)  # what the step below tells (the window is not touched before it)
    status = tune_from_window(state, tel, ring, metric, stat, q, min_samples, step_)
    if status & (WAITING | BAD_STATE):
        return status
    logged = 0
    if status & REOPENED:
        rec = metrics_of(tel_of(tel))[metric]
        logged |= _log_event(audit, DRIFT, step_, np.float64(rec["drifts"]), np.uint64(0), rec["drift_sign"])
        logged |= _log_event(audit, REOPEN, step_, np.nan, np.uint64(0), 0)
    step_status = status & ~REOPENED
    return status | logged | _log_event(audit, STEP, step_, value, state_digest(state), step_status)


audit_drain = kernel(t.int64(RING_TYPE, AUDIT_TYPE))(_drain)
audit_drain.__doc__ = ("``ring_drain`` for an audit ring: moves AUDIT_RECORDs into ``out``; returns how many "
                       "(-BAD_STATE: not a whole ring).")
