"""``Tuner.step`` and ``Telemetry.emit`` as builtin functions (arqon._fastcall): the same steps and samples as the
kernels, the same errors as Python functions, no reference leaked, and the fast paths really in use where they are
available."""

import gc
import sys
import types

import numba
import numpy as np
import pytest

import arqon
from arqon import _fastcall
from arqon.kernels import ask, proposal, step
from arqon.kernels import telemetry as tel_kernels
from arqon.kernels.ring import RECORD
from tests.conftest import run_in_fresh_process, space

STRATEGIES = ["spsa", "es", "pbt", "cmaes"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_kind_of_value_steps_as_the_kernel_does(strategy):
    """Exact floats take the fast path, the rest the checked one; a twin state stepped by the @njit kernel is the
    reference (the @njit kernel called through its dispatcher), state bytes and statuses both."""
    fast, twin = arqon.Tuner(space(6, seed=3, strategy=strategy)), arqon.Tuner(space(6, seed=3, strategy=strategy))
    fast.ask()
    ask(twin.state)
    kinds = [float, np.float64, np.float32, int]  # a bool is refused (tests/test_bad_input.py)
    rng = np.random.default_rng(0)
    for i in range(600):
        raw = float(rng.normal(1.0, 1.0)) if i % 50 else [np.nan, np.inf][i // 50 % 2]
        value = kinds[i % len(kinds)](raw) if np.isfinite(raw) else raw
        x = fast.step(value)
        status = step(twin.state, float(value))
        assert fast.last_status == status
        assert np.shares_memory(x, fast.state)
        np.testing.assert_array_equal(x, proposal(twin.state))
    np.testing.assert_array_equal(fast.state, twin.state)


def test_wrong_calls_raise_as_a_python_method_would(tuner16):
    x = tuner16.ask()
    assert tuner16.step(value=1.5) is x  # a keyword takes the checked path
    for args, kwargs, message in [((), {}, r"Tuner.step\(\) missing 1 required positional argument: 'value'"),
                                  ((1.0, 2.0), {}, r"Tuner.step\(\) takes 1 positional argument but 2 were given"),
                                  ((), {"v": 1.0}, r"Tuner.step\(\) got an unexpected keyword argument 'v'"),
                                  (("1.0",), {}, "value: a real number, got str"),
                                  ((True,), {}, "value: a real number, got bool"),
                                  ((None,), {}, "value: a real number, got NoneType")]:
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


def _telemetry(capacity=64):
    """Two metrics, one with a sketch and a detector; a small drop-newest ring, so DROPPED comes up."""
    return arqon.Telemetry({"metrics": [{"name": "lat", "drift": {"warmup": 20}}, {"name": "err", "sketch": False}],
                            "ring": {"capacity": capacity, "policy": "drop_newest"}})


def test_every_kind_of_emit_records_as_the_kernel_does():
    """Names and exact ints with exact floats take the fast path, the rest (NumPy scalars, an explicit step)
    the checked one; a twin telemetry fed through the @njit kernel's dispatcher is the reference: flags, state bytes,
    ring records and the step counter."""
    fast, twin = _telemetry(), _telemetry()
    out_fast, out_twin = np.zeros(64, RECORD), np.zeros(64, RECORD)
    rng = np.random.default_rng(4)
    metrics = ["lat", 0, "err", 1, np.int64(1), np.int32(0)]  # a bool is refused (tests/test_bad_input.py)
    kinds = [float, float, np.float64, int, np.float32]
    next_step = 0
    for i in range(3000):
        raw = float(rng.lognormal(0.0, 1.0)) * (1 + (i > 1500)) if i % 97 else [np.nan, np.inf][i // 97 % 2]
        metric, kind = metrics[i % len(metrics)], kinds[i % len(kinds)]
        value = kind(raw) if np.isfinite(raw) else raw
        explicit = i % 13 == 0
        flags = fast.emit(metric, value, 10 * i) if explicit else fast.emit(metric, value)
        at = 10 * i if explicit else next_step
        next_step = at + 1
        assert flags == tel_kernels.emit(twin.state, twin.ring.state, int(metric) if not isinstance(metric, str)
                                         else twin.metric_id(metric), float(value), at), i
        assert fast.next_step == next_step
        if i % 50 == 0:  # drain both rings alike: DROPPED while they are full
            got = fast.ring.drain(out_fast)
            want = twin.ring.drain(out_twin)
            assert len(got) and got.tobytes() == want.tobytes(), i  # bytes: NaN values compare equal
    assert fast.state.tobytes() == twin.state.tobytes()
    assert fast.summary("lat").drifts >= 1


def test_wrong_emits_raise_as_a_python_method_would_and_count_no_step():
    tel = _telemetry()
    tel.emit("lat", 1.0)
    assert tel.emit(metric="err", value=2.0) == 0  # keywords take the checked path
    for args, kwargs, error, message in [
            ((), {}, TypeError, r"Telemetry.emit\(\) missing 2 required positional arguments: 'metric' and 'value'"),
            (("lat", 1.0, 1, 2), {}, TypeError, r"takes from 2 to 3 positional arguments but 4 were given"),
            (("lat", 1.0), {"v": 1}, TypeError, r"got an unexpected keyword argument 'v'"),
            (("nope", 1.0), {}, KeyError, "unknown metric 'nope'; known: lat, err"),
            ((2, 1.0), {}, KeyError, r"metric index 2 out of range 0..1"),
            ((-1, 1.0), {}, KeyError, r"metric index -1 out of range 0..1"),
            ((1.0, 1.0), {}, TypeError, "metric must be a name or an index, got float"),
            (("lat", "1.0"), {}, TypeError, "value: a real number, got str"),
            (("lat", None), {}, TypeError, "value: a real number, got NoneType"),
            (("lat", 1.0, 2.5), {}, TypeError, "step must be an integer, got float"),
            (("lat", 1.0, 2**63), {}, OverflowError, "step must be an int64 below")]:
        with pytest.raises(error, match=message):
            tel.emit(*args, **kwargs)
    assert tel.next_step == 2 and tel.summary("lat").count == 1 and tel.summary("err").count == 1


def test_emit_leaks_no_reference():
    """Arguments are borrowed and the flags returned as a new reference: the caller's release balances it."""
    tel = _telemetry(capacity=4)
    name, value = "lat", 1.25
    for _ in range(4):  # fill the ring: from now on every emit returns DROPPED, one int object
        tel.emit(name, value)
    dropped = tel.emit(name, value)
    assert dropped == int(arqon.Status.DROPPED)
    before = [sys.getrefcount(o) for o in (name, value, dropped)]
    for _ in range(100_000):
        tel.emit(name, value)
    assert [sys.getrefcount(o) for o in (name, value, dropped)] == before


def test_a_telemetry_is_freed_with_its_emit():
    """The checked emit holds the arrays, not the telemetry: with the cycle collector off, a dropped telemetry goes."""
    gc.disable()
    try:
        tel = _telemetry()
        tel.emit("lat", 1.0)
        tel.emit("lat", np.float64(1.0))
        address = id(tel)
        del tel
        assert not any(id(o) == address and isinstance(o, arqon.Telemetry) for o in gc.get_objects())
    finally:
        gc.enable()


def test_a_kept_emit_outlives_its_telemetry():
    """``emit`` holds the memory its addresses point into: after the telemetry is dropped and its memory could be
    reused, it still records (flags 0, not BAD_STATE from a freed state) and counts on."""
    emit = _telemetry(capacity=1 << 12).emit
    gc.collect()
    churn = [np.full(4096, 7.0) for _ in range(200)]  # reuses freed memory, if any was freed
    assert [emit("lat", 1.0 + i % 3) for i in range(1000)] == [0] * 1000
    assert emit("lat", 1.0, 5) == 0 and churn[-1][0] == 7.0


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the fast path needs compiled code")
def test_the_fast_emit_is_in_use_on_this_interpreter():
    assert isinstance(_telemetry().emit, types.BuiltinFunctionType)


def test_without_the_jit_emit_is_the_checked_python_function():
    code = ("import arqon, types; t = arqon.Telemetry({'metrics': [{'name': 'm'}]}); "
            "assert isinstance(t.emit, types.FunctionType), type(t.emit); t.emit('m', 2.0); t.emit(0, 4.0); "
            "print(t.summary('m').mean, t.next_step)")
    assert run_in_fresh_process(code, {"NUMBA_DISABLE_JIT": "1"}).split() == ["3.0", "2"]
