"""The tuner state is the whole buffer: a copy of it runs, anything else is refused untouched (``open_state``)."""

import math

import numba
import numpy as np
import pytest

import arqon
from arqon.config import ConfigError
from arqon.kernels import BAD_STATE, OK, ask, open_state, proposal, step, tell
from arqon.kernels.state import (
    CMAES, HEADER, HEADER_WORDS, LAYOUT_IDS, MAX_STATE_BYTES, PBT, ROWS, SPSA, header, layout_name, matrix, new_state,
    state_words,
)
from tests.conftest import SNAPSHOTS, snapshot, space, sphere

STRATEGIES = {"spsa": {}, "es": {"strategy": "es"}, "pbt": {"strategy": "pbt"}, "cmaes": {"strategy": "cmaes"}}


def _started(name, d=4):
    t = arqon.Tuner(space(d, seed=5, budget=400, **STRATEGIES[name]))
    x = t.ask()
    for _ in range(37):  # mid-generation for every population strategy
        x = t.step(sphere(x))
    return t


def _run(state, n=60):
    """The proposals of ``n`` steps of ``state`` on the sphere, and each step's status."""
    out = []
    x = proposal(state)
    for _ in range(n):
        out.append((step(state, sphere(x)), x.copy()))
    return out


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("how", SNAPSHOTS)
def test_a_snapshot_of_the_buffer_is_a_state_that_decides_as_the_original(name, how):
    t = _started(name)
    copy = snapshot(t.state, how)
    assert open_state(copy) == OK and copy.ctypes.data != t.state.ctypes.data
    mine, theirs = _run(t.state), _run(copy)
    assert [s for s, _ in mine] == [s for s, _ in theirs]
    np.testing.assert_array_equal([x for _, x in mine], [x for _, x in theirs])
    np.testing.assert_array_equal(t.state, copy)  # bit for bit, header and every block


def _refusals(name):
    """Arrays that are not a whole tuner state of ``name``, each as built from a live one."""
    t = _started(name)
    s = t.state
    other_magic = s.copy()
    header(other_magic)["layout"] ^= 1
    strategy = s.copy()
    strategy[:HEADER_WORDS].view(HEADER)[0]["strategy"] = (int(header(s)["strategy"]) + 1) % 4
    executor = arqon.Executor({"params": {n: {} for n in t.names}, "metrics": ["m"], "slos": ["m <= 1"]}, t)
    return {
        "header alone": s[:HEADER_WORDS].copy(),
        "truncated by one word": s[:-1].copy(),
        "one word longer": np.append(s, 0.0),
        "a slice past the header": s[HEADER_WORDS:].copy(),
        "another layout id": other_magic,
        "another strategy's code": strategy,
        "the executor's buffer": executor.state.copy(),
        "zeros": np.zeros(s.shape[0]),
        "empty": np.zeros(0),
    }


@numba.njit
def _njit_calls(state):
    return ask(state) | tell(state, 1.0) | step(state, 2.0) | arqon.kernels.recommend(state) | \
        arqon.kernels.reopen(state) | arqon.kernels.ask_batch(state) | arqon.kernels.tell_batch(state, np.ones(3))


@pytest.mark.parametrize("name", STRATEGIES)
def test_anything_but_a_whole_state_is_refused_untouched_from_python_and_njit(name):
    for what, array in _refusals(name).items():
        before = array.copy()
        assert open_state(array) == BAD_STATE, what
        for kernel in (ask, arqon.kernels.recommend, arqon.kernels.reopen, arqon.kernels.ask_batch):
            assert kernel(array) == BAD_STATE, (what, kernel)
        assert tell(array, 1.0) == step(array, 1.0) == BAD_STATE, what
        assert arqon.kernels.tell_batch(array, np.ones(3)) == BAD_STATE, what
        assert proposal(array).shape == (0,) and arqon.kernels.batch(array).shape[0] == 0, what
        assert _njit_calls(array) == BAD_STATE, what
        np.testing.assert_array_equal(array, before, err_msg=what)


def test_each_strategy_has_its_own_layout_id_and_a_name_for_logs():
    assert len(set(LAYOUT_IDS.tolist())) == 4 and all(0 < i < 2**63 for i in LAYOUT_IDS.tolist())
    for code in range(4):
        assert layout_name(code) == f"tuner.{['spsa', 'es', 'pbt', 'cmaes'][code]}/{int(LAYOUT_IDS[code]):016x}"


def test_new_state_places_every_block_and_its_size_is_the_documented_formula():
    d, n = 7, 10
    spsa = new_state(SPSA, d)
    assert spsa.shape[0] == HEADER_WORDS + ROWS * d and spsa.ctypes.data % 4096 == 0
    pbt = new_state(PBT, d, n_pop_max=n)
    assert pbt.shape[0] == HEADER_WORDS + (ROWS + 2 * n) * d + 3 * n
    h = header(pbt)
    assert (h["r_y"], h["r_user"], h["rows"]) == (ROWS, ROWS + n, ROWS + 2 * n)
    assert (h["v_val"], h["v_order"], h["v_w"], h["n_vec"]) == (0, n, 2 * n, 3 * n)
    f = (d + 1) * (d + 2) // 2
    with_model = new_state(CMAES, d, n_pop_max=n, n_arch=2 * f, n_feat=f, d_model=d)
    assert with_model.shape[0] == HEADER_WORDS + (19 + 3 * n + d + 2 * f) * d + 3 * n + f * f + 4 * f + d * d
    for code, sizes in ((SPSA, {}), (PBT, {"n_pop_max": n}), (CMAES, {"n_pop_max": n, "n_arch": 0, "n_feat": 0,
                                                                       "d_model": 0})):
        state = new_state(code, d, **sizes)
        assert state.shape[0] == state_words(code, d, sizes) and open_state(state) == OK or code != SPSA
    with pytest.raises(ValueError, match="d: 0 parameters"):
        new_state(SPSA, 0)
    with pytest.raises(ValueError, match="d = 100000: the cmaes state would take"):
        new_state(CMAES, 100_000, n_pop_max=10, n_arch=0, n_feat=0, d_model=0)


@pytest.mark.parametrize("d", [100, 300, 1000])
def test_cmaes_without_the_model_reserves_no_model_words(d):
    t = arqon.Tuner(space(d, strategy="cmaes", cmaes={"model": "off"}, budget=10))
    n = int(header(t.state)["n_pop_max"])
    assert n == (4 + int(3 * math.log(d))) * 16 and header(t.state)["n_arch"] == 0
    assert t.state.nbytes == 8 * (HEADER_WORDS + (19 + 3 * n + d) * d + 3 * n)
    assert matrix(t.state).shape == (19 + 3 * n + d, d)


def test_a_config_whose_state_is_too_large_is_a_config_error_naming_d():
    assert 8 * (HEADER_WORDS + (19 + 3 * 160_000 + 1000) * 1000 + 3 * 160_000) > MAX_STATE_BYTES
    with pytest.raises(ConfigError, match=r"params: d = 1000: the cmaes state would take 3\d\d\d MiB, over the limit "
                                          r"of 1024 MiB; choose a strategy with a smaller state"):
        arqon.Tuner(space(1000, strategy="cmaes", cmaes={"model": "off", "population": 10_000}))
