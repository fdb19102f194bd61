"""Safety policy for the Tier-1 executor: msgspec structs decoded like the tuner config (``load_policy``).

Every check runs while decoding, so a bad policy fails with one ``ConfigError`` naming the field path and the reason.
Steps are the caller's integer clock (``now``): cooldowns, windows and deadlines are counted in steps.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from arqon.config import FLOAT_MAX, ConfigError, Name, Positive, _Struct, decode
from arqon.kernels.guard import RATE_MAX  # most applies a rate limit may allow per window (the kernel keeps them)

Steps = Annotated[int, Meta(ge=0, le=2**40)]


class ParamPolicy(_Struct):
    """What the executor may do to one parameter. Parameters the policy does not name are never changed."""

    min: float | None = None  # absolute bounds; default: the tuner's bounds
    max: float | None = None
    max_delta: Positive | None = None  # largest change per apply, in the parameter's units
    max_delta_fraction: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None  # ... or as a fraction of [min, max]
    cooldown: Steps = 0  # fewest steps between two changes of this parameter

    def problem(self) -> str | None:
        for field in ("min", "max", "max_delta"):
            value = getattr(self, field)
            if value is not None and not math.isfinite(value):
                return f"`{field}` must be finite, got {value}"
        if self.min is not None and self.max is not None and not self.min < self.max:
            return f"`min` ({self.min}) must be less than `max` ({self.max})"
        if self.min is not None and self.max is not None and not math.isfinite(self.max - self.min):
            return f"the range `max` - `min` must be finite, got [{self.min}, {self.max}]"
        if self.max_delta is not None and self.max_delta_fraction is not None:
            return "give `max_delta` or `max_delta_fraction`, not both"
        return None


class RateLimit(_Struct):
    applies: Annotated[int, Meta(ge=1, le=RATE_MAX)]
    window: Annotated[int, Meta(ge=1, le=2**40)]  # steps


class Stage(_Struct):
    """One canary stage: after `min_samples` observations (the confidence gate) the judged metric's mean may be worse
    than the known-good baseline by at most `max_regression` (a fraction) or the candidate is rolled back."""

    min_samples: Annotated[int, Meta(ge=1, le=2**40)]
    max_regression: Annotated[float, Meta(ge=0.0, le=FLOAT_MAX)] = 0.0


class Canary(_Struct):
    metric: Name  # the metric a stage judges
    stages: Annotated[list[Stage], Meta(min_length=1, max_length=64)]
    direction: Literal["minimize", "maximize"] = "minimize"


_SLO = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+|inf|nan)\s*(\*\s*baseline)?\s*$")
SLO_OPS = {"<=": 0, ">=": 1, "<": 2, ">": 3}


class Slo(msgspec.Struct, frozen=True):
    metric: str
    op: str
    limit: float
    relative: bool  # limit is a multiple of the metric's known-good baseline

    @classmethod
    def parse(cls, text: str) -> Slo:
        m = _SLO.match(text)
        if not m:
            raise ValueError(f"cannot read SLO {text!r}: write `metric <= 50` or `metric >= 0.95 * baseline`")
        limit = float(m.group(3))
        if not math.isfinite(limit):
            raise ValueError(f"SLO {text!r}: the limit must be finite")
        return cls(m.group(1), m.group(2), limit, m.group(4) is not None)


class VariantPolicy(_Struct):
    """How the executor may swap the live variant, one of a catalog's approved variants in scope: the snapshot's
    ``variant`` column holds its index, changed atomically with the knobs (one generation counter for both)."""

    cooldown: Steps = 0  # fewest steps between two swaps
    known_good: Name | None = None  # the variant live at start and after a rollback (default: the catalog's first)
    # the most variants one executor can know over its life, retired ones included (catalog changes add variants
    # at the next free index; an index never changes its variant); default: max(64, twice the approved at start)
    capacity: Annotated[int, Meta(ge=1, le=1 << 20)] | None = None


class Policy(_Struct):
    """Guardrails for applying a tuner's proposals (and a selector's variants) to a live system."""

    params: dict[Name, ParamPolicy]  # the allowlist
    mode: Literal["clip", "reject"] = "clip"  # what to do with a proposal that breaks bounds, max delta or cooldown
    cooldown: Steps = 0  # fewest steps between two applies (dwell)
    rate_limit: RateLimit | None = None
    metrics: Annotated[list[Name], Meta(max_length=256)] = []  # live metrics, in the order `observe` receives them
    slos: Annotated[list[str], Meta(max_length=256)] = []  # hard constraints: a breach rolls back at once
    risk_budget: Annotated[int, Meta(ge=1, le=100_000)] | None = None  # most parameters differing from known-good
    canary: Canary | None = None  # None: a candidate is promoted at its first clean observation
    progress_deadline: Annotated[int, Meta(ge=1, le=2**40)] = 1000  # steps any pending state may last
    safe_mode_after: Annotated[int, Meta(ge=0, le=2**40)] = 3  # consecutive rollbacks that enter safe mode; 0 = never
    baseline_smoothing: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.1  # EMA weight of known-good metrics
    baseline: dict[Name, float] | None = None  # the known-good values (default: the tuner's initial values)
    variant: VariantPolicy | None = None  # allows swapping the catalog variant (None: the executor has no variant)

    def __post_init__(self):
        for name, param in self.params.items():
            problem = param.problem()
            if problem:
                raise ValueError(f"params.{name}: {problem}")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError("duplicate metric names in `metrics`")
        for i, text in enumerate(self.slos):
            try:
                slo = Slo.parse(text)
            except ValueError as e:
                raise ValueError(f"slos[{i}]: {e}") from None
            if slo.metric not in self.metrics:
                raise ValueError(f"slos[{i}]: unknown metric {slo.metric!r}; declare it in `metrics`")
        if "variant" in self.params or (self.baseline and "variant" in self.baseline):
            raise ValueError("`variant` is not a knob: allow variant swaps with a `variant` section")
        if self.canary is not None and self.canary.metric not in self.metrics:
            raise ValueError(f"canary.metric {self.canary.metric!r} is not declared in `metrics`")

    @property
    def parsed_slos(self) -> list[Slo]:
        return [Slo.parse(text) for text in self.slos]


def ordered_metrics(values, names: list[str], whose: str):
    """``values`` (a mapping by name, a missing name being NaN, or a sequence) in the order of ``names``; a ValueError
    names unknown metrics or a wrong count (``whose`` says where ``names`` come from, for the message)."""
    if isinstance(values, dict):
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; {whose} {names}")
        return [values.get(n, math.nan) for n in names]
    if len(values) != len(names):
        raise ValueError(f"expected {len(names)} metrics {names}, got {len(values)}")
    return values


def load_policy(source, format: str | None = None) -> Policy:
    """Decode a policy from a ``Policy``, a mapping, a path or a string, exactly as ``load_config`` does configs."""
    return decode(source, Policy, format)


__all__ = ["Canary", "ConfigError", "ParamPolicy", "Policy", "RateLimit", "Slo", "Stage", "load_policy",
           "ordered_metrics"]
