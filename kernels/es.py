"""Antithetic natural evolution strategy over the unit cube (separable NES with one step size: Wierstra et al. 2014;
mirrored sampling, Brockhoff et al. 2010).

Each generation measures n_pop/2 mirrored pairs theta +- sigma * eps (eps ~ N(0, I)). Members are ranked and given
NES utilities (best highest, summing to zero); theta moves by sigma * sum(u * eps) and, when adapting, sigma by
exp(lr_sigma / 2 * sum(u * (|eps|^2 / d - 1))), kept within [sigma_min, 0.5]. With adaptation off sigma stays: a
constant step that keeps tracking a drifting optimum. Missing members are left out of the ranking.

Blocks: rows r_y (the signed eps of each member), r_user; vector: v_val, v_order.
"""

import numpy as np
from numba import types as t

from ._jit import kernel
from .population import keep_in_cube, open_steps_from_theta, rank
from .rng import rng_normal
from .state import MAT_TYPE, HDR_TYPE, THETA, VEC_TYPE


@kernel(t.int64(HDR_TYPE, MAT_TYPE, VEC_TYPE))
def es_sample(hdr, mat, vec):
    """Write a generation of mirrored pairs theta +- sigma * eps in user units. Mutates: hdr, mat, vec, RNG state.
    Allocates: nothing. Returns: OK."""
    h = hdr[0]
    r_y = h["r_y"]
    for pair in range(h["n_pop"] // 2):
        for i in range(mat.shape[1]):
            e = rng_normal(h["rng"])
            mat[r_y + 2 * pair, i] = e
            mat[r_y + 2 * pair + 1, i] = -e
    open_steps_from_theta(hdr, mat, vec)
    return 0


@kernel(t.void(HDR_TYPE, MAT_TYPE, VEC_TYPE))
def es_update(hdr, mat, vec):
    """Move theta (and sigma, when adapting) by the ranked generation. Mutates: hdr, mat[THETA], vec[v_order:].
    Allocates: nothing."""
    h = hdr[0]
    d = mat.shape[1]
    n = rank(vec, h["v_val"], h["v_order"], h["n_pop"])
    if n < 2:
        return
    total = 0.0
    for r in range(n):
        total += max(0.0, np.log(n / 2.0 + 1.0) - np.log(r + 1.0))
    sigma = h["sigma"]
    log_step = 0.0
    for r in range(n):
        u = max(0.0, np.log(n / 2.0 + 1.0) - np.log(r + 1.0)) / total - 1.0 / n
        row = h["r_y"] + np.int64(vec[h["v_order"] + r])
        norm2 = 0.0
        for i in range(d):
            e = mat[row, i]
            mat[THETA, i] += sigma * u * e
            norm2 += e * e
        log_step += u * (norm2 / d - 1.0)
    keep_in_cube(hdr, mat, THETA)
    if h["adapt_sigma"] != 0:
        h["sigma"] = min(max(sigma * np.exp(0.5 * h["lr_sigma"] * log_step), h["sigma_min"]), 0.5)
