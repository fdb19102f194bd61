"""Telemetry kernels: emit a sample (ring record + statistics + drift), feed drained records to the statistics, and
tune from a window's statistic. Callable from Python or inside the user's ``@njit`` loop.

``tel`` is a telemetry state (the whole buffer, see ``stats``), ``ring`` a ring (the whole buffer, see ``ring``),
``state`` a tuner state. Every kernel opens ``tel`` with ``open_telemetry`` and the metric it touches with
``open_metric``, and returns BAD_STATE (NaN for ``window_stat``), touching nothing, when either check fails.
"""

import numpy as np
from numba import types as t

from ._jit import borrow, kernel, view_at
from ._status import BAD_STATE, DRIFT, OK, REOPENED, WAITING
from .api import open_state, reopen_exploration, step
from .ring import DRIFT_EVENT, RECORDS_TYPE, REOPENED_EVENT, RING_TYPE, open_ring, push_record, ring_header_of
from .state import HEADER, STATE_TYPE
from .stats import F8, buckets_of, metric_add, metric_stat, metrics_of, open_metric, open_telemetry, tel_of


@kernel(t.int64(F8, RING_TYPE, t.int64, t.float64, t.int64))
def emit(tel, ring, metric, value, step_):
    """Record sample ``value`` of ``metric`` at ``step_``: one ring record stamped with the current generation and
    variant, then the metric's statistics and detector; a detection also pushes a DRIFT_EVENT record.
    Mutates: tel, ring. Allocates: nothing. Returns: OK or flags DROPPED, DRIFT, NONFINITE; BAD_STATE (nothing
    touched) for a state or metric the open checks refuse."""
    if open_telemetry(tel) != OK or open_ring(ring) != OK:
        return BAD_STATE
    h = tel_of(tel)
    if open_metric(h, metric) != OK:
        return BAD_STATE
    g = h[0]
    generation, variant = g["generation"], g["variant"]
    ring = ring_header_of(ring)  # opened above: pushed to without a second check
    status = push_record(ring, step_, metric, value, generation, variant, 0)
    found = metric_add(h, metric, value, generation, step_)
    if found & DRIFT:
        rec = metrics_of(h)[metric]
        status |= push_record(ring, step_, metric, rec["d_up"] - rec["d_down"], generation, variant, DRIFT_EVENT)
    return status | found


@kernel(t.int64(t.uintp, t.intp, t.uintp, t.intp, t.int64, t.float64, t.int64), nogil=False)
def emit_at(tel_address, tel_words, ring_address, ring_words, metric, value, step_):
    """``emit`` on the telemetry state and the ring of these many words at these addresses: the Python path
    (passing addresses costs less than passing arrays). Not public: only the owner of the state knows its address and
    length; the caller must hold both. Mutates and returns as ``emit``."""
    return emit(view_at(tel_address, tel_words, np.float64), view_at(ring_address, ring_words, np.float64), metric,
                value, step_)


@kernel(t.int64(F8, RECORDS_TYPE, t.int64))
def ingest(tel, records, n):
    """Feed the first ``n`` drained ring records (at most ``len(records)``) to the statistics, each under its own
    generation (a sidecar's path; event records, records of unknown metrics and of metrics ``open_metric`` refuses
    are skipped). Mutates: tel. Allocates: nothing. Returns: the OR of the metrics' flags, BAD_STATE when the state
    is refused (nothing touched) or a record was skipped for its metric's record."""
    if open_telemetry(tel) != OK:
        return BAD_STATE
    h = tel_of(tel)
    r = borrow(records)
    status = OK
    for i in range(min(n, r.shape[0])):
        metric = np.int64(r[i]["metric"])
        if r[i]["flags"] & (DRIFT_EVENT | REOPENED_EVENT) or metric < 0 or metric >= h[0]["n_metrics"]:
            continue
        if open_metric(h, metric) != OK:
            status |= BAD_STATE
            continue
        status |= metric_add(h, metric, r[i]["value"], r[i]["generation"], r[i]["step"])
    return status


@kernel(t.float64(F8, t.int64, t.int64, t.float64))
def window_stat(tel, metric, stat, q):
    """Statistic ``stat`` (see ``stats.metric_stat``) of ``metric``'s current window; NaN when empty, or for a state
    or metric the open checks refuse. Allocates: nothing."""
    if open_telemetry(tel) != OK:
        return np.nan
    h = tel_of(tel)
    if open_metric(h, metric) != OK:
        return np.nan
    return metric_stat(metrics_of(h)[metric:metric + 1], buckets_of(h)[metric], stat, q)


@kernel(t.int64(STATE_TYPE, F8, RING_TYPE, t.int64, t.int64, t.float64, t.int64, t.int64))
def tune_from_window(state, tel, ring, metric, stat, q, min_samples, step_):
    """Once ``metric``'s window holds ``min_samples`` samples, step the tuner with the window's statistic ``stat``
    and open a new config generation (so samples measured from now on, under the new proposal, form the next window).
    If the metric's detector found the objective drifting for the worse since the last call, first re-open the
    tuner's exploration (``api.reopen_exploration``) and push a REOPENED_EVENT record; a drift for the better re-opens nothing
    (the tuner is still descending, or the world got easier). Mutates: state, tel, ring. Allocates: nothing.
    Returns: WAITING (nothing done), or the step's flags with REOPENED when exploration re-opened."""
    state = borrow(state)
    if open_state(state) != OK or open_telemetry(tel) != OK or open_ring(ring) != OK:
        return BAD_STATE
    h = tel_of(tel)
    if open_metric(h, metric) != OK:
        return BAD_STATE
    g = h[0]
    records = metrics_of(h)
    rec = records[metric:metric + 1]
    if rec[0]["n"] < min_samples or rec[0]["n"] == 0:
        return WAITING
    status = OK
    th = view_at(state.ctypes.data, 1, HEADER)
    worse = rec[0]["drift_sign"] * th[0]["sense"] > 0  # a rise when minimizing, a fall when maximizing
    if rec[0]["drifts"] != rec[0]["drifts_seen"] and worse:
        reopen_exploration(th)
        push_record(ring_header_of(ring), step_, metric, np.float64(rec[0]["drifts"]), g["generation"], g["variant"],
                    REOPENED_EVENT)
        status |= REOPENED
    rec[0]["drifts_seen"] = rec[0]["drifts"]
    status |= step(state, metric_stat(rec, buckets_of(h)[metric], stat, q))
    th[0]["status"] = status
    g["generation"] += 1
    return status
