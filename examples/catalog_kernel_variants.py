"""Kernel variants from a signed catalog, chosen online by their measured time through the safety executor.

Offline: nine variants of a blocked matrix multiply (two loop orders x four tile sizes, and a "fast" loop order that
drops the last partial tile) are added to a catalog as candidates, each with its knobs as payload; a correctness gate
(against NumPy, at every input size) and a timing run promote the ones that pass, with their figures as evidence; the
catalog is signed and verified, and only approved variants reach the runtime. Online: the input size changes in phases
(64 -> 192 -> 64); one Gaussian Thompson selector per size bucket proposes a variant, the executor swaps it in under
its policy, the live variant runs, and minus its time (relative to the bucket's fastest offline time) is the reward.
At the end: the total kernel time against always running the best single variant and the worst, estimated from each
variant's median time per size measured after the online run.

Run: ``python examples/catalog_kernel_variants.py`` (about 10 s once compiled; needs PyNaCl:
``pip install 'arqon[catalog]'``).
"""

import argparse
import json
import math
import pathlib
import tempfile
import time

import numba
import numpy as np

import arqon
from arqon import catalog as cat


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
        cat.add_variant(path, name, 1, d / f"{name}.json",
                        {"kind": "kernel", "scopes": ["staging", "prod"], "envelope": {"knobs": {"tile": [tile, tile]}}})
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
    return cat.load_catalog(path, [d / "release.pub"], scope="prod")


def main(decisions=600, seed=0, quiet=False):
    rng = np.random.default_rng(seed)
    inputs = {bucket: (rng.normal(size=(n, n)), rng.normal(size=(n, n)), np.zeros((n, n)))
              for bucket, n in SIZES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        catalog = build_catalog(pathlib.Path(tmp), inputs)
        knobs = [json.loads(catalog.payload_path(v).read_text()) for v in catalog.variants]
    ids = catalog.ids
    refused = {f"{order}_t{tile}" for order, tile in CANDIDATES} - set(ids)
    policy = {"params": {}, "metrics": ["us"], "variant": {"cooldown": 0}, "safe_mode_after": 0}
    executor = arqon.Executor(policy, None, catalog)
    # rewards near -1 (the fastest) to about -1.5; timing noise of a few percent
    prior = {"prior_mean": -1.0, "prior_var": 0.25, "noise_var": 0.01}
    selectors = {b: arqon.Selector({"arms": list(ids), "policy": "gaussian-thompson", "seed": seed + i,
                                    "gaussian_thompson": prior}) for i, b in enumerate(SIZES)}
    reference = {b: min(v.evidence[-1].figures[f"{b}_us"] for v in catalog.variants) for b in SIZES}
    phases = [("n64", decisions // 3), ("n192", decisions // 3), ("n64", decisions - 2 * (decisions // 3))]
    live, spent, reward, now, last = [], {b: 0.0 for b in SIZES}, None, 0, None
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
            live.append((bucket, variant))
            us = run_variant(knobs[ids.index(variant)], a, b, c)
            spent[bucket] += us
            reward = -us / reference[bucket]
            now += 1
        last = bucket
    # the same phases with one variant throughout, for each variant: its median time per size times the decisions
    median = {(name, bucket): float(np.median([run_variant(knobs[i], *inputs[bucket]) for _ in range(15)]))
              for i, name in enumerate(ids) for bucket in SIZES}
    fixed = {name: sum(steps * median[name, bucket] for bucket, steps in phases) for name in ids}
    total = sum(spent.values())
    best, worst = min(fixed, key=fixed.get), max(fixed, key=fixed.get)
    if not quiet:
        print(f"catalog {catalog.name} v{catalog.version}: {len(ids)} approved variants of {len(CANDIDATES)} "
              f"candidates (refused: {', '.join(sorted(refused))})")
        for bucket in SIZES:
            chosen = [v for bk, v in live if bk == bucket]
            top = max(set(chosen), key=chosen.count)
            fastest = min(ids, key=lambda name: median[name, bucket])
            print(f"  {bucket}: most live {top} ({chosen.count(top)} of {len(chosen)} decisions, median "
                  f"{median[top, bucket]:.0f} us); fastest median {fastest} ({median[fastest, bucket]:.0f} us)")
        print(f"kernel time over {decisions} decisions: {total / 1e3:.1f} ms online, {fixed[best] / 1e3:.1f} ms with "
              f"the best single variant ({best}), {fixed[worst] / 1e3:.1f} ms with the worst ({worst}); "
              f"{executor.counters()['applied']} swaps")
    return {"live": live, "total": total, "fixed": fixed, "median": median, "ids": ids, "catalog": catalog,
            "executor": executor}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    main(parser.parse_args().decisions, parser.parse_args().seed)
