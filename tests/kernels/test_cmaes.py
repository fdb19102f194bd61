import numpy as np
import pytest

import arqon
from arqon.kernels.cmaes import _cholesky_update, quadratic_minimizer
from arqon.kernels.population import rank
from arqon.kernels.state import HEADER, HEADER_WORDS, THETA, header, matrix, vector
from tests.conftest import space, sphere
from tests.reference import reference_cma_update


@pytest.mark.parametrize("seed", range(5))
def test_cholesky_rank_one_update_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    d = 6
    a = rng.standard_normal((d, d))
    lower = np.linalg.cholesky(a @ a.T + d * np.eye(d))
    v = rng.standard_normal(d)
    mat = np.vstack([lower, v[None]])
    _cholesky_update(mat, 0, d, 0.37)
    expected = np.linalg.cholesky(lower @ lower.T + 0.37 * np.outer(v, v))
    np.testing.assert_allclose(mat[:d], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_rank_sorts_like_argsort_with_missing_last(seed):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(23)
    values[rng.choice(23, 5, replace=False)] = np.nan
    vec = np.concatenate([values, np.zeros(23)])
    assert rank(vec, 0, 23, 23) == 18
    finite = np.flatnonzero(~np.isnan(values))
    expected = finite[np.argsort(values[finite], kind="stable")]
    assert vec[23:41].astype(int).tolist() == expected.tolist()
    assert sorted(vec[41:].astype(int).tolist()) == sorted(np.flatnonzero(np.isnan(values)).tolist())


def test_quadratic_model_finds_the_exact_minimizer():
    t = arqon.Tuner(space(3, seed=1, budget=100, strategy="cmaes"))
    h, mat, vec = t.state[:HEADER_WORDS].view(HEADER), matrix(t.state), vector(t.state)  # the header as cores take it
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    hess = a @ a.T + np.eye(3)
    centre = np.array([0.6, 0.35, 0.45])
    n = int(h[0]["n_arch"])
    points = rng.uniform(0.2, 0.8, (n, 3))
    mat[int(h[0]["r_arch"]):int(h[0]["r_arch"]) + n] = points
    vec[int(h[0]["v_arch"]):int(h[0]["v_arch"]) + n] = [0.5 * (p - centre) @ hess @ (p - centre) + 2.0 for p in points]
    h[0]["n_arch_filled"] = n
    row = int(h[0]["r_work"])
    assert quadratic_minimizer(h, mat, vec, row) == 1
    np.testing.assert_allclose(mat[row], centre, atol=1e-8)
    vec[int(h[0]["v_arch"]):int(h[0]["v_arch"]) + n] *= -1  # a maximum: no point
    assert quadratic_minimizer(h, mat, vec, row) == 0


@pytest.mark.parametrize("seed", range(4))
def test_one_generation_matches_the_reference_update(seed):
    d = 5
    t = arqon.Tuner(space(d, seed=seed, strategy="cmaes", cmaes={"model": "off"}))
    h, mat = header(t.state), matrix(t.state)
    rng = np.random.default_rng(seed)
    for gen in range(3):  # a few generations, so that C, the paths and sigma are no longer at their start
        lam = int(h["n_pop"])
        m, sigma = mat[THETA].copy(), float(h["sigma"])
        lower = mat[int(h["r_l"]):int(h["r_l"]) + d]
        C, ps, pc = lower @ lower.T, mat[int(h["r_ps"])].copy(), mat[int(h["r_pc"])].copy()
        rows = t.ask_batch()
        ys = mat[int(h["r_y"]):int(h["r_y"]) + lam].copy()
        zs = mat[int(h["r_z"]):int(h["r_z"]) + lam].copy()
        np.testing.assert_allclose(ys, zs @ lower.T, atol=1e-12)  # y = L z
        np.testing.assert_allclose(rows, np.clip(m + sigma * ys, 0, 1) * 10 - 5, atol=1e-12)
        values = rng.standard_normal(lam)
        t.tell_batch(values)
        expected = reference_cma_update(m, sigma, C, ps, pc, ys, zs, values, gen, lam)
        lower = mat[int(h["r_l"]):int(h["r_l"]) + d]
        for got, want in zip((mat[THETA], float(h["sigma"]), lower @ lower.T, mat[int(h["r_ps"])],
                              mat[int(h["r_pc"])]), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_restarts_double_the_population_and_keep_the_best():
    t = arqon.Tuner(space(2, seed=3, budget=3000, strategy="cmaes", cmaes={"model": "off", "restarts": 2}))
    populations = set()
    while not t.done:
        populations.add(int(header(t.state)["n_pop"]))
        rows = t.ask_batch()
        t.tell_batch([sphere(x, 1.0) for x in rows])
    assert header(t.state)["restarts"] == 2
    assert populations == {6, 12, 24}
    assert t.best.value < 1e-12
