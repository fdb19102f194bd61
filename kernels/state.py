"""Tuner state layout: ONE contiguous float64 buffer, a header record, a (rows, d) matrix, then a vector of n_vec.

A state is the whole buffer: kernels take it, check it (``api.open_state``) and read the header at its start, so
copying, saving or pickling the buffer snapshots everything. The first ROWS rows are common to every strategy
(constants below); a population strategy's own blocks (``BLOCKS``, declared once) start at the ``r_*`` and ``v_*``
offsets its header records. The helpers shared by every component's state (page-aligned buffers, padded header records,
layout ids, the checked Python view of a header) live here too.
"""

import hashlib
import mmap

import numba
import numpy as np



def padded_record(fields):
    """A record dtype with ``fields`` at their packed offsets, its size rounded up to 64 bytes (a whole number of
    float64 words and cache lines), declared aligned so Numba treats it as such."""
    packed = np.dtype(fields)
    return np.dtype({"names": list(packed.names), "formats": [packed.fields[n][0] for n in packed.names],
                     "offsets": [packed.fields[n][1] for n in packed.names],
                     "itemsize": -(-packed.itemsize // 64) * 64}, align=True)


def page_aligned_zeros(words):
    """``words`` zeroed float64 words starting on a page boundary (anonymous memory), for kernel states: their records
    sit on the same cache lines in every process, where ``np.zeros`` hands out any 16-byte boundary. (Measured in
    interleaved pairs on a 2-core AMD EPYC VM, a d = 16 step ran as fast at every 64-byte offset of a page.)"""
    return np.frombuffer(mmap.mmap(-1, 8 * words), np.float64)


def opened_header(buf, record, open_kernel, what):
    """The ``record`` header of the state ``buf`` (its fields read and write the buffer) when ``open_kernel(buf)`` is
    OK; else a ValueError saying that ``buf`` is not ``what`` (e.g. "an executor state: ... arqon.Executor(...)")."""
    if not isinstance(buf, np.ndarray) or buf.dtype != np.float64 or buf.ndim != 1 or not buf.flags.c_contiguous \
            or open_kernel(buf) != 0:
        raise ValueError(f"not {what}.state returns")
    return buf[:record.itemsize // 8].view(record)[0]


_FIELDS = [
    ("magic", np.int64),  # MAGIC: a buffer built by new_state
    ("layout", np.int64),  # the strategy's layout id (LAYOUT_IDS): derived from this header and its blocks
    ("words", np.int64),  # float64 words of the whole buffer: header, matrix, vector
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
    ("strategy", np.int64),  # SPSA, ES, PBT or CMAES (constants below)
    ("rows", np.int64),  # rows of the matrix: ROWS common ones, then the strategy's own
    ("n_vec", np.int64),  # float64 words of the vector after the matrix
    ("n_periodic", np.int64),  # number of periodic parameters (their indices are in mat[PERIODIC_INDEX, :n_periodic])
    # population strategies (ES, PBT, CMA-ES): a generation of n_pop members, handed out in order
    ("n_pop", np.int64),  # members in the current generation
    ("n_pop_max", np.int64),  # rows reserved per population block (CMA-ES restarts grow n_pop up to it)
    ("sampled", np.int64),  # 1 once the current generation's members are written
    ("i_ask", np.int64),  # members handed out so far this generation
    ("n_back", np.int64),  # members whose value came back (or was given up as missing) this generation
    ("batch_start", np.int64),  # first member of the batch out (pending == 2)
    ("batch_n", np.int64),  # members in the batch out
    ("gen", np.int64),  # completed generations since the last (re)start
    ("n_gen_total", np.int64),  # completed generations in all
    ("mu", np.int64),  # CMA-ES parents; PBT members replaced per round; ES pairs
    ("restarts", np.int64),  # CMA-ES restarts so far
    ("max_restarts", np.int64),
    ("stall", np.int64),  # generations without improving the best value since the (re)start
    ("n_arch", np.int64),  # CMA-ES model: archive rows (0: no model)
    ("i_arch", np.int64),  # archive slot to write next
    ("n_arch_filled", np.int64),
    ("n_feat", np.int64),  # quadratic model terms, (d + 1)(d + 2) / 2 (0: no model)
    ("d_model", np.int64),  # parameters the model's Hessian spans: d with the model, else 0
    ("model_member", np.int64),  # member holding the model's point this generation, -1 if none
    ("adapt_sigma", np.int64),  # ES: 1 adapts the step size, 0 keeps it (tracking)
    ("adapt_c", np.int64),  # SPSA: 1 sizes the perturbation from the measured noise and curvature, 0 keeps c's schedule
    ("n_pairs", np.int64),  # SPSA: pairs measured (the perturbation alternates between c(1 + w) and c(1 - w) with it)
    # SPSA blocking (spsa.py): an update is taken back when the value measured after it is worse than before it
    ("blocking", np.int64),  # 1: on
    ("moved", np.int64),  # 1 while the last update's move awaits the value measured after it, 2 after a block, else 0
    ("n_blocked", np.int64),  # updates taken back so far
    ("n_values", np.int64),  # values kept so far, of confirmed moves and repeats (jitter samples from the third)
    # SPSA decaying gains, [GAIN] for a's 1 / (k + 1 + A)^alpha and [PERTURBATION] for c's 1 / (k + 1)^gamma, worked out
    # over two steps ahead of their use (see spsa.py): the k of each ``decay`` and of each ``decay_log`` (-1: none)
    ("decay_k", np.int64, (2,)),
    ("decay_log_k", np.int64, (2,)),
    ("r_user", np.int64),  # row offsets of the strategy's blocks (BLOCKS below)
    ("r_z", np.int64),
    ("r_y", np.int64),
    ("r_l", np.int64),
    ("r_pc", np.int64),
    ("r_ps", np.int64),
    ("r_work", np.int64),
    ("r_arch", np.int64),
    ("r_keep", np.int64),  # CMA-ES: the mean of the best run that ended in a restart
    ("v_val", np.int64),  # vector offsets
    ("v_order", np.int64),
    ("v_w", np.int64),
    ("v_arch", np.int64),
    ("v_norm", np.int64),
    ("v_rhs", np.int64),
    ("v_feat", np.int64),
    ("v_hess", np.int64),
    ("sense", np.float64),  # +1 minimize, -1 maximize
    ("a", np.float64),  # step gain; 0 until calibrated when automatic
    ("c", np.float64),  # perturbation size, unit-cube coordinates
    ("c_max", np.float64),  # the configured c: an adaptive perturbation's ceiling
    ("stability", np.float64),  # Spall's A
    ("alpha", np.float64),
    ("gamma", np.float64),
    ("initial_step", np.float64),  # automatic `a`: length of the first moves, unit-cube coordinates
    ("max_step", np.float64),  # largest move of one coordinate per update, unit-cube coordinates
    ("calibrate_max", np.float64),  # largest mean |gradient| over the calibration updates so far
    ("c_k", np.float64),  # perturbation size of the current pair
    ("decay", np.float64, (2,)),  # the factors at decay_k
    ("decay_log", np.float64, (2,)),  # their logs at decay_log_k, the first half of the work
    ("pair_mean", np.float64),  # adaptive perturbation: signed mean value of the last pair
    ("pair_mean_before", np.float64),  # ... and of the pair before it
    ("log_noise", np.float64),  # running mean of the log squared noise in the pair means' second differences
    ("noise_var", np.float64),  # variance of one measurement, estimated from the pair means
    ("curvature", np.float64),  # trace of the Hessian in the unit cube, estimated from the pair means
    ("gain_scale", np.float64),  # blocking: factor on a_k, cut on each block, recovering on each confirmed move
    ("group_sum", np.float64),  # blocking: sum of the signed pair means of the update being accumulated
    ("value_1", np.float64),  # blocking: the last value kept (signed mean of an update's pairs), measured at mat[PREV]
    ("value_2", np.float64),  # ... and the one before it
    ("log_jitter", np.float64),  # blocking: running mean of the log squared second difference of those values
    ("y_plus", np.float64),  # signed value measured at theta + c*delta
    ("best_value", np.float64),  # best value accepted, in the user's sign
    ("sigma", np.float64),  # population strategies: step size, unit-cube coordinates
    ("sigma0", np.float64),  # the step size at a (re)start
    ("sigma_min", np.float64),  # the step size never shrinks below this (tracking); 0: no floor
    ("lr_sigma", np.float64),  # ES: step-size learning rate
    ("mueff", np.float64),  # CMA-ES constants, set at each (re)start
    ("cc", np.float64),
    ("cs", np.float64),
    ("c1", np.float64),
    ("cmu", np.float64),
    ("damps", np.float64),
    ("chi_n", np.float64),
    ("gen_best", np.float64),  # best signed value since the (re)start, for stall detection
    ("keep_best", np.float64),  # CMA-ES: best signed value of the run whose mean is kept at r_keep (inf: none)
    ("score_decay", np.float64),  # PBT: weight of the past in a member's score
    ("explore", np.float64),  # PBT: half-width of an exploring perturbation, unit-cube coordinates
    ("seed", np.uint64),
    ("rng", np.uint64, (4,)),  # xoshiro256** state
]
HEADER = padded_record(_FIELDS)  # the state's header record: scalars, gains, counters, rng, best value
HEADER_BYTES = HEADER.itemsize  # the matrix starts this many bytes into the buffer
HEADER_WORDS = HEADER_BYTES // 8
MAGIC = 0x6172716F6E5F7374  # "arqon_st": a tuner state (which layout: the ``layout`` field)

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
PERIODIC_INDEX = 13  # indices of the periodic parameters, first n_periodic entries
PREV = 14  # SPSA blocking: theta before the last update, unit cube (what a blocked update goes back to)
ROWS = 15  # rows common to every strategy

SPSA, ES, PBT, CMAES = 0, 1, 2, 3  # values of the header's ``strategy``

INTEGER_PERTURBATION = 0.6  # integer steps: over half a step, so the two points of a pair never round alike

PENDING_NONE, PENDING_ONE, PENDING_BATCH = 0, 1, 2  # values of ``pending``: nothing out, one proposal, a batch

# The blocks of each strategy, in order: (header field holding the offset, size). Matrix blocks are rows of width d
# after the ROWS common ones; vector blocks are float64 words after the matrix. A size is a header field, d, a number,
# or a product of those ("n_feat*n_feat"). Declared once: ``new_state`` places them, the layout id hashes them.
POPULATION_ROWS = (("r_y", "n_pop_max"), ("r_user", "n_pop_max"))
POPULATION_VECTOR = (("v_val", "n_pop_max"), ("v_order", "n_pop_max"), ("v_w", "n_pop_max"))
BLOCKS = {
    SPSA: ((), ()),
    ES: (POPULATION_ROWS, POPULATION_VECTOR),
    PBT: (POPULATION_ROWS, POPULATION_VECTOR),
    CMAES: (POPULATION_ROWS + (("r_z", "n_pop_max"), ("r_l", "d"), ("r_pc", 1), ("r_ps", 1), ("r_work", 1),
                               ("r_keep", 1), ("r_arch", "n_arch")),
            POPULATION_VECTOR + (("v_arch", "n_arch"), ("v_norm", "n_feat*n_feat"), ("v_rhs", "n_feat"),
                                 ("v_feat", "n_feat"), ("v_hess", "d_model*d_model"))),
}
STRATEGY_NAMES = {SPSA: "spsa", ES: "es", PBT: "pbt", CMAES: "cmaes"}
WORD_OF = {name: HEADER.fields[name][1] // 8 for name in HEADER.names}  # a header field's word index


def _block_table():
    """BLOCKS as the kernels read them: per strategy, one row per block of (offset word, size factor words a and b
    (-1: none), region (0: matrix rows, 1: vector words)); rows of -1 pad."""
    rows = {}
    for strategy, regions in BLOCKS.items():
        rows[strategy] = []
        for region, blocks in enumerate(regions):
            for field, size in blocks:
                words = [WORD_OF[f] for f in str(size).split("*") if not f.isdigit()]
                assert len(words) <= 2 and all(f == "1" for f in str(size).split("*") if f.isdigit()), size
                rows[strategy].append([WORD_OF[field], *(words + [-1, -1])[:2], region])
    table = np.full((len(BLOCKS), max(len(r) for r in rows.values()), 4), -1, np.int64)
    for strategy, r in rows.items():
        table[strategy, :len(r)] = np.array(r, np.int64).reshape(-1, 4)
    return table


def layout_id(*declaration):
    """A 63-bit id of a component's layout: a hash of its declaration (e.g. its name, its header's ``descr`` and
    itemsize, its rows and blocks), so the id changes exactly when the layout does, component by component."""
    return int.from_bytes(hashlib.sha256(repr(declaration).encode()).digest()[:8], "little") >> 1


BLOCK_TABLE = _block_table()
# indexed by strategy code: a change to one strategy's blocks leaves the other strategies' ids (and their logs) as they are
LAYOUT_IDS = np.array([layout_id("tuner", STRATEGY_NAMES[s], HEADER.descr, HEADER.itemsize, ROWS, BLOCKS[s])
                       for s in sorted(BLOCKS)], dtype=np.int64)
# LAYOUT_IDS padded with -1 (no layout) to a power of two: ``LAYOUT_TABLE[s & LAYOUT_MASK]`` is in the table for any s
LAYOUT_MASK = (1 << (len(BLOCKS) - 1).bit_length()) - 1
LAYOUT_TABLE = np.concatenate([LAYOUT_IDS, np.full(LAYOUT_MASK + 1 - len(LAYOUT_IDS), -1, np.int64)])
MAX_D = 1 << 20  # the most parameters a state can hold
MAX_STATE_BYTES = 1 << 30  # default limit of ``new_state``: a config whose state would be larger is refused


def layout_name(strategy):
    """The layout of ``strategy``'s states as a person reads it, e.g. ``tuner.spsa/3f9c...``: what an audit log records."""
    return f"tuner.{STRATEGY_NAMES[strategy]}/{int(LAYOUT_IDS[strategy]):016x}"


def _size(expression, sizes):
    value = 1
    for factor in str(expression).split("*"):
        value *= int(factor) if factor.isdigit() else sizes[factor]
    return value


def state_words(strategy, d, sizes):
    """Float64 words of a state of ``strategy`` over ``d`` parameters with the block ``sizes`` (n_pop_max, n_arch,
    n_feat, d_model as the strategy uses them): header + (ROWS + matrix block rows) * d + vector block words."""
    sizes = {"d": d, **sizes}
    row_blocks, vector_blocks = BLOCKS[strategy]
    rows = ROWS + sum(_size(n, sizes) for _, n in row_blocks)
    return HEADER_WORDS + rows * d + sum(_size(n, sizes) for _, n in vector_blocks)


def new_state(strategy, d, max_bytes=MAX_STATE_BYTES, **sizes):
    """A zeroed, page-aligned state of ``strategy`` (a code: SPSA, ES, PBT, CMAES) for ``d`` parameters, its blocks
    placed for ``sizes`` (see ``state_words``): magic, layout id, words, strategy, d and every block offset set,
    the rest zero (the caller fills bounds, settings and the RNG). Raises ValueError naming d when the state would
    exceed ``max_bytes``. Returns: the whole buffer (one float64 array: copy it, save it, pass it to any kernel)."""
    if strategy not in BLOCKS:
        raise ValueError(f"strategy: unknown code {strategy}")
    if not 1 <= d <= MAX_D:
        raise ValueError(f"d: {d} parameters; a state holds 1 to {MAX_D}")
    words = state_words(strategy, d, sizes)
    if 8 * words > max_bytes:
        raise ValueError(f"d = {d}: the {STRATEGY_NAMES[strategy]} state would take {8 * words / 2**20:.0f} MiB, over "
                         f"the limit of {max_bytes / 2**20:.0f} MiB")
    buf = page_aligned_zeros(words)
    h = buf[:HEADER_WORDS].view(HEADER)[0]
    h["magic"], h["layout"], h["words"], h["strategy"], h["d"] = MAGIC, LAYOUT_IDS[strategy], words, strategy, d
    row_blocks, vector_blocks = BLOCKS[strategy]
    sizes = {"d": d, **sizes}
    at = ROWS
    for field, n in row_blocks:
        h[field] = at
        at += _size(n, sizes)
    h["rows"] = at
    at = 0
    for field, n in vector_blocks:
        h[field] = at
        at += _size(n, sizes)
    h["n_vec"] = at
    for field in ("n_pop_max", "n_arch", "n_feat", "d_model"):
        if field in sizes:
            h[field] = sizes[field]
    h["decay_k"][:] = h["decay_log_k"][:] = -1
    return buf


def header(buf):
    """The header record of the state ``buf`` (a NumPy record: its fields read and write the buffer).
    Raises ValueError for an array that is not a whole tuner state."""
    if not isinstance(buf, np.ndarray) or buf.dtype != np.float64 or buf.ndim != 1 or buf.shape[0] < HEADER_WORDS \
            or not buf.flags.c_contiguous:
        raise ValueError("not a tuner state: a state is the whole float64 buffer that arqon.Tuner(...).state returns")
    h = buf[:HEADER_WORDS].view(HEADER)[0]
    if h["magic"] != MAGIC or h["words"] != buf.shape[0]:
        raise ValueError("not a tuner state: a state is the whole float64 buffer that arqon.Tuner(...).state returns")
    return h


def matrix(buf):
    """The (rows, d) matrix of the state ``buf`` as a NumPy view."""
    h = header(buf)
    return buf[HEADER_WORDS:HEADER_WORDS + int(h["rows"]) * int(h["d"])].reshape(int(h["rows"]), int(h["d"]))


def vector(buf):
    """The vector after the matrix of the state ``buf`` as a NumPy view."""
    h = header(buf)
    start = HEADER_WORDS + int(h["rows"]) * int(h["d"])
    return buf[start:start + int(h["n_vec"])]


STATE_TYPE = numba.float64[::1]  # a state as kernels take it: the whole buffer
HDR_TYPE = numba.from_dtype(HEADER)[::1]  # its header, as the strategy cores take it once the state is open
MAT_TYPE = numba.float64[:, ::1]
VEC_TYPE = numba.float64[::1]
