"""ArqonSolver: ArqonHPO's quickstart runs verbatim with only the import changed, and the config keys are honoured."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from arqon.compat import ArqonSolver
from arqon.config import ConfigError

README = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "arqonhpo-readme.md"


def quadratic(params):
    return (params["x"] - 2) ** 2 + (params["y"] + 1) ** 2


def config(**extra):
    return {"seed": 42, "budget": 200, "bounds": {"x": {"min": -10.0, "max": 10.0}, "y": {"min": -10.0, "max": 10.0}},
            **extra}


def evaluations_to(solver, objective, target):
    """Run the solver to its budget; the number of evaluations until one was within ``target`` (None if never)."""
    n, hit = 0, None
    while (batch := solver.ask()) is not None:
        results = []
        for params in batch:
            n += 1
            value = objective(params)
            if hit is None and value <= target:
                hit = n
            results.append({"params": params, "value": value, "cost": 1.0})
        solver.tell(json.dumps(results))
    return hit


@pytest.mark.skipif(not README.is_file(), reason="needs ../shared/seeds beside the repository")
def test_the_arqonhpo_quickstart_runs_verbatim(capsys):
    code = re.search(r"## Quick start.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert "from arqonhpo import ArqonSolver" in code
    exec(code.replace("from arqonhpo import ArqonSolver", "from arqon.compat import ArqonSolver"), {})
    x, y, value = map(float, re.search(r"'x': (\S+), 'y': (\S+)\} -> (\S+)", capsys.readouterr().out).groups())
    assert value <= 1e-3 and abs(x - 2) < 0.05 and abs(y + 1) < 0.05


def test_quickstart_every_seed_within_1e3_in_at_most_60_evaluations():
    hits = [evaluations_to(ArqonSolver(json.dumps(config(seed=seed))), quadratic, 1e-3) for seed in range(20)]
    assert None not in hits
    assert np.median(hits) <= 60


def test_results_in_any_order_and_missing_ones():
    solver = ArqonSolver(config(seed=1, budget=120))
    rng = np.random.default_rng(0)
    while (batch := solver.ask()) is not None:
        results = [{"params": p, "value": None if rng.random() < 0.2 else quadratic(p), "eval_id": i}
                   for i, p in enumerate(batch)]
        rng.shuffle(results)
        solver.tell(results[: max(len(results) - 1, 1)])  # one result never comes back
    assert solver.best["value"] < 1e-3


def test_max_delta_and_cooldown_are_honoured():
    solver = ArqonSolver(config(seed=3, max_delta={"x": 0.25, "y": 0.5}, cooldown_steps=2))
    previous, changes = {"x": 0.0, "y": 0.0}, []
    while (batch := solver.ask()) is not None:
        for params in batch:
            assert abs(params["x"] - previous["x"]) <= 0.25 + 1e-12
            assert abs(params["y"] - previous["y"]) <= 0.5 + 1e-12
            changes.append(params != previous)
            previous = params
        solver.tell([{"params": p, "value": quadratic(p)} for p in batch])
    changed = np.flatnonzero(changes)
    assert np.all(np.diff(changed) >= 2)  # at most one change per two evaluations
    assert solver.best["value"] < 0.1


def test_probe_ratio_spends_its_share_on_a_space_filling_probe():
    solver = ArqonSolver(config(seed=5, probe_ratio=0.2))
    probe = solver.ask()
    assert len(probe) == 40
    xs = np.array([[p["x"], p["y"]] for p in probe])
    for column in xs.T:  # every tenth of each axis is visited
        assert len(set(np.floor((column + 10) / 2).astype(int))) == 10
    solver.tell([{"params": p, "value": quadratic(p)} for p in probe])
    assert evaluations_to(solver, quadratic, 1e-3) is not None
    assert "40 probe evaluations, then cmaes" in solver.describe()


def test_log_and_periodic_scales():
    solver = ArqonSolver({"budget": 150, "bounds": {"lr": {"min": 1e-5, "max": 1.0, "scale": "Log"},
                                                    "phase": {"min": 0.0, "max": 1.0, "scale": "Periodic"}}})
    f = lambda p: (math.log10(p["lr"]) + 3) ** 2 + (1 - math.cos(2 * math.pi * (p["phase"] - 0.05)))  # noqa: E731
    assert evaluations_to(solver, f, 1e-3) is not None


@pytest.mark.parametrize("bad,reason", [
    ({"bogus": 1}, "unknown field `bogus`"),
    ({"bounds": {"x": {"min": 0, "max": 1, "scale": "Cubic"}}}, r"Invalid enum value 'Cubic' - at `\$.bounds\[...\].scale`"),
    ({"probe_ratio": 1.0}, r"< 1.0 - at `\$.probe_ratio`"),
    ({"max_delta": {"z": 1.0}}, r"max_delta names unknown parameters \['z'\]"),
    ({"budget": 0}, r">= 1 - at `\$.budget`"),
])
def test_bad_configs_name_the_field(bad, reason):
    with pytest.raises(ConfigError, match=reason):
        ArqonSolver(json.dumps({**config(), **bad}))


def test_bad_results_are_refused_with_a_reason():
    solver = ArqonSolver(config())
    with pytest.raises(RuntimeError, match="call ask"):
        solver.tell([])
    batch = solver.ask()
    with pytest.raises(ValueError, match=r"results\[0\].params .* is not a proposal of the batch out"):
        solver.tell([{"params": {"x": 123.0, "y": 0.0}, "value": 1.0}])
    with pytest.raises(ValueError, match="more results than proposals"):
        solver.tell([{"params": batch[0], "value": 1.0}, {"params": batch[0], "value": 2.0}])
    with pytest.raises(ConfigError, match="results"):
        solver.tell('[{"params": {}, "valu": 1}]')
