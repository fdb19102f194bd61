"""PBT-lite: a small pool of configurations, each measured once per round; a member's score is an exponentially
weighted mean of its values (so an old lucky value fades and a drift shows). After each round the worst ``mu``
members copy a random one of the best ``mu`` (its point and score: exploit) and move it by a uniform step of at most
``explore`` per coordinate (explore, kept in the cube). theta is the best-scored member: the recommendation.

Blocks: rows r_y (members' unit points), r_user; vector: v_val, v_order, v_w (scores; NaN until first measured).
"""

import numpy as np
from numba import types as t

from ._jit import kernel
from .population import keep_in_cube, open_generation, rank
from .rng import rng_uniform
from .spsa import to_user
from .state import MAT_TYPE, HDR_TYPE, THETA, VEC_TYPE


@kernel(t.int64(HDR_TYPE, MAT_TYPE, VEC_TYPE))
def pbt_sample(hdr, mat, vec):
    """Write the pool's points in user units (on the first round: member 0 at theta, the others uniform in the cube).
    Mutates: hdr, mat, vec, RNG state. Allocates: nothing. Returns: OK."""
    h = hdr[0]
    d = mat.shape[1]
    r_y = h["r_y"]
    if h["n_gen_total"] == 0:
        for j in range(h["n_pop"]):
            for i in range(d):
                mat[r_y + j, i] = mat[THETA, i] if j == 0 else rng_uniform(h["rng"])
            vec[h["v_w"] + j] = np.nan
    for j in range(h["n_pop"]):
        to_user(hdr, mat, r_y + j, r_y + j, 0.0, h["r_user"] + j)
    open_generation(hdr, vec)
    return 0


@kernel(t.void(HDR_TYPE, MAT_TYPE, VEC_TYPE))
def pbt_update(hdr, mat, vec):
    """Fold the round's values into the scores, then the worst copy and perturb the best.
    Mutates: hdr, mat[r_y:, THETA], vec, RNG state. Allocates: nothing."""
    h = hdr[0]
    d = mat.shape[1]
    n_pop, v_val, v_w = h["n_pop"], h["v_val"], h["v_w"]
    keep = h["score_decay"]
    for j in range(n_pop):
        y = vec[v_val + j]
        if y == y:
            s = vec[v_w + j]
            vec[v_w + j] = y if s != s else keep * s + (1.0 - keep) * y
    for j in range(n_pop):  # rank by score: copy the scores where rank looks
        vec[v_val + j] = vec[v_w + j]
    n = rank(vec, v_val, h["v_order"], n_pop)
    if n == 0:
        return
    best = np.int64(vec[h["v_order"]])
    for i in range(d):
        mat[THETA, i] = mat[h["r_y"] + best, i]
    mu = min(h["mu"], n // 2)
    for r in range(mu):
        loser = np.int64(vec[h["v_order"] + n - 1 - r])
        donor = np.int64(vec[h["v_order"] + min(np.int64(rng_uniform(h["rng"]) * mu), mu - 1)])
        for i in range(d):
            mat[h["r_y"] + loser, i] = mat[h["r_y"] + donor, i] + h["explore"] * (2.0 * rng_uniform(h["rng"]) - 1.0)
        keep_in_cube(hdr, mat, h["r_y"] + loser)
        vec[v_w + loser] = vec[v_w + donor]
