"""Simultaneous perturbation stochastic approximation (Spall, 1992/1998) over the unit cube.

Each update measures the pair theta +- c_k*delta (delta Rademacher), estimates the gradient as
(y+ - y-) / (2 c_k delta), and moves theta by -a_k times it, projected into [0, 1]^d. An integer parameter's
perturbation never drops below a bit over half an integer step, or both points would round to the same integer. Gains decay as
a_k = a / (k + 1 + A)^alpha, c_k = c / (k + 1)^gamma, or stay constant to track a drifting optimum. When `a` is
automatic, the mean gradient size over the first updates fixes it so that early moves are `initial_step` long.
An adaptive perturbation instead sizes c_k from the noise and curvature the pairs themselves measure
(``_adapt_perturbation``): small where measurements are exact, larger where noise would swamp the difference.
Blocking (Spall 1998, "Implementation of the simultaneous perturbation algorithm"; ``_blocked``) takes back an
update after which the measured value is worse beyond the jitter of the values measured, and halves the gain: an
update that overshoots into a steep region cannot run away.

These are the inlined cores over a (header, matrix) pair; the public kernels in ``api`` open a state and call them.
"""

import numpy as np
from numba import types as t

from ._jit import kernel
from ._status import BUDGET_EXHAUSTED, NONFINITE, NOT_ASKED, OK
from .power import exp_not_positive, log_at_least_one
from .rng import rng_rademacher
from .state import (
    BEST, DELTA, GRAD, HDR_TYPE, INTEGER_PERTURBATION, IS_INT, LOG_INDEX, LOW, MAT_TYPE, MAX, MIN, MIN_PERTURBATION,
    PENDING_NONE, PENDING_ONE, PERIODIC_INDEX, PREV, SPAN, THETA, X,
)


WOBBLE = 0.25  # adaptive perturbation: pairs alternate between c(1 + WOBBLE) and c(1 - WOBBLE)
NOISE_RATE = 0.02  # weight of the newest pair in the noise and curvature estimates
NOISE_WARMUP = 50  # pairs measured before the estimates move c
NOISE_CLIP = 3.0  # a curvature sample further out than this many noise deviations counts as this far (jumps)
LOG_CHI2_BIAS = 1.2703628454614782  # -E[log z^2] for a standard normal z
C_RATE, C_FACTOR = 0.1, 0.05  # c moves 10% of the way (in log terms) to its target per pair, by 5% at most
C_MIN = 1e-4  # unit-cube floor of the adaptive perturbation (its ceiling is the configured c, in c_max)
BLOCK_TOLERANCE = 3.0  # blocking: worse by more than this many deviations of a difference of values takes a move back
BLOCK_CUT, BLOCK_RECOVERY = 0.5, 1.05  # blocking: the gain's factor on each block, and on each confirmed move (up to 1)
GAIN_FLOOR = 1.0 / 1024.0  # blocking: the gain is never cut below this share of its schedule
STILL, MOVED, REPEAT = 0, 1, 2  # values of ``moved``: no move to judge, a move to judge, the repeat after a block
JITTER_RATE = 0.1  # blocking: weight of the newest second difference in their running mean (in log terms)
JITTER_DROP = 10.0  # blocking: a sample's log below the running mean counts as this far below at most


@kernel(t.int64(MAT_TYPE, t.int64, t.int64), inline=True)
def param_index(mat, row, j):
    """The parameter index stored (as a float) at mat[row, j] of an index row (LOG_INDEX, PERIODIC_INDEX); 0 when it
    is not one of 0..d-1, so a corrupted index row cannot move a write outside the matrix. Allocates: nothing."""
    v = mat[row, j]
    return np.int64(v) if 0.0 <= v < mat.shape[1] else 0


@kernel(t.void(HDR_TYPE, MAT_TYPE, t.int64, t.int64, t.float64, t.int64), inline=True)
def to_user(hdr, mat, src, direction, step, dst):
    """Write the user-unit value of the unit point mat[src] + step * mat[direction] into row ``dst``: clipped into
    [0, 1] (wrapped for periodic parameters), log scale, integer rounding, bounds. Mutates: mat[dst].
    Allocates: nothing."""
    d = mat.shape[1]
    for i in range(d):
        u = min(max(mat[src, i] + step * mat[direction, i], 0.0), 1.0)
        v = mat[LOW, i] + u * mat[SPAN, i]
        if mat[IS_INT, i] != 0.0:
            v = np.floor(v + 0.5)
        mat[dst, i] = min(max(v, mat[MIN, i]), mat[MAX, i])
    # log-scale and periodic parameters are redone apart: inside the loop above LLVM would evaluate exp for every element
    for j in range(hdr[0]["n_log"]):
        i = param_index(mat, LOG_INDEX, j)
        u = min(max(mat[src, i] + step * mat[direction, i], 0.0), 1.0)
        v = np.exp(mat[LOW, i] + u * mat[SPAN, i])
        if mat[IS_INT, i] != 0.0:
            v = np.floor(v + 0.5)
        mat[dst, i] = min(max(v, mat[MIN, i]), mat[MAX, i])
    for j in range(hdr[0]["n_periodic"]):
        i = param_index(mat, PERIODIC_INDEX, j)
        u = mat[src, i] + step * mat[direction, i]
        v = mat[LOW, i] + (u - np.floor(u)) * mat[SPAN, i]
        if mat[IS_INT, i] != 0.0:
            v = np.floor(v + 0.5)
        mat[dst, i] = min(max(v, mat[MIN, i]), mat[MAX, i])


@kernel(t.void(HDR_TYPE, MAT_TYPE, t.float64, t.int64), inline=True)
def to_user_units(hdr, mat, step, dst):
    """``to_user`` of theta + step * delta (step is +1, -1 or 0). Mutates: mat[dst]. Allocates: nothing."""
    to_user(hdr, mat, THETA, DELTA, step, dst)


GAIN, PERTURBATION = 0, 1  # the decaying factors: a's 1 / (k + 1 + A)^alpha and c's 1 / (k + 1)^gamma


@kernel(t.float64(HDR_TYPE, t.int64, t.int64), inline=True)
def _decay_log(hdr, which, k):
    """The log of decaying factor ``which`` at update ``k``. Allocates: nothing."""
    h = hdr[0]
    if which == GAIN:
        return -h["alpha"] * log_at_least_one(k + 1.0 + h["stability"])
    return -h["gamma"] * log_at_least_one(k + 1.0)


@kernel(t.float64(HDR_TYPE, t.int64, t.int64), inline=True)
def _decay(hdr, which, k):
    """Decaying factor ``which`` at update ``k``: kept from when it was worked out ahead, else worked out now.
    Mutates: hdr (decay, decay_k). Allocates: nothing."""
    h = hdr[0]
    if h["decay_k"][which] != k:
        z = h["decay_log"][which] if h["decay_log_k"][which] == k else _decay_log(hdr, which, k)
        h["decay"][which] = exp_not_positive(z)
        h["decay_k"][which] = k
    return h["decay"][which]


@kernel(t.void(HDR_TYPE, t.int64, t.int64), inline=True)
def _decay_ahead(hdr, which, k):
    """The first half of factor ``which`` at a later update ``k``: its log, kept for ``_decay_finish``. A power is a
    chain of dependent operations longer than the step can hide; in two halves on two steps, each is hidden.
    Mutates: hdr (decay_log, decay_log_k). Allocates: nothing."""
    h = hdr[0]
    if h["decay_log_k"][which] != k:
        h["decay_log"][which] = _decay_log(hdr, which, k)
        h["decay_log_k"][which] = k


@kernel(t.void(HDR_TYPE, t.int64), inline=True)
def _decay_finish(hdr, which):
    """The second half: the factor from the log ``_decay_ahead`` kept (the factor it replaces has been used).
    Mutates: hdr (decay, decay_k). Allocates: nothing."""
    k = hdr[0]["decay_log_k"][which]
    if k >= 0:
        _decay(hdr, which, k)


@kernel(t.int64(HDR_TYPE, MAT_TYPE), inline=True)
def exhausted(hdr, mat):
    """The budget test of every strategy: when the budget is spent, write the best params into mat[X] and return BUDGET_EXHAUSTED; else OK."""
    h = hdr[0]
    if h["budget"] > 0 and h["n_told"] >= h["budget"]:
        if h["has_best"] != 0:
            for i in range(mat.shape[1]):
                mat[X, i] = mat[BEST, i]
        return BUDGET_EXHAUSTED
    return OK


@kernel(t.int64(HDR_TYPE, MAT_TYPE), inline=True)
def spsa_ask(hdr, mat):
    """Write the next proposal into mat[X]; asking again before a tell repeats it.
    Mutates: hdr, mat, RNG state. Allocates: nothing. Returns: OK, or BUDGET_EXHAUSTED with the best params in mat[X]."""
    h = hdr[0]
    if h["pending"] != PENDING_NONE:
        return OK
    if exhausted(hdr, mat) != OK:
        return BUDGET_EXHAUSTED
    if h["phase"] == 0:
        rng_rademacher(h["rng"], mat[DELTA])
        if h["adapt_c"] != 0:
            c_k = h["c"] * (1.0 + WOBBLE if h["n_pairs"] % 2 == 0 else 1.0 - WOBBLE)
        elif h["constant_gains"] != 0:
            c_k = h["c"]
        else:
            k = h["k"]
            c_k = h["c"] * _decay(hdr, PERTURBATION, k)
            _decay_ahead(hdr, PERTURBATION, k + 1 if h["i_average"] + 1 >= h["n_average"] else k)  # the next pair's
        h["c_k"] = c_k
        # a log-scale integer's step, in unit-cube terms, depends on where theta is: size its floor there
        for j in range(h["n_log"]):
            i = param_index(mat, LOG_INDEX, j)
            if mat[IS_INT, i] != 0.0:
                v = max(np.exp(mat[LOW, i] + mat[THETA, i] * mat[SPAN, i]), mat[MIN, i])
                mat[MIN_PERTURBATION, i] = INTEGER_PERTURBATION * np.log1p(1.0 / v) / mat[SPAN, i]
        for i in range(mat.shape[1]):
            mat[DELTA, i] *= max(c_k, mat[MIN_PERTURBATION, i])
        to_user_units(hdr, mat, 1.0, X)
    else:
        to_user_units(hdr, mat, -1.0, X)
    h["pending"] = PENDING_ONE
    return OK


@kernel(t.float64(t.float64, t.float64, t.float64), inline=True)
def _move(a_k, gradient, limit):
    """The step -a_k * gradient would take back, within +-limit; 0 while `a` is uncalibrated (0 * inf)."""
    move = a_k * gradient
    if move != move:
        return 0.0
    return min(max(move, -limit), limit)


@kernel(t.float64(HDR_TYPE), inline=True)
def _step_gain(hdr):
    """a_k, the gain applied to the mean gradient estimate of an update (0 while an automatic `a` is uncalibrated)."""
    h = hdr[0]
    a_k = h["a"] * (1.0 / h["n_average"])
    if h["blocking"] != 0:
        a_k *= h["gain_scale"]
    if h["constant_gains"] != 0:
        return a_k
    return a_k * _decay(hdr, GAIN, h["k"])


@kernel(t.void(HDR_TYPE, t.float64), inline=True)
def _adapt_perturbation(hdr, y_minus):
    """Size c from the noise and curvature the pairs measure. A pair's mean is f(theta) + c_k^2 tr(H) / 2 + noise, so as
    c_k alternates the second difference r of successive pair means is +-4 WOBBLE c^2 tr(H) plus noise of variance
    3 sigma^2 (a slowly moving f cancels). tr(H) is a running mean of r's curvature samples, clipped to NOISE_CLIP noise
    deviations; sigma^2 comes from a running mean of log r^2 (one jump moves it little; no noise drives it to zero).
    c then moves toward (d a_k sigma^2 / (4 tr H))^(1/4), where the perturbation's own cost c^2 tr(H) / 2 equals that of
    the noise it lets into theta, d a_k sigma^2 / (8 c^2): with no noise c shrinks to C_MIN; it never grows past the
    configured c (far from a non-quadratic optimum the pair means vary like noise, and a perturbation grown on that
    would feed itself); with no positive curvature estimate yet it stays. Mutates: hdr. Allocates: nothing."""
    h = hdr[0]
    mean = 0.5 * (h["y_plus"] + y_minus)
    n = h["n_pairs"]
    h["n_pairs"] = n + 1
    if n >= 2:
        sign = 1.0 if n % 2 == 0 else -1.0  # pair n used c(1 + WOBBLE) when n is even
        unit = 4.0 * WOBBLE * h["c"] * h["c"]
        resid = mean - 2.0 * h["pair_mean"] + h["pair_mean_before"] - sign * unit * h["curvature"]
        rate = max(NOISE_RATE, 1.0 / (n - 1))
        h["log_noise"] += rate * (np.log(max(resid * resid, 1e-300)) - h["log_noise"])
        noise_var3 = np.exp(h["log_noise"] + LOG_CHI2_BIAS)  # 3 sigma^2
        limit = NOISE_CLIP * np.sqrt(noise_var3)
        h["curvature"] += rate * sign * min(max(resid, -limit), limit) / unit
        h["noise_var"] = noise_var3 / 3.0
        a_k = _step_gain(hdr)
        if n - 1 > NOISE_WARMUP and h["curvature"] > 0.0 and a_k > 0.0:
            target = 0.25 * np.log(h["d"] * a_k * h["noise_var"] / (4.0 * h["curvature"]))
            step = min(max(C_RATE * (target - np.log(h["c"])), np.log(1.0 - C_FACTOR)), np.log(1.0 + C_FACTOR))
            h["c"] = min(max(h["c"] * np.exp(step), C_MIN), h["c_max"])
    h["pair_mean_before"] = h["pair_mean"]
    h["pair_mean"] = mean


@kernel(t.boolean(HDR_TYPE, MAT_TYPE, t.float64), inline=True)
def _blocked(hdr, mat, value):
    """Spall's blocking rule with no extra evaluation. ``value``, the mean of the pairs just measured around theta, is
    f(theta) + c_k^2 delta'H delta / 2 + noise. After a move it is compared with the value v1 measured around
    mat[PREV], the theta before the move, or, when the values kept rise (the objective drifting up), with their trend
    2 v1 - v2. Worse than both by more than BLOCK_TOLERANCE deviations of a difference blocks: theta goes back to
    mat[PREV], the gain is cut by BLOCK_CUT (to GAIN_FLOOR at least) and the value is not kept. Otherwise the move is
    confirmed and the gain recovers by BLOCK_RECOVERY. With no move outstanding (the first update, or the one after a
    block) the value is a repeat around mat[PREV], kept as the newer measurement; a repeat as much worse means the
    objective moved (a drift), not theta, and the block's cut is undone. The deviation comes from the second
    differences r of the values kept (a steady descent or drift cancels; noise and the perturbation's curvature term
    remain): a difference has variance E[r^2] / 3, E[r^2] a running mean in log terms (one jump moves it little).
    Before the third value nothing worse passes. Mutates: hdr, mat[THETA, PREV]. Allocates: nothing.
    Returns: True when the move was taken back."""
    h = hdr[0]
    d = mat.shape[1]
    n = h["n_values"]
    reference = h["value_1"]
    if n > 1:
        reference = max(reference, 2.0 * h["value_1"] - h["value_2"])
    tolerance = 0.0
    if n > 2:
        tolerance = BLOCK_TOLERANCE * np.sqrt(np.exp(h["log_jitter"] + LOG_CHI2_BIAS) / 3.0)
    worse = n > 0 and value > reference + tolerance
    if h["moved"] == MOVED:
        h["moved"] = REPEAT
        if worse:
            for i in range(d):
                mat[THETA, i] = mat[PREV, i]
            h["gain_scale"] = max(h["gain_scale"] * BLOCK_CUT, GAIN_FLOOR)
            h["n_blocked"] += 1
            return True
        h["gain_scale"] = min(h["gain_scale"] * BLOCK_RECOVERY, 1.0)
    elif h["moved"] == REPEAT and worse:  # the point left is as much worse: the objective moved, not theta; undo the cut
        h["gain_scale"] = min(h["gain_scale"] / BLOCK_CUT, 1.0)
    h["moved"] = STILL
    n += 1
    h["n_values"] = n
    if n > 2:
        r = value - 2.0 * h["value_1"] + h["value_2"]
        sample = np.log(max(r * r, 1e-300))
        if n > 3:  # an exact repeat (r = 0) would send the mean to -690: one sample lowers it by JITTER_DROP at most
            sample = max(sample, h["log_jitter"] - JITTER_DROP)
        h["log_jitter"] += max(JITTER_RATE, 1.0 / (n - 2)) * (sample - h["log_jitter"])
    h["value_2"] = h["value_1"]
    h["value_1"] = value
    for i in range(d):
        mat[PREV, i] = mat[THETA, i]
    return False


@kernel(t.void(HDR_TYPE, MAT_TYPE, t.float64), inline=True)
def _spsa_accumulate(hdr, mat, y_minus):
    """Add the pair's gradient estimate (zero if it would overflow) to mat[GRAD]; after `n_average` pairs move theta
    along their mean, calibrating an automatic `a` on the way (from the largest gradient seen so far), unless blocking
    takes the last move back (``_blocked``: the estimates, measured around the point left, are dropped).
    Mutates: hdr, mat[THETA, GRAD, PREV]. Allocates: nothing."""
    h = hdr[0]
    d = mat.shape[1]
    if h["adapt_c"] != 0:
        _adapt_perturbation(hdr, y_minus)
    if h["blocking"] != 0:
        h["group_sum"] += 0.5 * (h["y_plus"] + y_minus)
    half_difference = 0.5 * (h["y_plus"] - y_minus)
    if not np.isfinite(half_difference / h["c_k"]):  # |delta_i| >= c_k: no estimate below can overflow
        half_difference = 0.0  # finite values so far apart that the estimate overflows: nothing learnt
    if h["n_int"] == 0:  # every |delta_i| == c_k, so 1/delta_i == delta_i / c_k^2: one division, not d
        scale = half_difference / (h["c_k"] * h["c_k"])
        for i in range(d):
            mat[GRAD, i] += scale * mat[DELTA, i]
    else:
        for i in range(d):
            mat[GRAD, i] += half_difference / mat[DELTA, i]
    h["i_average"] += 1
    if h["i_average"] < h["n_average"]:
        return
    h["i_average"] = 0
    inv_n = 1.0 / h["n_average"]
    if h["blocking"] != 0:
        value = h["group_sum"] * inv_n
        h["group_sum"] = 0.0
        if _blocked(hdr, mat, value):
            for i in range(d):
                mat[GRAD, i] = 0.0
            return
    if h["i_calibrate"] < h["n_calibrate"]:
        size = 0.0
        for i in range(d):
            size += abs(mat[GRAD, i])
        size *= inv_n / d
        if 0.0 < size < np.inf:
            h["calibrate_max"] = max(h["calibrate_max"], size)  # the largest, not the mean: gradients shrink as theta
            h["i_calibrate"] += 1                              # nears the optimum, and a gain set from them overshoots
            decay = 1.0 if h["constant_gains"] != 0 else (h["stability"] + 1.0) ** h["alpha"]
            h["a"] = h["initial_step"] * decay / h["calibrate_max"]
    a_k = _step_gain(hdr)
    limit = h["max_step"]
    for j in range(h["n_periodic"]):  # periodic parameters wrap around; the loop below then leaves them be
        i = param_index(mat, PERIODIC_INDEX, j)
        u = mat[THETA, i] - _move(a_k, mat[GRAD, i], limit)
        mat[THETA, i] = u - np.floor(u)
        mat[GRAD, i] = 0.0
    for i in range(d):
        mat[THETA, i] = min(max(mat[THETA, i] - _move(a_k, mat[GRAD, i], limit), 0.0), 1.0)
        mat[GRAD, i] = 0.0
    h["k"] += 1
    h["moved"] = MOVED if h["blocking"] != 0 and a_k > 0.0 else STILL
    if h["constant_gains"] == 0:
        _decay_ahead(hdr, GAIN, h["k"])  # the next update's


@kernel(t.float64(HDR_TYPE, MAT_TYPE, t.float64, t.int64), inline=True)
def count_value(hdr, mat, value, row):
    """Count one accepted (finite) ``value`` measured at the user-unit point mat[row], keeping the best.
    Mutates: hdr, mat[BEST]. Allocates: nothing. Returns: the value signed so that lower is better."""
    h = hdr[0]
    h["n_told"] += 1
    y = h["sense"] * value
    if h["has_best"] == 0 or y < h["sense"] * h["best_value"]:
        h["best_value"] = value
        h["has_best"] = 1
        for i in range(mat.shape[1]):
            mat[BEST, i] = mat[row, i]
    return y


@kernel(t.int64(HDR_TYPE, MAT_TYPE, t.float64), inline=True)
def spsa_tell(hdr, mat, value):
    """Accept the measured ``value`` of the outstanding proposal.
    Mutates: hdr, mat. Allocates: nothing. Returns: OK, NONFINITE or NOT_ASKED (the last two change nothing)."""
    h = hdr[0]
    if h["pending"] == PENDING_NONE:
        return NOT_ASKED
    if not np.isfinite(value):
        return NONFINITE
    h["pending"] = PENDING_NONE
    y = count_value(hdr, mat, value, X)
    if h["phase"] == 0:
        h["y_plus"] = y
        h["phase"] = 1
        if h["constant_gains"] == 0:  # the factors whose logs the pair's ask and the last update worked out
            _decay_finish(hdr, GAIN)
            _decay_finish(hdr, PERTURBATION)
    else:
        h["phase"] = 0
        _spsa_accumulate(hdr, mat, y)
    return OK


@kernel(t.void(HDR_TYPE), inline=True)
def spsa_reopen(hdr):
    """Re-open exploration after the objective drifted: decaying gains start again from k = 0 (constant gains are
    unchanged: they already track), and the best value, measured before the drift, is forgotten; so is blocking's
    value before the last move, and its gain cut. The pair in flight, the calibrated `a` and the measured jitter are
    kept. Mutates: hdr. Allocates: nothing."""
    h = hdr[0]
    h["k"] = 0
    h["has_best"] = 0
    h["moved"] = STILL
    h["n_values"] = 0
    h["gain_scale"] = 1.0
