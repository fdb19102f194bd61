"""Simultaneous perturbation stochastic approximation (Spall, 1992/1998) over the unit cube.

Each update measures the pair theta +- c_k*delta (delta Rademacher), estimates the gradient as
(y+ - y-) / (2 c_k) * delta, and moves theta by -a_k times it, projected into [0, 1]^d. Gains decay as
a_k = a / (k + 1 + A)^alpha, c_k = c / (k + 1)^gamma, or stay constant to track a drifting optimum. When `a` is
automatic, the mean gradient size over the first updates fixes it so that early moves are `initial_step` long.

These are the inlined cores over a (header, matrix) pair; the public kernels in ``api`` open a state and call them.
"""

import numpy as np
from numba import types as t

from ._jit import kernel
from ._status import BUDGET_EXHAUSTED, NONFINITE, NOT_ASKED, OK
from .rng import rng_rademacher
from .state import BEST, DELTA, GRAD, IS_INT, LOG_INDEX, LOW, MAT_TYPE, MAX, MIN, SPAN, STATE_TYPE, THETA, X


@kernel(t.void(STATE_TYPE, MAT_TYPE, t.float64, t.int64), inline=True)
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


@kernel(t.int64(STATE_TYPE, MAT_TYPE), inline=True)
def spsa_ask(hdr, mat):
    """Write the next proposal into mat[X]; asking again before a tell repeats it.
    Mutates: hdr, mat, RNG state. Allocates: nothing. Returns: OK, or BUDGET_EXHAUSTED with the best params in mat[X]."""
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


@kernel(t.void(STATE_TYPE, MAT_TYPE, t.float64), inline=True)
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


@kernel(t.int64(STATE_TYPE, MAT_TYPE, t.float64), inline=True)
def spsa_tell(hdr, mat, value):
    """Accept the measured ``value`` of the outstanding proposal.
    Mutates: hdr, mat. Allocates: nothing. Returns: OK, NONFINITE or NOT_ASKED (the last two change nothing)."""
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
