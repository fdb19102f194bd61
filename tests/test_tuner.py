import numpy as np
import pytest

import arqon
from arqon import Status
from tests.conftest import space, sphere


def test_ask_returns_the_same_view_every_time():
    t = arqon.Tuner(space(3, seed=1))
    a = t.ask()
    assert a.base is not None and np.shares_memory(a, t.state)
    t.tell(1.0)
    b = t.ask()
    c = t.step(2.0)
    assert a is b is c
    np.testing.assert_array_equal(a, arqon.kernels.proposal(t.state))


def test_best_is_the_best_measured_point():
    t = arqon.Tuner({"params": [{"name": "n", "min": 1, "max": 64, "integer": True},
                                {"name": "g", "min": 0.0, "max": 1.0}], "seed": 2})
    assert t.best is None
    seen = []
    x = t.ask()
    for _ in range(30):
        v = (x[0] - 20) ** 2 + x[1]
        seen.append((v, x.copy()))
        x = t.step(v)
    v, at = min(seen, key=lambda s: s[0])
    assert t.best.value == v
    assert t.best.params == {"n": int(at[0]), "g": float(at[1])}
    assert isinstance(t.best.params["n"], int)


def test_maximize_keeps_the_largest_value():
    t = arqon.Tuner(space(2, seed=3, direction="maximize"))
    values = []
    x = t.ask()
    for _ in range(20):
        values.append(-sphere(x))
        x = t.step(values[-1])
    assert t.best.value == max(values)


def test_step_on_bad_type_says_what_is_wrong():
    t = arqon.Tuner(space(2))
    t.ask()
    for bad in ("1.0", None, [1.0]):
        with pytest.raises(TypeError, match="value: a real number, got"):
            t.step(bad)
        with pytest.raises(TypeError, match="value: a real number, got"):
            t.tell(bad)
    assert t.tell(np.float32(1.5)) == Status.OK and t.tell(3) == Status.NOT_ASKED


def test_done_and_exhausted_message():
    t = arqon.Tuner(space(1, budget=2))
    t.tell(sphere(t.ask()))
    t.tell(sphere(t.ask()))
    assert t.done and t.n_evaluations == 2
    with pytest.raises(arqon.BudgetExhausted, match="budget of 2 evaluations is spent"):
        t.ask()


def test_constructor_rejects_bad_config_with_config_error():
    with pytest.raises(arqon.ConfigError, match=r"at `\$.params\[0\]`"):
        arqon.Tuner({"params": [{"name": "x", "min": 3, "max": 1}]})


def test_state_is_read_only_attribute():
    t = arqon.Tuner(space(1))
    with pytest.raises(AttributeError):
        t.state = None
