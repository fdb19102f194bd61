"""``arqon demo --scenario inference``: a simulated inference server choosing among approved variants (phase 2).

Twelve variants (three quantizations x full depth or early exit x a single-request or an 8-request batch kernel) sit
in a signed catalog, each with its envelope (the hardware classes whose memory holds it). The context changes every
few hundred steps: the hardware class (a GPU, or a CPU fail-over host where the fp16 weights do not fit), the request
class (short or long prompts) and the load. One Gaussian Thompson selector per context learns each variant's quality
net of its latency; SLA-first, only the variants whose envelope admits the hardware are eligible, and among them
only those whose p99 stays under the SLO with 95% confidence (the selector's constraint). The executor applies every
swap under its policy: an SLO breach by a candidate rolls back to the known-good variant (with no canary stages, a
candidate becomes known-good after one clean window); when the hardware changes, ``executor.allow`` withdraws the
variants it cannot hold, and a known-good among them is replaced by ``KNOWN_GOOD``, before a request is served.

The same run is scored against the best single variant and against the per-context oracle (the best variant that
meets the SLO in each context), on the model's expected values, so the figures carry no sampling noise.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import tempfile
from pathlib import Path

import numpy as np

import arqon
from arqon.demo.scenarios import INFERENCE

QUANT = {"fp16": (0.905, 16.0), "int8": (0.895, 9.0), "int4": (0.860, 5.0)}  # quality at full depth, memory GiB
PER_TOKEN_MS = {"gpu": {"fp16": 0.20, "int8": 0.13, "int4": 0.10}, "cpu": {"fp16": 0.9, "int8": 0.40, "int4": 0.25}}
MEMORY_GIB = {"gpu": 24.0, "cpu": 12.0}
TOKENS = {"short": 100, "long": 800}
EXIT_LOSS = {"short": 0.01, "long": 0.05}  # early exit costs more quality on long prompts
# a LoRA adapter tuned on chat: better on short prompts, off-topic on long documents (none of the twelve has one)
ADAPTER = {"none": {"short": 0.0, "long": 0.0}, "chat": {"short": 0.02, "long": -0.08}}
LOAD = {("short", "low"): 20.0, ("short", "high"): 140.0, ("long", "low"): 4.0, ("long", "high"): 22.0}  # req/s
SERVERS = 4
SLO_MS = 400.0
SAMPLES = 200  # requests per step
LATENCY_WEIGHT = 0.0002  # reward = quality - this * p50 (ms): 100 ms of median latency costs 0.02 of quality
VARIANTS = [f"{q}-{depth}-{kernel}" for q, depth, kernel in itertools.product(QUANT, ("full", "exit"), ("b1", "b8"))]
KNOWN_GOOD = "int8-exit-b8"  # fits every hardware class and meets the SLO in every context
# the scripted contexts: (steps, hardware, request class, load)
SCHEDULE = [(600, "gpu", "short", "low"), (600, "gpu", "short", "high"), (600, "gpu", "long", "low"),
            (600, "cpu", "long", "low"), (600, "cpu", "short", "low"), (600, "cpu", "short", "high"),
            (600, "gpu", "long", "high"), (600, "gpu", "short", "high"), (600, "gpu", "short", "low"),
            (600, "cpu", "long", "high")]
CONTEXTS = sorted({c[1:] for c in SCHEDULE})


def knobs_of(variant: str) -> dict:
    """The knobs of one of the twelve named variants: quantization, the share of layers run (``depth``: 0.65 for an
    early exit), the batch kernel's size and the adapter (none)."""
    q, depth, kernel = variant.split("-")
    return {"quant": q, "depth": 0.65 if depth == "exit" else 1.0, "batch": 8 if kernel == "b8" else 1,
            "adapter": "none"}


def admissible(knobs: dict, hardware: str) -> bool:
    """The envelope: the variant's weights fit the hardware class's memory."""
    return QUANT[knobs["quant"]][1] <= MEMORY_GIB[hardware]


def expected(knobs: dict, hardware: str, request: str, load: str) -> dict:
    """The model's service time, mean queueing delay and batch fill (ms) of a variant (its knobs) in a context, its
    median latency, its quality and its expected reward (what the regret figures are computed on). A batch of b
    runs each request in 0.55^((b-1)/7) of its time, plus b + 4 ms; running a share ``depth`` of the layers costs
    that share of the time and EXIT_LOSS x (1 - depth) / 0.35 of quality; an ``adapter`` (default none) changes the
    quality by ADAPTER's amount for the request class."""
    q, depth, batch = knobs["quant"], knobs["depth"], knobs["batch"]
    service = TOKENS[request] * PER_TOKEN_MS[hardware][q] * depth
    service = service * 0.55 ** ((batch - 1) / 7) + (batch + 4.0)
    rate = LOAD[request, load]
    rho = rate * service / (1000.0 * SERVERS * batch)
    fill = min(20.0, 1000.0 * (batch - 1) / rate) if batch > 1 else 0.0
    wait = service * rho / (1.0 - rho) if rho < 0.95 else 1e4  # mean queueing delay (exponential)
    p50 = service + 0.5 * fill + wait * math.log(2.0)  # the medians' sum: close enough for a reward's latency term
    quality = QUANT[q][0] - EXIT_LOSS[request] * (1.0 - depth) / (1.0 - 0.65) + \
        ADAPTER[knobs.get("adapter", "none")][request]
    return {"service": service, "fill": fill, "wait": wait, "p50": p50, "quality": quality,
            "reward": quality - LATENCY_WEIGHT * p50}


def serve(knobs: dict, context: tuple, rng: np.random.Generator, samples: int = SAMPLES) -> dict:
    """One step's window of ``samples`` requests: service x lognormal(0, 0.15) + uniform batch fill + exponential
    wait."""
    e = expected(knobs, *context)
    latency = (e["service"] * rng.lognormal(0.0, 0.15, samples) + e["fill"] * rng.random(samples)
               + rng.exponential(e["wait"], samples))
    p50, p99 = np.percentile(latency, [50.0, 99.0])
    quality = e["quality"] + rng.normal(0.0, 0.01)
    return {"p99": float(p99), "p50": float(p50), "quality": float(quality),
            "reward": float(quality - LATENCY_WEIGHT * p50)}


@functools.lru_cache(maxsize=None)
def _true_p99(quant: str, depth: float, batch: int, context: tuple) -> float:
    e, rng = expected({"quant": quant, "depth": depth, "batch": batch}, *context), np.random.default_rng(0)  # the
    # adapter changes quality only
    n = 400_000
    latency = e["service"] * rng.lognormal(0.0, 0.15, n) + e["fill"] * rng.random(n) + rng.exponential(e["wait"], n)
    return float(np.percentile(latency, 99.0))


def true_p99(knobs: dict, context: tuple) -> float:
    """The 99th percentile of the variant's latency distribution in ``context``, from 400,000 draws (fixed seed)."""
    return _true_p99(knobs["quant"], float(knobs["depth"]), int(knobs["batch"]), context)


def build_catalog(folder: Path):
    """The twelve variants, approved with their modelled figures as evidence, signed and loaded for prod."""
    from arqon import catalog as cat

    cat.generate_key(folder / "release")
    path = folder / "inference.json"
    cat.init_catalog(path, "inference")
    for v in VARIANTS:
        knobs = knobs_of(v)
        q = knobs["quant"]
        (folder / f"{v}.json").write_text(json.dumps({"knobs": knobs}, sort_keys=True))
        hardware = [h for h in MEMORY_GIB if admissible(knobs, h)]
        cat.add_variant(path, v, 1, folder / f"{v}.json",
                        {"kind": "quantization", "scopes": ["prod"],
                         "envelope": {"hardware": hardware, "memory_cap": int(QUANT[q][1] * 2**30)},
                         "latency": {f"{h}/{r}/{lo}": round(expected(knobs, h, r, lo)["p50"], 1)
                                     for h, r, lo in CONTEXTS if admissible(knobs, h)},
                         "quality": QUANT[q][0]})
        cat.promote(path, v, "approved", by="gate:offline-eval", figures={"quality": QUANT[q][0]})
    cat.sign_catalog(path, folder / "release")
    return cat.load_catalog(path, [folder / "release.pub"], scope="prod", state=False)


def context_at(step: int) -> tuple:
    for steps, *context in SCHEDULE:
        if step < steps:
            return tuple(context)
        step -= steps
    raise IndexError(step)


STEPS = sum(s[0] for s in SCHEDULE)


def run(seed: int = 7, progress=None) -> dict:
    """The scenario: returns per-step arrays (live variant index, context index, eligible masks, p99, expected
    rewards of the live variant, of the oracle's and of every variant) and the executor's counters."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = build_catalog(Path(tmp))
    policy = {"params": {}, "metrics": ["p99"], "slos": [f"p99 <= {SLO_MS}"], "safe_mode_after": 0,
              "variant": {"known_good": KNOWN_GOOD, "cooldown": 0}}
    executor = arqon.Executor(policy, None, catalog)
    ids = executor.variants
    selectors = {c: arqon.Selector({"arms": list(ids), "policy": "gaussian-thompson", "seed": seed + i,
                                    "gaussian_thompson": {"prior_mean": 0.8, "prior_var": 0.01, "noise_var": 1e-4},
                                    "metrics": ["p99"], "constraints": [{"metric": "p99", "max": SLO_MS}],
                                    "confidence": 0.95, "min_samples": 3, "fallback": KNOWN_GOOD})
                 for i, c in enumerate(CONTEXTS)}
    # the envelope as the signed catalog states it, checked every step
    envelopes = {v.id: v.envelope for v in catalog.variants}
    masks = {h: np.array([h in envelopes[v].hardware for v in ids]) for h in MEMORY_GIB}
    table = {c: np.array([expected(knobs_of(v), *c)["reward"] for v in ids]) for c in CONTEXTS}
    feasible = {c: masks[c[0]] & np.array([true_p99(knobs_of(v), c) <= SLO_MS for v in ids]) for c in CONTEXTS}
    out = {k: np.zeros(STEPS, dtype) for k, dtype in (("live", np.int64), ("context", np.int64), ("p99", float),
                                                       ("reward", float), ("oracle", float), ("violations", np.int64),
                                                       ("breach", bool), ("rolled_back", bool),
                                                       ("withdrawn", bool))}
    out["eligible"] = np.zeros((STEPS, len(ids)), bool)
    out["fixed"] = np.zeros((STEPS, len(ids)))
    last_context = last_hardware = None
    for t in range(STEPS):
        context = context_at(t)
        hardware = context[0]
        selector, mask = selectors[context], masks[hardware]
        if hardware != last_hardware:  # only the variants whose envelope admits this hardware may be live
            flags = executor.allow([v for v, ok in zip(ids, mask) if ok], t)
            out["withdrawn"][t] = bool(flags & arqon.Flags.ROLLED_BACK)
            last_hardware = hardware
        if context != last_context:  # the new context's selector proposes (its earlier arm out is replaced)
            executor.swap(selector.select(eligible=mask), t)
        live = int(executor.live[-1])  # the index itself: a live variant outside the envelope would be counted
        window = serve(knobs_of(ids[live]), context, rng)
        flags = executor.observe({"p99": window["p99"]}, t)
        if selector.pending == live:  # on-policy: the selector learns only what its own arm measured
            arm = selector.step(window["reward"], eligible=mask, metrics=[window["p99"]])
        else:
            arm = selector.pending if selector.pending is not None else selector.select(eligible=mask)
        if not flags & arqon.Flags.ROLLED_BACK:
            executor.swap(arm, t)
        c = CONTEXTS.index(context)
        out["live"][t], out["context"][t], out["p99"][t] = live, c, window["p99"]
        out["reward"][t] = table[context][live]
        out["oracle"][t] = table[context][feasible[context]].max()
        out["violations"][t] = not mask[live]
        out["breach"][t], out["rolled_back"][t] = window["p99"] > SLO_MS, bool(flags & arqon.Flags.ROLLED_BACK)
        out["eligible"][t] = selector.candidates(eligible=mask)
        out["fixed"][t] = np.where(masks[hardware], table[context], -np.inf)
        last_context = context
        if progress:
            progress.update()
    out["ids"], out["executor"], out["feasible"], out["table"] = ids, executor, feasible, table
    return out


TITLE, DESCRIPTION = INFERENCE


def summarize(out: dict) -> list[dict]:
    """arqon against the best single variant (the best total among those every hardware class admits) and the
    per-context oracle, on the model's expected rewards."""
    fixed = out["fixed"]
    everywhere = np.all(np.isfinite(fixed), axis=0)
    best = int(np.argmax(np.where(everywhere, fixed.sum(axis=0), -np.inf)))
    oracle, n = out["oracle"], len(out["live"])
    ex = out["executor"]
    rows = [{"run": "arqon", "mean reward": float(out["reward"].mean()),
             "regret vs oracle": float((oracle - out["reward"]).sum()),
             "regret vs best fixed": float((fixed[:, best] - out["reward"]).sum()),
             "SLO breaches": int(out["breach"].sum()), "envelope violations": int(out["violations"].sum()),
             "rollbacks": ex.counters()["rollbacks"], "withdrawn by hardware": int(out["withdrawn"].sum()),
             "switches /1000": 1000.0 * np.count_nonzero(np.diff(out["live"])) / n},
            {"run": f"best fixed ({out['ids'][best]})", "mean reward": float(fixed[:, best].mean()),
             "regret vs oracle": float((oracle - fixed[:, best]).sum()), "regret vs best fixed": 0.0,
             "SLO breaches": None, "envelope violations": 0, "rollbacks": None, "withdrawn by hardware": None,
             "switches /1000": 0.0},
            {"run": "oracle (per context)", "mean reward": float(oracle.mean()), "regret vs oracle": 0.0,
             "regret vs best fixed": float((fixed[:, best] - oracle).sum()), "SLO breaches": None,
             "envelope violations": 0, "rollbacks": None, "withdrawn by hardware": None, "switches /1000": None}]
    return rows


def plot(out: dict, path: Path) -> Path:
    """The live variant over time, the eligible set (envelope and SLO constraint), and the p99's margin to the SLO."""
    from arqon.report import _pyplot, _save

    plt = _pyplot()
    ids, n = out["ids"], len(out["live"])
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    steps = np.arange(n)
    top.scatter(steps, out["live"], s=2, c=out["context"], cmap="tab10", vmin=0, vmax=9)
    top.set_yticks(range(len(ids)), ids, fontsize=7)
    top.set_title(f"{TITLE}: the live variant (colour: context)")
    middle.imshow(out["eligible"].T, aspect="auto", interpolation="nearest", cmap="Greens", origin="lower",
                  extent=(-0.5, n - 0.5, -0.5, len(ids) - 0.5))
    middle.set_yticks(range(len(ids)), ids, fontsize=7)
    middle.set_title("eligible variants: the envelope admits the hardware and the p99 constraint holds (95%)")
    ok = ~out["breach"]
    bottom.scatter(steps[ok], out["p99"][ok], s=1, color="tab:blue", label="window p99")
    bottom.scatter(steps[~ok], out["p99"][~ok], s=8, color="tab:red", label="window over the SLO (rolled back)")
    bottom.axhline(SLO_MS, color="black", lw=0.8, label=f"SLO {SLO_MS:.0f} ms")
    bottom.set_yscale("log")
    bottom.set_ylabel("p99 latency (ms)")
    bottom.set_xlabel("step")
    bottom.legend(fontsize=8, loc="upper left")
    for ax in (top, middle, bottom):
        for boundary in np.cumsum([s[0] for s in SCHEDULE])[:-1]:
            ax.axvline(boundary, color="grey", ls=":", lw=0.8)
    return _save(fig, path)
