"""Tier-1 safety executor: validate, clip or reject, stage into a double-buffered snapshot, flip, observe, roll back.

The executor state is one float64 buffer like the tuner's: a header record (magic, layout id, words, sizes, counters)
and a (GUARD_ROWS, width) matrix; every kernel opens it with ``open_guard`` and returns BAD_STATE, touching nothing,
for anything else. Two rows are the snapshots; ``live`` in the header says which one is in force. A write goes to
the other row only, between two increments of ``seq`` (odd while writing), then one store flips ``live``: a reader that
reads ``seq``, the live row and ``seq`` again, and sees the same even number twice, has a consistent snapshot.
Time is the caller's integer step ``now``; nothing here reads a clock. Every kernel returns bit flags: reasons
(why a proposal was clipped or rejected) in the low bits, events (what changed) in the high bits.
"""

import math

import numba
import numpy as np
from numba import types as t

from ._jit import kernel, release_fence, shares_memory, view_at
from ._status import BAD_STATE, NONFINITE, OK  # the tuner's values: one name, one value everywhere
from .state import MAX_D, layout_id, opened_header, padded_record, page_aligned_zeros

# reasons (NONFINITE = 1 and BAD_STATE = 8 come from _status)
NOT_ALLOWED = 1 << 1  # a parameter outside the allowlist would change
OUT_OF_BOUNDS = 1 << 2
COOLDOWN = 1 << 4  # a parameter changed too recently
DWELL = 1 << 5  # the last apply was too recent (global cooldown)
RATE_LIMIT = 1 << 6
RISK_BUDGET = 1 << 7  # too many parameters would differ from known-good
HALTED = 1 << 8
SAFE_MODE = 1 << 9
REJECTED = 1 << 10  # set with at least one reason when nothing was staged
NO_CHANGE = 1 << 11  # the (clipped) proposal equals the live snapshot: nothing to stage
NOTHING_STAGED = 1 << 12  # apply with no staged candidate
MAX_DELTA = 1 << 13  # a change larger than the parameter's max delta
NOT_WHOLE = 1 << 14  # a fractional value for a whole-number parameter (an integer knob, a variant index): refused
NOT_APPROVED = 1 << 15  # a variant index that is not an approved variant's (retired, never approved, out of range)
# events
STAGED_EVENT = 1 << 16
APPLIED = 1 << 17  # a candidate went live: canary stage 0
STAGE_PASSED = 1 << 18
PROMOTED = 1 << 19  # the candidate is the new known-good
PAUSED_EVENT = 1 << 20
RESUMED_ANALYSIS = 1 << 21
SLO_BREACH = 1 << 22
CANARY_FAILED = 1 << 23
DEADLINE = 1 << 24
ROLLED_BACK = 1 << 25  # the known-good snapshot is live again
ABORTED = 1 << 26  # a staged candidate was dropped before going live
SAFE_MODE_ENTERED = 1 << 27
KILLED = 1 << 28
OPERATOR_RESUMED = 1 << 29
VARIANT_WITHDRAWN = 1 << 30  # the live, known-good or staged variant is no longer approved: known-good took over

# phases (resting states; the transient ones of the state machine happen inside one call and show as events)
KNOWN_GOOD = 0
STAGED = 1
CANARY = 2
PAUSED = 3
ROLLED_BACK_PHASE = 4
HALTED_PHASE = 5

MAGIC = 0x6172716F6E5F4732  # "arqon_G2"
RATE_MAX = 64

_FIELDS = [
    ("magic", np.int64), ("layout", np.int64), ("words", np.int64),  # MAGIC, GUARD_LAYOUT, words of the whole buffer
    ("d", np.int64), ("n_metrics", np.int64), ("n_slos", np.int64), ("n_stages", np.int64),
    ("width", np.int64), ("reject_mode", np.int64), ("phase", np.int64), ("live", np.int64), ("seq", np.int64),
    ("generation", np.int64), ("now", np.int64), ("entered", np.int64), ("stage", np.int64),
    ("stage_samples", np.int64), ("last_apply", np.int64), ("dwell", np.int64), ("rate_applies", np.int64),
    ("rate_window", np.int64), ("rate_count", np.int64), ("rate_head", np.int64), ("risk_budget", np.int64),
    ("deadline", np.int64), ("safe_mode", np.int64), ("safe_mode_after", np.int64), ("consecutive_rollbacks", np.int64),
    ("judged", np.int64), ("baseline_samples", np.int64), ("last_flags", np.int64),
    ("cooldowns", np.int64),  # 1 if any parameter has a cooldown (COOLDOWN_STEPS > 0): applies then keep UNTIL
    ("wholes", np.int64),  # 1 if any knob takes whole numbers only (WHOLE): proposals are then checked for it (the
    # variant column's index is checked as a member of the approved set, which holds whole numbers only)
    ("variant_col", np.int64),  # the column holding a variant index (-1: none); its value must be an approved slot
    ("slots", np.int64),  # variant slots (0: none): slot i is approved while m[APPROVED, i] is 1
    ("n_proposals", np.int64), ("n_rejected", np.int64), ("n_applied", np.int64), ("n_rollbacks", np.int64),
    ("n_promoted", np.int64), ("n_breaches", np.int64),
    ("judged_sense", np.float64), ("smoothing", np.float64), ("stage_sum", np.float64),
    ("apply_times", np.int64, (RATE_MAX,)),
]
GUARD_HEADER = padded_record(_FIELDS)
GUARD_HEADER_BYTES = GUARD_HEADER.itemsize
GUARD_HEADER_WORDS = GUARD_HEADER_BYTES // 8

# rows of the matrix (width = max(d, metrics, SLOs, stages))
SNAP0, SNAP1 = 0, 1  # the double-buffered live snapshot
BASELINE = 2  # known-good
LO, HI = 3, 4  # absolute bounds
MAX_STEP = 5  # largest change per apply: NO_LIMIT when none, 0 outside the allowlist
ALLOWED = 6  # 1.0 where the parameter may change
COOLDOWN_STEPS = 7
UNTIL = 8  # the parameter may change again from this step on (its last change + its cooldown)
METRICS = 9  # last observed metrics
BASE_METRICS = 10  # EMA of metrics observed while known-good is live
SLO_METRIC, SLO_OP, SLO_LIMIT, SLO_RELATIVE = 11, 12, 13, 14
STAGE_SAMPLES, STAGE_REGRESSION = 15, 16
WHOLE = 17  # 1.0 where the parameter takes whole numbers only (an integer knob, a variant index)
APPROVED = 18  # per variant slot (the first ``slots`` columns): 1.0 while that variant may be live
SCRATCH = 19  # the clipped candidate being validated
GUARD_ROWS = 20
GUARD_LAYOUT = layout_id("guard", GUARD_HEADER.descr, GUARD_HEADER.itemsize, GUARD_ROWS, RATE_MAX)
MAX_WIDTH = MAX_D  # the widest matrix a state may have

NEVER = -(2**62)
NO_LIMIT = 1e308  # max step of a parameter with no max delta (the largest round figure a float holds)
GUARD_TYPE = numba.from_dtype(GUARD_HEADER)[::1]  # the header, as the helpers take it once the state is open
F8 = t.float64[::1]  # a state as the kernels take it: the whole buffer (and proposals, metrics)


@kernel(t.int64(F8), inline=True)
def open_guard(state):
    """OK when ``state`` is a whole executor state its kernels can run on: magic, layout id, a word count equal to the
    array's size and to header + GUARD_ROWS * width, sizes within the width, ``live`` 0 or 1, the canary stage, judged
    metric and rate-limit ring within their ranges, the variant slots within the width and their column the last;
    else BAD_STATE. Reads: the header. Allocates: nothing."""
    n = state.shape[0]
    if n < GUARD_HEADER_WORDS:
        return BAD_STATE
    g = view_at(state.ctypes.data, 1, GUARD_HEADER)[0]
    w, d, n_metrics, n_stages = g["width"], g["d"], g["n_metrics"], g["n_stages"]
    bad = (g["magic"] != MAGIC) | (g["layout"] != GUARD_LAYOUT) | (g["words"] != n) | (w < 1) | (w > MAX_WIDTH)
    if bad or GUARD_HEADER_WORDS + GUARD_ROWS * w != n:
        return BAD_STATE
    bad = (d < 1) | (d > w) | (n_metrics < 0) | (n_metrics > w) | (g["n_slos"] < 0) | (g["n_slos"] > w)
    bad |= (n_stages < 0) | (n_stages > w) | (g["live"] < 0) | (g["live"] > 1) | (g["stage"] < 0)
    bad |= (g["stage"] > n_stages) | ((n_stages > 0) & ((g["judged"] < 0) | (g["judged"] >= n_metrics)))
    bad |= (g["rate_head"] < 0) | (g["rate_head"] >= RATE_MAX) | (g["rate_count"] < 0) | (g["rate_count"] > RATE_MAX)
    bad |= (g["rate_applies"] < 0) | (g["rate_applies"] > RATE_MAX)
    slots, col = g["slots"], g["variant_col"]
    bad |= (slots < 0) | (slots > w) | ((slots == 0) != (col == -1)) | ((slots > 0) & (col != d - 1))
    return BAD_STATE if bad else OK


@numba.njit(inline="always")
def _header(state):
    return view_at(state.ctypes.data, 1, GUARD_HEADER)


@numba.njit(inline="always")
def _matrix(h):
    return view_at(h.ctypes.data + GUARD_HEADER_BYTES, (GUARD_ROWS, h[0]["width"]), np.float64)


@kernel(t.void(GUARD_TYPE, t.float64[:, ::1], t.int64), inline=True)
def _stage(h, m, src):
    """Copy row ``src`` into the inactive snapshot between two increments of ``seq``.
    Mutates: the inactive snapshot, seq. Allocates: nothing."""
    g = h[0]
    inactive = 1 - g["live"]
    g["seq"] += 1
    release_fence()
    for i in range(g["d"]):
        m[inactive, i] = m[src, i]
    release_fence()
    g["seq"] += 1


@kernel(t.void(GUARD_TYPE), inline=True)
def _flip(h):
    """Make the inactive snapshot live: one store. Mutates: live, generation. Allocates: nothing."""
    g = h[0]
    g["live"] = 1 - g["live"]
    g["generation"] += 1


@kernel(t.int64(GUARD_TYPE, t.float64[:, ::1], t.int64, t.int64), inline=True)
def _roll_back(h, m, now, cause):
    """Make the known-good snapshot live (never blocked) and count the rollback. Returns: the events."""
    g = h[0]
    _stage(h, m, BASELINE)
    _flip(h)
    g["phase"] = ROLLED_BACK_PHASE
    g["entered"] = now
    g["n_rollbacks"] += 1
    g["consecutive_rollbacks"] += 1
    flags = cause | ROLLED_BACK
    if g["safe_mode_after"] > 0 and g["consecutive_rollbacks"] >= g["safe_mode_after"] and g["safe_mode"] == 0:
        g["safe_mode"] = 1
        flags |= SAFE_MODE_ENTERED
    return flags


@kernel(t.int64(GUARD_TYPE, t.float64[:, ::1], t.int64), inline=True)
def _tick(h, m, now):
    """Advance the clock and enforce the progress deadline of pending states. Returns: events."""
    g = h[0]
    if now > g["now"]:
        g["now"] = now
    phase = g["phase"]
    if (phase == STAGED or phase == CANARY or phase == PAUSED) and now - g["entered"] > g["deadline"]:
        if phase == STAGED:
            g["phase"] = KNOWN_GOOD if g["consecutive_rollbacks"] == 0 else ROLLED_BACK_PHASE
            g["entered"] = now
            return DEADLINE | ABORTED
        return _roll_back(h, m, now, DEADLINE)
    return 0


@kernel(t.int64(GUARD_TYPE, t.float64[:, ::1], F8, t.float64), inline=True)
def _reasons(h, m, proposal, t):
    """Why ``proposal`` cannot go live as it stands, at time ``t``: NONFINITE, or the union over parameters of
    OUT_OF_BOUNDS, NOT_ALLOWED, MAX_DELTA (of the proposal clipped into bounds) and COOLDOWN (of the proposal clipped
    into bounds and max delta); 0 if none. Mutates: nothing. Allocates: nothing."""
    g = h[0]
    live = g["live"]
    nonfinite = not_allowed = outside = far = cooling = False
    # booleans ORed, no branch: LLVM vectorizes the loop
    for i in range(g["d"]):
        current = m[live, i]
        proposed = proposal[i]
        lo, hi, step = m[LO, i], m[HI, i], m[MAX_STEP, i]
        allowed = m[ALLOWED, i] != 0.0
        want = min(max(proposed, lo), hi)
        far |= (abs(want - current) > step) & allowed
        want = min(max(want, current - step), current + step)
        cooling |= (t < m[UNTIL, i]) & (want != current)
        nonfinite |= not (abs(proposed) <= 1.7976931348623157e308)
        not_allowed |= ~allowed & (proposed != current)
        outside |= (proposed < lo) | (proposed > hi)
    if nonfinite:
        return NONFINITE
    return ((NOT_ALLOWED if not_allowed else 0) | (OUT_OF_BOUNDS if outside else 0) | (MAX_DELTA if far else 0)
            | (COOLDOWN if cooling else 0))


@kernel(t.boolean(GUARD_TYPE, t.float64[:, ::1], t.float64), inline=True)
def _approved(h, m, index):
    """True when ``index`` is a whole number naming an approved variant slot, or NaN (refused as NONFINITE by the
    checks that follow)."""
    slots = h[0]["slots"]
    return index != index or (index >= 0.0 and index < slots and index == math.floor(index)
                              and m[APPROVED, np.int64(index)] == 1.0)


@kernel(t.int64(GUARD_TYPE, t.float64[:, ::1], F8, t.int64), inline=True)
def _validate(h, m, proposal, now):
    """Check ``proposal`` against the policy and write the candidate to apply (clipped in clip mode) into SCRATCH.
    Mutates: mat[SCRATCH]. Allocates: nothing. Returns: reasons, with REJECTED when nothing may be staged."""
    g = h[0]
    d = g["d"]
    if g["phase"] == HALTED_PHASE:
        return REJECTED | HALTED
    if g["safe_mode"] != 0:
        return REJECTED | SAFE_MODE
    reasons = 0
    if now - g["last_apply"] < g["dwell"]:
        reasons |= DWELL
    if g["rate_count"] >= g["rate_applies"] > 0:
        nth_latest = g["apply_times"][(g["rate_head"] - g["rate_applies"]) % RATE_MAX]
        if nth_latest > now - g["rate_window"]:  # another apply would make rate_applies + 1 inside the window
            reasons |= RATE_LIMIT
    if reasons != 0:
        return REJECTED | reasons
    if g["wholes"] != 0:  # a fraction for a whole-number parameter is refused in both modes (clipping keeps it)
        fractional = False
        for i in range(d):
            fractional |= (m[WHOLE, i] != 0.0) & (proposal[i] > math.floor(proposal[i]))  # false for NaN
        if fractional:
            return REJECTED | NOT_WHOLE
    if g["slots"] > 0 and not _approved(h, m, proposal[g["variant_col"]]):  # in both modes: no variant is "near"
        index = proposal[g["variant_col"]]
        return REJECTED | NOT_APPROVED | (NOT_WHOLE if index != math.floor(index) else 0)
    live = g["live"]
    t = np.float64(now)
    changed = False
    if g["reject_mode"] != 0:  # the reasons decide; with none, the proposal itself is the candidate
        reasons = _reasons(h, m, proposal, t)
        if reasons != 0:
            return REJECTED | reasons
        for i in range(d):
            m[SCRATCH, i] = proposal[i]
            changed |= proposal[i] != m[live, i]
    else:
        # Clip into the intersection of the bounds and the reach of one apply (none while cooling down): the same
        # value as clipping into each in turn, since live lies in both. A proposal the clip leaves as it is has no
        # reasons; only one it changes (or a NaN) needs them worked out (about 3x the work of this loop).
        clipped = False
        for i in range(d):
            current = m[live, i]
            limit = 0.0 if t < m[UNTIL, i] else m[MAX_STEP, i]
            want = min(max(proposal[i], max(m[LO, i], current - limit)), min(m[HI, i], current + limit))
            m[SCRATCH, i] = want
            clipped |= want != proposal[i]
            changed |= want != current
        if clipped:
            reasons = _reasons(h, m, proposal, t)
            if reasons & NONFINITE:
                return REJECTED | NONFINITE
            col = g["variant_col"]  # what clipping made of the variant (when it changed it) is checked too
            if g["slots"] > 0 and m[SCRATCH, col] != proposal[col] and not _approved(h, m, m[SCRATCH, col]):
                return REJECTED | NOT_APPROVED
    if g["risk_budget"] > 0:
        differs = 0
        for i in range(d):
            differs += m[SCRATCH, i] != m[BASELINE, i]
        if differs > g["risk_budget"]:
            return REJECTED | reasons | RISK_BUDGET
    if not changed:
        return reasons | NO_CHANGE
    return reasons


@kernel(t.int64(GUARD_TYPE, t.float64[:, ::1], F8, t.int64), inline=True)
def _propose(h, m, proposal, now):
    g = h[0]
    flags = _tick(h, m, now)
    g["n_proposals"] += 1
    reasons = _validate(h, m, proposal, now)
    if reasons & REJECTED:
        g["n_rejected"] += 1
        return flags | reasons
    if reasons & NO_CHANGE:
        return flags | reasons
    _stage(h, m, SCRATCH)  # into the inactive snapshot: not live until the flip
    g["phase"] = STAGED
    g["entered"] = now
    return flags | reasons | STAGED_EVENT


@kernel(t.int64(GUARD_TYPE, t.float64[:, ::1], t.int64), inline=True)
def _apply(h, m, now):
    g = h[0]
    if g["phase"] != STAGED:
        return NOTHING_STAGED
    if g["cooldowns"] != 0:
        live = g["live"]
        t = np.float64(now)
        for i in range(g["d"]):  # a changed parameter had until <= now: max() picks now + cooldown; others keep theirs
            m[UNTIL, i] = max(m[UNTIL, i], t + m[COOLDOWN_STEPS, i] if m[1 - live, i] != m[live, i] else NEVER)
    _flip(h)
    g["apply_times"][g["rate_head"]] = now
    g["rate_head"] = (g["rate_head"] + 1) % RATE_MAX
    g["rate_count"] = min(g["rate_count"] + 1, RATE_MAX)
    g["last_apply"] = now
    g["n_applied"] += 1
    g["phase"] = CANARY
    g["entered"] = now
    g["stage"] = 0
    g["stage_samples"] = 0
    g["stage_sum"] = 0.0
    return APPLIED


@kernel(t.int64(GUARD_TYPE, t.float64[:, ::1], t.int64), inline=True)
def _promote(h, m, now):
    g = h[0]
    live = g["live"]
    for i in range(g["d"]):
        m[BASELINE, i] = m[live, i]
    g["phase"] = KNOWN_GOOD
    g["entered"] = now
    g["consecutive_rollbacks"] = 0
    # the new known-good's levels start from what it was just measured at (m[METRICS] holds the observation that
    # promoted it), so a canary can judge the next candidate at once even when known-good itself is rarely live
    known = 0
    for j in range(g["n_metrics"]):
        if np.isfinite(m[METRICS, j]):
            m[BASE_METRICS, j] = m[METRICS, j]
            known = 1
    g["baseline_samples"] = known
    g["n_promoted"] += 1
    return PROMOTED


@kernel(t.int64(F8, F8, t.int64))
def guard_propose(state, proposal, now):
    """Validate ``proposal`` (clip or reject) and stage the candidate. Mutates: state. Allocates: nothing.
    Returns: reasons and events (REJECTED with its reasons, or STAGED_EVENT); BAD_STATE (nothing touched) for a
    state ``open_guard`` refuses or a proposal shorter than d."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    if proposal.shape[0] < h[0]["d"]:
        return BAD_STATE
    flags = _propose(h, _matrix(h), proposal, now)
    h[0]["last_flags"] = flags
    return flags


@kernel(t.int64(F8, t.int64))
def guard_apply(state, now):
    """Make the staged candidate live (flip) and start its canary. Mutates: state. Allocates: nothing.
    Returns: events, or BAD_STATE (nothing touched)."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    m = _matrix(h)
    flags = _tick(h, m, now)
    flags |= _apply(h, m, now)
    h[0]["last_flags"] = flags
    return flags


@kernel(t.int64(GUARD_TYPE, t.float64[:, ::1], F8, t.int64), inline=True)
def _offer(h, m, proposal, now):
    flags = _propose(h, m, proposal, now)
    if flags & STAGED_EVENT:
        flags |= _apply(h, m, now)
    h[0]["last_flags"] = flags
    return flags


@kernel(t.int64(F8, F8, t.int64))
def guard_offer(state, proposal, now):
    """Validate, stage and apply in one call: the path a tuner's proposal takes. Mutates: state. Allocates: nothing.
    Returns: reasons and events; BAD_STATE (nothing touched) as ``guard_propose``."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    if proposal.shape[0] < h[0]["d"]:
        return BAD_STATE
    return _offer(h, _matrix(h), proposal, now)


@kernel(t.int64(F8, F8, t.int64, t.float64, t.int64))
def guard_swap(state, proposal, column, value, now):
    """``guard_offer`` of the live snapshot with ``column`` set to ``value`` (e.g. the variant column to another
    variant's index), ``proposal`` (>= d words) its work space. Mutates: state, proposal. Allocates: nothing.
    Returns: as ``guard_offer``; BAD_STATE (nothing touched) also for a column outside the snapshot or a work space
    that shares memory with the state."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    d = h[0]["d"]
    if proposal.shape[0] < d or not 0 <= column < d or shares_memory(state, proposal):
        return BAD_STATE
    m = _matrix(h)
    live = h[0]["live"]
    for i in range(d):
        proposal[i] = m[live, i]
    proposal[column] = value
    return _offer(h, m, proposal, now)


@kernel(t.boolean(GUARD_TYPE, t.float64[:, ::1], F8, t.int64), inline=True)
def _slo_breached(h, m, metrics, now):
    g = h[0]
    for s in range(g["n_slos"]):
        j = np.int64(m[SLO_METRIC, s])
        value = metrics[j]
        if not np.isfinite(value):
            continue
        limit = m[SLO_LIMIT, s]
        if m[SLO_RELATIVE, s] != 0.0:
            if g["baseline_samples"] == 0:
                continue  # no known-good level yet
            limit *= m[BASE_METRICS, j]
        op = np.int64(m[SLO_OP, s])
        ok = (value <= limit) if op == 0 else (value >= limit) if op == 1 else (value < limit) if op == 2 else (
            value > limit)
        if not ok:
            return True
    return False


@kernel(t.boolean(F8, t.int64), inline=True)
def _has_data(metrics, n):
    """True when one of the first ``n`` metrics is a number (a policy without metrics has nothing else to wait for)."""
    for j in range(n):
        if np.isfinite(metrics[j]):
            return True
    return n == 0


@kernel(t.int64(F8, F8, t.int64))
def guard_observe(state, metrics, now):
    """Take the live metrics of step ``now``: hard SLOs (a breach rolls back at once), canary stages, deadlines, the
    known-good baseline's levels. NaN means no data: an observation with none (every metric NaN) never promotes a
    candidate and is not a sample of the known-good's levels. Mutates: state. Allocates: nothing. Returns: events;
    BAD_STATE (nothing touched) for a state ``open_guard`` refuses, fewer metrics than n_metrics, or an SLO naming no
    metric."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    g = h[0]
    m = _matrix(h)
    if metrics.shape[0] < g["n_metrics"]:
        return BAD_STATE
    for s in range(g["n_slos"]):
        if not 0.0 <= m[SLO_METRIC, s] < g["n_metrics"]:  # also NaN: an index read as a float is checked as one
            return BAD_STATE
    flags = _tick(h, m, now)
    n = g["n_metrics"]
    for j in range(n):
        m[METRICS, j] = metrics[j]
    phase = g["phase"]
    candidate_live = phase == CANARY or phase == PAUSED
    if _slo_breached(h, m, metrics, now):
        g["n_breaches"] += 1
        flags |= SLO_BREACH
        if candidate_live:
            flags |= _roll_back(h, m, now, 0)
        else:
            if phase == STAGED:
                g["phase"] = ROLLED_BACK_PHASE if g["consecutive_rollbacks"] > 0 else KNOWN_GOOD
                g["entered"] = now
                flags |= ABORTED
            g["consecutive_rollbacks"] = 0  # the known-good breaches too: the world changed, not the candidates
        g["last_flags"] = flags
        return flags
    if not candidate_live:  # the known-good snapshot is live: learn its levels (from data only)
        a = g["smoothing"]
        for j in range(n):
            if np.isfinite(metrics[j]):
                base = m[BASE_METRICS, j]
                m[BASE_METRICS, j] = metrics[j] if g["baseline_samples"] == 0 else base + a * (metrics[j] - base)
        g["baseline_samples"] += np.int64(_has_data(metrics, n))
        g["last_flags"] = flags
        return flags
    if g["n_stages"] == 0:  # no canary analysis: promoted at the first clean observation with data
        if _has_data(metrics, n):
            flags |= _promote(h, m, now)
        g["last_flags"] = flags
        return flags
    value = metrics[g["judged"]]
    if not np.isfinite(value) or g["baseline_samples"] == 0:
        if phase == CANARY:
            g["phase"] = PAUSED
            flags |= PAUSED_EVENT
        g["last_flags"] = flags
        return flags
    if phase == PAUSED:
        g["phase"] = CANARY
        flags |= RESUMED_ANALYSIS
    g["stage_samples"] += 1
    g["stage_sum"] += value
    k = g["stage"]
    if g["stage_samples"] >= np.int64(m[STAGE_SAMPLES, k]):
        mean = g["stage_sum"] / g["stage_samples"]
        base = m[BASE_METRICS, g["judged"]]
        regression = g["judged_sense"] * (mean - base) / max(abs(base), 1e-300)
        if regression > m[STAGE_REGRESSION, k]:
            flags |= _roll_back(h, m, now, CANARY_FAILED)
        else:
            flags |= STAGE_PASSED
            g["stage"] = k + 1
            g["stage_samples"] = 0
            g["stage_sum"] = 0.0
            if g["stage"] >= g["n_stages"]:
                flags |= _promote(h, m, now)
    g["last_flags"] = flags
    return flags


@kernel(t.int64(F8, t.int64))
def guard_snapback(state, now):
    """Make the known-good snapshot live in one step, whatever the phase, cooldowns or limits (a halted executor stays
    halted; a staged candidate is dropped). Mutates: state. Allocates: nothing. Returns: events."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    g = h[0]
    m = _matrix(h)
    if now > g["now"]:
        g["now"] = now
    phase = g["phase"]
    if phase == STAGED or phase == CANARY or phase == PAUSED:
        flags = _roll_back(h, m, now, 0)
    else:  # the known-good snapshot is live already: write it again, count nothing
        _stage(h, m, BASELINE)
        _flip(h)
        flags = ROLLED_BACK
    g["last_flags"] = flags
    return flags


@kernel(t.int64(F8, t.int64))
def guard_kill(state, now):
    """Kill switch: the known-good snapshot goes live and every proposal is refused until ``guard_resume``.
    Mutates: state. Allocates: nothing. Returns: events."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    g = h[0]
    m = _matrix(h)
    _stage(h, m, BASELINE)
    _flip(h)
    if now > g["now"]:
        g["now"] = now
    g["phase"] = HALTED_PHASE
    g["entered"] = now
    g["last_flags"] = KILLED | ROLLED_BACK
    return KILLED | ROLLED_BACK


@kernel(t.int64(F8, t.int64))
def guard_resume(state, now):
    """The operator's way out of the kill switch and of safe mode. Mutates: state. Allocates: nothing."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    g = h[0]
    if g["phase"] == HALTED_PHASE:
        g["phase"] = KNOWN_GOOD
    g["safe_mode"] = 0
    g["consecutive_rollbacks"] = 0
    g["entered"] = max(now, g["now"])
    g["last_flags"] = OPERATOR_RESUMED
    return OPERATOR_RESUMED


@kernel(t.int64(F8, F8, t.int64, t.int64))
def guard_set_variants(state, approved, fallback, now):
    """A catalog change, between steps: ``approved`` (one word per variant slot, 1.0 or 0.0) becomes the set of
    variants that may be live. A known-good variant no longer approved is replaced by slot ``fallback``; a staged
    candidate whose variant is not approved is dropped; if the live variant is not approved, the known-good snapshot
    goes live at once (not counted as a rollback; a halted executor stays halted). Mutates: state. Allocates:
    nothing. Returns: events (VARIANT_WITHDRAWN with ROLLED_BACK or ABORTED when something was withdrawn);
    BAD_STATE (nothing touched) for a state with no variant slots, ``approved`` not one 0/1 word per slot, or a
    ``fallback`` that is not approved in it."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    g = h[0]
    slots, col = g["slots"], g["variant_col"]
    if slots == 0 or approved.shape[0] != slots or not 0 <= fallback < slots:
        return BAD_STATE
    for i in range(slots):
        if approved[i] != 0.0 and approved[i] != 1.0:
            return BAD_STATE
    if approved[fallback] != 1.0:
        return BAD_STATE
    m = _matrix(h)
    for i in range(slots):
        m[APPROVED, i] = approved[i]
    if now > g["now"]:
        g["now"] = now
    flags = 0
    if not _approved(h, m, m[BASELINE, col]):
        m[BASELINE, col] = fallback
        g["baseline_samples"] = 0  # the new known-good's levels are learnt afresh (relative SLOs, canary)
        flags |= VARIANT_WITHDRAWN
    phase = g["phase"]
    settled = ROLLED_BACK_PHASE if g["consecutive_rollbacks"] > 0 else KNOWN_GOOD
    live_ok = _approved(h, m, m[g["live"], col])
    if phase == STAGED and not (live_ok and _approved(h, m, m[1 - g["live"], col])):
        g["phase"], g["entered"] = settled, now  # the staged row is dropped (and rewritten below if live goes)
        flags |= VARIANT_WITHDRAWN | ABORTED
    if not live_ok:
        _stage(h, m, BASELINE)
        _flip(h)
        if phase == CANARY or phase == PAUSED:
            g["phase"], g["entered"] = settled, now
        flags |= VARIANT_WITHDRAWN | ROLLED_BACK
    g["last_flags"] = flags
    return flags


@kernel(t.int64(F8, F8, F8, t.int64))
def guard_shadow(state, proposal, out, now):
    """Shadow mode: what ``guard_offer(proposal)`` would make live, written into ``out``, with its reasons; nothing in
    the executor changes except the SCRATCH row. Allocates: nothing. Returns: reasons, or BAD_STATE (nothing touched)
    as ``guard_propose`` or for an ``out`` shorter than d or sharing memory with the state."""
    if open_guard(state) != OK:
        return BAD_STATE
    h = _header(state)
    if proposal.shape[0] < h[0]["d"] or out.shape[0] < h[0]["d"] or shares_memory(state, out):
        return BAD_STATE
    m = _matrix(h)
    reasons = _validate(h, m, proposal, now)
    source = h[0]["live"] if reasons & (REJECTED | NO_CHANGE) else SCRATCH
    for i in range(h[0]["d"]):
        out[i] = m[source, i]
    return reasons


def new_guard_state(d, n_metrics=0, n_slos=0, n_stages=0, slots=0):
    """An executor state that runs: ``d`` parameters, all allowed, unbounded, no max delta, no cooldown, known-good
    all zeros and live; room for ``n_metrics`` metrics, ``n_slos`` SLOs and ``n_stages`` canary stages, which count as
    declared (the caller writes their rows); with ``slots`` > 0 the last column is a whole-numbered variant index over
    that many slots, slot 0 (live and known-good) the only one approved: approve others with ``guard_set_variants``,
    which keeps the live and known-good variants approved (writing the APPROVED row directly does not). The shell maps
    a policy onto it. Returns: the whole buffer."""
    for name, value in (("d", d), ("n_metrics", n_metrics), ("n_slos", n_slos), ("n_stages", n_stages),
                        ("slots", slots)):
        if not (1 if name == "d" else 0) <= value <= MAX_WIDTH:
            raise ValueError(f"{name}: {value}; an executor state holds {1 if name == 'd' else 0} to {MAX_WIDTH}")
    width = max(d, n_metrics, n_slos, n_stages, slots)
    words = GUARD_HEADER_WORDS + GUARD_ROWS * width
    buf = page_aligned_zeros(words)
    h = buf[:GUARD_HEADER_WORDS].view(GUARD_HEADER)[0]
    h["magic"], h["layout"], h["words"], h["width"] = MAGIC, GUARD_LAYOUT, words, width
    h["d"], h["n_metrics"], h["n_slos"], h["n_stages"] = d, n_metrics, n_slos, n_stages
    h["slots"], h["variant_col"] = slots, d - 1 if slots else -1
    h["phase"], h["now"], h["last_apply"], h["deadline"] = KNOWN_GOOD, NEVER, NEVER, -NEVER
    m = guard_matrix(buf)
    m[LO], m[HI], m[MAX_STEP], m[ALLOWED], m[UNTIL] = -NO_LIMIT, NO_LIMIT, NO_LIMIT, 1.0, NEVER
    if slots:
        m[WHOLE, d - 1], m[APPROVED, 0] = 1.0, 1.0
    return buf


def guard_header(buf):
    """The header record of the executor state ``buf`` (its fields read and write the buffer).
    Raises ValueError for an array ``open_guard`` refuses."""
    return opened_header(buf, GUARD_HEADER, open_guard,
                         "an executor state: a state is the whole float64 buffer that arqon.Executor(...)")


def guard_matrix(buf):
    """The (GUARD_ROWS, width) matrix of the executor state ``buf`` as a NumPy view."""
    width = int(guard_header(buf)["width"])
    return buf[GUARD_HEADER_WORDS:].reshape(GUARD_ROWS, width)


@kernel(t.float64[::1](F8))
def guard_live(state):
    """The live snapshot as a view, for single-threaded @njit code; valid while the caller holds ``state`` and until
    the next-but-one write; empty for a state ``open_guard`` refuses. Allocates: nothing."""
    if open_guard(state) != OK:
        return state[:0]
    h = _header(state)
    return _matrix(h)[h[0]["live"], : h[0]["d"]]
