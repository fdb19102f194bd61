"""``Tuner``: the Python face of the tuner kernels. One kernel call per ask, tell or step; no allocation per step."""

from __future__ import annotations

import math
import attrs
import numpy as np

from arqon._fastcall import fast_step
from arqon.config import Config, ConfigError, load_config, real
from arqon.kernels import api, rng_seed
from arqon.kernels._jit import entry_point
from arqon.kernels._status import WAITING as _WAITING
from arqon.kernels.cmaes import cma_start
from arqon.kernels.state import (
    BEST, CENTER, CMAES, ES, HEADER, HEADER_WORDS, INTEGER_PERTURBATION, IS_INT, LOG_INDEX, LOW, MAX, MIN,
    MIN_PERTURBATION, PBT, PENDING_BATCH, PENDING_ONE, PERIODIC_INDEX, SPAN, SPSA, THETA, X, header, matrix, new_state,
    vector,
)
from arqon.status import Status

_ASK = entry_point(api.ask)
_TELL = entry_point(api.tell)
_STEP_AT = entry_point(api.step_at)
_BATCH = entry_point(api.batch)
_ASK_BATCH = entry_point(api.ask_batch)
_TELL_BATCH = entry_point(api.tell_batch)


class BudgetExhausted(RuntimeError):
    """``ask`` was called after the evaluation budget was spent."""


@attrs.frozen
class Best:
    """A measured value and the params it was measured at (user units, declaration order)."""

    params: dict
    value: float


def choose_strategy(config: Config) -> tuple[str, str]:
    """The strategy a config runs and why: its own choice, or for ``auto`` one picked from dimension, budget and noise."""
    if config.strategy != "auto":
        return config.strategy, "chosen in the config"
    d = len(config.params)
    if d > 40:
        return "spsa", f"d = {d} > 40: CMA-ES's covariance grows as d^2, SPSA needs 2 evaluations per update whatever d"
    if config.budget is None:
        return "spsa", "no budget: an online loop, where SPSA's two evaluations per update track best"
    if config.budget < 4 * (d + 1):
        return "spsa", f"budget {config.budget} < 4 (d + 1): too few evaluations for a population"
    why = f"d = {d} <= 40 with a budget of {config.budget}: CMA-ES learns the problem's scaling and correlations"
    if d <= 10 and config.noise != "high":
        why += ", and with d <= 10 a quadratic model of recent evaluations proposes one point each generation"
    return "cmaes", why


def _uses_model(config: Config) -> bool:
    model = config.cmaes.model
    return model == "on" or (model == "auto" and len(config.params) <= 10 and config.noise != "high")


def _sizes(config: Config, strategy: str) -> dict:
    """The block sizes of ``strategy``'s state for ``config`` (``arqon.kernels.state.state_words``)."""
    d = len(config.params)
    if strategy == "spsa":
        return {}
    if strategy == "es":
        n_pop = 2 * (config.es.pairs or max(2, (4 + int(3 * math.log(d))) // 2))
    elif strategy == "pbt":
        n_pop = config.pbt.pool
    else:
        n_pop = config.cmaes.population or 4 + int(3 * math.log(d))
    if strategy != "cmaes":
        return {"n_pop_max": n_pop}
    n_feat = (d + 1) * (d + 2) // 2 if _uses_model(config) else 0  # the model's blocks only when it is on
    return {"n_pop_max": n_pop * 2 ** min(config.cmaes.restarts, 4), "n_arch": 2 * n_feat, "n_feat": n_feat,
            "d_model": d if n_feat else 0}


def _initial_population(config: Config, strategy: str) -> int:
    if strategy == "es":
        return 2 * (config.es.pairs or max(2, (4 + int(3 * math.log(len(config.params)))) // 2))
    if strategy == "pbt":
        return config.pbt.pool
    return config.cmaes.population or 4 + int(3 * math.log(len(config.params)))


def build_state(config: Config) -> np.ndarray:
    """Allocate and fill a tuner state for ``config``: bounds rows, initial theta, the strategy's settings and
    blocks, and the seeded RNG. Raises ConfigError when the state would exceed ``MAX_STATE_BYTES``."""
    d = len(config.params)
    strategy, _ = choose_strategy(config)
    try:
        state = new_state(_STRATEGY_CODES[strategy], d, **_sizes(config, strategy))
    except ValueError as e:
        raise ConfigError(f"params: {e}; choose a strategy with a smaller state (spsa holds 14 d words)") from None
    mat = matrix(state)
    h = header(state)
    if strategy != "spsa":
        h["n_pop"] = _initial_population(config, strategy)
    n_log = n_periodic = 0
    for i, p in enumerate(config.params):
        log = p.scale == "log"
        lo, hi = (math.log(p.min), math.log(p.max)) if log else (p.min, p.max)
        mat[LOW, i], mat[SPAN, i] = lo, hi - lo
        mat[IS_INT, i] = float(p.integer)
        if log:
            mat[LOG_INDEX, n_log] = i
            n_log += 1
        if p.scale == "periodic":
            mat[PERIODIC_INDEX, n_periodic] = i
            n_periodic += 1
        mat[MIN, i], mat[MAX, i] = (math.ceil(p.min), math.floor(p.max)) if p.integer else (p.min, p.max)
        if p.integer and not log:  # the kernel sizes a log-scale integer's floor where theta is, each pair
            mat[MIN_PERTURBATION, i] = INTEGER_PERTURBATION / (hi - lo)
        if p.init is None:
            mat[THETA, i] = 0.5
        else:
            mat[THETA, i] = ((math.log(p.init) if log else p.init) - lo) / (hi - lo)

    s = config.spsa
    h["n_log"], h["n_periodic"] = n_log, n_periodic
    h["n_int"] = sum(p.integer for p in config.params)
    h["budget"] = config.budget or 0
    h["sense"] = 1.0 if config.direction == "minimize" else -1.0
    h["constant_gains"] = int(s.gains == "constant")
    h["n_average"] = s.average
    h["a"] = s.a or 0.0
    h["n_calibrate"] = 0 if s.a else s.calibration
    h["c"] = h["c_max"] = s.c
    h["adapt_c"] = int(s.perturbation == "adaptive")
    if s.stability is not None:
        h["stability"] = s.stability
    else:
        h["stability"] = 0.1 * config.budget / (2 * s.average) if config.budget else 10.0
    h["alpha"], h["gamma"] = s.alpha, s.gamma
    h["initial_step"], h["max_step"] = s.initial_step, s.max_step
    h["blocking"] = int(s.blocking if s.blocking is not None else h["n_int"] == 0)
    h["gain_scale"] = 1.0
    h["seed"] = config.seed
    rng_seed(h["rng"], np.uint64(config.seed))
    if strategy == "es":
        e = config.es
        h["mu"] = h["n_pop"] // 2
        h["sigma"] = h["sigma0"] = e.sigma
        h["sigma_min"] = e.min_sigma
        h["adapt_sigma"] = int(e.step == "adaptive")
        h["lr_sigma"] = e.lr_sigma or (3 + math.log(d)) / (5 * math.sqrt(d))
    elif strategy == "pbt":
        h["mu"] = max(1, round(config.pbt.replace * config.pbt.pool))
        h["explore"], h["score_decay"] = config.pbt.explore, config.pbt.score_decay
    elif strategy == "cmaes":
        h["sigma0"], h["sigma_min"] = config.cmaes.sigma, config.cmaes.min_sigma
        h["max_restarts"] = config.cmaes.restarts
        h["keep_best"] = math.inf
        h["model_member"] = -1
        cma_start(state[:HEADER_WORDS].view(HEADER), mat, vector(state), int(h["n_pop"]))
    return state


_STRATEGY_CODES = {"spsa": SPSA, "es": ES, "pbt": PBT, "cmaes": CMAES}


def _checked_step(address: int, words: int, x: np.ndarray):
    """``step(value)`` on the state of ``words`` words at ``address`` for any real ``value``, returning ``x``: the
    Python path behind ``Tuner.step`` (which takes exact floats itself). It holds no reference to the tuner, so the two
    form no cycle."""

    def step(value):
        _STEP_AT(address, words, real(value, "value"))
        return x

    step.__qualname__ = "Tuner.step"  # what a wrong call's TypeError names
    return step


class Tuner:
    """Ask/tell tuner over a config's parameters.

    ``ask()`` returns the proposal as a read-only-by-convention view of ``state.x`` (user units, declaration order);
    ``tell(value)`` accepts its measured value; ``step(value)`` does both in one kernel call. ``state`` (one array) can
    be passed to ``arqon.kernels.ask/tell/step`` inside the user's own ``@njit`` code.
    """

    __slots__ = {
        "config": "The config, validated (``arqon.Config``).",
        "names": "The parameter names in declaration order: the order of every params vector.",
        "step": """step(value) -> np.ndarray

        Tell ``value`` and return the next proposal, in one kernel call. A rejected value returns the same proposal
        again; once the budget is spent it returns the best params. ``last_status`` says which. A builtin function
        bound to this tuner's state (see ``arqon._fastcall``): a call with a ``float`` costs no Python frame.""",
        "_state": None, "_h": None, "_mat": None, "_x": None,
    }

    def __init__(self, config):
        self.config = load_config(config)
        self._state = build_state(self.config)
        self.names = self.config.names
        self._h = header(self._state)
        self._mat = matrix(self._state)
        self._x = self._mat[X]
        self.step = fast_step(self._state, self._x,
                              _checked_step(self._state.ctypes.data, self._state.shape[0], self._x))

    @property
    def state(self) -> np.ndarray:
        """The state (one array), to pass to ``arqon.kernels`` inside ``@njit`` code; it is this tuner's own memory."""
        return self._state

    def ask(self) -> np.ndarray:
        """The next proposal (the same one until it is told). Raises ``BudgetExhausted`` once the budget is spent."""
        if self._h["pending"] == PENDING_BATCH:
            raise RuntimeError("a batch is out: tell_batch(values) before asking for single proposals")
        if _ASK(self._state) & Status.BUDGET_EXHAUSTED:
            raise BudgetExhausted(f"budget of {self.config.budget} evaluations is spent; see `best`")
        return self._x

    def tell(self, value) -> Status:
        """Accept the measured value of the outstanding proposal. NaN/inf is rejected (``Status.NONFINITE``) and
        changes nothing; telling without an outstanding proposal returns ``Status.NOT_ASKED``."""
        return Status(_TELL(self._state, real(value, "value")))

    def ask_batch(self) -> np.ndarray:
        """The proposals to evaluate next, one per row (a view of the state; user units, declaration order): every
        member of the current generation not yet out, no more than the budget allows (SPSA: its one proposal). The
        same batch until it is told. Raises ``BudgetExhausted`` once the budget is spent."""
        if _ASK_BATCH(self._state) & Status.BUDGET_EXHAUSTED:
            raise BudgetExhausted(f"budget of {self.config.budget} evaluations is spent; see `best`")
        return _BATCH(self._state)

    def tell_batch(self, values) -> Status:
        """Accept the values of the batch out, one per row in its order. NaN/inf or None marks a member whose result
        never came back: the strategy updates from the others (``Status.NONFINITE`` says some were missing).
        Telling without a batch out returns ``Status.NOT_ASKED`` and changes nothing."""
        h = self._h
        if h["pending"] != (PENDING_ONE if h["strategy"] == SPSA else PENDING_BATCH):
            return Status.NOT_ASKED
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            array = np.ascontiguousarray(values, dtype=np.float64)
        elif isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
            raise TypeError(f"values: a sequence of real numbers (None for a missing result), got "
                            f"{type(values).__name__}")
        else:
            array = np.array([np.nan if v is None else real(v, f"values[{i}]") for i, v in enumerate(values)])
        if array.ndim != 1 or array.shape[0] != h["batch_n"]:
            raise ValueError(f"values: expected {int(h['batch_n'])} values (one per row of the batch), "
                             f"got shape {array.shape}")
        return Status(_TELL_BATCH(self._state, array))

    def describe(self) -> str:
        """Which strategy runs and why (``auto`` says what it picked), with its main settings."""
        name, why = choose_strategy(self.config)
        h = self._h
        d = len(self.config.params)
        settings = {
            "spsa": lambda: f"{self.config.spsa.gains} gains, " + (
                f"perturbation adapting to the measured noise (now c = {float(h['c']):.3g}, noise sd "
                f"{math.sqrt(float(h['noise_var'])):.3g} after {int(h['n_pairs'])} pairs)" if h["adapt_c"]
                else f"c = {self.config.spsa.c}") + (
                f"; blocking on (updates taken back: {int(h['n_blocked'])}, gain at "
                f"{float(h['gain_scale']):.3g} of its schedule)" if h["blocking"] else "; blocking off"),
            "es": lambda: f"{int(h['n_pop']) // 2} mirrored pairs, sigma {float(h['sigma0'])} "
                          f"({self.config.es.step})",
            "pbt": lambda: f"pool of {int(h['n_pop'])}, {int(h['mu'])} replaced per round, explore "
                           f"{float(h['explore'])}",
            "cmaes": lambda: f"population {int(h['n_pop'])}, sigma0 {float(h['sigma0'])}, up to "
                             f"{int(h['max_restarts'])} IPOP restarts, quadratic model "
                             f"{'on' if h['n_arch'] else 'off'}",
        }[name]()
        return f"{name} over {d} parameters: {why}; {settings}"

    def step_from(self, telemetry, metric, stat: str = "mean", min_samples: int = 1) -> np.ndarray | None:
        """Take the objective from a window of ``telemetry``: once ``metric``'s window holds ``min_samples`` samples,
        tell its ``stat`` (``"mean"``, ``"p99"``, ...; see ``arqon.telemetry.parse_stat``), propose the next params and
        open a new generation, so that samples from now on (measured under the new proposal) form the next window.
        Returns the new proposal, or None while the window is still filling. When the metric's drift detector fired
        since the last step, exploration re-opens first (``Status.REOPENED`` in ``last_status``)."""
        from arqon.telemetry import TUNE_FROM_WINDOW, window_args  # telemetry kernels compile only when used

        status = TUNE_FROM_WINDOW(self._state, telemetry.state, telemetry.ring.state,
                                  *window_args(telemetry, metric, stat, min_samples), telemetry.next_step)
        return None if status & _WAITING else self._x

    @property
    def last_status(self) -> Status:
        """Status flags of the last ``step``."""
        return Status(int(self._h["status"]))

    @property
    def done(self) -> bool:
        """True once the budget is spent (never without a budget)."""
        h = self._h
        return bool(h["budget"] > 0 and h["n_told"] >= h["budget"])

    @property
    def n_evaluations(self) -> int:
        """Values told and accepted so far."""
        return int(self._h["n_told"])

    @property
    def best(self) -> Best | None:
        """The best measured value so far and the params it was measured at; None before the first value."""
        h = self._h
        if not h["has_best"]:
            return None
        return Best(self._as_dict(self._mat[BEST]), float(h["best_value"]))

    def recommend(self) -> dict:
        """The current estimate of the optimum (SPSA's theta) in user units. Unlike ``best`` it is not a measured point:
        under noise or drift it is the better guess."""
        api.recommend(self._state)
        return self._as_dict(self._mat[CENTER])

    def _as_dict(self, row) -> dict:
        return {
            p.name: int(v) if p.integer else float(v) for p, v in zip(self.config.params, row.tolist(), strict=True)
        }
