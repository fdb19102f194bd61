"""Audit kernels of the bandit selector: each decision becomes fixed ``AUDIT_RECORD``s in an audit ring (``audit.py``),
its inputs first, so that a replay re-runs it bit for bit.

Before a decision: one SEL_MASK record per 64 arms when the mask is not all-eligible (``digest`` = the mask's bits,
``status`` = which 64), one SEL_CONTEXT per context entry and one SEL_METRIC per metric (``status`` = index, ``value``).
Then SEL_UPDATE (``value`` = reward; an update alone) or SEL_REWARD (the reward of a step) and SEL_CHOICE (``value`` = the
arm chosen, ``status`` = the selection's flags; a step when a SEL_REWARD precedes it). Records that change the state
carry ``bandit_digest`` of it after the call.
"""

import numpy as np
from numba import types as t

from ._jit import borrow, kernel, view_at
from ._status import BAD_STATE, DRIFT, OK
from .audit import AUDIT_TYPE, _log_event, _mix, _M1, _M2, _PRIME
from .bandit import (
    BANDIT_HEADER, BANDIT_HEADER_BYTES, BANDIT_HEADER_WORDS, BASE_ROWS, F8, MASK, N, NOISE_SS, S, _blocks, _header,
    open_bandit, select, step, update,
)
from .ring import RING_HEADER_TYPE, RING_TYPE, open_ring, ring_header_of

SEL_MASK, SEL_CONTEXT, SEL_METRIC, SEL_UPDATE, SEL_REWARD, SEL_CHOICE = 16, 17, 18, 19, 20, 21
SEL_ARMS = 24  # the selector grew new arms (value = arms after, digest of the grown state); replay stops there


@kernel(t.uint64(F8), inline=True)
def bandit_digest(state):
    """A 64-bit digest of an opened selector state's header (counters, the arm out, the RNG words, the last flags),
    every arm's plays and reward sum, the linear arms' residual sums of squares, the sliding window and the linear
    models, by their bits (the GLR histories and the policies' caches follow from these). Allocates: nothing."""
    g = view_at(state.ctypes.data, 1, BANDIT_HEADER)[0]
    k = g["k"]
    head = view_at(state.ctypes.data, BANDIT_HEADER_WORDS, np.uint64)
    rows = view_at(state.ctypes.data + BANDIT_HEADER_BYTES + N * k * 8, (S + 1 - N) * k, np.uint64)
    noise = view_at(state.ctypes.data + BANDIT_HEADER_BYTES + NOISE_SS * k * 8, k, np.uint64)
    blocks = _blocks(k, g["d"], g["window"], g["history"], g["n_cons"])
    vector = state.ctypes.data + BANDIT_HEADER_BYTES + (BASE_ROWS + 3 * g["n_metrics"]) * k * 8
    window = view_at(vector, blocks[1], np.uint64)
    models = view_at(vector + blocks[2] * 8, blocks[3] - blocks[2], np.uint64)
    l0, l1, l2, l3 = _PRIME, _M1, _M2, _PRIME ^ _M1
    for i in range(0, BANDIT_HEADER_WORDS, 4):  # the header is whole 64-byte lines: a multiple of 4 words
        l0 = (l0 ^ head[i]) * _PRIME
        l1 = (l1 ^ head[i + 1]) * _PRIME
        l2 = (l2 ^ head[i + 2]) * _PRIME
        l3 = (l3 ^ head[i + 3]) * _PRIME
    for i in range(rows.shape[0]):
        l0 = (l0 ^ rows[i]) * _M1
    for i in range(k):
        l3 = (l3 ^ noise[i]) * _M2
    for i in range(window.shape[0]):
        l1 = (l1 ^ window[i]) * _M2
    for i in range(models.shape[0]):
        l2 = (l2 ^ models[i]) * _M1
    return _mix(_mix(l0 ^ _mix(l1)) ^ _mix(l2 ^ _mix(l3)))


@kernel(t.int64(RING_HEADER_TYPE, MASK, F8, F8, t.int64), inline=True)
def _log_inputs(audit, eligible, context, metrics, step_):
    status = OK
    k = eligible.shape[0]
    for w in range(0, k, 64):
        bits = np.uint64(0)
        for j in range(min(64, k - w)):
            if eligible[w + j]:
                bits |= np.uint64(1) << np.uint64(j)
        if bits != (np.uint64(0xFFFFFFFFFFFFFFFF) >> np.uint64(64 - min(64, k - w))):
            status |= _log_event(audit, SEL_MASK, step_, 0.0, bits, w // 64)
    for i in range(context.shape[0]):
        status |= _log_event(audit, SEL_CONTEXT, step_, context[i], np.uint64(0), i)
    for i in range(metrics.shape[0]):
        status |= _log_event(audit, SEL_METRIC, step_, metrics[i], np.uint64(0), i)
    return status


@kernel(t.int64(F8, RING_TYPE, MASK, F8, t.int64))
def audited_select(state, audit, eligible, context, step_):
    """``select``, recorded (its mask and context, then SEL_CHOICE). Mutates: state, audit ring. Allocates: nothing.
    Returns: as ``select`` (a refused selection is not recorded); a full audit ring drops records, never the call."""
    if open_ring(audit) != OK:
        return -BAD_STATE
    arm = select(state, eligible, context)
    if arm < 0:
        return arm
    audit = ring_header_of(audit)
    _log_inputs(audit, eligible, context, state[:0], step_)
    _log_event(audit, SEL_CHOICE, step_, np.float64(arm), bandit_digest(state), _header(state)[0]["status"])
    return arm


@kernel(t.int64(F8, RING_TYPE, t.int64, t.float64, F8, t.int64))
def audited_update(state, audit, arm, reward, metrics, step_):
    """``update``, recorded (its metrics, then SEL_UPDATE). Mutates, allocates and returns as ``update``; a refused
    update is not recorded."""
    if open_ring(audit) != OK:
        return BAD_STATE
    status = update(state, arm, reward, metrics)
    if status & ~DRIFT == OK:  # OK or DRIFT: the update happened
        audit = ring_header_of(audit)
        for i in range(metrics.shape[0]):
            _log_event(audit, SEL_METRIC, step_, metrics[i], np.uint64(0), i)
        _log_event(audit, SEL_UPDATE, step_, reward, bandit_digest(state), status)
    return status


@kernel(t.int64(F8, RING_TYPE, t.float64, F8, MASK, F8, t.int64))
def audited_step(state, audit, reward, metrics, eligible, context, step_):
    """``step``, recorded (its inputs, SEL_REWARD, SEL_CHOICE). Mutates, allocates and returns as ``step``."""
    if open_ring(audit) != OK:
        return -BAD_STATE
    arm = step(state, reward, metrics, eligible, context)
    if arm < 0:
        return arm
    audit = ring_header_of(audit)
    _log_inputs(audit, eligible, context, metrics, step_)
    _log_event(audit, SEL_REWARD, step_, reward, np.uint64(0), 0)
    _log_event(audit, SEL_CHOICE, step_, np.float64(arm), bandit_digest(state), _header(state)[0]["status"])
    return arm


@kernel(t.int64(F8, AUDIT_TYPE, t.int64))
def selector_replay(state, records, n):
    """Re-run the selector records among the first ``n`` (others are passed over) on ``state``, a selector rebuilt
    from the log's config and seed, checking each SEL_CHOICE's arm, flags and digest and each SEL_UPDATE's flags and
    digest. Stops at a gap (``lost``), a mismatch or a SEL_ARMS record. Mutates: state. Allocates: the replay's input
    buffers. Returns: the index of the first record not verified (n when all were; 0 for a state that does not open)."""
    if open_bandit(state) != OK:
        return 0
    g = _header(state)[0]
    k, d, n_metrics = g["k"], g["d"], g["n_metrics"]
    eligible = np.ones(k, np.bool_)
    context, metrics = np.zeros(d), np.zeros(n_metrics)
    r = borrow(records)
    reward, rewarded, masked = 0.0, False, False
    for i in range(n):
        if r[i]["lost"] != 0:
            return i
        kind = r[i]["kind"]
        j = r[i]["status"]
        if kind == SEL_MASK:
            if j < 0 or 64 * j >= k:
                return i
            for b in range(min(64, k - 64 * j)):
                eligible[64 * j + b] = (r[i]["digest"] >> np.uint64(b)) & np.uint64(1) == np.uint64(1)
            masked = True
        elif kind == SEL_CONTEXT or kind == SEL_METRIC:
            target = context if kind == SEL_CONTEXT else metrics
            if j < 0 or j >= target.shape[0]:
                return i
            target[j] = r[i]["value"]
        elif kind == SEL_REWARD:
            reward, rewarded = r[i]["value"], True
        elif kind == SEL_ARMS:  # the caller grows the state (the next segment's header names the arms) and goes on
            return i
        elif kind == SEL_UPDATE:
            status = update(state, g["last"], r[i]["value"], metrics)
            if status != r[i]["status"] or bandit_digest(state) != r[i]["digest"]:
                return i
        elif kind == SEL_CHOICE:
            arm = step(state, reward, metrics, eligible, context) if rewarded else select(state, eligible, context)
            if arm != r[i]["value"] or g["status"] != r[i]["status"] or bandit_digest(state) != r[i]["digest"]:
                return i
            rewarded = False
            if masked:
                eligible[:] = True
                masked = False
    return n


@kernel(t.int64(F8, RING_TYPE, t.int64))
def audited_arms(state, audit, step_):
    """Record that ``state`` is a selector grown to new arms (SEL_ARMS: value = its arms, digest = ``bandit_digest``).
    Mutates: audit ring. Allocates: nothing. Returns: OK, DROPPED, or BAD_STATE (nothing logged)."""
    if open_bandit(state) != OK or open_ring(audit) != OK:
        return BAD_STATE
    arms = np.float64(_header(state)[0]["k"])
    return _log_event(ring_header_of(audit), SEL_ARMS, step_, arms, bandit_digest(state), 0)
