"""Bad input at every Python boundary gets one clear error naming the field or argument: never a traceback from deep
inside, never a silent accept. Each case states the error type and the words its message must hold."""

import math
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import arqon
from arqon.compat import ArqonSolver
from arqon.config import ConfigError, real

X = {"name": "x", "min": 0.0, "max": 1.0}


def tuner_with(**param):
    return arqon.Tuner({"params": [{**X, **param}]})


CONFIGS = [  # (what, build, words the message must hold)
    ("name with a trailing newline", lambda: tuner_with(name="x\n"), "params[0].name"),
    ("range beyond float", lambda: tuner_with(min=-1e308, max=1e308), "must be finite"),
    ("fractional init of an integer", lambda: tuner_with(max=10.0, init=2.5, integer=True), "must be whole"),
    ("seed beyond int64", lambda: arqon.Tuner({"params": [X], "seed": 2**64}), "$.seed"),
    ("telemetry accuracy below 1e-9", lambda: arqon.Telemetry({"metrics": [{"name": "m", "accuracy": 1e-17}]}),
     "accuracy"),
    ("policy risk budget beyond int64",
     lambda: arqon.Executor({"params": {"x": {}}, "risk_budget": 2**64}, arqon.Tuner({"params": [X]})),
     "risk_budget"),
    ("policy safe_mode_after beyond int64",
     lambda: arqon.Executor({"params": {"x": {}}, "safe_mode_after": 2**63}, arqon.Tuner({"params": [X]})),
     "safe_mode_after"),
    ("policy bounds beyond float",
     lambda: arqon.Executor({"params": {"x": {"min": -1e308, "max": 1e308}}}, arqon.Tuner({"params": [X]})),
     "must be finite"),
    ("infinite SPSA stability", lambda: arqon.Tuner({"params": [X], "spsa": {"stability": math.inf}}),
     "finite number - at `$.spsa.stability`"),
    ("infinite policy max_delta",
     lambda: arqon.Executor({"params": {"x": {"max_delta": math.inf}}}, arqon.Tuner({"params": [X]})),
     "finite number - at `$.params[...].max_delta`"),
    ("infinite canary max_regression",
     lambda: arqon.Executor({"params": {"x": {}}, "metrics": ["m"], "canary": {"stages": [
         {"min_samples": 3, "max_regression": math.inf}]}}, arqon.Tuner({"params": [X]})),
     "finite number - at `$.canary.stages[0].max_regression`"),
    ("infinite drift allowance",
     lambda: arqon.Telemetry({"metrics": [{"name": "m", "drift": {"allowance": math.inf}}]}), "must be finite"),
    ("infinite selector prior",
     lambda: arqon.Selector({"arms": 2, "policy": "gaussian-thompson",
                             "gaussian_thompson": {"prior_var": math.inf}}), "prior_var"),
    ("solver min > max with a probe",
     lambda: ArqonSolver({"bounds": {"x": {"min": 2.0, "max": 1.0}}, "budget": 10, "probe_ratio": 0.5}),
     "less than `max`"),
    ("solver log scale from 0 with a probe",
     lambda: ArqonSolver({"bounds": {"x": {"min": 0.0, "max": 1.0, "scale": "Log"}}, "budget": 10,
                          "probe_ratio": 0.5}), "log scale"),
]


@pytest.mark.parametrize("what, build, words", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_bad_config_is_one_config_error_naming_the_field(what, build, words):
    with pytest.raises(ConfigError) as raised:
        build()
    assert words in str(raised.value)


NOT_NUMBERS = ["0.5", b"0.5", True, np.bool_(False), {"v": 1.0}, [0.5], None, 1j, 10**400]


@pytest.mark.parametrize("value", NOT_NUMBERS, ids=repr)
def test_no_string_bool_dict_or_huge_int_passes_as_a_number(value):
    t = arqon.Tuner({"params": [X]})
    t.ask()
    for call in (t.tell, t.step):
        with pytest.raises(TypeError, match="^value: "):
            call(value)
    assert t.tell(0.5) == arqon.Status.OK  # nothing was consumed by the refused calls
    sel = arqon.Selector({"arms": 3, "policy": "thompson"})
    sel.select()
    with pytest.raises(TypeError, match="^reward: "):
        sel.update(0, value)
    tel = arqon.Telemetry({"metrics": [{"name": "m"}]})
    with pytest.raises(TypeError, match="^value: "):
        tel.emit("m", value)
    assert tel.summary("m").count == 0


def test_tell_batch_takes_only_a_sequence_of_numbers():
    t = arqon.Tuner({"params": [X], "strategy": "es"})
    n = len(t.ask_batch())
    for values, words in [({"a": 1.0}, "got dict"), ("0.5" * n, "got str"), (["0.5"] * n, "values[0]"),
                          ([0.5] * (n - 1) + [True], f"values[{n - 1}]")]:
        with pytest.raises(TypeError, match=re.escape(words)):
            t.tell_batch(values)
    assert t.tell_batch([None] + [0.5] * (n - 1)) in (arqon.Status.NONFINITE, arqon.Status.OK | arqon.Status.NONFINITE)


def test_a_bool_is_not_a_metric_index():
    tel = arqon.Telemetry({"metrics": [{"name": "m"}, {"name": "n"}]})
    with pytest.raises(TypeError, match="metric must be a name or an index"):
        tel.emit(True, 1.0)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(), st.floats(), st.text(max_size=4), st.booleans(), st.none(),
                 st.complex_numbers(), st.lists(st.floats(), max_size=2)))
def test_real_accepts_exactly_the_real_numbers_in_float_range(value):
    is_real = isinstance(value, (int, float)) and not isinstance(value, bool)
    if is_real and isinstance(value, int) and abs(value) >= 2**1024:
        is_real = False
    if is_real:
        assert real(value, "v") == float(value) or math.isnan(value)
    else:
        with pytest.raises(TypeError, match="^v: "):
            real(value, "v")


def _validate(path):
    done = subprocess.run([sys.executable, "-m", "arqon", "validate", str(path)], capture_output=True, text=True)
    return done.returncode, done.stderr


@pytest.mark.parametrize("name, content, words", [
    ("deep.json", b"[" * 5000 + b"]" * 5000, "deep.json"),
    ("deep.toml", b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    ("bytes.toml", b"x = '\xff'\n", "not valid UTF-8"),
    ("policy.toml", b"risk_budget = 18446744073709551616\n[params.x]\n", "risk_budget"),
])
def test_validate_names_the_file_and_the_reason_without_a_traceback(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    code, err = _validate(path)
    assert code == 2 and "Traceback" not in err
    assert name in err and words in err
