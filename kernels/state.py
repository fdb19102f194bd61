"""Tuner state layout: ONE contiguous float64 buffer, a header record followed by a (ROWS, d) matrix.

``state`` is the header, viewed as a one-record structured array; its ``base`` is the whole buffer, so holding the state
keeps everything alive, copying the buffer snapshots it, and kernels reach the matrix at a fixed offset with no extra
argument. Kernels index rows of the matrix by the constants below.
"""

import numba
import numpy as np



def padded_record(fields):
    """A record dtype with ``fields`` at their packed offsets, its size rounded up to 64 bytes (a whole number of
    float64 words and cache lines), declared aligned so Numba treats it as such."""
    packed = np.dtype(fields)
    return np.dtype({"names": list(packed.names), "formats": [packed.fields[n][0] for n in packed.names],
                     "offsets": [packed.fields[n][1] for n in packed.names],
                     "itemsize": -(-packed.itemsize // 64) * 64}, align=True)


def allocate(header, rows, width):
    """A zeroed buffer of one ``header`` record then a (rows, width) float64 matrix; returns the header view."""
    words = header.itemsize // 8
    return np.zeros(words + rows * width)[:words].view(header)


def rows_of(state, rows):
    """The (rows, width) matrix behind a state made by ``allocate``, as a NumPy view."""
    buf = state.base
    if buf is None or buf.dtype != np.float64 or buf.ctypes.data != state.ctypes.data:
        raise ValueError("not a tuner state: build states with arqon.kernels.new_state or arqon.Tuner")
    return buf[state.dtype.itemsize // 8:].reshape(rows, -1)


MAGIC = 0x6172716F6E5F5332  # "arqon_S2": marks a buffer built by new_state; the digit is the layout version

_FIELDS = [
    ("magic", np.int64),
    ("d", np.int64),  # number of parameters
    ("n_log", np.int64),  # number of log-scale parameters (their indices are in mat[LOG_INDEX, :n_log])
    ("n_int", np.int64),  # number of integer parameters
    ("budget", np.int64),  # evaluations allowed; 0 = unlimited
    ("n_told", np.int64),  # evaluations accepted so far
    ("pending", np.int64),  # 1 while a proposal is out and not yet told
    ("phase", np.int64),  # 0: next proposal is theta + c*delta, 1: theta - c*delta
    ("k", np.int64),  # completed parameter updates
    ("constant_gains", np.int64),  # 0: Spall's decaying gains, 1: constant gains (tracking)
    ("n_average", np.int64),  # gradient estimates averaged per update
    ("i_average", np.int64),  # estimates accumulated toward the current update
    ("n_calibrate", np.int64),  # updates whose gradient sizes set the gain `a` (0 when `a` is given)
    ("i_calibrate", np.int64),  # calibration updates seen
    ("has_best", np.int64),  # 1 once a value has been accepted
    ("status", np.int64),  # status flags of the last step
    ("sense", np.float64),  # +1 minimize, -1 maximize
    ("a", np.float64),  # step gain; 0 until calibrated when automatic
    ("c", np.float64),  # perturbation size, unit-cube coordinates
    ("stability", np.float64),  # Spall's A
    ("alpha", np.float64),
    ("gamma", np.float64),
    ("initial_step", np.float64),  # automatic `a`: length of the first moves, unit-cube coordinates
    ("max_step", np.float64),  # largest move of one coordinate per update, unit-cube coordinates
    ("calibrate_max", np.float64),  # largest mean |gradient| over the calibration updates so far
    ("c_k", np.float64),  # perturbation size of the current pair
    ("y_plus", np.float64),  # signed value measured at theta + c*delta
    ("best_value", np.float64),  # best value accepted, in the user's sign
    ("seed", np.uint64),
    ("rng", np.uint64, (4,)),  # xoshiro256** state
]
HEADER = padded_record(_FIELDS)  # the state's header record: scalars, gains, counters, rng, best value
HEADER_BYTES = HEADER.itemsize  # the matrix starts this many bytes into the buffer

# Rows of the state matrix.
X = 0  # proposal in user units (what ask returns)
THETA = 1  # current estimate, unit cube
DELTA = 2  # signed perturbation of the current pair, unit cube: random sign * max(c_k, MIN_PERTURBATION)
GRAD = 3  # accumulated gradient estimate, unit cube
LOW = 4  # lower bound in the transformed space (log for log scale)
SPAN = 5  # width in the transformed space
LOG_INDEX = 6  # indices of the log-scale parameters, first n_log entries
IS_INT = 7  # 1.0 for integer parameters
MIN = 8  # bounds in user units, for integer rounding and clamping
MAX = 9
BEST = 10  # params of the best accepted value, user units
CENTER = 11  # THETA in user units (the recommendation), written by `recommend`
MIN_PERTURBATION = 12  # integer parameters: INTEGER_PERTURBATION integer steps, unit cube; else 0
ROWS = 13  # rows of the (ROWS, d) matrix that follows the header

INTEGER_PERTURBATION = 0.6  # integer steps: over half a step, so the two points of a pair never round alike

STATE_TYPE = numba.from_dtype(HEADER)[::1]
MAT_TYPE = numba.float64[:, ::1]


def new_state(d):
    """A zeroed state for ``d`` parameters, magic and size set (the shell fills in the rest)."""
    state = allocate(HEADER, ROWS, d)
    state[0]["magic"] = MAGIC
    state[0]["d"] = d
    return state


def matrix(state):
    """The (ROWS, d) matrix of ``state`` as a NumPy view."""
    return rows_of(state, ROWS)
