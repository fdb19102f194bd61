"""The arithmetic of the bandit policies over plain scalars and arrays: Bernoulli KL divergence, the KL-UCB index, the
Bernoulli GLR change test (Besson et al. 2022) and the Sherman-Morrison update of an inverse Gram matrix. None of it
reads a selector state; ``bandit.py`` calls it on views of one. Nothing here allocates.
"""

import math

from numba import types as t

from ._jit import kernel

_EPS = 1e-15  # probabilities are kept in [_EPS, 1 - _EPS] inside logarithms


@kernel(t.float64(t.float64, t.float64), inline=True)
def kl_bernoulli(p, q):
    """KL(Bernoulli(p) || Bernoulli(q)), both clipped into [1e-15, 1 - 1e-15]. Allocates: nothing."""
    p = min(max(p, _EPS), 1.0 - _EPS)
    q = min(max(q, _EPS), 1.0 - _EPS)
    return p * math.log(p / q) + (1.0 - p) * math.log((1.0 - p) / (1.0 - q))


@kernel(t.float64(t.float64, t.float64, t.float64))
def klucb_index(mean, n, level):
    """The KL-UCB index (Garivier and Cappe 2011): the largest q in [mean, 1] with ``n * kl(mean, q) <= level``;
    +inf for an arm never played. Newton's method from Pinsker's bound, which lies above the root: on this convex,
    increasing function every iterate stays above the root and decreases to it, so the index is a function of
    (mean, n, level) alone, never below the exact one by more than rounding. The start is the lower of Pinsker's bound
    and 1 - (1 - p) exp((p ln p - level / n) / (1 - p)) (from dropping kl's first term), so that 3 to 5 steps reach
    kl within 1e-13 of its target. Allocates: nothing."""
    if n <= 0.0:
        return math.inf
    p = min(max(mean, 0.0), 1.0)
    if level <= 0.0 or p >= 1.0:
        return p
    target = level / n
    if p <= 0.0:
        return -math.expm1(-target)  # kl(0, q) = -log(1 - q): in closed form
    p_log_p = p * math.log(p)
    q = min(p + math.sqrt(0.5 * target), 1.0 - (1.0 - p) * math.exp((p_log_p - target) / (1.0 - p)), 1.0 - 1e-15)
    neg_entropy = p_log_p + (1.0 - p) * math.log1p(-p)
    for _ in range(40):
        f = neg_entropy - p * math.log(q) - (1.0 - p) * math.log1p(-q) - target
        if f <= 1e-13:
            break
        q -= f * q * (1.0 - q) / (q - p)
    return q


@kernel(t.boolean(t.float64[::1], t.int64, t.int64, t.int64, t.float64))
def glr_fires(history, head, count, stride, delta):
    """True when the Bernoulli GLR test finds a change in the ``count`` rewards of the ring ``history`` (oldest at
    ``head``): some split s (every ``stride``-th) with s kl(mu_1..s, mu) + (n - s) kl(mu_s+1..n, mu) above the
    threshold log(n^1.5 / delta) (Besson, Kaufmann, Maillard and Seznec 2022). Reads: history. Allocates: nothing."""
    n = count
    if n < 2:
        return False
    size = history.shape[0]
    total = 0.0
    for i in range(n):
        total += history[(head + i) % size]
    mu = total / n
    threshold = math.log(n ** 1.5 / delta)
    prefix = 0.0
    for s in range(1, n):
        prefix += history[(head + s - 1) % size]
        if s % stride != 0:
            continue
        stat = s * kl_bernoulli(prefix / s, mu) + (n - s) * kl_bernoulli((total - prefix) / (n - s), mu)
        if stat > threshold:
            return True
    return False


@kernel(t.UniTuple(t.float64, 4)(t.float64[:, ::1], t.float64[::1], t.int64), inline=True)
def _four_row_sums(a_inv, x, i):
    """(A^-1 x)[i .. i + 3]: four independent sums, each in the one-row order (the bits of the plain loop), which
    run side by side. Allocates: nothing."""
    a0 = a1 = a2 = a3 = 0.0
    for j in range(x.shape[0]):
        xj = x[j]
        a0 += a_inv[i, j] * xj
        a1 += a_inv[i + 1, j] * xj
        a2 += a_inv[i + 2, j] * xj
        a3 += a_inv[i + 3, j] * xj
    return a0, a1, a2, a3


@kernel(t.float64(t.float64[:, ::1], t.float64[::1], t.int64), inline=True)
def _row_sum(a_inv, x, i):
    """(A^-1 x)[i], summed in row order. Allocates: nothing."""
    acc = 0.0
    for j in range(x.shape[0]):
        acc += a_inv[i, j] * x[j]
    return acc


@kernel(t.float64(t.float64[:, ::1], t.float64[::1], t.float64[::1]), inline=True)
def sherman_morrison(a_inv, x, u):
    """Replace ``a_inv`` = A^-1 by (A + x x^T)^-1 in place: A^-1 - (A^-1 x)(A^-1 x)^T / (1 + x^T A^-1 x), with
    ``u`` (length d) as scratch for A^-1 x. Mutates: a_inv, u. Allocates: nothing. Returns: 1 + x^T A^-1 x (the
    old A)."""
    d = x.shape[0]
    i = 0
    while i + 4 <= d:
        u[i], u[i + 1], u[i + 2], u[i + 3] = _four_row_sums(a_inv, x, i)
        i += 4
    while i < d:
        u[i] = _row_sum(a_inv, x, i)
        i += 1
    denom = 1.0
    for i in range(d):
        denom += x[i] * u[i]
    for i in range(d):
        ui = u[i] / denom
        for j in range(d):
            a_inv[i, j] -= ui * u[j]
    return denom


@kernel(t.UniTuple(t.float64, 2)(t.float64[:, ::1], t.float64[::1], t.float64[::1]), inline=True)
def mean_and_width(a_inv, theta, x):
    """(theta . x, sqrt(x^T A^-1 x)): a linear arm's predicted reward and its confidence width at context ``x``.
    Allocates: nothing."""
    d = x.shape[0]
    mean, quad = 0.0, 0.0
    i = 0
    while i + 4 <= d:
        a0, a1, a2, a3 = _four_row_sums(a_inv, x, i)
        quad += x[i] * a0
        quad += x[i + 1] * a1
        quad += x[i + 2] * a2
        quad += x[i + 3] * a3
        i += 4
    while i < d:
        quad += x[i] * _row_sum(a_inv, x, i)
        i += 1
    for i in range(d):
        mean += theta[i] * x[i]
    return mean, math.sqrt(max(quad, 0.0))
