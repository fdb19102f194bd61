"""The evaluation of ``spec.toml``: a variant of the simulated inference server (``arqon.demo.inference``'s model,
the one the phase-2 demo serves from) run for 40 windows of 200 requests in a scenario's contexts.

Scenarios: ``nominal`` and ``staging``, the day's traffic on the GPU (30 windows of short prompts, 10 of long ones,
at low load); ``peak``, the evening (long prompts at high load). Deterministic for a seed.
"""

import numpy as np

from arqon.demo import inference

DAY = [(("gpu", "short", "low"), 30), (("gpu", "long", "low"), 10)]
SCENARIOS = {"nominal": DAY, "staging": DAY, "peak": [(("gpu", "long", "high"), 40)]}


def evaluate(variant, seed, scenario):
    """Per window: the reward (quality net of latency), the p99 latency (ms) and the quality; and the weights'
    memory (GiB)."""
    rng = np.random.default_rng(seed)
    windows = [inference.serve(variant, context, rng) for context, n in SCENARIOS[scenario["name"]]
               for _ in range(n)]
    return {"reward": [w["reward"] for w in windows], "p99": [w["p99"] for w in windows],
            "quality": [w["quality"] for w in windows], "memory_gib": inference.QUANT[variant["quant"]][1]}


def check(variant, seed):
    """The invariants a variant must keep: the model's quality on the day's prompts stays at or above 0.85 (an
    int4 build that exits early falls below it)."""
    quality = inference.expected(variant, "gpu", "short", "low")["quality"]
    return ["quality_floor"] if quality < 0.85 else []


def describe(variant):
    """The catalog fields of a promoted variant: the hardware classes whose memory holds it, its memory, its
    expected latency per context and its quality at full depth."""
    memory = inference.QUANT[variant["quant"]][1]
    hardware = [h for h in inference.MEMORY_GIB if inference.admissible(variant, h)]
    return {"envelope": {"hardware": hardware, "memory_cap": int(memory * 2**30)},
            "latency": {f"{h}/{r}/{lo}": round(inference.expected(variant, h, r, lo)["p50"], 1)
                        for h, r, lo in inference.CONTEXTS if h in hardware},
            "quality": inference.QUANT[variant["quant"]][0]}
