"""A memory-safety campaign against the tuner kernels, run in a child process by ``test_state_fuzz.py``.

``python -m tests.fuzz_states STRATEGY MODE SEED`` takes a live mid-run state of STRATEGY, and for each seeded case
corrupts one header field (or a random header word, or truncates or extends the buffer), places the result between
canary words, and calls every public kernel on it, from Python or (MODE njit) from one ``@njit`` function. Whether the
corrupted state is valid is decided independently of ``open_state``, from the layout declaration (``BLOCKS``) in plain
Python (``reference_valid``). It prints ``case N`` before each case (so a crash names it) and a JSON summary last.
"""

import json
import sys

import numba
import numpy as np

import arqon
from arqon import kernels
from arqon.kernels.state import (
    BLOCKS, CMAES, HEADER, HEADER_WORDS, LAYOUT_IDS, MAGIC, MAX_D, PENDING_BATCH, PENDING_NONE, PENDING_ONE, ROWS, SPSA,
)
from tests.conftest import space, sphere

CONFIGS = {
    "spsa": {"params": [{"name": "a", "min": 1, "max": 100, "scale": "log"}, {"name": "b", "min": 0, "max": 6.28,
                                                                            "scale": "periodic"},
                        {"name": "c", "min": -3, "max": 9, "integer": True}, {"name": "d", "min": -1, "max": 1}]},
    "es": space(4, strategy="es"),
    "pbt": space(4, strategy="pbt"),
    "cmaes": space(4, strategy="cmaes"),  # d <= 10: the quadratic model's blocks are there
}
GUARD = 256  # canary words each side of the state
CANARY = np.frombuffer(np.uint64(0x7FF4DEADBEEF0001).tobytes(), np.float64)[0]  # a NaN no kernel writes
STEPS = 20  # steps run on a state the reference calls valid, so a bad counter has time to reach an index


def _int_fields():
    """(name, index) of every int64 word of the header: the sizes, offsets and counters."""
    out = []
    for name in HEADER.names:
        dtype = HEADER.fields[name][0]
        if dtype.base == np.int64:
            out += [(name, i) for i in range(dtype.shape[0] if dtype.shape else 1)]
    return out


def _float_fields():
    return [name for name in HEADER.names if HEADER.fields[name][0] == np.float64]


def reference_valid(buf):
    """True when ``buf`` is a state its kernels may run on, from the declared layout (not from ``open_state``)."""
    n = buf.shape[0]
    if n < HEADER_WORDS:
        return False
    h = {name: buf[:HEADER_WORDS].view(HEADER)[0][name] for name in HEADER.names}
    h = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in h.items()}
    s, d, rows, n_vec = h["strategy"], h["d"], h["rows"], h["n_vec"]
    if h["magic"] != MAGIC or h["words"] != n or s not in BLOCKS or h["layout"] != int(LAYOUT_IDS[s]):
        return False
    if not (1 <= d <= MAX_D and rows >= ROWS and n_vec >= 0 and HEADER_WORDS + rows * d + n_vec == n):
        return False
    if not (0 <= h["n_log"] <= d and 0 <= h["n_periodic"] <= d):
        return False
    if s == SPSA:
        return True
    m, npop = h["n_pop_max"], h["n_pop"]
    if not (1 <= npop <= m and 0 <= h["pending"] <= PENDING_BATCH and 0 <= h["i_ask"] <= npop
            and 0 <= h["mu"] <= npop and h["sampled"] in (0, 1)
            and h["batch_start"] >= 0 and h["batch_n"] >= 0 and h["batch_start"] + h["batch_n"] <= npop):
        return False
    out = {PENDING_NONE: 0, PENDING_ONE: 1, PENDING_BATCH: h["batch_n"]}[h["pending"]]  # members still out
    if h["n_back"] != h["i_ask"] - out or h["n_back"] < 0:
        return False
    if h["pending"] == PENDING_BATCH and h["batch_start"] + h["batch_n"] != h["i_ask"]:
        return False
    if h["pending"] == PENDING_NONE and h["sampled"] and h["i_ask"] == npop:  # complete: it would have been updated
        return False
    row_blocks, vector_blocks = BLOCKS[s]
    for blocks, low, high in ((row_blocks, ROWS, rows), (vector_blocks, 0, n_vec)):
        for field, size in blocks:
            factors = [int(f) if f.isdigit() else h[f] for f in str(size).split("*")]
            if min(factors) < 0:
                return False
            size = int(np.prod(factors, dtype=object))
            if size and not low <= h[field] <= high - size:
                return False
    if s == CMAES:
        if not -1 <= h["model_member"] < npop:
            return False
        if h["n_arch"] and not (h["n_feat"] == (d + 1) * (d + 2) // 2 and h["d_model"] == d
                                and 0 <= h["i_arch"] < h["n_arch"] and 0 <= h["n_arch_filled"] <= h["n_arch"]):
            return False
    return True


def cases(rng, pristine):
    """The seeded corruptions: (description, function of a copy of the header words -> the state's length)."""
    n = pristine.shape[0]
    h = pristine[:HEADER_WORDS].view(HEADER)[0]
    out = []
    for name, i in _int_fields():
        old = int(np.atleast_1d(h[name])[i])
        values = {old + 1, old - 1, 0, -1, 1 << 40, -(1 << 62), (1 << 63) - 1, n, int(h["rows"]),
                  int(rng.integers(-1000, 1000))}
        out += [(f"{name}[{i}] {old} -> {v}", ("int", name, i, v)) for v in sorted(values - {old})]
    for name in _float_fields():
        out += [(f"{name} -> {v}", ("float", name, 0, v)) for v in (np.nan, np.inf, -np.inf, -1e308, 0.0)]
    for _ in range(60):
        word = int(rng.integers(0, HEADER_WORDS))
        bits = int(rng.integers(0, 2**63)) * (1 if rng.random() < 0.5 else -1)
        out.append((f"header word {word} -> bits {bits:#x}", ("word", word, 0, bits)))
    lengths = {0, 1, HEADER_WORDS - 1, HEADER_WORDS, HEADER_WORDS + 1, n - 1, n + 1, n + GUARD // 2}
    lengths |= {int(v) for v in rng.integers(0, n, 20)}
    out += [(f"length {n} -> {m}", ("length", m, 0, 0)) for m in sorted(lengths - {n})]
    return out


def apply(words, n, case):
    """Apply ``case`` to ``words`` (a copy of the state placed at the start of a longer buffer); the state's length."""
    kind, a, i, v = case
    h = words[:HEADER_WORDS].view(HEADER)[0]
    if kind == "int":
        if HEADER.fields[a][0].shape:
            h[a][i] = v
        else:
            h[a] = v
    elif kind == "float":
        h[a] = v
    elif kind == "word":
        words[a:a + 1].view(np.int64)[0] = v
    else:
        return a
    return n


@numba.njit
def _njit_calls(state, values, steps):
    s = kernels.open_state(state)
    s |= kernels.ask(state) | kernels.step(state, 1.5) | kernels.tell(state, 0.5) | kernels.ask_batch(state)
    b = kernels.batch(state).shape[0]
    s |= kernels.tell_batch(state, values) | kernels.recommend(state) | kernels.reopen(state)
    p = kernels.proposal(state).shape[0]
    for i in range(steps):
        s |= kernels.step(state, 1.0 + i % 5)
    return s, b, p


def _python_calls(state, values, steps):
    s = kernels.open_state(state)
    s |= kernels.ask(state) | kernels.step(state, 1.5) | kernels.tell(state, 0.5) | kernels.ask_batch(state)
    b = kernels.batch(state).shape[0]
    s |= kernels.tell_batch(state, values) | kernels.recommend(state) | kernels.reopen(state)
    p = kernels.proposal(state).shape[0]
    for i in range(steps):
        s |= kernels.step(state, 1.0 + i % 5)
    return s, b, p


def main(strategy, mode, seed):
    t = arqon.Tuner({**CONFIGS[strategy], "seed": seed, "budget": 5000})
    x = t.ask()
    for _ in range(37):  # mid-generation
        x = t.step(sphere(x))
    pristine = t.state.copy()
    calls = _njit_calls if mode == "njit" else _python_calls
    rng = np.random.default_rng(seed)
    values = np.ones(3)
    summary = {"cases": 0, "invalid": 0, "refused_invalid": 0, "accepted_invalid": [], "refused_valid": [],
               "outside_writes": [], "changed_when_refused": []}
    for number, (what, case) in enumerate(cases(rng, pristine)):
        print(f"case {number}", flush=True)
        big = np.full(GUARD + pristine.shape[0] + 2 * GUARD, CANARY)
        words = big[GUARD:GUARD + pristine.shape[0] + GUARD]
        words[:pristine.shape[0]] = pristine
        length = apply(words, pristine.shape[0], case)
        state = big[GUARD:GUARD + length]
        valid = reference_valid(state)
        before = big.copy()
        status, batch_rows, proposal_len = calls(state, values, STEPS if valid else 0)
        refused = status == kernels.BAD_STATE
        summary["cases"] += 1
        outside = np.r_[0:GUARD, GUARD + length:big.shape[0]]
        if not np.array_equal(big[outside].view(np.uint64), before[outside].view(np.uint64)):
            summary["outside_writes"].append(what)
        if not valid:
            summary["invalid"] += 1
            if refused and batch_rows == 0 and proposal_len == 0:
                summary["refused_invalid"] += 1
                if not np.array_equal(big.view(np.uint64), before.view(np.uint64)):
                    summary["changed_when_refused"].append(what)
            else:
                summary["accepted_invalid"].append(what)
        elif status & kernels.BAD_STATE:
            summary["refused_valid"].append(what)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
