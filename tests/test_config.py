import math

import msgspec
import pytest

import arqon
from arqon import ConfigError, load_config

GOOD = {"params": [{"name": "x", "min": -1, "max": 2}, {"name": "lr", "min": 1e-4, "max": 1, "scale": "log"}]}


def error_of(cfg):
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    return str(e.value)


@pytest.mark.parametrize("param, path, reason", [
    ({"name": "x", "min": 1, "max": 1}, "$.params[0]", "`min` (1.0) must be less than `max` (1.0)"),
    ({"name": "x", "min": 2, "max": 1}, "$.params[0]", "must be less than"),
    ({"name": "x", "min": 0, "max": 1, "scale": "log"}, "$.params[0]", "log scale needs `min` > 0"),
    ({"name": "x", "min": -1, "max": 1, "scale": "log"}, "$.params[0]", "log scale needs `min` > 0"),
    ({"name": "x", "min": math.nan, "max": 1}, "$.params[0]", "`min` of 'x' must be finite"),
    ({"name": "x", "min": 0, "max": math.inf}, "$.params[0]", "`max` of 'x' must be finite"),
    ({"name": "x", "min": 0, "max": 1, "init": 2}, "$.params[0]", "`init` (2.0) is outside [0.0, 1.0]"),
    ({"name": "x", "min": 0, "max": 1, "init": math.nan}, "$.params[0]", "`init` of 'x' must be finite"),
    ({"name": "x", "min": 0.2, "max": 0.8, "integer": True}, "$.params[0]", "has no integer in"),
    ({"name": "x", "min": 0, "max": 1, "colour": "red"}, "$.params[0]", "unknown field `colour`"),
    ({"name": "x", "min": "0", "max": 1}, "$.params[0].min", "Expected `float`, got `str`"),
    ({"name": "x", "min": True, "max": 1}, "$.params[0].min", "Expected `float`, got `bool`"),
    ({"name": "x", "min": 0, "max": 1, "scale": "ln"}, "$.params[0].scale", "Invalid enum value 'ln'"),
    ({"name": "", "min": 0, "max": 1}, "$.params[0].name", "length >= 1"),
    ({"min": 0, "max": 1}, "$.params[0]", "missing required field `name`"),
])
def test_bad_param_names_path_and_reason(param, path, reason):
    msg = error_of({"params": [param]})
    assert f"at `{path}`" in msg and reason in msg, msg


@pytest.mark.parametrize("cfg, path, reason", [
    ({"params": []}, "$.params", "length >= 1"),
    ({}, "$", "missing required field `params`"),
    ({"params": [{"name": "x", "min": 0, "max": 1}] * 2}, "$", "duplicate parameter name 'x' at params[1]"),
    ({**GOOD, "direction": "up"}, "$.direction", "Invalid enum value 'up'"),
    ({**GOOD, "seed": -1}, "$.seed", ">= 0"),
    ({**GOOD, "seed": 1.5}, "$.seed", "Expected `int`, got `float`"),
    ({**GOOD, "budget": 0}, "$.budget", ">= 1"),
    ({**GOOD, "budjet": 10}, "$", "unknown field `budjet`"),
    ({**GOOD, "spsa": {"c": 0.0}}, "$.spsa.c", "> 0.0"),
    ({**GOOD, "spsa": {"gains": "fast"}}, "$.spsa.gains", "Invalid enum value 'fast'"),
    ({**GOOD, "spsa": {"average": 0}}, "$.spsa.average", ">= 1"),
    ({**GOOD, "spsa": {"perturbation": "auto"}}, "$.spsa.perturbation", "Invalid enum value 'auto'"),
    ({**GOOD, "strategy": "magic"}, "$.strategy", "Invalid enum value 'magic'"),
])
def test_bad_config_names_path_and_reason(cfg, path, reason):
    msg = error_of(cfg)
    assert f"at `{path}`" in msg and reason in msg, msg


def test_declaration_order_is_the_vector_order():
    t = arqon.Tuner({"params": [{"name": n, "min": 0, "max": 1} for n in "zyxw"]})
    assert t.names == ("z", "y", "x", "w")
    assert list(t.recommend()) == ["z", "y", "x", "w"]


def test_defaults():
    cfg = load_config(GOOD)
    assert cfg.direction == "minimize" and cfg.seed == 0 and cfg.budget is None and cfg.strategy == "spsa"
    assert cfg.spsa.alpha == 0.602 and cfg.spsa.gamma == 0.101 and cfg.spsa.a is None
    rec = arqon.Tuner(cfg).recommend()
    assert rec["x"] == 0.5 and rec["lr"] == pytest.approx(1e-2)  # centre; geometric centre on a log scale


TOML = """
seed = 3
budget = 100
[[params]]
name = "x"
min = -1.0
max = 2
[[params]]
name = "lr"
min = 1e-4
max = 1
scale = "log"
"""
YAML = """
seed: 3
budget: 100
params:
  - {name: x, min: -1.0, max: 2}
  - {name: lr, min: 1.0e-4, max: 1, scale: log}
"""
JSON = '{"seed": 3, "budget": 100, "params": [{"name": "x", "min": -1.0, "max": 2},' \
       ' {"name": "lr", "min": 1e-4, "max": 1, "scale": "log"}]}'


def test_every_source_decodes_to_the_same_config(tmp_path):
    expected = load_config({**GOOD, "seed": 3, "budget": 100})
    for text, fmt in [(TOML, "toml"), (YAML, "yaml"), (JSON, "json")]:
        assert load_config(text, format=fmt) == expected
        path = tmp_path / f"c.{fmt}"
        path.write_text(text)
        assert load_config(path) == expected
        assert load_config(str(path)) == expected
    assert load_config(JSON) == expected  # a string starting with "{" is JSON
    assert load_config(expected) is expected


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TOML.replace("max = 2", "max = -5"))
    msg = error_of(bad)
    assert str(bad) in msg and "$.params[0]" in msg and "must be less than" in msg
    broken = tmp_path / "broken.toml"
    broken.write_text("[[params]\n")
    assert "not valid TOML" in error_of(broken)
    assert "cannot read" in error_of(tmp_path / "missing.json")
    assert "unknown config file type '.ini'" in error_of(tmp_path / "c.ini")
    assert "not valid JSON" in error_of("{nope")
    assert "config must be a mapping" in error_of(42)
    assert "unknown config format 'xml'" in str(pytest.raises(ConfigError, load_config, "a", format="xml").value)


def test_toml_nan_is_rejected():
    with pytest.raises(ConfigError, match="must be finite"):
        load_config(TOML.replace("max = 2", "max = nan"), format="toml")


def test_config_error_is_a_value_error_and_has_no_chained_traceback():
    with pytest.raises(ValueError) as e:
        load_config({"params": [{"name": "x", "min": 1, "max": 0}]})
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_structs_are_frozen():
    cfg = load_config(GOOD)
    with pytest.raises(AttributeError):
        cfg.seed = 4
    assert isinstance(cfg, msgspec.Struct)
