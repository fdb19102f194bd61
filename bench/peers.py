"""Quality against peers, in one run with the same seeds: arqon's strategies beside nevergrad, optuna, pycma and cmaes.

Writes a Markdown report (default ``docs/peers.md``). Needs the ``peers`` extra: ``pip install -e '.[peers]'``.

    python bench/peers.py [--seeds 5] [--out docs/peers.md]

Problems (all minimized, bounds [-5, 5] unless said): the ArqonHPO quickstart quadratic (2-D, [-10, 10], budget 200:
evaluations until a value within 1e-3 of the optimum); the 10-D sphere and Rosenbrock shifted so the optimum is at
1.2345 in every coordinate (budget 1000: best value found); the same with Gaussian noise of sigma 0.1 (2000
evaluations: the TRUE value of each optimizer's own recommendation at the end); a drifting 5-D sphere tracked with one
evaluation per step (mean regret); and the time per ask + tell.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np

import arqon

SHIFT = 1.2345


def sphere(x):
    return float(np.sum((np.asarray(x) - SHIFT) ** 2))


def rosenbrock(x):
    z = np.asarray(x) - SHIFT + 1.0
    return float(np.sum(100.0 * (z[1:] - z[:-1] ** 2) ** 2 + (1.0 - z[:-1]) ** 2))


def quickstart(x):
    return float((x[0] - 2.0) ** 2 + (x[1] + 1.0) ** 2)


class Arqon:
    def __init__(self, strategy, d, lo, hi, budget, seed, noise="unknown"):
        params = [{"name": f"x{i}", "min": lo, "max": hi} for i in range(d)]
        self.t = arqon.Tuner({"params": params, "budget": budget, "seed": seed, "strategy": strategy, "noise": noise})

    def ask(self):
        return [row.copy() for row in self.t.ask_batch()]

    def tell(self, xs, values):
        self.t.tell_batch(values)

    def recommend(self):
        return np.array(list(self.t.recommend().values()))


class ArqonNoisy(Arqon):
    """arqon with the config saying the objective is noisy (``noise = "high"``), as a user who knows would."""

    def __init__(self, strategy, d, lo, hi, budget, seed):
        super().__init__(strategy, d, lo, hi, budget, seed, noise="high")


class Nevergrad:
    def __init__(self, name, d, lo, hi, budget, seed):
        import nevergrad as ng

        param = ng.p.Array(shape=(d,), lower=lo, upper=hi)
        param.random_state = np.random.RandomState(seed)
        self.opt = ng.optimizers.registry[name](parametrization=param, budget=budget)

    def ask(self):
        self._cand = [self.opt.ask()]
        return [c.value for c in self._cand]

    def tell(self, xs, values):
        for c, v in zip(self._cand, values):
            self.opt.tell(c, v)

    def recommend(self):
        return np.asarray(self.opt.provide_recommendation().value)


class Optuna:
    def __init__(self, name, d, lo, hi, budget, seed):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed) if name == "TPE" else optuna.samplers.CmaEsSampler(seed=seed)
        self.study = optuna.create_study(sampler=sampler)
        self.d, self.lo, self.hi = d, lo, hi

    def ask(self):
        self._trial = self.study.ask()
        return [np.array([self._trial.suggest_float(f"x{i}", self.lo, self.hi) for i in range(self.d)])]

    def tell(self, xs, values):
        self.study.tell(self._trial, values[0])

    def recommend(self):
        return np.array([self.study.best_params[f"x{i}"] for i in range(self.d)])


class PyCma:
    def __init__(self, name, d, lo, hi, budget, seed):
        import cma

        self.es = cma.CMAEvolutionStrategy(np.full(d, (lo + hi) / 2), 0.3 * (hi - lo),
                                           {"bounds": [lo, hi], "seed": seed + 1, "verbose": -9})

    def ask(self):
        return self.es.ask()

    def tell(self, xs, values):
        self.es.tell(xs, values)

    def recommend(self):
        return np.asarray(self.es.result.xfavorite)


class CmaesLib:
    def __init__(self, name, d, lo, hi, budget, seed):
        from cmaes import CMA

        self.opt = CMA(mean=np.full(d, (lo + hi) / 2), sigma=0.3 * (hi - lo), bounds=np.array([[lo, hi]] * d),
                       seed=seed)

    def ask(self):
        return [self.opt.ask() for _ in range(self.opt.population_size)]

    def tell(self, xs, values):
        self.opt.tell(list(zip(xs, values)))

    def recommend(self):
        return np.asarray(self.opt.mean)


OPTIMIZERS = {
    "arqon auto": (Arqon, "auto"), "arqon auto, noise high": (ArqonNoisy, "auto"), "arqon cmaes": (Arqon, "cmaes"), "arqon es": (Arqon, "es"),
    "arqon spsa": (Arqon, "spsa"), "arqon pbt": (Arqon, "pbt"),
    "nevergrad OnePlusOne": (Nevergrad, "OnePlusOne"), "nevergrad SPSA": (Nevergrad, "SPSA"),
    "nevergrad TBPSA": (Nevergrad, "TBPSA"), "nevergrad CMA": (Nevergrad, "CMA"), "nevergrad NGOpt": (Nevergrad, "NGOpt"),
    "optuna TPE": (Optuna, "TPE"), "optuna CMA-ES": (Optuna, "CMA"), "pycma": (PyCma, ""), "cmaes": (CmaesLib, ""),
}


def run(name, f, d, lo, hi, budget, seed, noise=0.0, target=None):
    """One run: (evaluations until a true value <= target or None, best true value seen, true value of the
    recommendation, seconds per ask + tell outside f). Raises what the optimizer raises."""
    cls, arg = OPTIMIZERS[name]
    opt = cls(arg, d, lo, hi, budget, seed)
    rng = np.random.default_rng(10_000 + seed)
    n, hit, best, spent = 0, None, math.inf, 0.0
    while n < budget:
        t0 = time.perf_counter()
        xs = opt.ask()
        spent += time.perf_counter() - t0
        truncated = len(xs) > budget - n  # the budget ends inside this batch: measure what it allows, tell nothing
        xs = xs[: budget - n]
        true = [f(x) for x in xs]
        values = [v + noise * rng.standard_normal() for v in true] if noise else true
        for v in true:
            n += 1
            best = min(best, v)
            if hit is None and target is not None and v <= target:
                hit = n
        if truncated:
            break
        t0 = time.perf_counter()
        opt.tell(xs, values)
        spent += time.perf_counter() - t0
        if isinstance(opt, Arqon) and opt.t.done:
            break
    return hit, best, f(opt.recommend()), spent / max(n, 1)


DRIFT_STEPS, DRIFT_JUMP, DRIFT_D = 4000, 2000, 5


def drift_optimum(t):
    """The drifting 5-D sphere's optimum at step t: a circle of radius 1 in the first two coordinates (one turn per
    DRIFT_STEPS), 0.5 in the others, and a jump of +1 in every coordinate at step DRIFT_JUMP."""
    angle = 2 * math.pi * t / DRIFT_STEPS
    x = np.array([math.cos(angle), math.sin(angle)] + [0.5] * (DRIFT_D - 2))
    return x + 1.0 if t >= DRIFT_JUMP else x


def track(name, noise, seed, config=None):
    """Tracking run, one evaluation per step, objective mean((x - x*(t))^2) in [-5, 5]^5 (minimum 0): mean regret of
    the evaluated points and of the optimizer's own recommendation (read every 10 steps)."""
    if config is None:
        cls, arg = OPTIMIZERS[name]
        opt = cls(arg, DRIFT_D, -5.0, 5.0, DRIFT_STEPS, seed)
    else:
        opt = config(seed)
    rng = np.random.default_rng(20_000 + seed)
    queue, xs, values = [], [], []
    regret, rec_regret, n_rec = 0.0, 0.0, 0
    for t in range(DRIFT_STEPS):
        if not queue:
            queue = list(opt.ask())
            xs, values = [], []
        x = queue.pop(0)
        true = float(np.mean((np.asarray(x) - drift_optimum(t)) ** 2))
        regret += true
        xs.append(x)
        values.append(true + noise * rng.standard_normal())
        if not queue:
            opt.tell(xs, values)
        if t % 10 == 0:
            rec_regret += float(np.mean((opt.recommend() - drift_optimum(t)) ** 2))
            n_rec += 1
    return regret / DRIFT_STEPS, rec_regret / n_rec


# arqon's one tracking configuration, the same for both noise levels: constant SPSA gains; the perturbation (at most
# 0.02 of the range) adapts to the noise and curvature the pairs measure
TRACKING = {"strategy": "spsa",
            "spsa": {"gains": "constant", "perturbation": "adaptive", "c": 0.02, "initial_step": 0.015}}


def arqon_tracking(seed):
    opt = Arqon.__new__(Arqon)
    params = [{"name": f"x{i}", "min": -5.0, "max": 5.0} for i in range(DRIFT_D)]
    opt.t = arqon.Tuner({"params": params, "seed": seed, **TRACKING})
    return opt


def safe_run(*args, function=None, **kwargs):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return (function or run)(*args, **kwargs)
    except Exception as e:  # a peer crashing is a result, reported as such
        return f"crash: {type(e).__name__}: {str(e)[:80]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per optimizer and problem (default 5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "peers.md")
    parser.add_argument("--only", nargs="*", default=None, help="optimizer names to run (default: all)")
    args = parser.parse_args()
    names = args.only or list(OPTIMIZERS)
    seeds = range(args.seeds)
    problems = [
        ("quickstart 2-D, budget 200: seeds within 1e-3, median evaluations to get there", quickstart, 2, -10, 10, 200, 0.0, 1e-3),
        ("shifted sphere 10-D, budget 1000: seeds within 1e-3, median best value", sphere, 10, -5, 5, 1000, 0.0, 1e-3),
        ("shifted Rosenbrock 10-D, budget 1000: median best value", rosenbrock, 10, -5, 5, 1000, 0.0, None),
        ("noisy sphere 10-D (sigma 0.1), 2000 evaluations: median true value of the recommendation", sphere, 10, -5, 5, 2000, 0.1, None),
        ("noisy Rosenbrock 10-D (sigma 0.1), 2000 evaluations: median true value of the recommendation", rosenbrock, 10, -5, 5, 2000, 0.1, None),
    ]
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    from importlib.metadata import PackageNotFoundError, version

    def installed(name):
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} (not installed)"

    lines = ["# Quality against peers", "",
             f"`python bench/peers.py --seeds {args.seeds}`: every optimizer on the same problems and seeds, in one run "
             f"({', '.join(installed(n) for n in ('numpy', 'nevergrad', 'optuna', 'cma', 'cmaes'))}). A crash is "
             "reported as the result. Overhead is the median wall time of ask + tell per evaluation (the objective "
             "excluded), on the 10-D sphere.", ""]
    overhead = {}
    worst = {}  # (problem, arqon strategy) -> (true value at the start, worst seed's true value of its recommendation)
    for title, f, d, lo, hi, budget, noise, target in problems:
        lines += [f"## {title}", "", "| optimizer | result | per seed |", "|---|---|---|"]
        jobs = [(n, s) for n in names for s in seeds]
        results = {}
        bar = tqdm(jobs, desc=title.split(":")[0], leave=False) if tqdm else jobs
        for name, seed in bar:
            results.setdefault(name, []).append(safe_run(name, f, d, lo, hi, budget, seed, noise, target))
        for name in names:
            rs = results[name]
            crashes = [r for r in rs if isinstance(r, str)]
            ok = [r for r in rs if not isinstance(r, str)]
            if name.startswith("arqon") and ok:
                worst[title.split(",")[0], name] = (f(np.zeros(d)), max(r[2] for r in ok))
            if not ok:
                lines.append(f"| {name} | {crashes[0]} | |")
                continue
            if f is sphere and noise == 0.0:
                overhead[name] = float(np.median([r[3] for r in ok]))
            if target is not None:
                hits = [r[0] for r in ok if r[0] is not None]
                med = f", median {np.median(hits):.0f} evaluations" if hits and f is quickstart else ""
                result = f"{len(hits)}/{len(rs)} within {target:g}{med}; median best {np.median([r[1] for r in ok]):.3g}"
            elif noise:
                result = f"{np.median([r[2] for r in ok]):.4g}"
            else:
                result = f"{np.median([r[1] for r in ok]):.4g}"
            per_seed = ", ".join(f"{(r[2] if noise else r[1]):.3g}" if not isinstance(r, str) else "crash" for r in rs)
            lines.append(f"| {name} | {result}{' (' + str(len(crashes)) + ' crashed)' if crashes else ''} | {per_seed} |")
        lines.append("")
    lines += ["## Drifting 5-D sphere: mean tracking regret, one evaluation per step", "",
              f"mean((x - x*(t))^2) over [-5, 5]^5; x*(t) turns once round a circle of radius 1 in two coordinates over "
              f"{DRIFT_STEPS} steps and jumps by +1 in every coordinate at step {DRIFT_JUMP}. Regret of the evaluated "
              "points (what a live system runs) and of each optimizer's own recommendation (every 10 steps), median "
              f"over seeds. `arqon tracking` is one configuration for both noise levels: `{TRACKING}`. Budget-free "
              "peers run with a budget of the run's length; optuna TPE is left out (thousands of sequential trials "
              "take minutes per run).", "",
              "| optimizer | regret, no noise | recommendation, no noise | regret, sigma 0.1 | recommendation, sigma 0.1 |",
              "|---|---|---|---|---|"]
    trackers = ["arqon tracking"] + [n for n in names if n != "optuna TPE" and not n.startswith("arqon")]
    bar = tqdm(trackers, desc="drift", leave=False) if tqdm else trackers
    for name in bar:
        cells = []
        for noise in (0.0, 0.1):
            rs = [safe_run(None if name == "arqon tracking" else name, noise, seed, function=track,
                           config=arqon_tracking if name == "arqon tracking" else None) for seed in seeds]
            ok = [r for r in rs if not isinstance(r, str)]
            cells += ([f"{np.median([r[0] for r in ok]):.4f}", f"{np.median([r[1] for r in ok]):.4f}"] if ok
                      else [rs[0], ""])
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines.append("")
    lines += ["## arqon's worst seed against its start", "",
              "True value of the recommendation at the end, worst seed, beside the true value at the start (the "
              "centre of the box, where every arqon strategy starts). No strategy may end worse than it started.", "",
              "| problem | optimizer | start | worst seed's end | end / start |", "|---|---|---|---|---|"]
    lines += [f"| {problem} | {name} | {start:.4g} | {end:.4g} | {end / start:.3g} |"
              for (problem, name), (start, end) in worst.items()]
    lines.append("")
    lines += ["## Overhead per ask + tell (10-D sphere, median over seeds)", "", "| optimizer | us per evaluation |",
              "|---|---|"]
    lines += [f"| {n} | {overhead[n] * 1e6:.1f} |" for n in names if n in overhead]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
