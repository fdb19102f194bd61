"""Handing out a population strategy's generation (ES, PBT, CMA-ES), one member or one batch at a time.

A generation of ``n_pop`` members is written when the first member is asked for: unit-cube points, their user-unit
rows at ``r_user``. Members go out in order, singly (``pop_ask``/``pop_tell``, PENDING_ONE) or as a batch of the members
not yet out (``pop_ask_batch``/``pop_tell_batch``, PENDING_BATCH). A value that never comes back (NaN in a batch) is a
missing member: the strategy updates from the others. Once every member is back the strategy updates, and the next ask
starts a new generation. Values are stored signed (lower is better) at ``v_val``.
"""

import numpy as np
from numba import types as t

from ._jit import kernel
from ._status import NONFINITE, NOT_ASKED, OK
from .spsa import count_value, exhausted, param_index, to_user
from .state import (
    HDR_TYPE, MAT_TYPE, PENDING_BATCH, PENDING_NONE, PENDING_ONE, PERIODIC_INDEX, THETA, VEC_TYPE, X,
)


@kernel(t.int64(HDR_TYPE))
def remaining(hdr):
    """Evaluations the budget still allows (a large number without a budget). Allocates: nothing."""
    h = hdr[0]
    if h["budget"] <= 0:
        return 1 << 62
    return max(h["budget"] - h["n_told"], 0)


@kernel(t.int64(VEC_TYPE, t.int64, t.int64, t.int64))
def rank(vec, v_val, v_order, n):
    """Sort member indices 0..n-1 by their value at vec[v_val:], best (lowest) first and missing (NaN) ones last,
    into vec[v_order:] (stored as floats). Insertion sort: n is a population. Mutates: vec[v_order:v_order + n].
    Allocates: nothing. Returns: the number of finite values."""
    n_finite = 0
    for j in range(n):
        y = vec[v_val + j]
        if y == y:
            k = n_finite
            while k > 0 and vec[v_val + np.int64(vec[v_order + k - 1])] > y:
                vec[v_order + k] = vec[v_order + k - 1]
                k -= 1
            vec[v_order + k] = j
            n_finite += 1
    slot = n_finite
    for j in range(n):
        if vec[v_val + j] != vec[v_val + j]:
            vec[v_order + slot] = j
            slot += 1
    return n_finite


@kernel(t.void(HDR_TYPE, MAT_TYPE, t.int64), inline=True)
def keep_in_cube(hdr, mat, row):
    """Clip the unit point mat[row] into [0, 1], wrapping periodic parameters. Mutates: mat[row]. Allocates: nothing."""
    for j in range(hdr[0]["n_periodic"]):
        i = param_index(mat, PERIODIC_INDEX, j)
        mat[row, i] -= np.floor(mat[row, i])
    for i in range(mat.shape[1]):
        mat[row, i] = min(max(mat[row, i], 0.0), 1.0)


@kernel(t.void(HDR_TYPE, VEC_TYPE))
def open_generation(hdr, vec):
    """Mark a freshly written generation: nothing out, every value missing. Mutates: hdr, vec[v_val:]."""
    h = hdr[0]
    h["sampled"] = 1
    h["i_ask"] = 0
    h["n_back"] = 0
    for j in range(h["n_pop"]):
        vec[h["v_val"] + j] = np.nan


@kernel(t.void(HDR_TYPE, MAT_TYPE, VEC_TYPE))
def open_steps_from_theta(hdr, mat, vec):
    """Write members theta + sigma * mat[r_y + j] in user units (ES and CMA-ES) and open the generation.
    Mutates: mat[r_user:], hdr, vec[v_val:]. Allocates: nothing."""
    h = hdr[0]
    for j in range(h["n_pop"]):
        to_user(hdr, mat, THETA, h["r_y"] + j, h["sigma"], h["r_user"] + j)
    open_generation(hdr, vec)


@kernel(t.int64(HDR_TYPE, MAT_TYPE))
def pop_ask(hdr, mat):
    """Hand out the next member of the current generation into mat[X] (the generation must be written: the caller
    samples when ``sampled`` is 0). Asking again before a tell repeats it. Mutates: hdr, mat[X]. Allocates: nothing.
    Returns: OK or BUDGET_EXHAUSTED (best params in mat[X])."""
    h = hdr[0]
    if h["pending"] != PENDING_NONE:
        return OK
    status = exhausted(hdr, mat)
    if status != OK:
        return status
    src = h["r_user"] + h["i_ask"]
    for i in range(mat.shape[1]):
        mat[X, i] = mat[src, i]
    h["i_ask"] += 1
    h["pending"] = PENDING_ONE
    return OK


@kernel(t.int64(HDR_TYPE, MAT_TYPE, VEC_TYPE, t.float64))
def pop_tell(hdr, mat, vec, value):
    """Accept the value of the member out. Mutates: hdr, mat[BEST], vec. Allocates: nothing.
    Returns: OK, NONFINITE or NOT_ASKED (the last two change nothing). The caller updates when n_back == n_pop."""
    h = hdr[0]
    if h["pending"] != PENDING_ONE:
        return NOT_ASKED
    if not np.isfinite(value):
        return NONFINITE
    h["pending"] = PENDING_NONE
    vec[h["v_val"] + h["i_ask"] - 1] = count_value(hdr, mat, value, X)
    h["n_back"] += 1
    return OK


@kernel(t.int64(HDR_TYPE, MAT_TYPE))
def pop_ask_batch(hdr, mat):
    """Hand out every member not yet out (no more than the budget allows) as rows batch_start.. of the user block.
    A single member still out is given up as missing. Asking again before the batch is told repeats it.
    Mutates: hdr. Allocates: nothing. Returns: OK or BUDGET_EXHAUSTED (batch_n = 0)."""
    h = hdr[0]
    if h["pending"] == PENDING_BATCH:
        return OK
    if h["pending"] == PENDING_ONE:
        h["pending"] = PENDING_NONE
        h["n_back"] += 1
    status = exhausted(hdr, mat)
    if status != OK:
        h["batch_n"] = 0
        return status
    n = min(h["n_pop"] - h["i_ask"], remaining(hdr))
    h["batch_start"] = h["i_ask"]
    h["batch_n"] = n
    h["i_ask"] += n
    h["pending"] = PENDING_BATCH
    return OK


@kernel(t.int64(HDR_TYPE, MAT_TYPE, VEC_TYPE, t.float64[::1]))
def pop_tell_batch(hdr, mat, vec, values):
    """Accept the values of the batch out, in its order; a NaN/inf (or absent) value marks that member missing.
    Mutates: hdr, mat[BEST], vec. Allocates: nothing. Returns: OK, NONFINITE if some were missing, NOT_ASKED if no
    batch is out (nothing changed). The caller updates when n_back == n_pop."""
    h = hdr[0]
    if h["pending"] != PENDING_BATCH:
        return NOT_ASKED
    status = OK
    start = h["batch_start"]
    for j in range(h["batch_n"]):
        value = values[j] if j < values.shape[0] else np.nan
        if np.isfinite(value):
            vec[h["v_val"] + start + j] = count_value(hdr, mat, value, h["r_user"] + start + j)
        else:
            status |= NONFINITE
    h["n_back"] += h["batch_n"]
    h["pending"] = PENDING_NONE
    return status
