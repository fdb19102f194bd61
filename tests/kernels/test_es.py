import numpy as np
import pytest

import arqon
from arqon.kernels.state import THETA, header, matrix
from tests.conftest import space, sphere
from tests.reference import reference_es_update


@pytest.mark.parametrize("seed", range(4))
def test_generations_are_mirrored_and_update_as_the_reference(seed):
    d = 4
    t = arqon.Tuner(space(d, seed=seed, strategy="es"))
    h, mat = header(t.state), matrix(t.state)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        theta, sigma = mat[THETA].copy(), float(h["sigma"])
        rows = t.ask_batch().copy()
        n = rows.shape[0]
        eps = mat[int(h["r_y"]):int(h["r_y"]) + n].copy()
        np.testing.assert_array_equal(eps[0::2], -eps[1::2])  # antithetic pairs
        np.testing.assert_allclose(rows, np.clip(theta + sigma * eps, 0, 1) * 10 - 5, atol=1e-12)
        values = rng.standard_normal(n)
        t.tell_batch(values)
        want_theta, want_sigma = reference_es_update(theta, sigma, eps, values, float(h["lr_sigma"]))
        np.testing.assert_allclose(mat[THETA], want_theta, rtol=1e-12, atol=1e-14)
        assert float(h["sigma"]) == pytest.approx(want_sigma, rel=1e-12)


def test_constant_step_keeps_sigma_and_tracks():
    t = arqon.Tuner(space(3, seed=2, strategy="es", es={"step": "constant", "sigma": 0.05}))
    x = t.ask()
    for _ in range(600):
        x = t.step(sphere(x, 2.0))
    assert float(header(t.state)["sigma"]) == 0.05
    assert sphere(list(t.recommend().values()), 2.0) < 0.05
