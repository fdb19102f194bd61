"""A seeded fuzz campaign over what users pass in: configs with one field replaced by junk, and runtime calls with junk
arguments. The expectation, for every case: either it is accepted and then works (proposals inside the bounds, arms in
range), or it is refused with ConfigError / TypeError / ValueError naming the field or argument. Never another
exception, never a traceback from deep inside, and a refused call leaves the object working."""

import copy
import math
import random

import numpy as np

import arqon
from arqon.config import ConfigError

JUNK = [None, "", "x", "0.5", -1, 0, 1, 2**70, -(2**70), 1e308, -1e308, math.inf, -math.inf, math.nan, True, [], {},
        [1.0], {"a": 1}, 0.5, -0.5, 1e-300, "a" * 100, b"1", 3, 10**6]
TUNER = {"params": [{"name": "x", "min": -2.0, "max": 2.0}, {"name": "n", "min": 1, "max": 64, "integer": True},
                    {"name": "lr", "min": 1e-4, "max": 1.0, "scale": "log"}], "seed": 3}
SELECTOR = {"arms": ["a", "b", "c"], "policy": "ucb1", "seed": 2, "ucb1": {"explore": 1.0}}
TELEMETRY = {"metrics": [{"name": "latency", "quantiles": [0.5, 0.99]}], "ring": {"capacity": 64}}
POLICY = {"params": {"x": {"min": -1.0, "max": 1.0, "max_delta": 0.5}}, "metrics": ["latency"],
          "slos": ["latency <= 50"],
          "canary": {"metric": "latency", "stages": [{"min_samples": 3, "max_regression": 0.1}]}}


def _leaves(tree, path=()):
    """Every (path, value) of a decoded config, lists and dicts both."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    yield from ((path, tree),) if path else ()
    for key, value in items:
        yield from _leaves(value, (*path, key))


def _replaced(tree, path, value):
    tree = copy.deepcopy(tree)
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


def _tally(counts):
    """'what: answer n, answer n; ...' for a person to read."""
    whats = dict.fromkeys(what for what, _ in counts)
    return "; ".join(what + ": " + ", ".join(f"{answer} {n}" for (w, answer), n in sorted(counts.items()) if w == what)
                     for what in whats)


def _works(kind, obj):
    """The accepted object does its job with ordinary input (the independent expectation)."""
    if kind == "tuner":
        x = obj.ask()
        for _ in range(5):
            assert np.all(np.isfinite(x)), x
            assert all(p.min <= v <= p.max for p, v in zip(obj.config.params, x)), x
            x = obj.step(float(np.sum(np.tanh(x))))
    elif kind == "selector":
        arm = obj.select()
        for _ in range(5):
            assert 0 <= arm < len(obj.names)
            arm = obj.step(0.5)
    elif kind == "telemetry":
        for v in (1.0, 2.0, 3.0):
            obj.emit(0, v)
    else:
        arqon.Executor(obj, arqon.Tuner({"params": [{"name": "x", "min": -1.0, "max": 1.0}]}))


BUILD = {"tuner": (TUNER, arqon.Tuner), "selector": (SELECTOR, arqon.Selector),
         "telemetry": (TELEMETRY, arqon.Telemetry), "policy": (POLICY, lambda c: c if arqon.Executor(
             c, arqon.Tuner({"params": [{"name": "x", "min": -1.0, "max": 1.0}]})) else c)}


def test_configs_with_one_field_replaced_by_junk_are_used_or_refused_by_name(capsys):
    rng = random.Random(7)
    counts = {}
    for kind, (base, build) in BUILD.items():
        _works(kind, build(base))  # the base config is valid: every refusal below is the junk's
        leaves = [p for p, _ in _leaves(base)]
        for _ in range(150):
            path, junk = rng.choice(leaves), rng.choice(JUNK)
            config = _replaced(base, path, junk)
            try:
                obj = build(config)
            except ConfigError as e:
                named = [str(k) for k in path if isinstance(k, str)]
                assert any(k in str(e) for k in named) or "$" in str(e), (kind, path, junk, str(e))
                counts[kind, "refused"] = counts.get((kind, "refused"), 0) + 1
                continue
            _works(kind, obj)
            counts[kind, "accepted"] = counts.get((kind, "accepted"), 0) + 1
    assert sum(counts.values()) == 600, counts
    assert all(counts.get((k, "refused"), 0) > 50 and counts.get((k, "accepted"), 0) > 0 for k in BUILD), counts
    with capsys.disabled():
        print(f"\n  600 configs with one field replaced by junk: {_tally(counts)}; other exceptions 0")


CALLS = {
    "Tuner.step": lambda t, s, m, v: t.step(v),
    "Tuner.tell": lambda t, s, m, v: (t.ask(), t.tell(v)),
    "Selector.step": lambda t, s, m, v: s.step(v),
    "Selector.update": lambda t, s, m, v: s.update(s.select(), v),
    "Selector.select(eligible)": lambda t, s, m, v: s.select(eligible=v),
    "Telemetry.emit(value)": lambda t, s, m, v: m.emit(0, v),
    "Telemetry.emit(metric)": lambda t, s, m, v: m.emit(v, 1.0),
}


def _acceptable(name, junk):
    """What each call may accept (the independent expectation): a real number for a value or reward (a NaN or an
    infinity is a rejected observation, counted), metric 0 or its name, and an eligibility mask, an arm list or None."""
    real = isinstance(junk, float) or (isinstance(junk, int) and not isinstance(junk, bool) and abs(junk) < 2 ** 1024)
    if name == "Telemetry.emit(metric)":
        return junk == 0 and real
    if name == "Selector.select(eligible)":
        if junk is None:  # the default: every arm
            return True
        mask = np.asarray(junk)
        return (mask.dtype == bool and mask.shape == (3,)) or (  # none eligible: the documented fallback arm
            isinstance(junk, list) and all(isinstance(a, int) and not isinstance(a, bool) and 0 <= a < 3 for a in junk))
    return real


def test_runtime_calls_with_junk_arguments_answer_clearly_and_leave_everything_working(capsys):
    rng = random.Random(11)
    tuner, sel, tel = arqon.Tuner(TUNER), arqon.Selector(SELECTOR), arqon.Telemetry(TELEMETRY)
    sel.select()
    answers = {}
    for _ in range(700):
        name = rng.choice(list(CALLS))
        junk = rng.choice(JUNK + [[True, False, True], [False] * 3, np.ones(3, bool), "a", 7, -1])
        try:
            CALLS[name](tuner, sel, tel, junk)
            answer = "accepted"
            assert _acceptable(name, junk), (name, junk)  # no silent accept
        except (TypeError, ValueError, KeyError, IndexError) as e:
            argument = {"Tuner.step": "value", "Tuner.tell": "value", "Selector.step": "reward", "Selector.update":
                        "reward", "Selector.select(eligible)": "arm", "Telemetry.emit(value)": "value",
                        "Telemetry.emit(metric)": "metric"}[name]
            assert argument in str(e) or (name.startswith("Selector.select") and "eligible" in str(e)), (name, junk, e)
            answer = type(e).__name__
        answers[name, answer] = answers.get((name, answer), 0) + 1
        _works("tuner", tuner)  # whatever came before, ordinary input still works
        _works("selector", sel)
    assert sum(answers.values()) == 700, answers
    with capsys.disabled():
        print(f"\n  700 runtime calls with junk arguments: {_tally(answers)}; other exceptions 0")
