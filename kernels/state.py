"""Tuner state layout: one header record, one (ROWS, d) float64 matrix, and a view of the proposal row.

The header holds counters, gains and the RNG state; the matrix holds every per-parameter vector, one row each, so a
state is two arrays whatever the dimension. Kernels index rows by the constants below.
"""

from typing import NamedTuple

import numba
import numpy as np

HEADER = np.dtype(
    [
        ("d", np.int64),  # number of parameters
        ("n_log", np.int64),  # number of log-scale parameters (their indices are in mat[LOG_INDEX, :n_log])
        ("budget", np.int64),  # evaluations allowed; 0 = unlimited
        ("n_told", np.int64),  # evaluations accepted so far
        ("pending", np.int64),  # 1 while a proposal is out and not yet told
        ("phase", np.int64),  # 0: next proposal is theta + c*delta, 1: theta - c*delta
        ("k", np.int64),  # completed parameter updates
        ("constant_gains", np.int64),  # 0: Spall's decaying gains, 1: constant gains (tracking)
        ("n_average", np.int64),  # gradient estimates averaged per update
        ("i_average", np.int64),  # estimates accumulated toward the current update
        ("n_calibrate", np.int64),  # updates whose gradient sizes set the gain `a` (0 once `a` is fixed)
        ("i_calibrate", np.int64),  # calibration updates seen
        ("has_best", np.int64),  # 1 once a value has been accepted
        ("status", np.int64),  # status flags of the last step
        ("sense", np.float64),  # +1 minimize, -1 maximize
        ("a", np.float64),  # step gain; 0 until calibrated when automatic
        ("c", np.float64),  # perturbation size, unit-cube coordinates
        ("stability", np.float64),  # Spall's A
        ("alpha", np.float64),
        ("gamma", np.float64),
        ("initial_step", np.float64),  # auto gain: size of the first moves, unit-cube coordinates
        ("max_step", np.float64),  # largest move of one coordinate per update, unit-cube coordinates
        ("calibrate_sum", np.float64),  # sum of mean |gradient| over calibration updates
        ("c_k", np.float64),  # perturbation size of the current pair
        ("y_plus", np.float64),  # signed value measured at theta + c*delta
        ("best_value", np.float64),  # best value accepted, in the user's sign
        ("seed", np.uint64),
        ("rng", np.uint64, (4,)),  # xoshiro256** state
    ],
    align=True,
)

# Rows of the state matrix.
X = 0  # proposal in user units (what ask returns)
THETA = 1  # current estimate, unit cube
DELTA = 2  # Rademacher perturbation of the current pair
POINT = 3  # proposal, unit cube
GRAD = 4  # accumulated gradient estimate, unit cube
LOW = 5  # lower bound in the transformed space (log for log scale)
SPAN = 6  # width in the transformed space
LOG_INDEX = 7  # indices of the log-scale parameters, first n_log entries
IS_INT = 8  # 1.0 for integer parameters
MIN = 9  # bounds in user units, for integer rounding
MAX = 10
BEST = 11  # params of the best accepted value, user units
CENTER = 12  # THETA in user units (the recommendation), written by `recommend`
ROWS = 13


class TunerState(NamedTuple):
    """Everything a tuner knows, as arrays: pass it to ``arqon.kernels.ask/tell/step`` from Python or ``@njit`` code."""

    hdr: np.ndarray  # HEADER[1]
    mat: np.ndarray  # float64[ROWS, d]
    x: np.ndarray  # view of mat[X]: the current proposal in user units


def empty_state(d):
    """A zeroed state for ``d`` parameters (the shell fills it in)."""
    hdr = np.zeros(1, HEADER)
    mat = np.zeros((ROWS, d))
    return TunerState(hdr, mat, mat[X])


HEADER_TYPE = numba.from_dtype(HEADER)[::1]
MAT_TYPE = numba.float64[:, ::1]
STATE_TYPE = numba.typeof(empty_state(1))
