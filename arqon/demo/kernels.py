"""``arqon demo --scenario kernels``: real Numba kernel variants from a signed catalog, chosen online by their measured
time on this machine (phase 2, the real one).

Offline: nine variants of a blocked matrix multiply (two loop orders x four tile sizes, and a "skip" loop order that
drops the last partial tile) are added to a catalog as candidates, each with its knobs as payload; a correctness gate
(against NumPy, at every input size) and a timing run promote the ones that pass, with their figures as evidence; the
catalog is signed and verified, and only approved variants reach the runtime. Online: the input size changes in phases
(64 -> 192 -> 64); one Gaussian Thompson selector per size bucket proposes a variant, the executor swaps it in under
its policy, the live variant runs, and minus its time (relative to the bucket's fastest offline time) is the reward.
At the end: the total kernel time against always running the best single variant and the worst, estimated from each
variant's median time per size measured after the online run. Needs PyNaCl (the ``catalog`` extra).
"""

from __future__ import annotations

import json
import math
import pathlib
import tempfile
import time

import numba
import numpy as np

import arqon
from arqon import catalog as cat
from arqon.demo.scenarios import KERNELS


@numba.njit(cache=True)
def matmul_ikj(a, b, c, tile):
    n = a.shape[0]
    c[:] = 0.0
    for i0 in range(0, n, tile):
        for k0 in range(0, n, tile):
            for j0 in range(0, n, tile):
                for i in range(i0, min(i0 + tile, n)):
                    for k in range(k0, min(k0 + tile, n)):
                        aik = a[i, k]
                        for j in range(j0, min(j0 + tile, n)):
                            c[i, j] += aik * b[k, j]


@numba.njit(cache=True)
def matmul_ijk(a, b, c, tile):
    n = a.shape[0]
    c[:] = 0.0
    for i0 in range(0, n, tile):
        for j0 in range(0, n, tile):
            for k0 in range(0, n, tile):
                for i in range(i0, min(i0 + tile, n)):
                    for j in range(j0, min(j0 + tile, n)):
                        acc = c[i, j]
                        for k in range(k0, min(k0 + tile, n)):
                            acc += a[i, k] * b[k, j]
                        c[i, j] = acc


@numba.njit(cache=True)
def matmul_skip(a, b, c, tile):
    """ikj without the bounds of the last partial tile: wrong whenever the size is not a multiple of the tile."""
    n = a.shape[0]
    c[:] = 0.0
    for i0 in range(0, n - tile + 1, tile):
        for k0 in range(0, n - tile + 1, tile):
            for j0 in range(0, n - tile + 1, tile):
                for i in range(i0, i0 + tile):
                    for k in range(k0, k0 + tile):
                        aik = a[i, k]
                        for j in range(j0, j0 + tile):
                            c[i, j] += aik * b[k, j]


ORDERS = {"ikj": matmul_ikj, "ijk": matmul_ijk, "skip": matmul_skip}
CANDIDATES = [(order, tile) for order in ("ikj", "ijk") for tile in (8, 16, 32, 64)] + [("skip", 48)]
SIZES = {"n64": 64, "n192": 192}
TITLE, DESCRIPTION = KERNELS


def run_variant(knobs, a, b, c):
    """Run one variant (its payload's knobs) and return its time in us."""
    start = time.perf_counter_ns()
    ORDERS[knobs["order"]](a, b, c, knobs["tile"])
    return (time.perf_counter_ns() - start) * 1e-3


def build_catalog(d: pathlib.Path, inputs) -> cat.Catalog:
    """Offline: add every variant as a candidate, promote those that compute the right product, sign, verify."""
    cat.generate_key(d / "release")
    path = d / "kernels.json"
    cat.init_catalog(path, "matmul")
    for order, tile in CANDIDATES:
        name = f"{order}_t{tile}"
        (d / f"{name}.json").write_text(json.dumps({"order": order, "tile": tile}))
        meta = {"kind": "kernel", "scopes": ["staging", "prod"], "envelope": {"knobs": {"tile": [tile, tile]}}}
        cat.add_variant(path, name, 1, d / f"{name}.json", meta)
    for v in cat.read_catalog(path).signed.variants:
        knobs = json.loads((d / v.payload.path).read_text())
        figures, ok = {}, True
        for bucket, (a, b, c) in inputs.items():
            run_variant(knobs, a, b, c)  # compile and warm
            ok &= bool(np.allclose(c, a @ b))
            figures[f"{bucket}_us"] = min(run_variant(knobs, a, b, c) for _ in range(3))
        if ok:
            cat.promote(path, v.id, "approved", by="gate:correctness+timing", figures=figures)
    cat.sign_catalog(path, d / "release")
    return cat.load_catalog(path, [d / "release.pub"], scope="prod", state=False)


def run(decisions: int = 600, seed: int = 0, progress=None) -> dict:
    """The scenario: returns the live (bucket, variant) and time of every decision, the per-variant medians, the
    fixed-variant totals, the catalog, the candidates it refused and the executor."""
    rng = np.random.default_rng(seed)
    inputs = {bucket: (rng.normal(size=(n, n)), rng.normal(size=(n, n)), np.zeros((n, n)))
              for bucket, n in SIZES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        catalog = build_catalog(pathlib.Path(tmp), inputs)
        knobs = [json.loads(catalog.payload_path(v).read_text()) for v in catalog.variants]
    ids = catalog.ids
    policy = {"params": {}, "metrics": ["us"], "variant": {"cooldown": 0}, "safe_mode_after": 0}
    executor = arqon.Executor(policy, None, catalog)
    # rewards near -1 (the fastest) to about -1.5; timing noise of a few percent
    prior = {"prior_mean": -1.0, "prior_var": 0.25, "noise_var": 0.01}
    selectors = {b: arqon.Selector({"arms": list(ids), "policy": "gaussian-thompson", "seed": seed + i,
                                    "gaussian_thompson": prior}) for i, b in enumerate(SIZES)}
    reference = {b: min(v.evidence[-1].figures[f"{b}_us"] for v in catalog.variants) for b in SIZES}
    phases = [("n64", decisions // 3), ("n192", decisions // 3), ("n64", decisions - 2 * (decisions // 3))]
    live, times, reward, now, last, us = [], [], None, 0, None, math.nan
    for bucket, steps in phases:
        a, b, c = inputs[bucket]
        if last is not None:  # the last time measured belongs to the last bucket's selector
            previous = selectors[last]
            if previous.pending == ids.index(executor.variant):
                previous.update(previous.pending, reward)
            reward = None
        for _ in range(steps):
            executor.step(None, {"us": us} if now else {}, math.nan, now, selector=selectors[bucket], reward=reward)
            variant = executor.variant
            us = run_variant(knobs[ids.index(variant)], a, b, c)
            live.append((bucket, variant))
            times.append(us)
            reward = -us / reference[bucket]
            now += 1
            if progress:
                progress.update()
        last = bucket
    # the same phases with one variant throughout, for each variant: its median time per size times the decisions
    median = {(name, bucket): float(np.median([run_variant(knobs[i], *inputs[bucket]) for _ in range(15)]))
              for i, name in enumerate(ids) for bucket in SIZES}
    fixed = {name: sum(steps * median[name, bucket] for bucket, steps in phases) for name in ids}
    refused = sorted({f"{order}_t{tile}" for order, tile in CANDIDATES} - set(ids))
    return {"live": live, "times": np.array(times), "total": float(np.sum(times)), "fixed": fixed, "median": median,
            "ids": ids, "catalog": catalog, "refused": refused, "executor": executor}


def summarize(out: dict) -> list[dict]:
    """Online against the best and the worst single variant, and per size bucket the variant most live against the
    fastest by median."""
    fixed, median, ids = out["fixed"], out["median"], out["ids"]
    best, worst = min(fixed, key=fixed.get), max(fixed, key=fixed.get)
    swaps = out["executor"].counters()["applied"]
    rows = [{"run": "arqon (online)", "kernel ms": round(out["total"] / 1e3), "vs best": out["total"] / fixed[best],
             "swaps": swaps, **{f"most live ({b})": None for b in SIZES}},
            {"run": f"best single ({best})", "kernel ms": round(fixed[best] / 1e3), "vs best": 1.0, "swaps": 0},
            {"run": f"worst single ({worst})", "kernel ms": round(fixed[worst] / 1e3),
             "vs best": fixed[worst] / fixed[best], "swaps": 0}]
    for bucket in SIZES:
        chosen = [v for bk, v in out["live"] if bk == bucket]
        top = max(set(chosen), key=chosen.count)
        fastest = min(ids, key=lambda name: median[name, bucket])
        rows[0][f"most live ({bucket})"] = f"{top} {chosen.count(top)}/{len(chosen)}"
        rows[1][f"most live ({bucket})"] = f"fastest: {fastest}"
        rows[2][f"most live ({bucket})"] = None
    return rows


def plot(out: dict, path: pathlib.Path) -> pathlib.Path:
    """The live variant at every decision (colour: size bucket) and each decision's kernel time against the fastest
    variant's median for that size."""
    from arqon.report import _pyplot, _save

    plt = _pyplot()
    ids = out["ids"]
    buckets = [b for b, _ in out["live"]]
    steps = np.arange(len(buckets))
    colour = np.array([list(SIZES).index(b) for b in buckets])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.scatter(steps, [ids.index(v) for _, v in out["live"]], s=3, c=colour, cmap="coolwarm")
    top.set_yticks(range(len(ids)), ids, fontsize=7)
    top.set_title(f"{TITLE}: the live variant (blue n64, red n192)")
    bottom.plot(steps, out["times"], lw=0.5, color="tab:blue", label="kernel time of the live variant")
    fastest = np.array([min(out["median"][name, b] for name in ids) for b in buckets])
    bottom.plot(steps, fastest, lw=1, color="black", ls="--", label="fastest variant's median for the size")
    bottom.set_yscale("log")
    bottom.set_ylabel("us")
    bottom.set_xlabel("decision")
    bottom.legend(fontsize=8, loc="upper right")
    return _save(fig, path)
