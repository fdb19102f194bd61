"""Tuner configuration: msgspec structs decoded from a dict, a JSON/TOML/YAML string or a file.

Every check runs while decoding, so a bad config fails with one ``ConfigError`` naming the field path and the reason.
Build configs with ``load_config`` (or the ``from_*`` helpers), never by calling the structs directly: constructors skip
the ``Meta`` constraints.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import numpy as np
from msgspec import Meta


class ConfigError(ValueError):
    """A configuration was rejected; the message names the field path (``$.params[0].min``) and the reason."""


class _Struct(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


# The largest float: an upper bound that refuses only inf, for settings with no natural one
FLOAT_MAX = 1.7976931348623157e308
Positive = Annotated[float, Meta(gt=0.0, le=FLOAT_MAX)]
# \Z, not $: `$` also matches before a final newline, which would admit "x\n"
Name = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*\Z")]
Fraction = Annotated[float, Meta(gt=0.0, le=1.0)]


def check_unique_names(items, what: str, field: str) -> None:
    """Raise ValueError naming the first item of ``items`` whose ``name`` repeats an earlier one."""
    seen = set()
    for i, item in enumerate(items):
        if item.name in seen:
            raise ValueError(f"duplicate {what} name {item.name!r} at {field}[{i}]")
        seen.add(item.name)


class Param(_Struct):
    """One tunable parameter. ``init`` defaults to the centre of the range (the geometric centre on a log scale)."""

    name: Name
    min: float
    max: float
    scale: Literal["linear", "log", "periodic"] = "linear"  # periodic: linear, and max wraps around to min
    init: float | None = None
    integer: bool = False

    def __post_init__(self):
        for field in ("min", "max", "init"):
            value = getattr(self, field)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"`{field}` of {self.name!r} must be finite, got {value}")
        if not self.min < self.max:
            raise ValueError(f"`min` ({self.min}) must be less than `max` ({self.max}) for {self.name!r}")
        if not math.isfinite(self.max - self.min):
            raise ValueError(f"the range of {self.name!r}, `max` - `min`, must be finite, got [{self.min}, {self.max}]")
        if self.scale == "log" and self.min <= 0:
            raise ValueError(f"log scale needs `min` > 0, got {self.min} for {self.name!r}")
        if self.init is not None and not self.min <= self.init <= self.max:
            raise ValueError(f"`init` ({self.init}) is outside [{self.min}, {self.max}] for {self.name!r}")
        if self.scale == "periodic" and self.integer:
            raise ValueError(f"periodic parameter {self.name!r} cannot be an integer")
        if self.integer and self.init is not None and self.init != math.floor(self.init):
            raise ValueError(f"`init` of integer parameter {self.name!r} must be whole, got {self.init}")
        if self.integer and math.ceil(self.min) > math.floor(self.max):
            raise ValueError(f"integer parameter {self.name!r} has no integer in [{self.min}, {self.max}]")


class Spsa(_Struct):
    """SPSA options. Sizes are fractions of each parameter's range (the unit cube)."""

    gains: Literal["decaying", "constant"] = "decaying"  # decaying converges; constant tracks a moving optimum
    a: Positive | None = None  # step gain; None: set from the first gradient estimates
    c: Annotated[float, Meta(gt=0.0, le=0.5)] = 0.05  # perturbation size (an adaptive one's start and ceiling)
    perturbation: Literal["fixed", "adaptive"] = "fixed"  # fixed: c (decaying with gamma under decaying gains);
    # adaptive: sized each pair from the measured noise and curvature, never past c (for tracking, with constant gains)
    # Spall's A; None: 10% of the updates the budget allows
    stability: Annotated[float, Meta(ge=0.0, le=FLOAT_MAX)] | None = None
    alpha: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.602
    gamma: Annotated[float, Meta(gt=0.0, le=0.5)] = 0.101
    initial_step: Fraction = 0.05  # automatic `a`: length of the first moves
    max_step: Fraction = 0.2  # no coordinate moves further than this in one update
    calibration: Annotated[int, Meta(ge=1, le=1000)] = 5  # updates used to set an automatic `a`
    average: Annotated[int, Meta(ge=1, le=1000)] = 1  # gradient estimates averaged per update
    # take back an update after which the measured value is worse beyond the measured jitter; None: on unless a
    # parameter is an integer (a pair's rounded points do not measure the value at theta, and blocking stalls there)
    blocking: bool | None = None


class Es(_Struct):
    """Antithetic ES options. Sizes are fractions of each parameter's range (the unit cube)."""

    pairs: Annotated[int, Meta(ge=1, le=10_000)] | None = None  # mirrored pairs per generation; None: (4 + 3 ln d) / 2
    sigma: Annotated[float, Meta(gt=0.0, le=0.5)] = 0.1  # initial step size
    step: Literal["adaptive", "constant"] = "adaptive"  # constant keeps sigma: tracking a moving optimum
    lr_sigma: Annotated[float, Meta(gt=0.0, le=2.0)] | None = None  # None: (3 + ln d) / (5 sqrt d)
    min_sigma: Annotated[float, Meta(ge=0.0, le=0.5)] = 0.0  # sigma never falls below this


class Pbt(_Struct):
    """PBT-lite options. Sizes are fractions of each parameter's range (the unit cube)."""

    pool: Annotated[int, Meta(ge=2, le=10_000)] = 8  # members, each measured once per round
    replace: Annotated[float, Meta(gt=0.0, le=0.5)] = 0.25  # share of the pool (the worst) replaced each round
    explore: Fraction = 0.1  # largest move per coordinate of a copied member
    score_decay: Annotated[float, Meta(ge=0.0, lt=1.0)] = 0.5  # weight of the past in a member's score


class Cmaes(_Struct):
    """CMA-ES options. Sizes are fractions of each parameter's range (the unit cube)."""

    population: Annotated[int, Meta(ge=4, le=10_000)] | None = None  # None: 4 + 3 ln d
    sigma: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.3  # initial step size
    restarts: Annotated[int, Meta(ge=0, le=1000)] = 9  # IPOP restarts; the population doubles up to 16 times its start
    model: Literal["auto", "on", "off"] = "auto"  # quadratic model's point injected each generation; auto: d <= 10
    min_sigma: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.0  # sigma never falls below this (tracking)


class Config(_Struct):
    """A tuning problem: parameters in declaration order (the vector index), direction, seed and optional budget."""

    params: Annotated[list[Param], Meta(min_length=1, max_length=100_000)]
    direction: Literal["minimize", "maximize"] = "minimize"
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    budget: Annotated[int, Meta(ge=1, le=2**62)] | None = None  # evaluations; None: unlimited
    strategy: Literal["spsa", "es", "pbt", "cmaes", "auto"] = "spsa"  # auto: see `Tuner.describe()`
    noise: Literal["unknown", "low", "high"] = "unknown"  # what the objective's noise is like (used by `auto`)
    spsa: Spsa = msgspec.field(default_factory=Spsa)
    es: Es = msgspec.field(default_factory=Es)
    pbt: Pbt = msgspec.field(default_factory=Pbt)
    cmaes: Cmaes = msgspec.field(default_factory=Cmaes)

    def __post_init__(self):
        check_unique_names(self.params, "parameter", "params")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


def _invalid(origin: str, error: msgspec.ValidationError) -> ConfigError:
    msg = str(error).replace(f"Expected `float` <= {FLOAT_MAX!r}", "Expected a finite number")
    return ConfigError(f"{origin}: {msg}" if " - at `" in msg else f"{origin}: {msg} - at `$`")


def _decode_text(text: str | bytes, type_, fmt: str, origin: str):
    try:
        if fmt == "yaml":
            try:
                import yaml  # noqa: F401  (msgspec.yaml needs PyYAML)
            except ImportError:
                raise ConfigError(f"{origin}: YAML needs PyYAML: pip install 'arqon[yaml]'") from None
            return msgspec.yaml.decode(text, type=type_)
        return {"json": msgspec.json.decode, "toml": msgspec.toml.decode}[fmt](text, type=type_)
    except msgspec.ValidationError as e:
        raise _invalid(origin, e) from None
    except msgspec.DecodeError as e:
        raise ConfigError(f"{origin}: not valid {fmt.upper()}: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{origin}: not valid UTF-8 at byte {e.start}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: nested too deeply to read") from None


def decode(source, type_, format: str | None = None):
    """Decode a ``type_`` struct from an instance, a mapping, a path (format from its suffix), or a string in
    ``format``. A string that starts with ``{`` is read as JSON; any other string is a path unless ``format`` is given."""
    if isinstance(source, type_):
        return source
    if isinstance(source, Mapping):
        try:
            return msgspec.convert(dict(source), type_)
        except msgspec.ValidationError as e:
            raise _invalid("config", e) from None
    if isinstance(source, bytes):
        source = source.decode()
    if isinstance(source, str) and (format is not None or source.lstrip().startswith("{")):
        fmt = (format or "json").lower()
        if fmt not in ("json", "toml", "yaml"):
            raise ConfigError(f"unknown config format {format!r}: use json, toml or yaml")
        return _decode_text(source, type_, fmt, "config")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        fmt = {".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}.get(path.suffix.lower())
        if fmt is None:
            raise ConfigError(f"{path}: unknown config file type {path.suffix!r}: use .json, .toml, .yaml or .yml")
        try:
            text = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
        return _decode_text(text, type_, fmt, str(path))
    raise ConfigError(f"config must be a mapping, a JSON/TOML/YAML string or a file path, got {type(source).__name__}")


def real(value, name: str) -> float:
    """``value`` as a float when it is a real number (an int, a float, a NumPy integer or float); TypeError naming
    ``name`` for anything else: a str (even a numeric one), a bool, a dict, a complex, an int beyond float's range."""
    if isinstance(value, float):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise TypeError(f"{name}: an integer of {len(str(abs(int(value))))} digits is beyond the range of a float") \
            from None


def load_config(source, format: str | None = None) -> Config:
    """Decode a tuner config (see ``decode`` for the accepted sources)."""
    return decode(source, Config, format)
