"""``Tuner``: the Python face of the tuner kernels. One kernel call per ask, tell or step; no allocation per step."""

from __future__ import annotations

import math
import attrs
import numpy as np

from arqon.config import Config, load_config
from arqon.kernels import api, matrix, new_state, rng_seed
from arqon.kernels._jit import entry_point
from arqon.kernels._status import WAITING as _WAITING
from arqon.kernels.state import (
    BEST, CENTER, INTEGER_PERTURBATION, IS_INT, LOG_INDEX, LOW, MAX, MIN, MIN_PERTURBATION, SPAN, THETA, X,
)
from arqon.status import Status

_ASK = entry_point(api.ask)
_TELL = entry_point(api.tell)
_STEP_AT = entry_point(api.step_at)


class BudgetExhausted(RuntimeError):
    """``ask`` was called after the evaluation budget was spent."""


@attrs.frozen
class Best:
    """A measured value and the params it was measured at (user units, declaration order)."""

    params: dict
    value: float


def build_state(config: Config) -> np.ndarray:
    """Allocate and fill a tuner state for ``config``: bounds rows, initial theta, gains and the seeded RNG."""
    d = len(config.params)
    state = new_state(d)
    mat = matrix(state)
    n_log = 0
    for i, p in enumerate(config.params):
        log = p.scale == "log"
        lo, hi = (math.log(p.min), math.log(p.max)) if log else (p.min, p.max)
        mat[LOW, i], mat[SPAN, i] = lo, hi - lo
        mat[IS_INT, i] = float(p.integer)
        if log:
            mat[LOG_INDEX, n_log] = i
            n_log += 1
        mat[MIN, i], mat[MAX, i] = (math.ceil(p.min), math.floor(p.max)) if p.integer else (p.min, p.max)
        if p.integer and not log:  # the kernel sizes a log-scale integer's floor where theta is, each pair
            mat[MIN_PERTURBATION, i] = INTEGER_PERTURBATION / (hi - lo)
        if p.init is None:
            mat[THETA, i] = 0.5
        else:
            mat[THETA, i] = ((math.log(p.init) if log else p.init) - lo) / (hi - lo)

    s = config.spsa
    h = state[0]
    h["n_log"] = n_log
    h["n_int"] = sum(p.integer for p in config.params)
    h["budget"] = config.budget or 0
    h["sense"] = 1.0 if config.direction == "minimize" else -1.0
    h["constant_gains"] = int(s.gains == "constant")
    h["n_average"] = s.average
    h["a"] = s.a or 0.0
    h["n_calibrate"] = 0 if s.a else s.calibration
    h["c"] = s.c
    if s.stability is not None:
        h["stability"] = s.stability
    else:
        h["stability"] = 0.1 * config.budget / (2 * s.average) if config.budget else 10.0
    h["alpha"], h["gamma"] = s.alpha, s.gamma
    h["initial_step"], h["max_step"] = s.initial_step, s.max_step
    h["seed"] = config.seed
    rng_seed(h["rng"], np.uint64(config.seed))
    return state


class Tuner:
    """Ask/tell tuner over a config's parameters.

    ``ask()`` returns the proposal as a read-only-by-convention view of ``state.x`` (user units, declaration order);
    ``tell(value)`` accepts its measured value; ``step(value)`` does both in one kernel call. ``state`` (one array) can
    be passed to ``arqon.kernels.ask/tell/step`` inside the user's own ``@njit`` code.
    """

    __slots__ = ("config", "_state", "names", "_mat", "_x", "_address")

    def __init__(self, config):
        self.config = load_config(config)
        self._state = build_state(self.config)
        self.names = self.config.names
        self._mat = matrix(self._state)
        self._x = self._mat[X]
        self._address = self._state.ctypes.data  # step() passes this rather than the array: cheaper; self holds it

    @property
    def state(self) -> np.ndarray:
        """The state (one array), to pass to ``arqon.kernels`` inside ``@njit`` code; it is this tuner's own memory."""
        return self._state

    def ask(self) -> np.ndarray:
        """The next proposal (the same one until it is told). Raises ``BudgetExhausted`` once the budget is spent."""
        if _ASK(self._state) & Status.BUDGET_EXHAUSTED:
            raise BudgetExhausted(f"budget of {self.config.budget} evaluations is spent; see `best`")
        return self._x

    def tell(self, value) -> Status:
        """Accept the measured value of the outstanding proposal. NaN/inf is rejected (``Status.NONFINITE``) and
        changes nothing; telling without an outstanding proposal returns ``Status.NOT_ASKED``."""
        try:
            return Status(_TELL(self._state, value + 0.0))  # + 0.0: Numba would parse a str
        except TypeError:
            raise TypeError(_not_a_number(value)) from None

    def step(self, value) -> np.ndarray:
        """Tell ``value`` and return the next proposal, in one kernel call. A rejected value returns the same proposal
        again; once the budget is spent it returns the best params. ``last_status`` says which."""
        try:
            _STEP_AT(self._address, value + 0.0)  # + 0.0: Numba would parse a str
        except TypeError:
            raise TypeError(_not_a_number(value)) from None
        return self._x

    def step_from(self, telemetry, metric, stat: str = "mean", min_samples: int = 1) -> np.ndarray | None:
        """Take the objective from a window of ``telemetry``: once ``metric``'s window holds ``min_samples`` samples,
        tell its ``stat`` (``"mean"``, ``"p99"``, ...; see ``arqon.telemetry.parse_stat``), propose the next params and
        open a new generation, so that samples from now on (measured under the new proposal) form the next window.
        Returns the new proposal, or None while the window is still filling. When the metric's drift detector fired
        since the last step, exploration re-opens first (``Status.REOPENED`` in ``last_status``)."""
        from arqon.telemetry import TUNE_FROM_WINDOW, window_args  # telemetry kernels compile only when used

        status = TUNE_FROM_WINDOW(self._state, telemetry.state, telemetry.ring.header,
                                  *window_args(telemetry, metric, stat, min_samples), telemetry.next_step)
        return None if status & _WAITING else self._x

    @property
    def last_status(self) -> Status:
        """Status flags of the last ``step``."""
        return Status(int(self._state[0]["status"]))

    @property
    def done(self) -> bool:
        """True once the budget is spent (never without a budget)."""
        h = self._state[0]
        return bool(h["budget"] > 0 and h["n_told"] >= h["budget"])

    @property
    def n_evaluations(self) -> int:
        """Values told and accepted so far."""
        return int(self._state[0]["n_told"])

    @property
    def best(self) -> Best | None:
        """The best measured value so far and the params it was measured at; None before the first value."""
        h = self._state[0]
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


def _not_a_number(value) -> str:
    return f"value must be a real number, got {type(value).__name__}"
