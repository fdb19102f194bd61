"""The searches a discovery runs, one generation at a time: ``ask()`` a generation's candidates, ``tell()`` their
objectives (NaN for a candidate whose evaluation failed). Deterministic from the spec's seed and the values told.

CMA-ES and ES are arqon's own population kernels (an ``arqon.Tuner`` in batch mode) over the knobs, a choice being an
integer index for them; the genetic algorithm works on the knobs directly. Both see the unit cube the tuner sees.
"""

from __future__ import annotations

import math

import numpy as np

from arqon.discovery.spec import Knob, Spec


def strategy_of(spec: Spec) -> str:
    """The search that runs: ``auto`` is ``ga`` when any knob is a choice, else ``cmaes``."""
    if spec.search.strategy != "auto":
        return spec.search.strategy
    return "ga" if any(k.choices is not None for k in spec.knobs) else "cmaes"


def _param(knob: Knob, value) -> dict:
    if knob.choices is not None:
        return {"name": knob.name, "min": 0, "max": len(knob.choices) - 1, "integer": True,
                "init": knob.choices.index(value)}
    return {"name": knob.name, "min": knob.min, "max": knob.max, "integer": knob.integer, "scale": knob.scale,
            "init": value}


def decode_row(knobs: list[Knob], row) -> dict:
    """A tuner's row (user units; a choice's index) as a variant: integers as int, choices by value."""
    out = {}
    for knob, x in zip(knobs, row.tolist(), strict=True):
        if knob.choices is not None:
            out[knob.name] = knob.choices[min(max(int(round(x)), 0), len(knob.choices) - 1)]
        elif knob.integer:
            out[knob.name] = int(round(x))
        else:
            out[knob.name] = float(x)
    return out


class TunerSearch:
    """CMA-ES or antithetic ES through ``arqon.Tuner.ask_batch``/``tell_batch``, started at the baseline."""

    def __init__(self, spec: Spec, strategy: str):
        from arqon.tuner import Tuner

        config = {"params": [_param(k, spec.baseline[k.name]) for k in spec.knobs], "direction": spec.direction,
                  "seed": spec.seed, "strategy": strategy,
                  "cmaes": {"population": spec.population, "sigma": spec.search.sigma},
                  "es": {"pairs": max(1, spec.population // 2), "sigma": min(spec.search.sigma, 0.5)}}
        self.knobs = spec.knobs
        self.tuner = Tuner(config)

    def ask(self) -> list[dict]:
        return [decode_row(self.knobs, row) for row in self.tuner.ask_batch()]

    def tell(self, objectives: list[float]) -> None:
        self.tuner.tell_batch(np.array(objectives, dtype=np.float64))


class GeneticSearch:
    """A generational GA: the baseline and random members first; then the ``elite`` best carried over, the rest
    children of two tournament winners (uniform crossover), each knob mutated with chance ``mutation`` (a number:
    a Gaussian step of ``sigma`` in the unit cube; a choice: another choice). Randomness: a NumPy PCG64 seeded from
    the spec's seed."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.knobs = spec.knobs
        self.rng = np.random.Generator(np.random.PCG64(spec.seed))
        self.members = [self._encode(spec.baseline)] + [self._random() for _ in range(spec.population - 1)]
        self.sense = 1.0 if spec.direction == "minimize" else -1.0

    def _encode(self, variant: dict) -> list:
        """A variant as genes: a choice's index, a number's position in the unit cube."""
        genes = []
        for k in self.knobs:
            v = variant[k.name]
            if k.choices is not None:
                genes.append(k.choices.index(v))
            elif k.scale == "log":
                genes.append((math.log(v) - math.log(k.min)) / (math.log(k.max) - math.log(k.min)))
            else:
                genes.append((v - k.min) / (k.max - k.min))
        return genes

    def _decode(self, genes: list) -> dict:
        out = {}
        for k, g in zip(self.knobs, genes, strict=True):
            if k.choices is not None:
                out[k.name] = k.choices[g]
                continue
            x = math.exp(math.log(k.min) + g * (math.log(k.max) - math.log(k.min))) if k.scale == "log" \
                else k.min + g * (k.max - k.min)
            x = min(max(x, k.min), k.max)
            out[k.name] = min(max(int(round(x)), math.ceil(k.min)), math.floor(k.max)) if k.integer else float(x)
        return out

    def _random(self) -> list:
        return [int(self.rng.integers(len(k.choices))) if k.choices is not None else float(self.rng.random())
                for k in self.knobs]

    def ask(self) -> list[dict]:
        return [self._decode(g) for g in self.members]

    def tell(self, objectives: list[float]) -> None:
        s = self.spec.search
        scores = [self.sense * v if math.isfinite(v) else math.inf for v in objectives]
        order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
        children = [list(self.members[i]) for i in order[:s.elite]]

        def winner() -> list:
            drawn = self.rng.integers(len(scores), size=s.tournament)
            return self.members[min(drawn.tolist(), key=lambda i: (scores[i], i))]

        while len(children) < len(self.members):
            a, b = winner(), winner()
            take = self.rng.random(len(self.knobs)) < 0.5
            child = [x if t else y for x, y, t in zip(a, b, take.tolist(), strict=True)]
            for j, k in enumerate(self.knobs):
                if self.rng.random() >= s.mutation:
                    continue
                if k.choices is not None:
                    child[j] = (child[j] + 1 + int(self.rng.integers(len(k.choices) - 1))) % len(k.choices)
                else:
                    child[j] = min(max(child[j] + s.sigma * float(self.rng.standard_normal()), 0.0), 1.0)
            children.append(child)
        self.members = children


def make_search(spec: Spec):
    """The spec's search, ready for its first ``ask``."""
    strategy = strategy_of(spec)
    return GeneticSearch(spec) if strategy == "ga" else TunerSearch(spec, strategy)
