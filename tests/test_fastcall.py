"""``Tuner.step`` as a builtin function (arqon._fastcall): the same steps as the kernel, the same errors as a Python
function, no reference leaked, and the fast path really in use where it is available."""

import gc
import sys
import types

import numba
import numpy as np
import pytest

import arqon
from arqon import _fastcall
from arqon.kernels import ask, proposal, step
from tests.conftest import run_in_fresh_process, space

STRATEGIES = ["spsa", "es", "pbt", "cmaes"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_kind_of_value_steps_as_the_kernel_does(strategy):
    """Exact floats take the fast path, the rest the checked one; a twin state stepped by the @njit kernel is the
    reference (the @njit kernel called through its dispatcher), state bytes and statuses both."""
    fast, twin = arqon.Tuner(space(6, seed=3, strategy=strategy)), arqon.Tuner(space(6, seed=3, strategy=strategy))
    fast.ask()
    ask(twin.state)
    kinds = [float, np.float64, np.float32, int, lambda v: v > 0.5]  # int and bool: a real number all the same
    rng = np.random.default_rng(0)
    for i in range(600):
        raw = float(rng.normal(1.0, 1.0)) if i % 50 else [np.nan, np.inf][i // 50 % 2]
        value = kinds[i % len(kinds)](raw) if np.isfinite(raw) else raw
        x = fast.step(value)
        status = step(twin.state, float(value))
        assert fast.last_status == status
        assert np.shares_memory(x, fast.state.base)
        np.testing.assert_array_equal(x, proposal(twin.state))
    np.testing.assert_array_equal(fast.state, twin.state)


def test_wrong_calls_raise_as_a_python_method_would(tuner16):
    x = tuner16.ask()
    assert tuner16.step(value=1.5) is x  # a keyword takes the checked path
    for args, kwargs, message in [((), {}, r"Tuner.step\(\) missing 1 required positional argument: 'value'"),
                                  ((1.0, 2.0), {}, r"Tuner.step\(\) takes 1 positional argument but 2 were given"),
                                  ((), {"v": 1.0}, r"Tuner.step\(\) got an unexpected keyword argument 'v'"),
                                  (("1.0",), {}, "value must be a real number, got str"),
                                  ((None,), {}, "value must be a real number, got NoneType")]:
        with pytest.raises(TypeError, match=message):
            tuner16.step(*args, **kwargs)
    assert tuner16.n_evaluations == 1


def test_no_reference_is_leaked(tuner16):
    """The fast path returns a new reference to the proposal view each call: the caller's release must balance it."""
    x = tuner16.ask()
    before = sys.getrefcount(x)
    for i in range(100_000):
        tuner16.step(1.0 + (i % 7))
    tuner16.step(np.float64(1.0))
    assert sys.getrefcount(x) == before


def test_a_tuner_is_freed_with_its_step():
    """The checked step holds the state, not the tuner: no reference cycle keeps a dropped tuner alive (with the
    cycle collector off, only reference counting can free it)."""
    gc.disable()
    try:
        t = arqon.Tuner(space(2, seed=1))
        t.step(1.0)
        t.step(np.float64(1.0))
        address = id(t)
        del t
        assert not any(id(o) == address and isinstance(o, arqon.Tuner) for o in gc.get_objects())
    finally:
        gc.enable()


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the fast path needs compiled code")
def test_the_fast_path_is_in_use_on_this_interpreter():
    assert _fastcall.AVAILABLE, "64-bit CPython with the GIL: the builtin step should be available here"
    t = arqon.Tuner(space(2, seed=1))
    assert isinstance(t.step, types.BuiltinFunctionType)


def test_without_the_jit_step_is_the_checked_python_function():
    code = ("import arqon, types; t = arqon.Tuner({'params': [{'name': 'a', 'min': 0, 'max': 1}], 'seed': 1}); "
            "x = t.step(1.0); assert isinstance(t.step, types.FunctionType), type(t.step); print(x.tolist())")
    assert len(eval(run_in_fresh_process(code, {"NUMBA_DISABLE_JIT": "1"}))) == 1
