"""``Selector``: choose among discrete arms (kernel variants, quantization profiles, cache policies) with a bandit
policy, SLA-first: only arms the caller allows and that meet every constraint are candidates.

The config is decoded with msgspec like a tuner's (a dict, a JSON/TOML/YAML string or a file); every check runs while
decoding and fails with one ``ConfigError`` naming the field. The state is one kernel buffer (``kernels/bandit.py``):
everything here is also callable inside ``@njit`` through ``arqon.kernels.bandit``.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Annotated, Literal

import msgspec
import numpy as np
from msgspec import Meta

from arqon._fastselect import fast_select_step
from arqon.config import ConfigError, Fraction, Name, Positive, _Struct, decode, real
from arqon.kernels import bandit as kb
from arqon.kernels import bandit_audit as kba
from arqon.kernels._jit import entry_point
from arqon.status import Status

_SELECT = entry_point(kb.select)
_UPDATE = entry_point(kb.update)
_STEP = entry_point(kb.step)
_TOURNAMENT = entry_point(kb.tournament)
_CANDIDATES = entry_point(kb.bandit_candidates)
_AUDITED_SELECT = entry_point(kba.audited_select)
_AUDITED_UPDATE = entry_point(kba.audited_update)
_AUDITED_STEP = entry_point(kba.audited_step)

Finite = Annotated[float, Meta(ge=-1e300, le=1e300)]


class Beta(_Struct):
    """Beta(prior_a, prior_b) prior of a Bernoulli arm (1, 1: uniform)."""
    prior_a: Annotated[float, Meta(gt=0.0, le=1e6)] = 1.0
    prior_b: Annotated[float, Meta(gt=0.0, le=1e6)] = 1.0


class DiscountedBeta(Beta):
    """Raj and Kalyani (2017): every arm's counts are multiplied by ``gamma`` each step."""
    gamma: Fraction = 0.99


class WindowBeta(Beta):
    """Thompson sampling on the last ``window`` rewards."""
    window: Annotated[int, Meta(ge=1, le=kb.MAX_WINDOW)] = 800


class Gaussian(_Struct):
    """Normal prior N(prior_mean, prior_var) of an arm's mean reward, noise of known variance ``noise_var``
    (0, 1, 1: Agrawal and Goyal's N(mean, 1 / (n + 1)))."""
    prior_mean: Finite = 0.0
    prior_var: Annotated[float, Meta(gt=0.0, le=1e300)] = 1.0
    noise_var: Annotated[float, Meta(gt=0.0, le=1e300)] = 1.0


class Ucb1(_Struct):
    """mean + explore * sqrt(2 ln t / n) (Auer et al. 2002: explore = 1)."""
    explore: Annotated[float, Meta(ge=0.0, le=1e6)] = 1.0


class KlUcb(_Struct):
    """The KL-UCB level is ln t + c ln ln t (Garivier and Cappe 2011: c = 0 in practice, 3 in the proof)."""
    c: Annotated[float, Meta(ge=0.0, le=100.0)] = 0.0


class DiscountedUcb(_Struct):
    """Garivier and Moulines (2011): discount ``gamma``, width 2 bound sqrt(xi ln n_gamma / N_gamma)."""
    gamma: Fraction = 0.99
    xi: Annotated[float, Meta(gt=0.0, le=100.0)] = 0.6
    bound: Positive = 1.0


class WindowUcb(_Struct):
    """Garivier and Moulines (2011): the last ``window`` rewards, width bound sqrt(xi ln min(t, window) / N)."""
    window: Annotated[int, Meta(ge=1, le=kb.MAX_WINDOW)] = 800
    xi: Annotated[float, Meta(gt=0.0, le=100.0)] = 0.6
    bound: Positive = 1.0


class GlrKlUcb(_Struct):
    """Besson et al. (2022): KL-UCB whose arm restarts when a Bernoulli GLR test on its last ``history`` rewards fires
    (tested every ``check_every`` rewards of the arm, at every ``stride``-th split), with forced exploration."""
    c: Annotated[float, Meta(ge=0.0, le=100.0)] = 0.0
    delta: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.01
    forced: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.01
    history: Annotated[int, Meta(ge=2, le=kb.MAX_HISTORY)] = 500
    check_every: Annotated[int, Meta(ge=1, le=10_000)] = 10
    stride: Annotated[int, Meta(ge=1, le=10_000)] = 5


class Linear(_Struct):
    """A ridge regression per arm, A = ridge I + sum x x^T, updated by Sherman-Morrison; the score is theta . x plus
    ``explore`` s sqrt(x^T A^-1 x) (LinUCB, Li et al. 2010) or that times a normal draw (linear Thompson sampling),
    where s is the arm's measured noise sd: sqrt((2 + RSS) / (2 + n)), RSS the ridge fit's residual sum of squares
    over its n rewards (a prior variance of 1 worth 2 rewards, so an unplayed arm has Li et al.'s width)."""
    explore: Annotated[float, Meta(ge=0.0, le=1e6)] = 1.0
    ridge: Annotated[float, Meta(gt=0.0, le=1e6)] = 1.0


class Constraint(_Struct):
    """An arm is a candidate only while its ``metric`` stays at most ``max`` (or at least ``min``) with the
    selector's ``confidence``: mean + z standard errors <= max."""
    metric: Name
    max: Finite | None = None
    min: Finite | None = None

    def __post_init__(self):
        if (self.max is None) == (self.min is None):
            raise ValueError(f"constraint on {self.metric!r}: give exactly one of `max` and `min`")


Policy = Literal["thompson", "gaussian-thompson", "ucb1", "klucb", "discounted-thompson", "discounted-ucb",
                 "sliding-window-ucb", "sliding-window-thompson", "glr-klucb", "linucb", "lints"]
_SETTINGS = {"thompson": "thompson", "gaussian-thompson": "gaussian_thompson", "ucb1": "ucb1", "klucb": "klucb",
             "discounted-thompson": "discounted_thompson", "discounted-ucb": "discounted_ucb",
             "sliding-window-ucb": "sliding_window_ucb", "sliding-window-thompson": "sliding_window_thompson",
             "glr-klucb": "glr_klucb", "linucb": "linucb", "lints": "lints"}


class SelectorConfig(_Struct):
    """A selection problem: the arms (a count, or their names in index order), the policy and its settings (the
    section named like the policy, underscores for dashes), the seed, the metrics reported with each reward and the
    constraints on them, and the fallback arm returned when no arm is eligible."""
    arms: Annotated[int, Meta(ge=1, le=kb.MAX_ARMS)] | Annotated[list[Name], Meta(min_length=1, max_length=kb.MAX_ARMS)]
    policy: Policy = "thompson"
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    context: Annotated[int, Meta(ge=0, le=kb.MAX_CONTEXT)] = 0  # the context dimension of linucb / lints
    metrics: Annotated[list[Name], Meta(max_length=kb.MAX_METRICS)] = []
    constraints: Annotated[list[Constraint], Meta(max_length=kb.MAX_METRICS)] = []
    confidence: Annotated[float, Meta(ge=0.5, lt=1.0)] = 0.95
    min_samples: Annotated[int, Meta(ge=2, le=2**31)] = 5  # samples of a metric before its constraint is judged
    fallback: Annotated[int, Meta(ge=0)] | Name = 0
    thompson: Beta = msgspec.field(default_factory=Beta)
    gaussian_thompson: Gaussian = msgspec.field(default_factory=Gaussian)
    ucb1: Ucb1 = msgspec.field(default_factory=Ucb1)
    klucb: KlUcb = msgspec.field(default_factory=KlUcb)
    discounted_thompson: DiscountedBeta = msgspec.field(default_factory=DiscountedBeta)
    discounted_ucb: DiscountedUcb = msgspec.field(default_factory=DiscountedUcb)
    sliding_window_ucb: WindowUcb = msgspec.field(default_factory=WindowUcb)
    sliding_window_thompson: WindowBeta = msgspec.field(default_factory=WindowBeta)
    glr_klucb: GlrKlUcb = msgspec.field(default_factory=GlrKlUcb)
    linucb: Linear = msgspec.field(default_factory=Linear)
    lints: Linear = msgspec.field(default_factory=Linear)

    def __post_init__(self):
        names = self.names
        if len(set(names)) != len(names):
            dup = next(n for i, n in enumerate(names) if n in names[:i])
            raise ValueError(f"duplicate arm name {dup!r} in `arms`")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError("duplicate metric name in `metrics`")
        own = _SETTINGS[self.policy]
        for policy, field in _SETTINGS.items():
            if field != own and getattr(self, field) != type(getattr(self, field))():
                raise ValueError(f"`{field}` settings are given but the policy is {self.policy!r}: set "
                                 f"`[{own}]` instead, or policy = {policy!r}")
        linear = self.policy in ("linucb", "lints")
        if linear and self.context < 1:
            raise ValueError(f"policy {self.policy!r} needs `context`: the length of the context vector (1 to "
                             f"{kb.MAX_CONTEXT})")
        if not linear and self.context:
            raise ValueError(f"`context` is {self.context} but policy {self.policy!r} takes no context: use "
                             f"linucb or lints")
        for i, c in enumerate(self.constraints):
            if c.metric not in self.metrics:
                raise ValueError(f"constraints[{i}]: metric {c.metric!r} is not in `metrics` {self.metrics}")
        fallback = self.fallback
        if isinstance(fallback, str) and fallback not in names:
            raise ValueError(f"`fallback` {fallback!r} is not an arm: {list(names)}")
        if isinstance(fallback, int) and fallback >= len(names):
            raise ValueError(f"`fallback` {fallback} is not an arm index: 0 to {len(names) - 1}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"arm{i}" for i in range(self.arms)) if isinstance(self.arms, int) else tuple(self.arms)

    @property
    def fallback_index(self) -> int:
        return self.names.index(self.fallback) if isinstance(self.fallback, str) else self.fallback


def load_selector_config(source, format: str | None = None) -> SelectorConfig:
    """Decode a selector config (a mapping, a JSON/TOML/YAML string or a file path, as ``arqon.load_config``)."""
    return decode(source, SelectorConfig, format)


def build_state(config: SelectorConfig) -> np.ndarray:
    """The kernel state of ``config``: its policy code, sizes and settings mapped onto ``new_bandit_state``."""
    policy = kb.POLICY_NAMES.index(config.policy)
    settings = getattr(config, _SETTINGS[config.policy])
    kw = {f: getattr(settings, f) for f in settings.__struct_fields__}
    if "gamma" in kw:
        kw["discount"] = kw.pop("gamma")
    if config.policy in ("klucb", "glr-klucb"):
        kw["explore"] = kw.pop("c")
    constraints = [(config.metrics.index(c.metric), kb.AT_MOST if c.max is not None else kb.AT_LEAST,
                    c.max if c.max is not None else c.min) for c in config.constraints]
    return kb.new_bandit_state(policy, len(config.names), config.seed, d=config.context,
                               n_metrics=len(config.metrics), constraints=constraints,
                               min_samples=config.min_samples, fallback=config.fallback_index,
                               z=NormalDist().inv_cdf(config.confidence), **kw)


class Selector:
    """Choose one of the configured arms, learn from its reward, choose again. Rewards are maximized (Bernoulli
    policies take rewards in [0, 1]); ``select`` / ``step`` return the arm's index (``names[i]`` is its name).

    ``state`` is the whole kernel buffer: copy, save or pickle it to snapshot the selector, and pass it to
    ``arqon.kernels.bandit`` kernels inside ``@njit``."""

    def __init__(self, config):
        self.config = load_selector_config(config)
        self.names = self.config.names
        self.state = build_state(self.config)
        self._h = kb.bandit_header(self.state)
        k = len(self.names)
        self._all = np.ones(k, dtype=np.bool_)
        self._no_metrics = np.zeros(0)
        self._no_context = np.zeros(0)
        self._index = {name: i for i, name in enumerate(self.names)}
        self._log = None
        self._attach_log(None)

    def with_arms(self, names) -> Selector:
        """A selector over ``names``: this selector's arms first, in their order, then new ones (e.g. a catalog's new
        variants, ``executor.variants`` after ``use_catalog``), with every statistic, the arm out and the random
        stream carried over; the new arms start from the prior. ValueError unless ``names`` extends ``names``. An audit
        log recording this selector records the growth and the new selector from then on."""
        names = list(names)
        if tuple(names[: len(self.names)]) != self.names or len(set(names)) != len(names):
            raise ValueError(f"with_arms: the arms must start with {list(self.names)}, in that order, and be distinct")
        grown = Selector({**msgspec.to_builtins(self.config), "arms": names})
        kb.extend_bandit_state(self.state, grown.state)
        if self._log is not None:  # the log records the new selector from here on (and this one no longer)
            self._log.record_arms(self, grown)
        return grown

    def _attach_log(self, log) -> None:
        """Record every decision in ``log`` (an ``arqon.AuditLog``), or stop recording (None)."""
        self._log = log
        fast = log is None and not self.config.metrics and not self.config.context
        self.step = fast_select_step(self.state, self._all, self._step) if fast else self._step

    # -- argument checks -------------------------------------------------------------------------------------------
    def arm_index(self, arm: int | str) -> int:
        """The index of ``arm`` (an index or a name); ValueError naming it when there is no such arm."""
        if isinstance(arm, str):
            if arm not in self._index:
                raise ValueError(f"arm: no arm named {arm!r}; the arms are {list(self.names)}")
            return self._index[arm]
        if isinstance(arm, (bool, np.bool_)) or not isinstance(arm, (int, np.integer)):
            raise TypeError(f"arm: an index or a name, got {type(arm).__name__}")
        if not 0 <= arm < len(self.names):
            raise ValueError(f"arm: {arm} is not an arm index: 0 to {len(self.names) - 1}")
        return int(arm)

    def _mask(self, eligible) -> np.ndarray:
        if eligible is None:
            return self._all
        k = len(self.names)
        if isinstance(eligible, np.ndarray) and eligible.dtype == np.bool_:
            mask = eligible
        else:
            if isinstance(eligible, (str, bytes, dict)) or not hasattr(eligible, "__iter__"):
                raise TypeError(f"eligible: a mask of {k} booleans or a collection of arms (indices or names), got "
                                f"{type(eligible).__name__}")
            items = list(eligible)
            if items and all(isinstance(e, (bool, np.bool_)) for e in items):
                mask = np.array(items, dtype=np.bool_)  # its length is checked below
            else:  # a collection of arms (indices or names)
                mask = np.zeros(k, dtype=np.bool_)
                for e in items:
                    mask[self.arm_index(e)] = True
        if mask.ndim != 1 or mask.shape[0] != k:
            raise ValueError(f"eligible: a mask of {k} booleans or a collection of arms, got shape {mask.shape}")
        return np.ascontiguousarray(mask)

    def _context(self, context) -> np.ndarray:
        d = self.config.context
        if context is None:
            if d:
                raise ValueError(f"context: policy {self.config.policy!r} needs a context vector of length {d}")
            return self._no_context
        if not d:
            raise ValueError(f"context: policy {self.config.policy!r} takes no context")
        x = np.ascontiguousarray(context, dtype=np.float64)
        if x.shape != (d,):
            raise ValueError(f"context: expected a vector of length {d}, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"context: every entry must be finite, got {x.tolist()}")
        return x

    def _metrics(self, metrics) -> np.ndarray:
        names = self.config.metrics
        if metrics is None:
            if names:
                raise ValueError(f"metrics: this selector needs {names} with each reward")
            return self._no_metrics
        if isinstance(metrics, dict):
            unknown = set(metrics) - set(names)
            missing = [n for n in names if n not in metrics]
            if unknown or missing:
                raise ValueError(f"metrics: expected {names}, missing {missing}, unknown {sorted(unknown)}")
            values = [metrics[n] for n in names]
        else:
            values = list(metrics)
        x = np.array(values, dtype=np.float64)
        if x.shape != (len(names),):
            raise ValueError(f"metrics: expected {len(names)} values ({names}), got {x.shape[0]}")
        bad = [n for n, v in zip(names, x) if not math.isfinite(v)]
        if bad:
            raise ValueError(f"metrics: {bad} must be finite, got {x.tolist()}")
        return x

    def _reward(self, reward) -> float:
        r = real(reward, "reward")
        if not math.isfinite(r):
            raise ValueError(f"reward: must be finite, got {r}")
        if kb.POLICY_NAMES.index(self.config.policy) in kb.BERNOULLI and not 0.0 <= r <= 1.0:
            raise ValueError(f"reward: policy {self.config.policy!r} takes rewards in [0, 1], got {r}")
        return r

    # -- decisions -------------------------------------------------------------------------------------------------
    def select(self, eligible=None, context=None) -> int:
        """Choose an arm among ``eligible`` (None: all; a mask of K booleans, or a collection of arm indices or
        names) at ``context`` (linucb / lints); returns its index. With no eligible arm, the fallback arm is returned
        and ``last_status`` has NONE_ELIGIBLE. Choosing again before ``update`` replaces the arm out."""
        mask, x = self._mask(eligible), self._context(context)
        log = self._log
        arm = _SELECT(self.state, mask, x) if log is None else _AUDITED_SELECT(self.state, log._ring, mask, x,
                                                                                log._next(None))
        if arm < 0:
            raise RuntimeError(f"select refused: {Status(-arm)!r}")
        return arm

    def update(self, arm: int | str, reward: float, metrics=None) -> Status:
        """Learn ``reward`` of ``arm``, the arm chosen last (and its ``metrics``: a dict by name or a sequence in the
        config's order, when the config declares metrics). Returns the flags (DRIFT: a GLR test restarted the arm)."""
        index = self.arm_index(arm)
        r, x = self._reward(reward), self._metrics(metrics)
        if int(self._h["pending"]) != 1:
            raise ValueError("update: no arm is out: call select() (or step()) first")
        if index != int(self._h["last"]):
            raise ValueError(f"update: arm {self.names[index]!r} is not the arm out ({self.names[int(self._h['last'])]!r})")
        log = self._log
        status = _UPDATE(self.state, index, r, x) if log is None else _AUDITED_UPDATE(self.state, log._ring, index, r, x,
                                                                                       log._next(None))
        if status & ~Status.DRIFT:
            raise RuntimeError(f"update refused: {Status(status)!r}")
        return Status(status)

    def _step(self, reward, eligible=None, context=None, metrics=None) -> int:
        """Learn ``reward`` (and ``metrics``) of the arm out, then choose the next among ``eligible`` at
        ``context``, in ONE kernel call; returns the next arm's index. Needs an arm out: call ``select()`` first."""
        if int(self._h["pending"]) != 1:
            raise ValueError("step: no arm is out: call select() first")
        r, x = self._reward(reward), self._metrics(metrics)
        mask, ctx, log = self._mask(eligible), self._context(context), self._log
        arm = _STEP(self.state, r, x, mask, ctx) if log is None else _AUDITED_STEP(self.state, log._ring, r, x, mask, ctx,
                                                                                    log._next(None))
        if arm < 0:
            raise RuntimeError(f"step refused: {Status(-arm)!r}")
        return arm

    def tournament(self, scores, eligible=None, size: int = 2) -> int:
        """Tournament choice among ``len(scores)`` items: ``size`` (2 to 4) distinct eligible items drawn with the
        selector's seeded RNG; returns the index of the best-scoring one."""
        s = np.ascontiguousarray(scores, dtype=np.float64)
        if s.ndim != 1 or s.shape[0] < 1:
            raise ValueError(f"scores: a non-empty vector, got shape {s.shape}")
        if not isinstance(size, (int, np.integer)) or not 2 <= size <= 4:
            raise ValueError(f"size: 2 to 4 candidates, got {size!r}")
        mask = np.ones(s.shape[0], np.bool_) if eligible is None else np.ascontiguousarray(eligible, dtype=np.bool_)
        if mask.shape != s.shape:
            raise ValueError(f"eligible: a mask of {s.shape[0]} booleans, got shape {mask.shape}")
        if not np.all(np.isfinite(s[mask])):
            raise ValueError("scores: every eligible score must be finite")
        if not mask.any():
            raise ValueError("eligible: no item is eligible")
        return _TOURNAMENT(self.state, s, mask, int(size))

    def candidates(self, eligible=None) -> np.ndarray:
        """The arms a choice now could pick (a boolean mask): those ``eligible`` allows that meet every constraint
        with the configured confidence, as ``select`` filters them."""
        out = np.zeros(len(self.names), dtype=np.bool_)
        n = _CANDIDATES(self.state, self._mask(eligible), out)
        if n < 0:
            raise RuntimeError(f"candidates refused: {Status(-n)!r}")
        return out

    def eligible_from(self, telemetry, slos: dict, min_samples: int = 1) -> np.ndarray:
        """The mask SLA-first selection starts from, fed by the telemetry data plane: ``slos`` maps an arm (name or
        index) to ``(metric, stat, limit)``, e.g. ``{"int8": ("lat_int8", "p99", 5.0)}``; an arm is masked while its
        metric's current window holds at least ``min_samples`` samples and ``stat`` (``"p99"``, ``"mean"``, ...) is
        above ``limit``. Arms without an SLO, or with too few samples, stay eligible."""
        mask = np.ones(len(self.names), dtype=np.bool_)
        for arm, slo in slos.items():
            index = self.arm_index(arm)
            try:
                metric, stat, limit = slo
            except (TypeError, ValueError):
                raise ValueError(f"slos[{arm!r}]: a (metric, stat, limit) triple, got {slo!r}") from None
            if not isinstance(limit, (int, float)) or not math.isfinite(limit):
                raise ValueError(f"slos[{arm!r}]: the limit must be a finite number, got {limit!r}")
            if telemetry.summary(metric).n >= min_samples and telemetry.stat(metric, stat) > limit:
                mask[index] = False
        return mask

    # -- reading ---------------------------------------------------------------------------------------------------
    @property
    def last_status(self) -> Status:
        """The flags of the last call (NONE_ELIGIBLE, DRIFT)."""
        return Status(int(self._h["status"]))

    @property
    def pending(self) -> int | None:
        """The arm out awaiting its reward, or None."""
        return int(self._h["last"]) if int(self._h["pending"]) == 1 else None

    def stats(self) -> dict[str, dict[str, float]]:
        """Per arm, by name: plays and mean reward as the policy keeps them (discounted, windowed or since the
        arm's restart), and its score at the last choice."""
        m = kb.bandit_matrix(self.state)
        return {name: {"plays": float(m[kb.N, i]), "mean": float(m[kb.S, i] / m[kb.N, i]) if m[kb.N, i] > 0
                       else math.nan, "score": float(m[kb.SCORE, i])} for i, name in enumerate(self.names)}

    def describe(self) -> str:
        """The policy, its settings, and where each arm stands."""
        cfg = self.config
        settings = getattr(cfg, _SETTINGS[cfg.policy])
        text = ", ".join(f"{f} {getattr(settings, f)}" for f in settings.__struct_fields__)
        lines = [f"{cfg.policy} over {len(self.names)} arms ({text}); {int(self._h['t'])} rewards, seed {cfg.seed}"]
        if cfg.constraints:
            lines.append("constraints: " + "; ".join(
                f"{c.metric} {'<=' if c.max is not None else '>='} {c.max if c.max is not None else c.min}"
                for c in cfg.constraints) + f" at {cfg.confidence:.0%} confidence, fallback {self.names[cfg.fallback_index]!r}")
        if kb.POLICY_NAMES.index(cfg.policy) == kb.GLR_KLUCB:
            lines.append(f"restarts: {int(self._h['restarts'])}")
        for name, s in self.stats().items():
            lines.append(f"  {name}: {s['plays']:.6g} plays, mean {s['mean']:.4g}")
        return "\n".join(lines)
