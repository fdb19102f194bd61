"""``ArqonSolver``: the ArqonHPO Python interface (a JSON config, batch ``ask``, ``tell`` of results) over an arqon
``Tuner``, so code written for ArqonHPO runs with only its import line changed.

Config keys: ``bounds`` (``{name: {"min", "max", "scale"?}}``, scale ``Linear`` | ``Log`` | ``Periodic``), ``budget``,
``seed``, ``probe_ratio`` (the share of the budget spent first on a space-filling probe; the search then starts from
the best probe), ``max_delta`` (one number for every parameter, or ``{name: number}``) and ``cooldown_steps``: these
two send every proposal through arqon's safety executor (clip mode), so what ``ask`` hands out moves at most
``max_delta`` from the previous evaluation and changes at most once per ``cooldown_steps`` evaluations. ``strategy``
(arqon's own key: ``auto`` by default) picks the search strategy. Any other key is an error.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import msgspec
import numpy as np
from msgspec import Meta

from arqon.config import ConfigError, Name, decode, load_config
from arqon.kernels.rng import rng_seed, rng_uniform
from arqon.tuner import BudgetExhausted, Tuner


class Bound(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One parameter's range."""

    min: float
    max: float
    scale: Literal["Linear", "Log", "Periodic", "linear", "log", "periodic"] = "Linear"


class SolverConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An ArqonHPO solver config."""

    bounds: Annotated[dict[Name, Bound], Meta(min_length=1)]
    budget: Annotated[int, Meta(ge=1, le=2**40)]
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    probe_ratio: Annotated[float, Meta(ge=0.0, lt=1.0)] = 0.0
    max_delta: Annotated[float, Meta(gt=0.0)] | dict[Name, Annotated[float, Meta(gt=0.0)]] | None = None
    cooldown_steps: Annotated[int, Meta(ge=0, le=2**40)] = 0
    strategy: Literal["spsa", "es", "pbt", "cmaes", "auto"] = "auto"

    def __post_init__(self):
        if isinstance(self.max_delta, dict):
            unknown = sorted(set(self.max_delta) - set(self.bounds))
            if unknown:
                raise ValueError(f"max_delta names unknown parameters {unknown}; bounds declares {list(self.bounds)}")


class Result(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One evaluation reported to ``tell`` (``cost`` and ``eval_id`` are accepted and not used: results are matched to
    proposals by their params)."""

    params: dict[str, float]
    value: float | None
    cost: float | None = None
    eval_id: int | str | None = None


def _probe_points(n: int, d: int, seed: int) -> np.ndarray:
    """n points of the Kronecker (R_d) low-discrepancy sequence in [0, 1]^d, shifted by a seeded random offset."""
    phi = 2.0
    for _ in range(50):  # the root of x^(d+1) = x + 1
        phi = (1.0 + phi) ** (1.0 / (d + 1))
    alpha = (1.0 / phi) ** np.arange(1, d + 1)
    rng = np.zeros(4, dtype=np.uint64)
    rng_seed(rng, np.uint64(seed))
    shift = np.array([rng_uniform(rng) for _ in range(d)])
    return (shift + np.outer(np.arange(1, n + 1), alpha)) % 1.0


def _number(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a number")


class ArqonSolver:
    """ArqonHPO's solver interface: ``ask()`` returns a batch of params dicts (None once the budget is spent),
    ``tell(results)`` takes a JSON string or a list of ``{"params", "value", "cost"?, "eval_id"?}``, in any order;
    a proposal with no result (or a null/NaN value) counts as missing."""

    def __init__(self, config_json):
        self.config = decode(config_json, SolverConfig)
        c = self.config
        self.names = list(c.bounds)
        self._n_probe = min(round(c.probe_ratio * c.budget), c.budget - 1)
        if self._n_probe:  # the tuner is built after the probe: its bounds are checked now all the same
            load_config({"params": self._params(None)})
        self._probes = None  # the probe batch and its values while probing
        self._executor = None  # set by _build_tuner when max_delta or cooldown_steps asks for one
        self._tuner = None if self._n_probe else self._build_tuner(None)
        self._now = 0
        self._out: list[dict] | None = None  # the batch handed out, as given to the user
        self.n_evaluations = 0
        self.best: dict | None = None  # {"params", "value"} of the best result told

    def _params(self, init) -> list[dict]:
        params = []
        for name, b in self.config.bounds.items():
            p = {"name": name, "min": b.min, "max": b.max, "scale": b.scale.lower()}
            if init is not None:
                p["init"] = init[name]
            params.append(p)
        return params

    def _build_tuner(self, init) -> Tuner:
        c = self.config
        tuner = Tuner({"params": self._params(init), "seed": c.seed, "budget": c.budget - self._n_probe,
                       "strategy": c.strategy})
        if c.max_delta is not None or c.cooldown_steps:
            from arqon.executor import Executor

            rules = {}
            for name in self.names:
                delta = c.max_delta.get(name) if isinstance(c.max_delta, dict) else c.max_delta
                rules[name] = {"cooldown": c.cooldown_steps, **({"max_delta": delta} if delta else {})}
            self._executor = Executor({"params": rules}, tuner)
        return tuner

    def describe(self) -> str:
        """What runs: the probe, then the tuner's strategy and why."""
        probe = f"{self._n_probe} probe evaluations, then " if self._n_probe else ""
        tuner = self._tuner or Tuner({"params": self._params(None), "budget": self.config.budget - self._n_probe,
                                      "strategy": self.config.strategy})
        return probe + tuner.describe()

    def ask(self) -> list[dict] | None:
        """The next batch of params to evaluate, or None once the budget is spent. The same batch until told."""
        if self._out is not None:
            return [dict(p) for p in self._out]
        if self._tuner is None:
            unit = _probe_points(self._n_probe, len(self.names), self.config.seed)
            self._probes = [self._from_unit(u) for u in unit]
            self._out = self._probes
            return [dict(p) for p in self._out]
        try:
            rows = self._tuner.ask_batch()
        except BudgetExhausted:
            return None
        batch = []
        for row in rows:
            params = dict(zip(self.names, row.tolist(), strict=True))
            if self._executor is not None:
                self._executor.offer(params, self._now)
                self._executor.observe([], self._now)
                params = dict(zip(self.names, self._executor.live.tolist(), strict=True))
                self._now += 1
            batch.append(params)
        self._out = batch
        return [dict(p) for p in batch]

    def _from_unit(self, u) -> dict:
        params = {}
        for (name, b), ui in zip(self.config.bounds.items(), u, strict=True):
            if b.scale.lower() == "log":
                params[name] = math.exp(math.log(b.min) + float(ui) * (math.log(b.max) - math.log(b.min)))
            else:
                params[name] = b.min + float(ui) * (b.max - b.min)
        return params

    def tell(self, results) -> None:
        """Report results of the batch out: a JSON string or a list of dicts. Each result's ``params`` must be one of
        the batch's (as ``ask`` returned them); a proposal left out, or given a null/NaN value, is missing."""
        if self._out is None:
            raise RuntimeError("tell() without a batch out: call ask() first")
        try:
            if not isinstance(results, (str, bytes)):  # through JSON, so NumPy numbers count as numbers
                results = msgspec.json.encode(results, enc_hook=_number)
            parsed = msgspec.json.decode(results, type=list[Result])
        except (msgspec.ValidationError, msgspec.DecodeError, msgspec.EncodeError) as e:
            raise ConfigError(f"results: {e}") from None
        values = [math.nan] * len(self._out)
        slots = {}  # proposals by their params (equal params, e.g. held by a cooldown, share a key: filled in order)
        for i, p in enumerate(self._out):
            slots.setdefault(self._key(p), []).append(i)
        for k, r in enumerate(parsed):
            free = slots.get(self._key(r.params))
            if free is None:
                raise ValueError(f"results[{k}].params {r.params} is not a proposal of the batch out")
            if not free:
                raise ValueError(f"results[{k}]: more results than proposals with these params")
            i = free.pop(0)
            values[i] = math.nan if r.value is None else float(r.value)
            if math.isfinite(values[i]):
                self.n_evaluations += 1
                if self.best is None or values[i] < self.best["value"]:
                    self.best = {"params": dict(self._out[i]), "value": values[i]}
        self._out = None
        if self._tuner is None:
            finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
            init = self._probes[min(finite)[1]] if finite else None
            self._tuner = self._build_tuner(init)
            return
        self._tuner.tell_batch(values)

    def _key(self, params) -> tuple:
        try:
            return tuple(float(params[n]) for n in self.names)
        except (KeyError, TypeError, ValueError):
            return ("not a proposal",)
