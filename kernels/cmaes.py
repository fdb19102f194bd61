"""A small CMA-ES over the unit cube (Hansen's (mu/mu_w, lambda) update, Hansen 2016 tutorial constants), storing the
covariance as its lower Cholesky factor L (C = L L^T): sampling is y = L z, and the rank-one and rank-mu updates are
mu + 1 in-place Cholesky rank-one updates (Krause, Arbones and Igel, 2016), so no decomposition and no allocation.
Restarts with a doubled population (IPOP, Auger and Hansen 2005) when the step size collapses, the fitness is flat for
long, the best value stalls, or C is ill-conditioned.

With a model (small d), each generation also proposes the minimizer of a quadratic fitted to the archive of recent
evaluations, injected as one member (Hansen 2011: its step is clipped in Mahalanobis norm before the update), so that
smooth, nearly quadratic objectives converge in a few generations.

Blocks: rows r_y (n_pop_max, the steps y), r_z (n_pop_max, their z), r_user (n_pop_max), r_l (d rows of L), r_pc,
r_ps (evolution paths), r_work (one scratch row), r_keep (the best ended run's mean), r_arch (archive of unit points); vector: v_val, v_order, v_w (recombination
weights), v_arch (archive values), v_norm/v_rhs/v_feat/v_hess (model work).
"""

import numpy as np
from numba import types as t

from ._jit import kernel
from .population import keep_in_cube, open_steps_from_theta, rank
from .rng import rng_normal, rng_uniform
from .state import HDR_TYPE, MAT_TYPE, THETA, VEC_TYPE

TOL_X = 1e-11  # restart when sigma * sqrt(max diag C) falls below this (unit-cube coordinates)
MAX_CONDITION = 1e14  # restart when max/min diag(L)^2 exceeds this
FLAT_GENERATIONS = 10  # restart after this many generations whose values are all equal


@kernel(t.void(HDR_TYPE, MAT_TYPE, VEC_TYPE, t.int64))
def cma_start(hdr, mat, vec, lam):
    """(Re)start with population ``lam``: weights and learning rates for it, sigma = sigma0, C = I, paths zero (a
    generation already written is kept: its steps y and z stay consistent). Mutates: hdr, mat[L, PC, PS], vec[v_w:]. Allocates: nothing."""
    h = hdr[0]
    d = mat.shape[1]
    mu = lam // 2
    h["n_pop"] = lam
    h["mu"] = mu
    total = 0.0
    for i in range(mu):
        w = np.log((lam + 1) / 2.0) - np.log(i + 1.0)
        vec[h["v_w"] + i] = w
        total += w
    squares = 0.0
    for i in range(mu):
        vec[h["v_w"] + i] /= total
        squares += vec[h["v_w"] + i] ** 2
    mueff = 1.0 / squares
    h["mueff"] = mueff
    h["cc"] = (4.0 + mueff / d) / (d + 4.0 + 2.0 * mueff / d)
    h["cs"] = (mueff + 2.0) / (d + mueff + 5.0)
    h["c1"] = 2.0 / ((d + 1.3) ** 2 + mueff)
    h["cmu"] = min(1.0 - h["c1"], 2.0 * (mueff - 2.0 + 1.0 / mueff) / ((d + 2.0) ** 2 + mueff))
    h["damps"] = 1.0 + 2.0 * max(0.0, np.sqrt((mueff - 1.0) / (d + 1.0)) - 1.0) + h["cs"]
    h["chi_n"] = np.sqrt(d) * (1.0 - 1.0 / (4.0 * d) + 1.0 / (21.0 * d * d))
    h["sigma"] = h["sigma0"]
    h["gen"] = 0
    h["stall"] = 0
    h["gen_best"] = np.inf
    for i in range(d):
        for k in range(d):
            mat[h["r_l"] + i, k] = 1.0 if i == k else 0.0
        mat[h["r_pc"], i] = 0.0
        mat[h["r_ps"], i] = 0.0


@kernel(t.void(MAT_TYPE, t.int64, t.int64, t.float64))
def _cholesky_update(mat, r_l, r_v, beta):
    """L <- the Cholesky factor of L L^T + beta v v^T (beta >= 0), v = mat[r_v] (destroyed).
    Mutates: mat[r_l:r_l + d], mat[r_v]. Allocates: nothing."""
    d = mat.shape[1]
    scale = np.sqrt(beta)
    for i in range(d):
        mat[r_v, i] *= scale
    for k in range(d):
        lkk = mat[r_l + k, k]
        vk = mat[r_v, k]
        r = np.sqrt(lkk * lkk + vk * vk)
        c = r / lkk
        s = vk / lkk
        mat[r_l + k, k] = r
        for i in range(k + 1, d):
            mat[r_l + i, k] = (mat[r_l + i, k] + s * mat[r_v, i]) / c
            mat[r_v, i] = c * mat[r_v, i] - s * mat[r_l + i, k]


@kernel(t.float64(VEC_TYPE, t.int64, t.int64))
def _cholesky_in_place(vec, at, n):
    """Factor the n x n symmetric matrix stored row-major at vec[at:] into its lower Cholesky factor, in place.
    Mutates: vec[at:at + n*n]. Allocates: nothing. Returns: the smallest pivot (<= 0: not positive definite)."""
    smallest = np.inf
    for j in range(n):
        s = vec[at + j * n + j]
        for k in range(j):
            s -= vec[at + j * n + k] ** 2
        smallest = min(smallest, s)
        if s <= 0.0:
            return s
        ljj = np.sqrt(s)
        vec[at + j * n + j] = ljj
        for i in range(j + 1, n):
            s = vec[at + i * n + j]
            for k in range(j):
                s -= vec[at + i * n + k] * vec[at + j * n + k]
            vec[at + i * n + j] = s / ljj
    return smallest


@kernel(t.void(VEC_TYPE, t.int64, t.int64, t.int64))
def _cholesky_solve(vec, at, n, rhs):
    """Solve (L L^T) x = b for the factor at vec[at:] (from ``_cholesky_in_place``) and b at vec[rhs:rhs + n],
    in place. Mutates: vec[rhs:rhs + n]. Allocates: nothing."""
    for i in range(n):
        s = vec[rhs + i]
        for k in range(i):
            s -= vec[at + i * n + k] * vec[rhs + k]
        vec[rhs + i] = s / vec[at + i * n + i]
    for i in range(n - 1, -1, -1):
        s = vec[rhs + i]
        for k in range(i + 1, n):
            s -= vec[at + k * n + i] * vec[rhs + k]
        vec[rhs + i] = s / vec[at + i * n + i]


@kernel(t.void(MAT_TYPE, VEC_TYPE, t.int64, t.int64, t.int64, t.float64))
def _features(mat, vec, row, center, v_feat, radius):
    """Quadratic features of the unit point mat[row] about mat[center], scaled by ``radius``: 1, s_i, s_i s_j (i <= j)
    into vec[v_feat:]. Mutates: vec[v_feat:]. Allocates: nothing."""
    d = mat.shape[1]
    vec[v_feat] = 1.0
    f = 1 + d
    for i in range(d):
        si = (mat[row, i] - mat[center, i]) / radius
        vec[v_feat + 1 + i] = si
        for j in range(i + 1):
            vec[v_feat + f] = si * vec[v_feat + 1 + j]
            f += 1


@kernel(t.int64(HDR_TYPE, MAT_TYPE, VEC_TYPE, t.int64))
def quadratic_minimizer(hdr, mat, vec, dst):
    """Fit a full quadratic to the archive by least squares (in coordinates about theta scaled to the archive's
    extent) and, if its Hessian is positive definite, write its minimizer (unit cube, kept in it) into mat[dst].
    Mutates: mat[dst], model work in vec. Allocates: nothing. Returns: 1 if a point was written, else 0."""
    h = hdr[0]
    d = mat.shape[1]
    nf = h["n_feat"]
    n = h["n_arch_filled"]
    if n < nf + 1:
        return 0
    radius = 0.0
    for k in range(n):
        for i in range(d):
            radius = max(radius, abs(mat[h["r_arch"] + k, i] - mat[THETA, i]))
    if not radius > 0.0:
        return 0
    a, b, phi = h["v_norm"], h["v_rhs"], h["v_feat"]
    for p in range(nf * nf):
        vec[a + p] = 0.0
    for p in range(nf):
        vec[b + p] = 0.0
    for k in range(n):
        _features(mat, vec, h["r_arch"] + k, THETA, phi, radius)
        y = vec[h["v_arch"] + k]
        for p in range(nf):
            vec[b + p] += vec[phi + p] * y
            for q in range(p + 1):
                vec[a + p * nf + q] += vec[phi + p] * vec[phi + q]
    trace = 0.0
    for p in range(nf):
        trace += vec[a + p * nf + p]
    for p in range(nf):
        vec[a + p * nf + p] += 1e-10 * trace / nf
    if _cholesky_in_place(vec, a, nf) <= 0.0:
        return 0
    _cholesky_solve(vec, a, nf, b)
    # coefficients: c0, g (d), then q_ij for i >= j in the order _features writes them
    hess = h["v_hess"]
    f = 1 + d
    for i in range(d):
        for j in range(i + 1):
            q = vec[b + f]
            if i == j:
                vec[hess + i * d + i] = 2.0 * q
            else:
                vec[hess + i * d + j] = q
                vec[hess + j * d + i] = q
            f += 1
    if _cholesky_in_place(vec, hess, d) <= 0.0:
        return 0
    for i in range(d):
        vec[phi + i] = -vec[b + 1 + i]  # the gradient at the centre, negated: H s = -g
    _cholesky_solve(vec, hess, d, phi)
    for i in range(d):
        step = vec[phi + i]
        if not np.isfinite(step):
            return 0
        mat[dst, i] = mat[THETA, i] + radius * step
    keep_in_cube(hdr, mat, dst)
    return 1


@kernel(t.int64(HDR_TYPE, MAT_TYPE, VEC_TYPE))
def cma_sample(hdr, mat, vec):
    """Write a generation: z ~ N(0, I), y = L z, members theta + sigma y in user units; with a model, member 0 is the
    model's minimizer instead. Mutates: hdr, mat, vec, RNG state. Allocates: nothing. Returns: OK."""
    h = hdr[0]
    d = mat.shape[1]
    r_l, r_y, r_z = h["r_l"], h["r_y"], h["r_z"]
    for j in range(h["n_pop"]):
        for i in range(d):
            mat[r_z + j, i] = rng_normal(h["rng"])
        for i in range(d):
            s = 0.0
            for k in range(i + 1):
                s += mat[r_l + i, k] * mat[r_z + j, k]
            mat[r_y + j, i] = s
    h["model_member"] = -1
    if h["n_arch"] > 0 and quadratic_minimizer(hdr, mat, vec, h["r_work"]) == 1:
        h["model_member"] = 0
        for i in range(d):
            mat[r_y, i] = (mat[h["r_work"], i] - mat[THETA, i]) / h["sigma"]
    open_steps_from_theta(hdr, mat, vec)
    return 0


@kernel(t.void(HDR_TYPE, MAT_TYPE, VEC_TYPE))
def _archive(hdr, mat, vec):
    """Add this generation's measured members (their evaluated unit points) to the model's archive, oldest out.
    Mutates: hdr, mat[r_arch:], vec[v_arch:]. Allocates: nothing."""
    h = hdr[0]
    d = mat.shape[1]
    for j in range(h["n_pop"]):
        y = vec[h["v_val"] + j]
        if y != y:
            continue
        slot = h["r_arch"] + h["i_arch"]
        for i in range(d):
            mat[slot, i] = mat[THETA, i] + h["sigma"] * mat[h["r_y"] + j, i]
        keep_in_cube(hdr, mat, slot)
        vec[h["v_arch"] + h["i_arch"]] = y
        h["i_arch"] = (h["i_arch"] + 1) % h["n_arch"]
        h["n_arch_filled"] = min(h["n_arch_filled"] + 1, h["n_arch"])


@kernel(t.void(HDR_TYPE, MAT_TYPE))
def _clip_injected(hdr, mat):
    """Give the injected member the z of its step (forward substitution, L z = y) and clip both so that |z| is at most
    sqrt(d) + 2d/(d+2) (Hansen 2011). Mutates: mat[r_y, r_z] of member model_member. Allocates: nothing."""
    h = hdr[0]
    d = mat.shape[1]
    ry = h["r_y"] + h["model_member"]
    rz = h["r_z"] + h["model_member"]
    norm = 0.0
    for i in range(d):
        s = mat[ry, i]
        for k in range(i):
            s -= mat[h["r_l"] + i, k] * mat[rz, k]
        mat[rz, i] = s / mat[h["r_l"] + i, i]
        norm += mat[rz, i] ** 2
    limit = np.sqrt(d) + 2.0 * d / (d + 2.0)
    norm = np.sqrt(norm)
    if norm > limit:
        for i in range(d):
            mat[rz, i] *= limit / norm
            mat[ry, i] *= limit / norm


@kernel(t.int64(HDR_TYPE, MAT_TYPE, VEC_TYPE, t.int64))
def _should_restart(hdr, mat, vec, n_finite):
    """1 when the run has stalled (see the module docstring), else 0; the generation is ranked, n_finite > 0.
    Mutates: hdr[stall, gen_best, sigma]. Allocates: nothing."""
    h = hdr[0]
    d = mat.shape[1]
    best = vec[h["v_val"] + np.int64(vec[h["v_order"]])]
    worst = vec[h["v_val"] + np.int64(vec[h["v_order"] + n_finite - 1])]
    if best < h["gen_best"]:
        h["gen_best"] = best
        h["stall"] = 0
    else:
        h["stall"] += 1
    if n_finite > 1 and best == worst:
        h["sigma"] *= np.exp(0.2 + h["cs"] / h["damps"])  # flat: widen, then give up after a while
        if h["stall"] >= FLAT_GENERATIONS:
            return 1
    if h["stall"] > 20 + (30 * d) // h["n_pop"]:
        return 1
    largest, smallest = 0.0, np.inf
    for i in range(d):
        c_ii = 0.0
        for k in range(i + 1):
            c_ii += mat[h["r_l"] + i, k] ** 2
        largest = max(largest, c_ii)
        smallest = min(smallest, mat[h["r_l"] + i, i] ** 2)
    if h["sigma"] * np.sqrt(largest) < TOL_X or largest > MAX_CONDITION * smallest:
        return 1
    return 0


@kernel(t.int64(HDR_TYPE), inline=True)
def cma_recommended_row(hdr):
    """The row holding CMA-ES's recommendation: the current mean, or the kept mean of an earlier run whose best value
    the current run has not reached. Allocates: nothing."""
    h = hdr[0]
    return h["r_keep"] if h["keep_best"] < h["gen_best"] else THETA


@kernel(t.void(HDR_TYPE, MAT_TYPE, VEC_TYPE))
def cma_update(hdr, mat, vec):
    """Update theta (the mean), the paths, L and sigma from the generation's values (missing ones left out); restart
    with a doubled population from a random point when stalled. Mutates: hdr, mat, vec, RNG state (restart).
    Allocates: nothing."""
    h = hdr[0]
    d = mat.shape[1]
    if h["n_arch"] > 0:
        _archive(hdr, mat, vec)
    if h["model_member"] >= 0:
        _clip_injected(hdr, mat)
    n_finite = rank(vec, h["v_val"], h["v_order"], h["n_pop"])
    if n_finite == 0:
        return
    mu = min(h["mu"], n_finite)
    total = 0.0
    for r in range(mu):
        total += vec[h["v_w"] + r]
    work, ps, pc = h["r_work"], h["r_ps"], h["r_pc"]
    # weighted mean step: y_w into the work row, z_w accumulated straight into p_sigma
    cs, cc, mueff = h["cs"], h["cc"], h["mueff"]
    ps_gain = np.sqrt(cs * (2.0 - cs) * mueff)
    for i in range(d):
        yw = 0.0
        zw = 0.0
        for r in range(mu):
            j = np.int64(vec[h["v_order"] + r])
            w = vec[h["v_w"] + r] / total
            yw += w * mat[h["r_y"] + j, i]
            zw += w * mat[h["r_z"] + j, i]
        mat[work, i] = yw
        mat[ps, i] = (1.0 - cs) * mat[ps, i] + ps_gain * zw
        mat[THETA, i] += h["sigma"] * yw
    keep_in_cube(hdr, mat, THETA)
    ps_norm = 0.0
    for i in range(d):
        ps_norm += mat[ps, i] ** 2
    ps_norm = np.sqrt(ps_norm)
    h["gen"] += 1
    h_sigma = 1.0 if ps_norm / np.sqrt(1.0 - (1.0 - cs) ** (2.0 * h["gen"])) < (1.4 + 2.0 / (d + 1.0)) * h["chi_n"] else 0.0
    pc_gain = h_sigma * np.sqrt(cc * (2.0 - cc) * mueff)
    for i in range(d):
        mat[pc, i] = (1.0 - cc) * mat[pc, i] + pc_gain * mat[work, i]
    c1, cmu = h["c1"], h["cmu"]
    keep = 1.0 - c1 - cmu + (1.0 - h_sigma) * c1 * cc * (2.0 - cc)
    for i in range(d):
        for k in range(i + 1):
            mat[h["r_l"] + i, k] *= np.sqrt(keep)
    for i in range(d):
        mat[work, i] = mat[pc, i]
    _cholesky_update(mat, h["r_l"], work, c1)
    for r in range(mu):
        j = np.int64(vec[h["v_order"] + r])
        for i in range(d):
            mat[work, i] = mat[h["r_y"] + j, i]
        _cholesky_update(mat, h["r_l"], work, cmu * vec[h["v_w"] + r] / total)
    h["sigma"] *= np.exp(min(1.0, (cs / h["damps"]) * (ps_norm / h["chi_n"] - 1.0)))
    h["sigma"] = min(max(h["sigma"], h["sigma_min"]), 1.0)
    if _should_restart(hdr, mat, vec, n_finite) == 1 and h["restarts"] < h["max_restarts"]:
        h["restarts"] += 1
        if h["gen_best"] < h["keep_best"]:  # the best run so far: its mean stays the recommendation until beaten
            h["keep_best"] = h["gen_best"]
            for i in range(d):
                mat[h["r_keep"], i] = mat[THETA, i]
        for i in range(d):
            mat[THETA, i] = rng_uniform(h["rng"])
        cma_start(hdr, mat, vec, min(2 * h["n_pop"], h["n_pop_max"]))
