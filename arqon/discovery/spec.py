"""A discovery spec: what to search, how to evaluate, which gates a candidate must pass, where it is promoted.

Decoded from TOML (or JSON/YAML, or a mapping) like every arqon config: one ``ConfigError`` naming the field path and
the reason. Paths in a spec file (the catalog, keys, the evaluation module's folder) are relative to the spec's folder.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from arqon.config import FLOAT_MAX, ConfigError, Name, _Struct, check_unique_names, decode
from arqon.policy import Policy, load_policy

Target = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*\Z", max_length=200)]
Choice = Annotated[str, Meta(min_length=1, max_length=64)] | int | float | bool
Scalar = str | int | float | bool
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s+(mean|median|min|max|p\d{1,2}(?:\.\d+)?)\s*(<=|>=)\s*"
                         r"([-+0-9.eE]+)\s*$")


class Knob(_Struct):
    """One knob of a variant: a number in [min, max] (``integer``, ``scale`` as a tuner parameter's), or one of
    ``choices``."""
    name: Name
    min: float | None = None
    max: float | None = None
    integer: bool = False
    scale: Literal["linear", "log"] = "linear"
    choices: Annotated[list[Choice], Meta(min_length=2, max_length=10_000)] | None = None

    def __post_init__(self):
        if self.choices is not None:
            if self.min is not None or self.max is not None or self.integer or self.scale != "linear":
                raise ValueError(f"knob {self.name!r}: give `choices` or a range (`min`, `max`, `integer`, "
                                 "`scale`), not both")
            if len({msgspec.json.encode(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"knob {self.name!r}: `choices` repeat a value")
            return
        if self.min is None or self.max is None:
            raise ValueError(f"knob {self.name!r}: give `min` and `max`, or `choices`")
        if not (math.isfinite(self.min) and math.isfinite(self.max) and self.min < self.max):
            raise ValueError(f"knob {self.name!r}: needs finite `min` < `max`, got [{self.min}, {self.max}]")
        if not math.isfinite(self.max - self.min):
            raise ValueError(f"knob {self.name!r}: the range `max` - `min` must be finite")
        if self.scale == "log" and self.min <= 0:
            raise ValueError(f"knob {self.name!r}: log scale needs `min` > 0, got {self.min}")
        if self.integer and math.ceil(self.min) > math.floor(self.max):
            raise ValueError(f"knob {self.name!r}: no integer in [{self.min}, {self.max}]")

    def admits(self, value) -> str | None:
        """Why ``value`` is not a value of this knob, or None."""
        if self.choices is not None:
            return None if any(type(value) is type(c) and value == c for c in self.choices) else \
                f"{value!r} is not one of {self.choices}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{value!r} is not a number"
        if not self.min <= value <= self.max:
            return f"{value} is outside [{self.min}, {self.max}]"
        if self.integer and value != math.floor(value):
            return f"{value} is not a whole number"
        return None


class Search(_Struct):
    """The search: arqon's CMA-ES or antithetic ES population kernels over the knobs (a choice is an integer index
    for them), or a genetic algorithm (tournament selection, uniform crossover, per-knob mutation, elitism) for
    spaces with choices. ``auto``: ``ga`` when any knob is a choice, else ``cmaes``."""
    strategy: Literal["auto", "cmaes", "es", "ga"] = "auto"
    sigma: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.3  # CMA-ES / ES step, and GA mutation, in the unit cube
    mutation: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.25  # GA: chance each knob of a child mutates
    elite: Annotated[int, Meta(ge=0, le=10_000)] = 1  # GA: best members carried over unchanged
    tournament: Annotated[int, Meta(ge=1, le=64)] = 2  # GA: members drawn per parent choice


class Canary(_Struct):
    """Gate 5: ``steps`` observations through the safety executor, the baseline live first, the candidate swapped
    in after ``warmup``; each observation is one sample of the live variant's metrics (scenario ``staging``). The
    candidate passes when the executor promotes it to known-good and never rolls it back. ``policy``: the executor
    policy's ``metrics``, ``slos``, ``canary`` stages (its ``params`` and ``variant`` parts are discovery's)."""
    policy: dict[str, Any]
    steps: Annotated[int, Meta(ge=2, le=1_000_000)] = 60
    warmup: Annotated[int, Meta(ge=1, le=1_000_000)] = 10

    def __post_init__(self):
        if self.warmup >= self.steps:
            raise ValueError(f"canary: `warmup` ({self.warmup}) must be less than `steps` ({self.steps})")
        if "params" in self.policy or "variant" in self.policy:
            raise ValueError("canary.policy: leave out `params` and `variant`; the gate swaps the variant itself")
        try:
            self.executor_policy
        except ConfigError as e:
            raise ValueError(f"canary.policy: {str(e).removeprefix('config: ')}") from None

    @property
    def executor_policy(self) -> Policy:
        """The executor policy of the simulation: ``policy`` with no knobs and the variant swapped by the gate."""
        return load_policy({**self.policy, "params": {}, "variant": {"known_good": "baseline", "cooldown": 0}})


class Approval(_Struct):
    """Gate 6: ``keys`` (private key files) sign the catalog; it must verify with ``threshold`` of ``trust`` (public
    key files). Fewer keys than the threshold leave the catalog to be signed by the others (verdict ``pending``)."""
    trust: Annotated[list[Annotated[str, Meta(min_length=1)]], Meta(min_length=1, max_length=64)]
    keys: Annotated[list[Annotated[str, Meta(min_length=1)]], Meta(max_length=64)] = []
    threshold: Annotated[int, Meta(ge=1, le=64)] = 1

    def __post_init__(self):
        if self.threshold > len(self.trust):
            raise ValueError(f"approval: `threshold` {self.threshold} is more than the {len(self.trust)} trusted keys")


class Gates(_Struct):
    """The promotion gates, in order: correctness (``check``), constraints, robustness (``scenarios``), regression
    against the baseline, staging canary (``canary``), signed approval (``approval``). Each gate evaluates the
    candidate and the baseline with the same ``seeds`` seeds (paired samples)."""
    top: Annotated[int, Meta(ge=1, le=1000)] = 3  # variants to promote at most: the search's best distinct candidates
    # go through the gates in rank order, `top` at a time less those passed, until `top` pass or `most` were gated
    most: Annotated[int, Meta(ge=1, le=10_000)] = 12
    seeds: Annotated[int, Meta(ge=5, le=10_000)] = 10  # paired evaluations per scenario (5 is the least a test can use)
    alpha: Annotated[float, Meta(gt=0.0, lt=0.5)] = 0.05  # the tests' significance level
    tolerance: Annotated[float, Meta(ge=0.0, le=FLOAT_MAX)] = 0.0  # worse than the baseline by this fraction is allowed
    check: Target | None = None  # module:function(variant, seed) -> the names of the invariants it breaks
    constraints: Annotated[list[str], Meta(max_length=256)] = []  # "metric stat <= limit", e.g. "us p99 <= 900"
    scenarios: Annotated[list[dict[Name, Scalar]], Meta(max_length=256)] = []  # each with a `name`
    canary: Canary | None = None
    approval: Approval | None = None

    def __post_init__(self):
        for i, text in enumerate(self.constraints):
            if not _CONSTRAINT.match(text):
                raise ValueError(f"gates.constraints[{i}]: cannot read {text!r}: write `metric stat <= limit` with "
                                 "stat mean, median, min, max or pNN (e.g. `us p99 <= 900`)")
        names = []
        for i, scenario in enumerate(self.scenarios):
            name = scenario.get("name")
            if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.\-]*\Z", name):
                raise ValueError(f"gates.scenarios[{i}]: needs a `name` (letters, digits, '_', '.', '-')")
            if name in ("nominal", "staging") or name in names:
                raise ValueError(f"gates.scenarios[{i}]: name {name!r} is " +
                                 ("taken by another scenario" if name in names else "reserved"))
            names.append(name)

    @property
    def parsed_constraints(self) -> list[tuple[str, str, str, float]]:
        """(metric, stat, op, limit) of each constraint."""
        out = []
        for text in self.constraints:
            metric, stat, op, limit = _CONSTRAINT.match(text).groups()
            out.append((metric, stat, op, float(limit)))
        return out


class Promote(_Struct):
    """Where passing variants go: ``catalog`` (created if missing), with these catalog fields; ``describe``
    (``module:function(variant)``, optional) returns more of them for each variant (``envelope``, ``latency``,
    ``quality``: see ``arqon.catalog.VariantMeta``). The envelope's ``knobs`` are the variant's numeric knobs."""
    catalog: Annotated[str, Meta(min_length=1)]
    kind: Literal["quantization", "kernel", "early-exit", "adapter", "routing", "cache-policy", "custom"] = "custom"
    scopes: Annotated[list[Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_\-]*\Z", max_length=32)]],
                      Meta(min_length=1, max_length=16)] = msgspec.field(default_factory=lambda: ["staging"])
    prefix: Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*\Z", max_length=40)] | None = None
    describe: Target | None = None


class Spec(_Struct):
    """A discovery run. ``evaluate(variant, seed, scenario)`` gets a variant (a dict by knob name), a seed and a
    scenario (a dict with at least ``name``: ``nominal``, ``staging`` or a robustness scenario's) and returns
    ``{metric: number or list of samples}``; the search ranks candidates by the mean of ``objective``'s samples."""
    name: Name
    evaluate: Target
    objective: Name
    knobs: Annotated[list[Knob], Meta(min_length=1, max_length=1000)]
    baseline: dict[Name, Choice]
    direction: Literal["minimize", "maximize"] = "minimize"
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    generations: Annotated[int, Meta(ge=1, le=100_000)] = 10
    population: Annotated[int, Meta(ge=4, le=100_000)] = 8
    # folders (relative to the spec) that `evaluate`, `check` and `describe` are imported from first
    path: Annotated[list[str], Meta(max_length=16)] = msgspec.field(default_factory=lambda: ["."])
    search: Search = msgspec.field(default_factory=Search)
    gates: Gates = msgspec.field(default_factory=Gates)
    promote: Promote | None = None

    def __post_init__(self):
        check_unique_names(self.knobs, "knob", "knobs")
        knobs = {k.name: k for k in self.knobs}
        missing = [k for k in knobs if k not in self.baseline]
        unknown = [k for k in self.baseline if k not in knobs]
        if missing or unknown:
            raise ValueError(f"baseline: must give every knob ({', '.join(knobs)})" +
                             (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else ""))
        for name, value in self.baseline.items():
            problem = knobs[name].admits(value)
            if problem:
                raise ValueError(f"baseline.{name}: {problem}")
        if self.gates.approval is not None and self.promote is None:
            raise ValueError("gates.approval: signs a catalog; add a `promote` section naming it")
        if self.gates.most < self.gates.top:
            raise ValueError(f"gates.most ({self.gates.most}) must be at least gates.top ({self.gates.top})")
        if self.search.elite >= self.population:
            raise ValueError(f"search.elite ({self.search.elite}) must be less than population ({self.population})")


def load_spec(source, format: str | None = None) -> tuple[Spec, Path]:
    """Decode a spec (a path, a mapping or a string, as ``arqon.config.decode``) and the folder its relative paths
    start from (the spec file's, else the working directory)."""
    spec = decode(source, Spec, format)
    folder = Path(source).resolve().parent if isinstance(source, (str, Path)) and not str(source).lstrip().startswith(
        "{") and format is None else Path.cwd()
    return spec, folder


def spec_digest(spec: Spec) -> str:
    """The sha256 of the spec's canonical JSON: what a journal is bound to."""
    return hashlib.sha256(msgspec.json.encode(spec, order="sorted")).hexdigest()


__all__ = ["Approval", "Canary", "ConfigError", "Gates", "Knob", "Promote", "Search", "Spec", "load_spec",
           "spec_digest"]
