"""Bandit selector state and kernels: choose one of K discrete arms, only among the eligible, and learn from rewards.

A selector state is one float64 buffer like every arqon state: a header record (magic, layout id, words, sizes,
settings, counters, the xoshiro256** state), a (rows, K) matrix of per-arm statistics, then a vector of blocks sized
by the header (a sliding window, per-arm reward histories, per-arm linear models, constraints, the last context).
Every kernel opens it with ``open_bandit`` and refuses anything else, touching nothing.

A choice is SLA-first: an arm is a candidate when the caller's ``eligible`` mask allows it and it meets every
constraint with the configured confidence; the policy's score is computed for EVERY arm (random draws included, in
arm order), and the highest-scoring candidate wins, ties to the lower index. So a mask changes which arm wins, never
any arm's score or the random stream, and a masked arm is never chosen. With no candidate the fallback arm is
returned with NONE_ELIGIBLE. Rewards are maximized.
"""

import math

import numba
import numpy as np
from numba import types as t

from ._jit import kernel, shares_memory, view_at
from ._status import BAD_ARGUMENT, BAD_STATE, DRIFT, NONE_ELIGIBLE, NONFINITE, NOT_ASKED, OK
from .bandit_math import glr_fires, klucb_index, mean_and_width, sherman_morrison
from .rng import rng_seed, rng_uniform
from .sampling import gamma_at_least_one, gamma_constants, gamma_constants_valid, gamma_in_registers, sample_normal
from .state import layout_id, opened_header, padded_record, page_aligned_zeros

# policies
THOMPSON = 0  # Beta-Bernoulli Thompson sampling
GAUSSIAN_THOMPSON = 1  # Normal prior, known noise variance
UCB1 = 2
KLUCB = 3
DISCOUNTED_THOMPSON = 4  # Raj and Kalyani 2017: every arm's counts discounted each step
DISCOUNTED_UCB = 5  # Garivier and Moulines 2011
SLIDING_WINDOW_UCB = 6  # Garivier and Moulines 2011
SLIDING_WINDOW_THOMPSON = 7
GLR_KLUCB = 8  # Besson et al. 2022: KL-UCB with local restarts on a Bernoulli GLR test, forced exploration
LINUCB = 9  # Li et al. 2010, disjoint arms
LINEAR_THOMPSON = 10  # Agrawal and Goyal 2013, disjoint arms
N_POLICIES = 11
POLICY_NAMES = ("thompson", "gaussian-thompson", "ucb1", "klucb", "discounted-thompson", "discounted-ucb",
                "sliding-window-ucb", "sliding-window-thompson", "glr-klucb", "linucb", "lints")
BERNOULLI = (THOMPSON, KLUCB, DISCOUNTED_THOMPSON, SLIDING_WINDOW_THOMPSON, GLR_KLUCB)  # rewards in [0, 1]
WINDOWED = (SLIDING_WINDOW_UCB, SLIDING_WINDOW_THOMPSON)
LINEAR = (LINUCB, LINEAR_THOMPSON)

AT_MOST, AT_LEAST = 0, 1  # a constraint's direction: the metric must stay <= or >= its limit

MAGIC = 0x6172716F6E5F4233  # "arqon_B3"
MAX_ARMS = 1 << 16
MAX_CONTEXT = 16
MAX_METRICS = 64
MAX_WINDOW = 1 << 24
MAX_HISTORY = 1 << 12

_FIELDS = [
    ("magic", np.int64), ("layout", np.int64), ("words", np.int64),  # MAGIC, BANDIT_LAYOUT, words of the whole buffer
    ("policy", np.int64),  # a policy code above
    ("k", np.int64),  # arms
    ("d", np.int64),  # context dimension (linear policies; else 0)
    ("n_metrics", np.int64),  # metrics reported with each reward (constraints read them)
    ("n_cons", np.int64),  # constraints
    ("window", np.int64),  # sliding-window policies: rewards in the window (else 0)
    ("history", np.int64),  # GLR: rewards kept per arm for the change test (else 0)
    ("check_every", np.int64),  # GLR: test an arm every this many of its rewards
    ("stride", np.int64),  # GLR: test every this many split points
    ("min_samples", np.int64),  # constraints: below this many samples of a metric an arm counts as meeting it
    ("fallback", np.int64),  # the arm returned when none is eligible
    ("pending", np.int64),  # 1 while a chosen arm awaits its reward
    ("last", np.int64),  # the arm chosen last (-1: none yet)
    ("t", np.int64),  # rewards accepted
    ("w_head", np.int64),  # sliding window: oldest entry
    ("w_count", np.int64),  # sliding window: entries held
    ("restarts", np.int64),  # GLR: arm restarts so far
    ("status", np.int64),  # flags of the last call
    ("log_t", np.float64),  # ln max(t, 1), kept by update
    ("level", np.float64),  # KL-UCB: ln t + c ln ln t, kept by update
    ("explore", np.float64),  # UCB1 / LinUCB / linear Thompson: width multiplier; KL-UCB, GLR: the c of log log t
    ("discount", np.float64),  # discounted policies: gamma in (0, 1]
    ("prior_a", np.float64), ("prior_b", np.float64),  # Beta prior
    ("prior_mean", np.float64), ("prior_var", np.float64), ("noise_var", np.float64),  # Gaussian Thompson
    ("bound", np.float64),  # discounted / sliding-window UCB: the reward bound B
    ("xi", np.float64),  # discounted / sliding-window UCB: the xi of the width
    ("delta", np.float64),  # GLR: the test's confidence
    ("forced", np.float64),  # GLR: forced exploration rate alpha (0: none)
    ("ridge", np.float64),  # linear policies: lambda of A = lambda I + sum x x^T
    ("z", np.float64),  # constraints: an arm meets one when mean +- z * standard error is within the limit
    ("rng", np.uint64, (4,)),
]
BANDIT_HEADER = padded_record(_FIELDS)
BANDIT_HEADER_BYTES = BANDIT_HEADER.itemsize
BANDIT_HEADER_WORDS = BANDIT_HEADER_BYTES // 8

# rows of the (rows, K) matrix
N, S = 0, 1  # plays and reward sum (discounted, windowed or since the arm's restart, as the policy keeps them)
SCORE = 2  # each arm's score at the last choice
ALPHA, BETA, ALPHA_D, ALPHA_C, BETA_D, BETA_C = 3, 4, 5, 6, 7, 8  # Beta posterior shapes and their gamma_constants
POST_MEAN, POST_SD = 9, 10  # Gaussian Thompson posterior
RESTART, H_COUNT, H_HEAD, SINCE_TEST = 11, 12, 13, 14  # GLR: the arm's restart time, its history ring, its last test
MEAN, INV_N = 15, 16  # UCB1: S / N and 1 / N (0 and inf for an arm never played)
KQ, KLEVEL, KSLOPE = 17, 18, 19  # KL-UCB: the arm's index at level KLEVEL (-1: to compute) and its slope in the level
NOISE_SS, NOISE_SD = 20, 21  # linear policies: the ridge fit's residual sum of squares, and the noise sd estimate
BASE_ROWS = 22
# A linear arm's noise variance estimate is (NOISE_PRIOR + RSS) / (NOISE_PRIOR + n): a normal-inverse-gamma prior
# with a0 = b0 = 1, i.e. a variance of 1 worth 2 observations. An arm with no data has Li et al.'s LinUCB width;
# as data comes it scales to the noise measured (a confidence radius is proportional to the noise sd: OFUL,
# Abbasi-Yadkori et al. 2011).
NOISE_PRIOR = 2.0
METRIC_N, METRIC_MEAN, METRIC_M2 = 0, 1, 2  # per metric j, rows BASE_ROWS + 3 j + these (Welford)
CON_METRIC, CON_DIRECTION, CON_LIMIT = 0, 1, 2  # a constraint's three words in the constraints block
BANDIT_LAYOUT = layout_id("bandit", BANDIT_HEADER.descr, BANDIT_HEADER.itemsize, BASE_ROWS, 3, 3,
                          "window2", "history", "linear(d*d+2d)", "cons3", "context")
BANDIT_TYPE = numba.from_dtype(BANDIT_HEADER)[::1]
F8 = t.float64[::1]
MASK = t.boolean[::1]


@kernel(t.UniTuple(t.int64, 6)(t.int64, t.int64, t.int64, t.int64, t.int64), inline=True)
def _blocks(k, d, window, history, n_cons):
    """Offsets of the vector's blocks (window, histories, linear models, constraints, context) and its length."""
    v_hist = 2 * window
    v_lin = v_hist + k * history
    v_cons = v_lin + k * (d * d + 2 * d)
    v_ctx = v_cons + 3 * n_cons
    return 0, v_hist, v_lin, v_cons, v_ctx, v_ctx + d


@kernel(t.int64(F8), inline=True)
def open_bandit(state):
    """OK when ``state`` is a whole selector state its kernels can run on: magic, layout id, a word count equal to the
    array's size and to what its sizes add up to, every size within its limit and consistent with the policy, the
    counters, the fallback and the last arm within range; else BAD_STATE. Reads: the header. Allocates: nothing."""
    n = state.shape[0]
    if n < BANDIT_HEADER_WORDS:
        return BAD_STATE
    g = view_at(state.ctypes.data, 1, BANDIT_HEADER)[0]
    p, k, d, m, c = g["policy"], g["k"], g["d"], g["n_metrics"], g["n_cons"]
    w, hist = g["window"], g["history"]
    bad = (g["magic"] != MAGIC) | (g["layout"] != BANDIT_LAYOUT) | (g["words"] != n) | (p < 0) | (p >= N_POLICIES)
    bad |= (k < 1) | (k > MAX_ARMS) | (d < 0) | (d > MAX_CONTEXT) | (m < 0) | (m > MAX_METRICS) | (c < 0)
    bad |= (c > MAX_METRICS) | (w < 0) | (w > MAX_WINDOW) | (hist < 0) | (hist > MAX_HISTORY)
    if bad:
        return BAD_STATE
    linear = (p == LINUCB) | (p == LINEAR_THOMPSON)
    windowed = (p == SLIDING_WINDOW_UCB) | (p == SLIDING_WINDOW_THOMPSON)
    bad = linear != (d >= 1)
    bad |= windowed != (w >= 1)
    bad |= (p == GLR_KLUCB) != (hist >= 2)
    bad |= (g["check_every"] < 1) | (g["stride"] < 1) | (g["min_samples"] < 0)
    bad |= (g["fallback"] < 0) | (g["fallback"] >= k) | (g["last"] < -1) | (g["last"] >= k)
    bad |= (g["pending"] < 0) | (g["pending"] > 1) | ((g["pending"] == 1) & (g["last"] < 0)) | (g["t"] < 0)
    bad |= (g["w_count"] < 0) | (g["w_count"] > w) | (g["w_head"] < 0) | (g["w_head"] >= max(w, 1))
    n_vec = _blocks(k, d, w, hist, c)[5]
    if bad or BANDIT_HEADER_WORDS + (BASE_ROWS + 3 * m) * k + n_vec != n:
        return BAD_STATE
    return OK


@numba.njit(inline="always")
def _header(state):
    return view_at(state.ctypes.data, 1, BANDIT_HEADER)


@numba.njit(inline="always")
def _matrix(h):
    g = h[0]
    return view_at(h.ctypes.data + BANDIT_HEADER_BYTES, (BASE_ROWS + 3 * g["n_metrics"], g["k"]), np.float64)


@numba.njit(inline="always")
def _vector(h):
    g = h[0]
    k = g["k"]
    at = h.ctypes.data + BANDIT_HEADER_BYTES + 8 * (BASE_ROWS + 3 * g["n_metrics"]) * k
    return view_at(at, _blocks(k, g["d"], g["window"], g["history"], g["n_cons"])[5], np.float64)


@kernel(t.void(BANDIT_TYPE, t.float64[:, ::1], t.int64), inline=True)
def _refresh_beta(h, m, arm):
    """The Beta posterior of ``arm`` from its plays and reward sum, with its gamma constants. Mutates: m."""
    g = h[0]
    a = g["prior_a"] + m[S, arm]
    b = g["prior_b"] + max(m[N, arm] - m[S, arm], 0.0)
    m[ALPHA, arm], m[BETA, arm] = a, b
    m[ALPHA_D, arm], m[ALPHA_C, arm] = gamma_constants(a)
    m[BETA_D, arm], m[BETA_C, arm] = gamma_constants(b)


@kernel(t.void(BANDIT_TYPE, t.float64[:, ::1], t.int64), inline=True)
def _refresh_normal(h, m, arm):
    """The Normal posterior of ``arm``'s mean (prior N(prior_mean, prior_var), noise variance noise_var). Mutates: m."""
    g = h[0]
    precision = 1.0 / g["prior_var"] + m[N, arm] / g["noise_var"]
    m[POST_MEAN, arm] = (g["prior_mean"] / g["prior_var"] + m[S, arm] / g["noise_var"]) / precision
    m[POST_SD, arm] = math.sqrt(1.0 / precision)


@kernel(t.void(BANDIT_TYPE, t.float64[:, ::1], t.int64), inline=True)
def _refresh(h, m, arm):
    """What the policy caches of ``arm``'s statistics, after they changed. Mutates: m."""
    p = h[0]["policy"]
    if p == GAUSSIAN_THOMPSON:
        _refresh_normal(h, m, arm)
    elif p == UCB1:
        n = m[N, arm]
        m[MEAN, arm], m[INV_N, arm] = (m[S, arm] / n, 1.0 / n) if n > 0.0 else (0.0, math.inf)
    elif p == KLUCB or p == GLR_KLUCB:
        m[KLEVEL, arm] = -1.0
    elif p == THOMPSON or p == DISCOUNTED_THOMPSON or p == SLIDING_WINDOW_THOMPSON:
        _refresh_beta(h, m, arm)
    elif p == LINUCB or p == LINEAR_THOMPSON:  # the noise variance's estimate from a prior of 1 worth 2 observations
        m[NOISE_SD, arm] = math.sqrt((NOISE_PRIOR + m[NOISE_SS, arm]) / (NOISE_PRIOR + m[N, arm]))


@kernel(t.float64(BANDIT_TYPE, t.float64[:, ::1], t.int64, t.float64), inline=True)
def _kl_index(h, m, a, level):
    """The KL-UCB index of arm ``a`` at ``level``, cached with its slope dq/dlevel = q (1 - q) / (n (q - mean)).
    Mutates: m[KQ, KLEVEL, KSLOPE]. Allocates: nothing."""
    n = m[N, a]
    mean = m[S, a] / n
    q = klucb_index(mean, n, level)
    m[KQ, a], m[KLEVEL, a] = q, level
    m[KSLOPE, a] = q * (1.0 - q) / (n * (q - mean)) if q > mean else math.inf
    return q


@kernel(t.float64(BANDIT_TYPE, t.float64[:, ::1], t.int64), inline=True)
def _level(h, m, a):
    """Arm ``a``'s KL-UCB level: ln t + c ln ln t, t counted since the arm's restart under GLR-klUCB."""
    g = h[0]
    if g["policy"] == KLUCB:
        return g["level"]
    level = math.log(max(g["t"] - m[RESTART, a], 1.0))
    return level + g["explore"] * math.log(level) if g["explore"] > 0.0 and level > 0.0 else level


@kernel(t.int64(BANDIT_TYPE, t.float64[:, ::1], t.float64[::1], t.int64), inline=True)
def _meets_constraints(h, m, v, arm):
    """1 when ``arm`` meets every constraint (mean + z se <= limit, or mean - z se >= limit, over its samples; an
    arm with fewer than min_samples samples of a metric counts as meeting it), 0 when not, -1 when a constraint names
    a metric or a direction that does not exist. Allocates: nothing."""
    g = h[0]
    cons = _blocks(g["k"], g["d"], g["window"], g["history"], g["n_cons"])[3]
    for c in range(g["n_cons"]):
        metric, direction, limit = v[cons + 3 * c], v[cons + 3 * c + 1], v[cons + 3 * c + 2]
        if not (metric >= 0.0 and metric < g["n_metrics"] and (direction == AT_MOST or direction == AT_LEAST)):
            return -1
        row = BASE_ROWS + 3 * np.int64(metric)
        n = m[row + METRIC_N, arm]
        if n < max(g["min_samples"], 2):
            continue
        se = math.sqrt(m[row + METRIC_M2, arm] / (n - 1.0) / n)
        mean = m[row + METRIC_MEAN, arm]
        if not (mean + g["z"] * se <= limit if direction == AT_MOST else mean - g["z"] * se >= limit):
            return 0
    return 1


@kernel(t.boolean(BANDIT_TYPE, t.float64[:, ::1], t.float64[::1], MASK, t.int64), inline=True)
def _candidate(h, m, v, eligible, a):
    """True when arm ``a`` may be chosen: the mask allows it and it meets every constraint."""
    return eligible[a] and (h[0]["n_cons"] == 0 or _meets_constraints(h, m, v, a) == 1)


@kernel(t.void(BANDIT_TYPE, t.float64[:, ::1]), inline=True)
def _beta_scores(h, m):
    """Every arm's Beta posterior draw into m[SCORE], in arm order, with the selector's generator in registers.
    Mutates: m[SCORE], the RNG. Allocates: nothing."""
    rng = h[0]["rng"]
    score = m[SCORE]
    k = m.shape[1]
    common = True  # every shape at least 1 with valid constants (a Beta-Bernoulli posterior's always are): the
    for a in range(k):  # checks once, here, not in every draw (7 of 78 ns at K = 8)
        common &= (m[ALPHA, a] >= 1.0) & (m[BETA, a] >= 1.0)
        common &= gamma_constants_valid(m[ALPHA, a], m[ALPHA_D, a], m[ALPHA_C, a])
        common &= gamma_constants_valid(m[BETA, a], m[BETA_D, a], m[BETA_C, a])
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    if common:
        for a in range(k):
            x, s0, s1, s2, s3 = gamma_at_least_one(rng, s0, s1, s2, s3, m[ALPHA_D, a], m[ALPHA_C, a])
            y, s0, s1, s2, s3 = gamma_at_least_one(rng, s0, s1, s2, s3, m[BETA_D, a], m[BETA_C, a])
            score[a] = x / (x + y)
    else:
        for a in range(k):
            x, s0, s1, s2, s3 = gamma_in_registers(rng, s0, s1, s2, s3, m[ALPHA, a], m[ALPHA_D, a], m[ALPHA_C, a])
            y, s0, s1, s2, s3 = gamma_in_registers(rng, s0, s1, s2, s3, m[BETA, a], m[BETA_D, a], m[BETA_C, a])
            score[a] = x / (x + y)
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3


@kernel(t.void(BANDIT_TYPE, t.float64[:, ::1], t.float64[::1], t.float64[::1], MASK), inline=True)
def _score(h, m, v, context, eligible):
    """Write every arm's score into m[SCORE] (random draws for every arm, in arm order). KL-UCB's indices are cached:
    an arm's cached index is a lower bound of its current one and the tangent at it an upper bound (the index is
    concave in the level), so only the candidates whose upper bound reaches the best lower bound are recomputed;
    the others keep their lower bound as their score, and cannot win. Mutates: m, the RNG. Allocates: nothing."""
    g = h[0]
    p, k = g["policy"], g["k"]
    rng = g["rng"]
    score = m[SCORE]
    if p == THOMPSON or p == DISCOUNTED_THOMPSON or p == SLIDING_WINDOW_THOMPSON:
        _beta_scores(h, m)
    elif p == GAUSSIAN_THOMPSON:
        for a in range(k):
            score[a] = m[POST_MEAN, a] + m[POST_SD, a] * sample_normal(rng)
    elif p == UCB1:
        width = 2.0 * g["log_t"]
        explore = g["explore"]
        mean, inv_n = m[MEAN], m[INV_N]
        for a in range(k):
            score[a] = math.inf if inv_n[a] == math.inf else mean[a] + explore * math.sqrt(width * inv_n[a])
    elif p == KLUCB or p == GLR_KLUCB:
        floor = -math.inf
        for a in range(k):
            if m[N, a] <= 0.0:
                q = math.inf
            elif m[KLEVEL, a] < 0.0:
                q = _kl_index(h, m, a, _level(h, m, a))
            else:
                q = m[KQ, a]
            score[a] = q
            if q > floor and _candidate(h, m, v, eligible, a):
                floor = q
        for a in range(k):
            if m[N, a] > 0.0 and _candidate(h, m, v, eligible, a):
                level = _level(h, m, a)
                if m[KLEVEL, a] != level and m[KQ, a] + (level - m[KLEVEL, a]) * m[KSLOPE, a] >= floor:
                    score[a] = _kl_index(h, m, a, level)
    elif p == DISCOUNTED_UCB or p == SLIDING_WINDOW_UCB:
        if p == DISCOUNTED_UCB:
            total = 0.0
            for a in range(k):
                total += m[N, a]
        else:
            total = np.float64(min(g["t"], g["window"]))
        width = g["xi"] * math.log(max(total, 1.0))
        scale = (2.0 if p == DISCOUNTED_UCB else 1.0) * g["bound"]
        for a in range(k):
            n = m[N, a]
            score[a] = m[S, a] / n + scale * math.sqrt(width / n) if n > 1e-300 else math.inf
    else:  # LINUCB, LINEAR_THOMPSON (open_bandit admits no other code)
        d = g["d"]
        lin = _blocks(k, d, g["window"], g["history"], g["n_cons"])[2]
        size = d * d + 2 * d
        for a in range(k):
            base = lin + a * size
            a_inv = view_at(v.ctypes.data + 8 * base, (d, d), np.float64)  # reshape() of a slice costs ~15 ns
            mean, width = mean_and_width(a_inv, v[base + d * d + d:base + size], context)
            spread = g["explore"] * m[NOISE_SD, a] * width
            score[a] = mean + (spread * sample_normal(rng) if p == LINEAR_THOMPSON else spread)


@kernel(t.int64(F8, MASK, F8), inline=True)
def _refuses_choice(state, eligible, context):
    """What ``select`` would refuse, before it touches anything: BAD_STATE for a state ``open_bandit`` refuses or a
    constraint naming a metric or a direction that does not exist, BAD_ARGUMENT for a mask that does not have K
    entries or a context that does not have d finite ones; else OK. Allocates: nothing."""
    if open_bandit(state) != OK:
        return BAD_STATE
    h = _header(state)
    g = h[0]
    k = g["k"]
    if eligible.shape[0] != k or context.shape[0] != g["d"]:
        return BAD_ARGUMENT
    for i in range(context.shape[0]):
        if not math.isfinite(context[i]):
            return BAD_ARGUMENT
    if g["n_cons"] > 0:
        m, v = _matrix(h), _vector(h)
        for a in range(k):
            if _meets_constraints(h, m, v, a) < 0:
                return BAD_STATE
    return OK


@kernel(t.int64(BANDIT_TYPE, MASK, F8), inline=True)
def _choose(h, eligible, context):
    """``select`` on a state and arguments ``_refuses_choice`` passed. Mutates: state. Allocates: nothing.
    Returns: the arm."""
    g = h[0]
    k, d = g["k"], g["d"]
    m, v = _matrix(h), _vector(h)
    _score(h, m, v, context, eligible)
    best, status = -1, OK
    if g["policy"] == GLR_KLUCB and g["forced"] > 0.0:  # forced exploration: arm t mod floor(K / alpha), if any
        period = max(np.int64(k / g["forced"]), k)
        j = g["t"] % period
        if j < k and _candidate(h, m, v, eligible, j):
            best = j
    if best < 0:  # the highest score among the candidates, earlier arms winning ties, with no branch on the scores
        score = m[SCORE]  # (Thompson's random ones mispredicted it: 17 ns for an 8-arm argmax against 3)
        top = -math.inf
        for a in range(k):
            s = score[a] if _candidate(h, m, v, eligible, a) else -math.inf
            take = -np.int64(s > top)
            best = (a & take) | (best & ~take)
            top = max(top, s)
        if best < 0:  # no candidate scores above -inf (NaN counts as below it): the first candidate
            for a in range(k):
                if _candidate(h, m, v, eligible, a):
                    best = a
                    break
    if best < 0:
        best, status = g["fallback"], NONE_ELIGIBLE
    ctx = _blocks(k, d, g["window"], g["history"], g["n_cons"])[4]
    for i in range(d):
        v[ctx + i] = context[i]
    g["last"], g["pending"], g["status"] = best, 1, status
    return best


@kernel(t.int64(F8, MASK, F8))
def select(state, eligible, context):
    """Choose an arm: the highest score among the arms that ``eligible`` (length K) allows and that meet every
    constraint; ``context`` is the context vector of a linear policy (length d; empty otherwise). A choice made while
    another awaits its reward replaces it. Mutates: state (scores, RNG, the arm out, the context). Allocates:
    nothing. Returns: the arm; the fallback arm with status NONE_ELIGIBLE (see ``bandit_status``) when none is
    eligible; -BAD_STATE or -BAD_ARGUMENT (a mask or context of the wrong length, a non-finite context), with
    nothing touched, when refused."""
    refused = _refuses_choice(state, eligible, context)
    if refused != OK:
        return -refused
    return _choose(_header(state), eligible, context)


@kernel(t.void(BANDIT_TYPE, t.float64[:, ::1], t.float64[::1], t.int64, t.float64))
def _learn(h, m, v, arm, reward):
    """The policy's update for ``reward`` on ``arm`` (already checked). Mutates: m, v, counters."""
    g = h[0]
    p, k = g["policy"], g["k"]
    if p == DISCOUNTED_THOMPSON or p == DISCOUNTED_UCB:  # every arm forgets, then the played one learns
        gamma = g["discount"]
        for a in range(k):
            m[N, a] *= gamma
            m[S, a] *= gamma
    if p == SLIDING_WINDOW_UCB or p == SLIDING_WINDOW_THOMPSON:
        w, head, count = g["window"], g["w_head"], g["w_count"]
        if count == w:  # the oldest entry leaves the window
            old = np.int64(v[2 * head])
            if old >= 0 and old < k:
                m[N, old] = max(m[N, old] - 1.0, 0.0)
                m[S, old] -= v[2 * head + 1]
                if m[N, old] == 0.0:
                    m[S, old] = 0.0  # no rounding residue in an empty arm
                _refresh(h, m, old)
            head = (head + 1) % w
            count -= 1
        slot = (head + count) % w
        v[2 * slot], v[2 * slot + 1] = arm, reward
        g["w_head"], g["w_count"] = head, count + 1
    m[N, arm] += 1.0
    m[S, arm] += reward
    if p == GLR_KLUCB:
        hist = g["history"]
        base = _blocks(k, g["d"], g["window"], hist, g["n_cons"])[1] + arm * hist
        ring = v[base:base + hist]
        count, head = np.int64(m[H_COUNT, arm]), np.int64(m[H_HEAD, arm])
        if count == hist:
            ring[head] = reward
            head = (head + 1) % hist
        else:
            ring[(head + count) % hist] = reward
            count += 1
        m[H_COUNT, arm], m[H_HEAD, arm] = count, head
        m[SINCE_TEST, arm] += 1.0
        if m[SINCE_TEST, arm] >= g["check_every"]:
            m[SINCE_TEST, arm] = 0.0
            if glr_fires(ring, head, count, g["stride"], g["delta"]):  # restart this arm's statistics
                m[N, arm], m[S, arm], m[H_COUNT, arm], m[H_HEAD, arm] = 0.0, 0.0, 0.0, 0.0
                m[RESTART, arm] = g["t"] + 1
                g["restarts"] += 1
                g["status"] |= DRIFT
    if p == LINUCB or p == LINEAR_THOMPSON:
        d = g["d"]
        size = d * d + 2 * d
        blocks = _blocks(k, d, g["window"], g["history"], g["n_cons"])
        base = blocks[2] + arm * size
        a_inv = view_at(v.ctypes.data + 8 * base, (d, d), np.float64)
        b, theta, x = v[base + d * d:base + d * d + d], v[base + d * d + d:base + size], v[blocks[4]:blocks[4] + d]
        error = reward
        for i in range(d):
            error -= theta[i] * x[i]
        # the ridge objective at its minimum grows by e^2 / (1 + x^T A^-1 x), e the error of the old fit
        m[NOISE_SS, arm] += error * error / sherman_morrison(a_inv, x, theta)  # theta as scratch, rewritten below
        for i in range(d):
            b[i] += reward * x[i]
        for i in range(d):
            acc = 0.0
            for j in range(d):
                acc += a_inv[i, j] * b[j]
            theta[i] = acc
    if p == DISCOUNTED_THOMPSON:
        for a in range(k):
            _refresh_beta(h, m, a)
    else:
        _refresh(h, m, arm)


@kernel(t.int64(BANDIT_TYPE, t.int64, t.float64, F8), inline=True)
def _learned(h, arm, reward, metrics):
    """``update`` on an opened state. Mutates: state, unless refused. Returns: as ``update``."""
    g = h[0]
    if g["pending"] != 1:
        return NOT_ASKED
    n_metrics = g["n_metrics"]
    if arm != g["last"] or metrics.shape[0] != n_metrics:
        return BAD_ARGUMENT
    if not math.isfinite(reward):
        return NONFINITE
    for j in range(n_metrics):
        if not math.isfinite(metrics[j]):
            return NONFINITE
    p = g["policy"]
    if (p == THOMPSON or p == KLUCB or p == DISCOUNTED_THOMPSON or p == SLIDING_WINDOW_THOMPSON or p == GLR_KLUCB) \
            and not (reward >= 0.0 and reward <= 1.0):
        return BAD_ARGUMENT
    m, v = _matrix(h), _vector(h)
    if p == GLR_KLUCB:
        count, head = m[H_COUNT, arm], m[H_HEAD, arm]
        if not (count >= 0.0 and count <= g["history"] and head >= 0.0 and head < g["history"]):
            return BAD_STATE
    g["status"] = OK
    _learn(h, m, v, arm, reward)
    for j in range(n_metrics):  # Welford's running mean and sum of squared deviations
        row = BASE_ROWS + 3 * j
        n = m[row + METRIC_N, arm] + 1.0
        delta = metrics[j] - m[row + METRIC_MEAN, arm]
        m[row + METRIC_N, arm] = n
        m[row + METRIC_MEAN, arm] += delta / n
        m[row + METRIC_M2, arm] += delta * (metrics[j] - m[row + METRIC_MEAN, arm])
    g["t"] += 1
    g["log_t"] = math.log(g["t"])
    g["level"] = g["log_t"] + g["explore"] * math.log(g["log_t"]) if g["explore"] > 0.0 and g["log_t"] > 0.0 \
        else g["log_t"]
    g["pending"] = 0
    return g["status"]


@kernel(t.int64(F8, t.int64, t.float64, F8))
def update(state, arm, reward, metrics):
    """Learn ``reward`` (and the ``metrics`` the constraints read, length n_metrics) of the arm chosen last.
    Mutates: state. Allocates: nothing. Returns: OK, or DRIFT when a GLR test restarted the arm; NOT_ASKED (no arm
    out), BAD_ARGUMENT (another arm than the one out, a Bernoulli reward outside [0, 1], metrics of the wrong
    length), NONFINITE and BAD_STATE leave the state unchanged."""
    if open_bandit(state) != OK:
        return BAD_STATE
    return _learned(_header(state), arm, reward, metrics)


@kernel(t.int64(F8, t.float64, F8, MASK, F8))
def step(state, reward, metrics, eligible, context):
    """``update`` the arm out with ``reward`` and ``metrics``, then ``select`` the next among ``eligible`` at
    ``context``: one call per measurement (with no arm out, the reward is ignored). Mutates: state. Allocates:
    nothing. Returns: the next arm (the fallback with NONE_ELIGIBLE), or minus the flags of a refused update or
    selection, with nothing touched (the update's DRIFT stays in ``bandit_status``)."""
    refused = _refuses_choice(state, eligible, context)
    if refused != OK:
        return -refused
    h = _header(state)
    learned = OK
    if h[0]["pending"] == 1:
        learned = _learned(h, h[0]["last"], reward, metrics)
        if learned & ~DRIFT:
            return -learned
    arm = _choose(h, eligible, context)
    h[0]["status"] |= learned
    return arm


@kernel(t.int64(F8, MASK, MASK))
def bandit_candidates(state, eligible, out):
    """Which arms a choice now could pick: ``out[a]`` True when ``eligible`` allows arm ``a`` and it meets every
    constraint with the configured confidence (SLA-first eligibility, as ``select`` applies it). Mutates: out.
    Allocates: nothing. Returns: the number of candidates; -BAD_STATE or -BAD_ARGUMENT (masks not of length K, an
    ``out`` sharing memory with the state), with nothing touched, when refused."""
    if open_bandit(state) != OK:
        return -BAD_STATE
    h = _header(state)
    k = h[0]["k"]
    if eligible.shape[0] != k or out.shape[0] != k or shares_memory(state, out):
        return -BAD_ARGUMENT
    m, v = _matrix(h), _vector(h)
    for a in range(k):
        if _meets_constraints(h, m, v, a) < 0:
            return -BAD_STATE
    n = 0
    for a in range(k):
        out[a] = _candidate(h, m, v, eligible, a)
        n += out[a]
    return n


@kernel(t.int64(F8))
def bandit_status(state):
    """The flags of the last call on ``state`` (NONE_ELIGIBLE, DRIFT), or BAD_STATE. Allocates: nothing."""
    if open_bandit(state) != OK:
        return BAD_STATE
    return _header(state)[0]["status"]


@kernel(t.int64(F8, F8, MASK, t.int64))
def tournament(state, scores, eligible, size):
    """Tournament choice: draw ``size`` (2 to 4) distinct items uniformly among those ``eligible`` allows (all of them
    when fewer are), with the selector's RNG, and return the one with the highest score (ties to the lower index),
    e.g. over a replay buffer or shadow scores. Mutates: the RNG. Allocates: nothing. Returns: the item's index;
    -NONE_ELIGIBLE when none is eligible; -BAD_ARGUMENT (size, lengths, a non-finite score of a drawn item) or
    -BAD_STATE with nothing touched."""
    if open_bandit(state) != OK:
        return -BAD_STATE
    n = scores.shape[0]
    if eligible.shape[0] != n or size < 2 or size > 4:
        return -BAD_ARGUMENT
    n_ok = 0
    for i in range(n):
        if eligible[i]:
            if not math.isfinite(scores[i]):
                return -BAD_ARGUMENT
            n_ok += 1
    if n_ok == 0:
        return -NONE_ELIGIBLE
    rng = _header(state)[0]["rng"]
    draws = min(size, n_ok)
    c0, c1, c2, c3 = -1, -1, -1, -1
    best = -1
    for r in range(draws):
        while True:
            rank = min(np.int64(rng_uniform(rng) * n_ok), n_ok - 1)
            pick = -1
            for i in range(n):  # the rank-th eligible item
                if eligible[i]:
                    if rank == 0:
                        pick = i
                        break
                    rank -= 1
            if pick != c0 and pick != c1 and pick != c2 and pick != c3:
                break
        if r == 0:
            c0 = pick
        elif r == 1:
            c1 = pick
        elif r == 2:
            c2 = pick
        else:
            c3 = pick
        if best < 0 or scores[pick] > scores[best] or (scores[pick] == scores[best] and pick < best):
            best = pick
    return best


def new_bandit_state(policy, k, seed, d=0, n_metrics=0, constraints=(), window=0, history=0, check_every=1,
                     stride=1, min_samples=2, fallback=0, explore=1.0, discount=1.0, prior_a=1.0, prior_b=1.0,
                     prior_mean=0.0, prior_var=1.0, noise_var=1.0, bound=1.0, xi=0.6, delta=0.01, forced=0.0,
                     ridge=1.0, z=1.645):
    """A selector state that runs: ``policy`` (a code above) over ``k`` arms, seeded with ``seed``; ``constraints``
    a sequence of (metric index, AT_MOST or AT_LEAST, limit). The shell maps a config onto these scalars and checks
    them; this raises ValueError for sizes the layout cannot hold. Returns: the whole buffer."""
    for name, value, low, high in (("policy", policy, 0, N_POLICIES - 1), ("k", k, 1, MAX_ARMS),
                                   ("d", d, 0, MAX_CONTEXT), ("n_metrics", n_metrics, 0, MAX_METRICS),
                                   ("constraints", len(constraints), 0, MAX_METRICS), ("window", window, 0, MAX_WINDOW),
                                   ("history", history, 0, MAX_HISTORY), ("fallback", fallback, 0, k - 1)):
        if not low <= value <= high:
            raise ValueError(f"{name}: {value}; a selector state holds {low} to {high}")
    rows = BASE_ROWS + 3 * n_metrics
    blocks = _blocks(k, d, window, history, len(constraints))
    words = BANDIT_HEADER_WORDS + rows * k + blocks[5]
    buf = page_aligned_zeros(words)
    h = buf[:BANDIT_HEADER_WORDS].view(BANDIT_HEADER)[0]
    for name, value in (("magic", MAGIC), ("layout", BANDIT_LAYOUT), ("words", words), ("policy", policy), ("k", k),
                        ("d", d), ("n_metrics", n_metrics), ("n_cons", len(constraints)), ("window", window),
                        ("history", history), ("check_every", check_every), ("stride", stride),
                        ("min_samples", min_samples), ("fallback", fallback), ("last", -1), ("explore", explore),
                        ("discount", discount), ("prior_a", prior_a), ("prior_b", prior_b),
                        ("prior_mean", prior_mean), ("prior_var", prior_var), ("noise_var", noise_var),
                        ("bound", bound), ("xi", xi), ("delta", delta), ("forced", forced), ("ridge", ridge),
                        ("z", z)):
        h[name] = value
    rng_seed(h["rng"], np.uint64(seed))
    m = buf[BANDIT_HEADER_WORDS:BANDIT_HEADER_WORDS + rows * k].reshape(rows, k)
    v = buf[BANDIT_HEADER_WORDS + rows * k:]
    hb = buf[:BANDIT_HEADER_WORDS].view(BANDIT_HEADER)
    for a in range(k):
        _refresh(hb, m, a)
    size = d * d + 2 * d
    for a in range(k):
        base = blocks[2] + a * size
        v[base:base + d * d] = (np.eye(d) / ridge).ravel()
    for c, (metric, direction, limit) in enumerate(constraints):
        v[blocks[3] + 3 * c:blocks[3] + 3 * c + 3] = metric, direction, limit
    return buf


def extend_bandit_state(old, new):
    """Carry the selector state ``old`` over to ``new``, a state of the same policy and sizes built for at least as
    many arms (the old arms first): the header's counters, the arm out and the RNG, each old arm's statistics and
    blocks, the sliding window, the constraints and the last context; the new arms keep what ``new`` gave them (the
    prior). Mutates: new. Raises ValueError, touching nothing, for states that do not match."""
    ho, hn = bandit_header(old), bandit_header(new)
    ko, kn = int(ho["k"]), int(hn["k"])
    same = ("policy", "d", "n_metrics", "n_cons", "window", "history", "check_every", "stride", "min_samples",
            "fallback", "explore", "discount", "prior_a", "prior_b", "prior_mean", "prior_var", "noise_var", "bound",
            "xi", "delta", "forced", "ridge", "z")
    differ = [f for f in same if ho[f] != hn[f]]
    if kn < ko or differ:
        raise ValueError(f"extend: the new state must have the old one's settings and at least its {ko} arms "
                         f"(differ: {', '.join(differ) or 'none'}; arms {kn})")
    k_words = hn["k"], hn["words"]
    for name in BANDIT_HEADER.names:
        if not name.startswith("_"):
            hn[name] = ho[name]
    hn["k"], hn["words"] = k_words
    mo, mn = bandit_matrix(old), bandit_matrix(new)
    mn[:, :ko] = mo
    d, w, hist, n_cons = int(ho["d"]), int(ho["window"]), int(ho["history"]), int(ho["n_cons"])
    bo, bn = _blocks(ko, d, w, hist, n_cons), _blocks(kn, d, w, hist, n_cons)
    vo, vn = old[BANDIT_HEADER_WORDS + mo.size:], new[BANDIT_HEADER_WORDS + mn.size:]
    vn[: bn[1]] = vo[: bo[1]]  # the window: (arm, reward) pairs, arm indices unchanged
    vn[bn[1]:bn[1] + ko * hist] = vo[bo[1]:bo[2]]  # the old arms' reward histories
    vn[bn[2]:bn[2] + (bo[3] - bo[2])] = vo[bo[2]:bo[3]]  # the old arms' linear models
    vn[bn[3]:bn[5]] = vo[bo[3]:bo[5]]  # constraints, context


def bandit_header(buf):
    """The header record of the selector state ``buf`` (its fields read and write the buffer).
    Raises ValueError for an array ``open_bandit`` refuses."""
    return opened_header(buf, BANDIT_HEADER, open_bandit,
                         "a selector state: a state is the whole float64 buffer that arqon.Selector(...)")


def bandit_matrix(buf):
    """The (rows, K) per-arm statistics of the selector state ``buf`` as a NumPy view (rows: N, S, SCORE, ...)."""
    h = bandit_header(buf)
    k, rows = int(h["k"]), BASE_ROWS + 3 * int(h["n_metrics"])
    return buf[BANDIT_HEADER_WORDS:BANDIT_HEADER_WORDS + rows * k].reshape(rows, k)


@kernel(t.int64(F8))
def bandit_pending(state):
    """1 while a chosen arm awaits its reward, 0 when none does, -BAD_STATE for a refused state. Allocates: nothing."""
    if open_bandit(state) != OK:
        return -BAD_STATE
    return _header(state)[0]["pending"]
