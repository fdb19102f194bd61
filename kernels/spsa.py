"""Simultaneous perturbation stochastic approximation (Spall, 1992/1998) over the unit cube.

Each update measures the pair theta +- c_k*delta (delta Rademacher), estimates the gradient as
(y+ - y-) / (2 c_k) * delta, and moves theta by -a_k times it, projected into [0, 1]^d. Gains decay as
a_k = a / (k + 1 + A)^alpha, c_k = c / (k + 1)^gamma, or stay constant to track a drifting optimum. When `a` is
automatic, the mean gradient size over the first updates fixes it so that early moves are `initial_step` long.
"""

import numpy as np
from numba import types as t

from ._jit import borrow, kernel, view_at
from ._status import BUDGET_EXHAUSTED, NONFINITE, NOT_ASKED, OK
from .rng import rng_rademacher
from .state import BEST, CENTER, HEADER, ROWS, DELTA, GRAD, HEADER_TYPE, IS_INT, LOG_INDEX, LOW, MAT_TYPE, MAX, MIN, SPAN, THETA, X


@kernel(t.void(HEADER_TYPE, MAT_TYPE, t.float64, t.int64), inline=True)
def to_user_units(hdr, mat, step, dst):
    """Write the user-unit value of the unit point clip(theta + step * delta, 0, 1) into row ``dst``: log scale,
    integer rounding, bounds. Mutates: mat[dst]. Allocates: nothing."""
    d = mat.shape[1]
    for i in range(d):
        u = min(max(mat[THETA, i] + step * mat[DELTA, i], 0.0), 1.0)
        v = mat[LOW, i] + u * mat[SPAN, i]
        if mat[IS_INT, i] != 0.0:
            v = np.floor(v + 0.5)
        mat[dst, i] = min(max(v, mat[MIN, i]), mat[MAX, i])
    # log-scale parameters are redone apart: inside the loop above LLVM would evaluate exp for every element
    for j in range(hdr[0]["n_log"]):
        i = np.int64(mat[LOG_INDEX, j])
        u = min(max(mat[THETA, i] + step * mat[DELTA, i], 0.0), 1.0)
        v = np.exp(mat[LOW, i] + u * mat[SPAN, i])
        if mat[IS_INT, i] != 0.0:
            v = np.floor(v + 0.5)
        mat[dst, i] = min(max(v, mat[MIN, i]), mat[MAX, i])


@kernel(t.int64(HEADER_TYPE, MAT_TYPE), inline=True)
def _ask(hdr, mat):
    h = hdr[0]
    if h["pending"] != 0:
        return OK
    if h["budget"] > 0 and h["n_told"] >= h["budget"]:
        if h["has_best"] != 0:
            for i in range(mat.shape[1]):
                mat[X, i] = mat[BEST, i]
        return BUDGET_EXHAUSTED
    if h["phase"] == 0:
        rng_rademacher(h["rng"], mat[DELTA])
        if h["constant_gains"] != 0:
            h["c_k"] = h["c"]
        else:
            h["c_k"] = h["c"] / (h["k"] + 1.0) ** h["gamma"]
        to_user_units(hdr, mat, h["c_k"], X)
    else:
        to_user_units(hdr, mat, -h["c_k"], X)
    h["pending"] = 1
    return OK


@kernel(t.void(HEADER_TYPE, MAT_TYPE, t.float64), inline=True)
def _spsa_accumulate(hdr, mat, y_minus):
    """Add the pair's gradient estimate (zero if it overflows) to mat[GRAD]; after `n_average` pairs move theta
    along their mean, calibrating an automatic `a` on the way. Mutates: hdr, mat[THETA, GRAD]. Allocates: nothing."""
    h = hdr[0]
    d = mat.shape[1]
    scale = (h["y_plus"] - y_minus) / (2.0 * h["c_k"])
    if not np.isfinite(scale):  # finite values so far apart that the estimate overflows: the pair teaches nothing
        scale = 0.0
    for i in range(d):
        mat[GRAD, i] += scale * mat[DELTA, i]  # 1/delta_i == delta_i for Rademacher signs
    h["i_average"] += 1
    if h["i_average"] < h["n_average"]:
        return
    h["i_average"] = 0
    inv_n = 1.0 / h["n_average"]
    if h["i_calibrate"] < h["n_calibrate"]:
        size = 0.0
        for i in range(d):
            size += abs(mat[GRAD, i])
        size *= inv_n / d
        if 0.0 < size < np.inf:
            h["calibrate_sum"] += size
            h["i_calibrate"] += 1
            decay = 1.0 if h["constant_gains"] != 0 else (h["stability"] + 1.0) ** h["alpha"]
            h["a"] = h["initial_step"] * decay * h["i_calibrate"] / h["calibrate_sum"]
    if h["constant_gains"] != 0:
        a_k = h["a"] * inv_n
    else:
        a_k = h["a"] * inv_n / (h["k"] + 1.0 + h["stability"]) ** h["alpha"]
    limit = h["max_step"]
    for i in range(d):
        move = min(max(a_k * mat[GRAD, i], -limit), limit)
        mat[THETA, i] = min(max(mat[THETA, i] - move, 0.0), 1.0)
        mat[GRAD, i] = 0.0
    h["k"] += 1


@kernel(t.int64(HEADER_TYPE, MAT_TYPE, t.float64), inline=True)
def _tell(hdr, mat, value):
    h = hdr[0]
    if h["pending"] == 0:
        return NOT_ASKED
    if not np.isfinite(value):
        return NONFINITE
    h["pending"] = 0
    h["n_told"] += 1
    y = h["sense"] * value
    if h["has_best"] == 0 or y < h["sense"] * h["best_value"]:
        h["best_value"] = value
        h["has_best"] = 1
        for i in range(mat.shape[1]):
            mat[BEST, i] = mat[X, i]
    if h["phase"] == 0:
        h["y_plus"] = y
        h["phase"] = 1
    else:
        h["phase"] = 0
        _spsa_accumulate(hdr, mat, y)
    return OK


# The public kernels borrow their arrays once (see `borrow`) and run the inlined cores above.


@kernel(t.int64(HEADER_TYPE, MAT_TYPE))
def spsa_ask(hdr, mat):
    """Write the next proposal into mat[X]; asking again before a tell repeats it.
    Mutates: hdr, mat, RNG state. Allocates: nothing. Returns: OK, or BUDGET_EXHAUSTED with the best params in mat[X]."""
    return _ask(borrow(hdr), borrow(mat))


@kernel(t.int64(HEADER_TYPE, MAT_TYPE, t.float64))
def spsa_tell(hdr, mat, value):
    """Accept the measured ``value`` of the outstanding proposal.
    Mutates: hdr, mat. Allocates: nothing. Returns: OK, NONFINITE or NOT_ASKED (the last two change nothing)."""
    return _tell(borrow(hdr), borrow(mat), value)


@kernel(t.int64(HEADER_TYPE, MAT_TYPE, t.float64))
def spsa_step(hdr, mat, value):
    """Tell ``value`` then ask: one call per measurement. Mutates: hdr, mat. Allocates: nothing.
    Returns: the tell status OR the ask status, also kept in hdr.status; mat[X] holds the next proposal (the same one
    if the value was rejected)."""
    h, m = borrow(hdr), borrow(mat)
    status = _tell(h, m, value) | _ask(h, m)
    h[0]["status"] = status
    return status


@kernel(t.int64(t.uintp, t.uintp, t.int64, t.float64))
def spsa_step_at(hdr_address, mat_address, d, value):
    """``spsa_step`` on the state arrays at these addresses: the Python path, where passing two addresses costs a third
    of passing two arrays. The caller must keep the arrays alive. Mutates, allocates and returns as ``spsa_step``."""
    h = view_at(hdr_address, 1, HEADER)
    m = view_at(mat_address, (ROWS, d), np.float64)
    status = _tell(h, m, value) | _ask(h, m)
    h[0]["status"] = status
    return status


@kernel(t.void(HEADER_TYPE, MAT_TYPE))
def spsa_recommend(hdr, mat):
    """Write the current estimate theta, in user units, into mat[CENTER]. Mutates: mat[CENTER]. Allocates: nothing."""
    to_user_units(borrow(hdr), borrow(mat), 0.0, CENTER)
