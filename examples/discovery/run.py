"""Phase 3: offline discovery feeding the live inference server's catalog, with no restart.

1. The phase-2 catalog (twelve approved variants, signed) is built in --out, and the live loop starts on it: one
   Gaussian Thompson selector per context, SLA-first, every swap under the safety executor's policy.
2. Half-way through the schedule, ``arqon discover`` runs ``spec.toml`` (a genetic search over quantization, share of
   layers and batch size, six gates) and promotes the variants that pass into that catalog, signed by its key.
3. The live loop loads the new catalog version between two steps (``executor.use_catalog``, ``selector.with_arms``)
   and goes on: the promoted variants are now selectable. The same second half is also run on the old catalog, with
   the same seeds, to show what the new variants changed.

    python examples/discovery/run.py [--out DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import tomllib
from pathlib import Path

import msgspec
import numpy as np

import arqon
from arqon import catalog as cat
from arqon.demo import inference as inf
from arqon.discovery import discover
from arqon.discovery.cli import summary

HERE = Path(__file__).resolve().parent
HALF = sum(steps for steps, *_ in inf.SCHEDULE[:5])


def selectors_for(ids, seed: int) -> dict:
    return {c: arqon.Selector({"arms": list(ids), "policy": "gaussian-thompson", "seed": seed + i,
                               "gaussian_thompson": {"prior_mean": 0.8, "prior_var": 0.01, "noise_var": 1e-4},
                               "metrics": ["p99"], "constraints": [{"metric": "p99", "max": inf.SLO_MS}],
                               "confidence": 0.95, "min_samples": 3, "fallback": inf.KNOWN_GOOD})
            for i, c in enumerate(inf.CONTEXTS)}


class Live:
    """The live loop of the phase-2 inference demo, over whatever catalog it is given, one step at a time."""

    def __init__(self, catalog, seed: int):
        policy = {"params": {}, "metrics": ["p99"], "slos": [f"p99 <= {inf.SLO_MS}"], "safe_mode_after": 0,
                  "variant": {"known_good": inf.KNOWN_GOOD, "cooldown": 0}}
        self.executor = arqon.Executor(policy, None, catalog)
        self.selectors = selectors_for(self.executor.variants, seed)
        self.knobs, self.hardware_of = {}, {}
        self._learn(catalog)
        self.rng = np.random.default_rng(seed)
        self.last_context = self.last_hardware = None
        self.rewards, self.live, self.breaches = [], [], 0

    def _learn(self, catalog) -> None:
        for v in catalog.variants:
            self.knobs[v.id] = json.loads(catalog.payload_path(v).read_text())["knobs"]
            self.hardware_of[v.id] = set(v.envelope.hardware)

    def use(self, catalog, t: int) -> None:
        """Take a newer version of the catalog between two steps; the selectors grow by its new variants."""
        self.executor.use_catalog(catalog, t)
        self._learn(catalog)
        self.selectors = {c: s.with_arms(self.executor.variants) for c, s in self.selectors.items()}
        self.last_hardware = None  # the envelope mask is rebuilt for the new variants at the next step

    def step(self, t: int) -> None:
        ex, ids = self.executor, self.executor.variants
        context = inf.context_at(t)
        hardware = context[0]
        selector = self.selectors[context]
        mask = np.array([hardware in self.hardware_of[v] for v in ids])
        if hardware != self.last_hardware:
            ex.allow([v for v, ok in zip(ids, mask) if ok], t)
            self.last_hardware = hardware
        if context != self.last_context:
            ex.swap(selector.select(eligible=mask), t)
        live = int(ex.live[-1])
        window = inf.serve(self.knobs[ids[live]], context, self.rng)
        flags = ex.observe({"p99": window["p99"]}, t)
        if selector.pending == live:
            arm = selector.step(window["reward"], eligible=mask, metrics=[window["p99"]])
        else:
            arm = selector.pending if selector.pending is not None else selector.select(eligible=mask)
        if not flags & arqon.Flags.ROLLED_BACK:
            ex.swap(arm, t)
        self.rewards.append(inf.expected(self.knobs[ids[live]], *context)["reward"])
        self.live.append(ids[live])
        self.breaches += window["p99"] > inf.SLO_MS
        self.last_context = context


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns the discovery's outcome, the two live loops, the new catalog and the added ids."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="arqon-discovery", help="folder for the catalog, the run and its report")
    parser.add_argument("--workers", type=int, default=2, help="local processes for the evaluations (default 2)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    catalog = inf.build_catalog(out)  # the phase-2 catalog, signed by out/release
    spec = tomllib.loads((HERE / "spec.toml").read_text())
    spec["path"] = [str(HERE)]
    (out / "spec.json").write_bytes(msgspec.json.encode(spec))

    started = time.perf_counter()
    live, control = Live(catalog, args.seed), Live(catalog, args.seed)
    for t in range(HALF):
        live.step(t)
        control.step(t)
    print(f"online, first half: {HALF} steps on catalog v{catalog.version} ({len(catalog.variants)} variants)")

    outcome = discover(out / "spec.json", workers=args.workers, progress=not args.quiet)
    print(summary(outcome))
    new = cat.load_catalog(out / "inference.json", [out / "release.pub"], scope="prod", state=False)
    added = [v.id for v in new.variants if v.id not in catalog.ids]
    live.use(new, HALF)
    print(f"\nonline: catalog v{new.version} taken between steps {HALF - 1} and {HALF}, no restart: "
          f"{len(added)} new variants ({', '.join(added) or 'none'})")
    for t in range(HALF, inf.STEPS):
        live.step(t)
        control.step(t)
    second = slice(HALF, inf.STEPS)
    with_new = float(np.mean(live.rewards[second]))
    without = float(np.mean(control.rewards[second]))
    share = np.mean([v in added for v in live.live[second]])
    print(f"second half ({inf.STEPS - HALF} steps): mean expected reward {with_new:.5f} with the discovered "
          f"variants, {without:.5f} without ({with_new - without:+.5f}); discovered variants live on "
          f"{100 * share:.1f}% of its steps; SLO breaches {live.breaches} against {control.breaches}")
    for name in added:
        contexts = sorted({inf.context_at(t) for t in range(HALF, inf.STEPS) if live.live[t] == name})
        print(f"  {name} {new.variants[new.index(name)].envelope.knobs or ''} live in {len(contexts)} contexts: "
              + ", ".join("/".join(c) for c in contexts))
    from arqon.discovery.report import write_report

    print(f"report: {write_report(outcome)}; {time.perf_counter() - started:.1f} s in all")
    return {"outcome": outcome, "live": live, "control": control, "catalog": new, "added": added}


if __name__ == "__main__":
    main()
