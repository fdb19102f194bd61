"""A memory-safety campaign against the kernels of each component, run in a child process by ``test_state_fuzz.py``.

``python -m tests.fuzz_states COMPONENT[,COMPONENT...] MODE SEED`` takes a live mid-run state of each COMPONENT (a
tuner strategy, ``guard``: the safety executor, ``telemetry``, ``ring``: a telemetry ring, also as an audit ring, or
``bandit-glr`` / ``bandit-window`` / ``bandit-linear``: a selector; seeds SEED, SEED + 1, ...), and for each
seeded case corrupts one header field (a telemetry's metric record too; or a random header word; or truncates or extends
the buffer), places the result between canary words, and calls every public kernel of the component on it, from one
``@njit`` function (MODE njit) or from its ``py_func`` (MODE python: each kernel called from Python). Whether the
corrupted state is valid is decided independently of the kernels' open checks, from the layout declaration in plain
Python (``reference_valid``, ``guard_valid``, ``telemetry_valid``, ``ring_valid``, ``bandit_valid``). It prints
``COMPONENT case N`` before each case (so a crash names it) and the summaries, one JSON object, last.
"""

import json
import math
import sys
import types

import numba
import numpy as np

import arqon
from arqon import kernels
from arqon.executor import Executor
from arqon.kernels import audit as audit_kernels
from arqon.kernels import bandit as kb
from arqon.kernels import guard as g
from arqon.kernels import ring as ring_kernels
from arqon.kernels import drop_stale_cache, stats
from arqon.kernels import telemetry as tel_kernels
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


def _cache_probe():
    pass


drop_stale_cache(_cache_probe)  # the harness's cached @njit callers inline arqon kernels: drop them when those change

def _int_fields(record):
    """(name, index) of every int64 word of the header record: the sizes, offsets and counters."""
    out = []
    for name in record.names:
        dtype = record.fields[name][0]
        if dtype.base == np.int64:
            out += [(name, i) for i in range(dtype.shape[0] if dtype.shape else 1)]
    return out


def _float_fields(record):
    return [name for name in record.names if record.fields[name][0] == np.float64]


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


def cases(rng, pristine, records, size_field):
    """The seeded corruptions of a state whose records (header first) are ``records``, (dtype, word offset) each:
    (description, case for ``apply``)."""
    n = pristine.shape[0]
    record = records[0][0]
    words = record.itemsize // 8
    size = int(pristine[:words].view(record)[0][size_field])
    out = []
    for r, (dtype, at) in enumerate(records):
        h = pristine[at:at + dtype.itemsize // 8].view(dtype)[0]
        where = "" if r == 0 else f"record {r}: "
        for name, i in _int_fields(dtype):
            old = int(np.atleast_1d(h[name])[i])
            values = {old + 1, old - 1, 0, -1, 1 << 40, -(1 << 62), (1 << 63) - 1, n, size,
                      int(rng.integers(-1000, 1000))}
            out += [(f"{where}{name}[{i}] {old} -> {v}", ("int", name, i, v, r)) for v in sorted(values - {old})]
        for name in _float_fields(dtype):
            out += [(f"{where}{name} -> {v}", ("float", name, 0, v, r))
                    for v in (np.nan, np.inf, -np.inf, -1e308, 0.0, 2.0)]
    for _ in range(max(60, 250 - len(out))):  # random words: at least 60, more for a small header
        word = int(rng.integers(0, words))
        bits = int(rng.integers(0, 2**63)) * (1 if rng.random() < 0.5 else -1)
        out.append((f"header word {word} -> bits {bits:#x}", ("word", word, 0, bits, 0)))
    lengths = {0, 1, words - 1, words, words + 1, n - 1, n + 1, n + GUARD // 2}
    lengths |= {int(v) for v in rng.integers(0, n, 20)}
    out += [(f"length {n} -> {m}", ("length", m, 0, 0, 0)) for m in sorted(lengths - {n})]
    return out


def apply(words, n, case, records):
    """Apply ``case`` to ``words`` (a copy of the state placed at the start of a longer buffer); the state's length."""
    kind, a, i, v, r = case
    record, at = records[r]
    h = words[at:at + record.itemsize // 8].view(record)[0]
    if kind == "int":
        if record.fields[a][0].shape:
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


@numba.njit(cache=True)
def _njit_calls(state, values, steps):
    s = kernels.open_state(state)
    s |= kernels.ask(state) | kernels.step(state, 1.5) | kernels.tell(state, 0.5) | kernels.ask_batch(state)
    b = kernels.batch(state).shape[0]
    s |= kernels.tell_batch(state, values) | kernels.recommend(state) | kernels.reopen(state)
    p = kernels.proposal(state).shape[0]
    for i in range(steps):
        s |= kernels.step(state, 1.0 + i % 5)
    return s, b, p


def guard_valid(buf):
    """True when ``buf`` is an executor state its kernels may run on, from the guard's layout (not ``open_guard``)."""
    words = g.GUARD_HEADER_WORDS
    if buf.shape[0] < words:
        return False
    record = buf[:words].view(g.GUARD_HEADER)[0]
    h = {name: int(record[name]) for name, _ in _int_fields(g.GUARD_HEADER) if name != "apply_times"}
    w = h["width"]
    if h["magic"] != g.MAGIC or h["layout"] != g.GUARD_LAYOUT or h["words"] != buf.shape[0]:
        return False
    if not (1 <= w <= g.MAX_WIDTH and words + g.GUARD_ROWS * w == buf.shape[0] and 1 <= h["d"] <= w):
        return False
    if not all(0 <= h[f] <= w for f in ("n_metrics", "n_slos", "n_stages")) or h["live"] not in (0, 1):
        return False
    if not 0 <= h["stage"] <= h["n_stages"] or (h["n_stages"] and not 0 <= h["judged"] < h["n_metrics"]):
        return False
    if not (0 <= h["rate_head"] < g.RATE_MAX and 0 <= h["rate_count"] <= g.RATE_MAX
            and 0 <= h["rate_applies"] <= g.RATE_MAX):
        return False
    slots, col = h["slots"], h["variant_col"]
    if not 0 <= slots <= w or (slots == 0) != (col == -1) or (slots and col != h["d"] - 1):
        return False
    slo_metrics = buf[words:].reshape(g.GUARD_ROWS, w)[g.SLO_METRIC, :h["n_slos"]]
    return bool(np.all((slo_metrics >= 0) & (slo_metrics < h["n_metrics"])))


_SLOTS_WORD = g.GUARD_HEADER.fields["slots"][1] // 8


@numba.njit(cache=True)
def _guard_njit_calls(state, proposal, metrics, out, approved, steps):
    s = g.open_guard(state) | g.guard_offer(state, proposal, 1) | g.guard_observe(state, metrics, 2)
    s |= g.guard_propose(state, proposal, 3) | g.guard_apply(state, 4) | g.guard_shadow(state, proposal, out, 5)
    s |= g.guard_snapback(state, 6) | g.guard_kill(state, 7) | g.guard_resume(state, 8)
    s |= g.guard_swap(state, out, 0, proposal[0] + 1.0, 9) | g.guard_swap(state, out, 4, 2.0, 9)
    slots = state[_SLOTS_WORD:_SLOTS_WORD + 1].view(np.int64)[0] if state.shape[0] > _SLOTS_WORD else 0
    s |= g.guard_set_variants(state, approved[:min(max(slots, 0), approved.shape[0])], 0, 9)  # one word per slot
    s |= g.guard_swap(state, out, 4, 1.0, 9)
    live = g.guard_live(state).shape[0]
    for i in range(steps):
        proposal[0] += 0.25
        s |= g.guard_offer(state, proposal, 10 + 2 * i) | g.guard_observe(state, metrics, 11 + 2 * i)
    return s, live


def _guard_component(mode, seed):
    """A mid-canary executor state with SLOs, stages, a rate limit, cooldowns and a variant column over 8 slots (three
    variants approved, then one withdrawn by the calls), its validity check and its calls."""
    tuner = arqon.Tuner({"params": [{"name": f"p{i}", "min": 0, "max": 10, "init": 5} for i in range(4)],
                         "seed": seed})
    ex = Executor({"params": {"p0": {"max_delta": 1.0, "cooldown": 2}, "p1": {}, "p2": {"max_delta_fraction": 0.1},
                              "p3": {}},
                   "metrics": ["lat", "err", "qps"], "slos": ["lat <= 50", "err < 0.01 * baseline"],
                   "canary": {"metric": "lat", "stages": [{"min_samples": 3}, {"min_samples": 5}]},
                   "rate_limit": {"applies": 3, "window": 10}, "variant": {"cooldown": 1, "capacity": 8}}, tuner,
                  types.SimpleNamespace(ids=("a", "b", "c"), name="fuzz", version=1, scope="prod",
                                        variants=[types.SimpleNamespace(id=v, version=1) for v in "abc"]))
    for now in range(12):
        ex.observe({"lat": 10.0 + now % 3, "err": 0.001, "qps": 100.0}, 2 * now)
        ex.offer([5.0 + (now % 4) * 0.5, 5.0, 5.0 + now % 2, 4.0, now % 3], 2 * now + 1)
    # width 8 (the slots): proposals, metrics and the approved set as wide as any d a corruption may declare
    proposal, metrics, out = np.full(8, 1.0), np.array([10.0, 0.001, 100.0, 1.0, 1.0, 1.0, 1.0, 1.0]), np.zeros(8)
    approved = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    calls = _guard_njit_calls if mode == "njit" else _guard_njit_calls.py_func

    def run(state, steps):
        s, live = calls(state, proposal.copy(), metrics, out, approved, steps)
        return s, live == 0 and s == kernels.BAD_STATE

    return ex.state.copy(), [(g.GUARD_HEADER, 0)], "width", guard_valid, run


def _tuner_component(strategy, mode, seed):
    t = arqon.Tuner({**CONFIGS[strategy], "seed": seed, "budget": 5000})
    x = t.ask()
    for _ in range(37):  # mid-generation
        x = t.step(sphere(x))
    calls = _njit_calls if mode == "njit" else _njit_calls.py_func
    values = np.ones(3)

    def run(state, steps):
        status, batch_rows, proposal_len = calls(state, values, steps)
        return status, status == kernels.BAD_STATE and batch_rows == 0 and proposal_len == 0

    return t.state.copy(), [(HEADER, 0)], "rows", reference_valid, run


def telemetry_valid(buf):
    """True when ``buf`` is a one-metric telemetry state its kernels may run on, from the layout in plain Python."""
    hw, mw = stats.TEL_HEADER_WORDS, stats.METRIC_WORDS
    if buf.shape[0] < hw:
        return False
    h = buf[:hw].view(stats.TEL_HEADER)[0]
    n_metrics, n_buckets = int(h["n_metrics"]), int(h["n_buckets"])
    if int(h["magic"]) != stats.MAGIC or int(h["layout"]) != stats.TEL_LAYOUT or int(h["words"]) != buf.shape[0]:
        return False
    if not (1 <= n_metrics <= stats.MAX_METRICS and 0 <= n_buckets <= stats.MAX_BUCKETS
            and hw + n_metrics * (mw + 2 * n_buckets) == buf.shape[0]):
        return False
    r = buf[hw:hw + mw].view(stats.METRIC)[0]
    m, n_q, nb = int(r["n_markers"]), int(r["n_q"]), int(r["n_buckets"])
    if r["n"] < 0 or m not in (0, 5, 7, 9) or not 0 <= n_q <= 3 or not 0 <= nb <= n_buckets:
        return False
    if not (0 <= r["lo"] <= nb and -1 <= r["hi"] < nb):
        return False
    if r["sketch"] and not (nb >= 1 and 0 < r["min_value"] < math.inf and 1 < r["gamma"] < math.inf
                            and 0 < r["inv_log_gamma"] < 1e12 and abs(int(r["key_offset"])) <= 1 << 40):
        return False
    return True


@numba.njit(cache=True)
def _telemetry_njit_calls(tel, ring_header, tuner, records, steps):
    s = stats.open_telemetry(tel) | tel_kernels.emit(tel, ring_header, 0, 2.5, 1) | tel_kernels.ingest(tel, records, 3)
    s |= tel_kernels.tune_from_window(tuner, tel, ring_header, 0, stats.MEAN, 0.0, 1, 2)
    nan = True
    for stat in range(7):
        nan &= np.isnan(tel_kernels.window_stat(tel, 0, stat, 0.5))
    for i in range(steps):
        s |= tel_kernels.emit(tel, ring_header, 0, 1.0 + (i * 7) % 13, 10 + i)
    return s, nan


def _telemetry_component(mode, seed):
    """A one-metric telemetry state mid-window, with three P-square estimates, the sketch and a CUSUM detector."""
    tel = arqon.Telemetry({"metrics": [{"name": "lat", "quantiles": [0.5, 0.9, 0.99], "sketch": True,
                                        "drift": {"method": "cusum", "warmup": 5}}], "ring": {"capacity": 64}})
    rng = np.random.default_rng(seed)
    for i in range(40):
        tel.emit("lat", float(rng.lognormal()), step=i)
        if i % 10 == 9:
            tel.new_generation()
    records = tel.ring.drain().copy()[:3]
    tuner = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}], "seed": seed})
    calls = _telemetry_njit_calls if mode == "njit" else _telemetry_njit_calls.py_func

    def run(state, steps):
        # the ring and the tuner are another component's: fresh copies each case, so only ``state`` is under test
        ring = arqon.Ring(64)
        s, nan = calls(state, ring.state, tuner.state.copy(), records, steps)
        return s, s == kernels.BAD_STATE and nan

    header = [(stats.TEL_HEADER, 0), (stats.METRIC, stats.TEL_HEADER_WORDS)]
    return tel.state.copy(), header, "n_buckets", telemetry_valid, run


def ring_valid(buf):
    """True when ``buf`` is a whole ring, from the ring's layout in plain Python."""
    if buf.shape[0] < ring_kernels.RING_HEADER_WORDS:
        return False
    h = ring_kernels.ring_header(buf)[0]
    capacity = int(h["capacity"])
    return (int(h["magic"]) == ring_kernels.MAGIC and int(h["record_bytes"]) == 8 * ring_kernels.RECORD_WORDS
            and 1 <= capacity <= ring_kernels.MAX_CAPACITY and capacity & (capacity - 1) == 0
            and ring_kernels.RING_HEADER_WORDS + capacity * ring_kernels.RECORD_WORDS == buf.shape[0])


@numba.njit(cache=True)
def _ring_njit_calls(ring, tuner, out, audit_out, steps):
    s = ring_kernels.open_ring(ring) | ring_kernels.ring_push(ring, 1, 0, 2.5, 0, 0, 0)
    s |= audit_kernels.audited_step(tuner, ring, 1.5, 2) | audit_kernels.audited_ask(tuner, ring, 3)
    drained = ring_kernels.ring_drain(ring, out)
    drained = min(drained, audit_kernels.audit_drain(ring, audit_out))
    for i in range(steps):
        s |= ring_kernels.ring_push(ring, 10 + i, 0, 1.0 * i, 0, 0, 0)
        if i % 7 == 0:
            drained = min(drained, ring_kernels.ring_drain(ring, out))
    return s, drained


def _ring_component(mode, seed):
    """A drop-newest ring of 64 records with its counters mid-stream (some read, some lapped)."""
    ring = arqon.Ring(64, "drop_newest" if seed % 2 else "overwrite")
    for i in range(150):
        ring.push(i % 3, float(i), step=i)
        if i % 40 == 39:
            ring.drain()
    tuner = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}], "seed": seed})
    out, audit_out = np.zeros(16, ring_kernels.RECORD), np.zeros(16, audit_kernels.AUDIT_RECORD)
    calls = _ring_njit_calls if mode == "njit" else _ring_njit_calls.py_func

    def run(state, steps):
        s, drained = calls(state, tuner.state.copy(), out, audit_out, steps)
        return s, s == kernels.BAD_STATE and drained == -kernels.BAD_STATE

    return ring.state.copy(), [(ring_kernels.RING_HEADER, 0)], "capacity", ring_valid, run


def bandit_valid(buf):
    """True when ``buf`` is a selector state its kernels may run on, from the bandit layout in plain Python."""
    words = kb.BANDIT_HEADER_WORDS
    if buf.shape[0] < words:
        return False
    record = buf[:words].view(kb.BANDIT_HEADER)[0]
    h = {name: int(record[name]) for name, _ in _int_fields(kb.BANDIT_HEADER)}
    p, k, d, w, hist = h["policy"], h["k"], h["d"], h["window"], h["history"]
    if h["magic"] != kb.MAGIC or h["layout"] != kb.BANDIT_LAYOUT or h["words"] != buf.shape[0]:
        return False
    if not (0 <= p < kb.N_POLICIES and 1 <= k <= kb.MAX_ARMS and 0 <= d <= kb.MAX_CONTEXT
            and 0 <= h["n_metrics"] <= kb.MAX_METRICS and 0 <= h["n_cons"] <= kb.MAX_METRICS
            and 0 <= w <= kb.MAX_WINDOW and 0 <= hist <= kb.MAX_HISTORY):
        return False
    if (p in kb.LINEAR) != (d >= 1) or (p in kb.WINDOWED) != (w >= 1) or (p == kb.GLR_KLUCB) != (hist >= 2):
        return False
    if not (h["check_every"] >= 1 and h["stride"] >= 1 and h["min_samples"] >= 0 and 0 <= h["fallback"] < k
            and -1 <= h["last"] < k and h["pending"] in (0, 1) and (h["pending"] == 0 or h["last"] >= 0)
            and h["t"] >= 0 and 0 <= h["w_count"] <= w and 0 <= h["w_head"] < max(w, 1)):
        return False
    n_vec = 2 * w + k * hist + k * (d * d + 2 * d) + 3 * h["n_cons"] + d
    return words + (kb.BASE_ROWS + 3 * h["n_metrics"]) * k + n_vec == buf.shape[0]


@numba.njit(cache=True)
def _bandit_njit_calls(state, mask, context, metrics, scores, candidates, steps):
    arm = kb.select(state, mask, context)
    s = kb.open_bandit(state) | kb.bandit_status(state)
    refused = arm == -kernels.BAD_STATE
    if arm >= 0:
        s |= kb.update(state, arm, 0.5, metrics)
    t = kb.tournament(state, scores, mask, 3)
    refused &= t == -kernels.BAD_STATE and kb.bandit_pending(state) == -kernels.BAD_STATE
    refused &= kb.bandit_candidates(state, mask, candidates) == -kernels.BAD_STATE
    for i in range(steps):
        arm = kb.step(state, 0.25 * (i % 5), metrics, mask, context)
        refused &= arm == -kernels.BAD_STATE
    return s, refused


BANDIT_CONFIGS = {
    "bandit-glr": {"arms": ["a", "b", "c", "d"], "policy": "glr-klucb", "metrics": ["lat", "mem"],
                   "constraints": [{"metric": "lat", "max": 3.0}],
                   "glr_klucb": {"history": 16, "check_every": 2, "stride": 1}},
    "bandit-window": {"arms": 5, "policy": "sliding-window-thompson", "sliding_window_thompson": {"window": 12}},
    "bandit-linear": {"arms": 3, "policy": "linucb", "context": 3},
}


def _bandit_component(component, mode, seed):
    """A selector mid-run (GLR histories, a sliding window, or linear models), its validity check and its calls."""
    config = BANDIT_CONFIGS[component]
    sel = arqon.Selector({**config, "seed": seed})
    k, d, n_metrics = len(sel.names), int(config.get("context", 0)), len(config.get("metrics", []))
    context, metrics = np.linspace(0.1, 0.9, d), np.linspace(1.0, 4.0, n_metrics)
    arm = sel.select(context=context if d else None)
    for i in range(40):
        arm = sel.step(0.25 * (i % 5), context=context if d else None, metrics=metrics if n_metrics else None)
    mask, scores = np.ones(k, np.bool_), np.linspace(0.0, 1.0, k)
    calls = _bandit_njit_calls if mode == "njit" else _bandit_njit_calls.py_func

    def run(state, steps):
        return calls(state, mask, context, metrics, scores, np.zeros(k, np.bool_), steps)

    return sel.state.copy(), [(kb.BANDIT_HEADER, 0)], "k", bandit_valid, run


def campaign(component, mode, seed):
    """The seeded cases of one component: its summary (counts and the cases that broke a rule)."""
    if component.startswith("bandit"):
        build = lambda m, s: _bandit_component(component, m, s)  # noqa: E731
    else:
        build = {"guard": _guard_component, "telemetry": _telemetry_component, "ring": _ring_component}.get(
            component, lambda m, s: _tuner_component(component, m, s))
    pristine, records, size_field, valid_of, run = build(mode, seed)
    rng = np.random.default_rng(seed)
    summary = {"cases": 0, "invalid": 0, "refused_invalid": 0, "accepted_invalid": [], "refused_valid": [],
               "outside_writes": [], "changed_when_refused": []}
    for number, (what, case) in enumerate(cases(rng, pristine, records, size_field)):
        print(f"{component} case {number}", flush=True)
        big = np.full(GUARD + pristine.shape[0] + 2 * GUARD, CANARY)
        words = big[GUARD:GUARD + pristine.shape[0] + GUARD]
        words[:pristine.shape[0]] = pristine
        length = apply(words, pristine.shape[0], case, records)
        state = big[GUARD:GUARD + length]
        valid = valid_of(state)
        before = big.copy()
        status, refused = run(state, STEPS if valid else 0)
        summary["cases"] += 1
        outside = np.r_[0:GUARD, GUARD + length:big.shape[0]]
        if not np.array_equal(big[outside].view(np.uint64), before[outside].view(np.uint64)):
            summary["outside_writes"].append(what)
        if not valid:
            summary["invalid"] += 1
            if refused:
                summary["refused_invalid"] += 1
                if not np.array_equal(big.view(np.uint64), before.view(np.uint64)):
                    summary["changed_when_refused"].append(what)
            else:
                summary["accepted_invalid"].append(what)
        elif status & kernels.BAD_STATE:
            summary["refused_valid"].append(what)
    return summary


def main(components, mode, first_seed):
    """Run the campaigns of ``components`` (comma-separated) in this process, seeds from ``first_seed`` on, and print
    their summaries as one JSON object (a crash leaves the last "COMPONENT case N" line as the culprit)."""
    summaries = {c: campaign(c, mode, first_seed + i) for i, c in enumerate(components.split(","))}
    print(json.dumps(summaries), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
