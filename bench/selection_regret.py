"""Regret of arqon's bandit policies beside mabwiser's and river's on the SAME reward streams, in one run.

Three problems, each run R times with seeded streams (a reward for every arm at every step, drawn in advance, so every
policy of every library sees the same rewards for the same choices):

- (a) stationary Bernoulli, K = 10, means drawn uniformly in [0.1, 0.9] per run;
- (b) piecewise-stationary Bernoulli, K = 5, all means redrawn at t = 2000, 4000, 6000, 8000 (the best arm changes
  every time);
- (c) contextual linear, d = 8, K = 8: reward = theta_a . x + N(0, 0.1^2), theta_a and x unit vectors.

Regret is the pseudo-regret against the best arm of the moment (sum of best mean - chosen arm's mean). Time is the
wall time per decision + update of the library's own loop (arqon: the @njit kernels in a loop over the stream).
Writes ``docs/bandit-regret.md``. Run: ``make bandits`` (``--quick`` for a smoke run).
"""

import argparse
import math
import time
from pathlib import Path

import numba
import numpy as np
from tqdm import tqdm

import arqon
from arqon.kernels import bandit as kb

DOC = Path(__file__).resolve().parent.parent / "docs" / "bandit-regret.md"


def stationary(run, horizon, k=10):
    rng = np.random.default_rng(1000 + run)
    means = np.tile(rng.uniform(0.1, 0.9, k), (horizon, 1))
    return means, (rng.random((horizon, k)) < means).astype(np.float64), None


def piecewise(run, horizon, k=5, changes=(2000, 4000, 6000, 8000)):
    rng = np.random.default_rng(2000 + run)
    means = np.zeros((horizon, k))
    bounds = [0, *[c for c in changes if c < horizon], horizon]
    last_best = -1
    for start, end in zip(bounds[:-1], bounds[1:]):
        while True:
            mu = rng.uniform(0.05, 0.95, k)
            if int(np.argmax(mu)) != last_best:
                break
        last_best = int(np.argmax(mu))
        means[start:end] = mu
    return means, (rng.random((horizon, k)) < means).astype(np.float64), None


def contextual(run, horizon, k=8, d=8, noise=0.1):
    rng = np.random.default_rng(3000 + run)
    theta = rng.normal(size=(k, d))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    x = rng.normal(size=(horizon, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    means = x @ theta.T
    return means, means + rng.normal(0.0, noise, (horizon, k)), x


@numba.njit
def _arqon_loop(state, rewards, contexts, linear):
    horizon, k = rewards.shape
    mask = np.ones(k, np.bool_)
    empty = np.zeros(0)
    chosen = np.zeros(horizon, np.int64)
    arm = kb.select(state, mask, contexts[0] if linear else empty)
    for t in range(horizon):
        chosen[t] = arm
        if t + 1 < horizon:
            arm = kb.step(state, rewards[t, arm], empty, mask, contexts[t + 1] if linear else empty)
    return chosen


def arqon_policy(config):
    def run(rewards, contexts, seed):
        sel = arqon.Selector({**config, "arms": rewards.shape[1], "seed": seed,
                              **({"context": contexts.shape[1]} if contexts is not None else {})})
        linear = contexts is not None
        return _arqon_loop(sel.state, rewards, contexts if linear else np.zeros((1, 1)), linear)
    return run


def mabwiser_policy(make):
    def run(rewards, contexts, seed):
        from mabwiser.mab import MAB

        horizon, k = rewards.shape
        mab = MAB(list(range(k)), make(), seed=seed)
        first = np.arange(k)  # one play of each arm to start, as mabwiser needs a fit before it predicts
        if contexts is None:
            mab.fit(first, rewards[first, first])
        else:
            mab.fit(first, rewards[first, first], contexts[:k])
        chosen = np.zeros(horizon, np.int64)
        chosen[:k] = first
        for t in range(k, horizon):
            arm = int(mab.predict() if contexts is None else mab.predict(contexts[t:t + 1]))
            chosen[t] = arm
            if contexts is None:
                mab.partial_fit([arm], [rewards[t, arm]])
            else:
                mab.partial_fit([arm], [rewards[t, arm]], contexts[t:t + 1])
        return chosen
    return run


def river_policy(make, bernoulli):
    def run(rewards, contexts, seed):
        horizon, k = rewards.shape
        policy = make(seed)
        arms = list(range(k))
        chosen = np.zeros(horizon, np.int64)
        for t in range(horizon):
            if contexts is None:
                arm = policy.pull(arms)
            else:
                ctx = {i: float(v) for i, v in enumerate(contexts[t])}
                arm = policy.pull(arms, context=ctx)
            chosen[t] = arm
            r = rewards[t, arm]
            if contexts is not None:
                policy.update(arm, ctx, r)
            else:
                policy.update(arm, bool(r) if bernoulli else r)
        return chosen
    return run


def candidates(problem):
    from mabwiser.mab import LearningPolicy
    from river import bandit, proba

    lib = {}
    if problem in ("a", "b"):
        names = ["thompson", "klucb", "ucb1", "gaussian-thompson"]
        if problem == "b":
            names = ["discounted-thompson", "sliding-window-thompson", "sliding-window-ucb", "discounted-ucb",
                     "glr-klucb", "thompson", "klucb"]
        for name in names:
            lib[("arqon", name)] = arqon_policy({"policy": name})
        lib[("mabwiser", "ThompsonSampling")] = mabwiser_policy(lambda: LearningPolicy.ThompsonSampling())
        lib[("mabwiser", "UCB1(alpha=1)")] = mabwiser_policy(lambda: LearningPolicy.UCB1(alpha=1))
        lib[("mabwiser", "EpsilonGreedy(0.1)")] = mabwiser_policy(lambda: LearningPolicy.EpsilonGreedy(epsilon=0.1))
        lib[("river", "ThompsonSampling(Beta)")] = river_policy(
            lambda s: bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=s), True)
        lib[("river", "UCB(delta=1)")] = river_policy(lambda s: bandit.UCB(delta=1, seed=s), False)
        lib[("river", "EpsilonGreedy(0.1)")] = river_policy(lambda s: bandit.EpsilonGreedy(epsilon=0.1, seed=s), False)
    else:
        lib[("arqon", "linucb")] = arqon_policy({"policy": "linucb"})
        lib[("arqon", "lints")] = arqon_policy({"policy": "lints", "lints": {"explore": 0.5}})
        lib[("mabwiser", "LinUCB(alpha=1)")] = mabwiser_policy(lambda: LearningPolicy.LinUCB(alpha=1))
        lib[("mabwiser", "LinTS(alpha=1)")] = mabwiser_policy(lambda: LearningPolicy.LinTS(alpha=1))
        lib[("river", "LinUCBDisjoint(alpha=1)")] = river_policy(
            lambda s: bandit.LinUCBDisjoint(alpha=1.0, seed=s), False)
    return lib


PROBLEMS = {"a": ("stationary Bernoulli, K = 10", stationary), "b": ("piecewise-stationary Bernoulli, K = 5, "
            "changes at t = 2000, 4000, 6000, 8000", piecewise), "c": ("contextual linear, d = 8, K = 8", contextual)}


def measure(problem, runs, horizon):
    """{(library, policy): (regrets per run, seconds per decision per run)} on ``runs`` seeded streams."""
    make = PROBLEMS[problem][1]
    lib = candidates(problem)
    out = {key: ([], []) for key in lib}
    warm = make(0, 64)  # compile arqon's loops outside the timed runs
    for key, run in lib.items():
        if key[0] == "arqon":
            run(warm[1], warm[2], 0)
    for r in tqdm(range(runs), desc=f"problem ({problem})", leave=False):
        means, rewards, contexts = make(r, horizon)
        best = means.max(axis=1)
        for key, run in lib.items():
            start = time.perf_counter()
            chosen = run(rewards, contexts, r)
            elapsed = time.perf_counter() - start
            regret = float((best - means[np.arange(horizon), chosen]).sum())
            out[key][0].append(regret)
            out[key][1].append(elapsed / horizon)
    return out


def table(results):
    """Markdown rows sorted by mean regret, with each policy's per-run difference to the best peer (the same streams:
    a paired comparison), and the best arqon policy's ratio to the best peer."""
    rows = []
    peer = min((k for k in results if k[0] != "arqon"), key=lambda k: np.mean(results[k][0]))
    best_peer = np.mean(results[peer][0])
    for key, (regret, seconds) in sorted(results.items(), key=lambda kv: np.mean(kv[1][0])):
        diff = np.array(regret) - np.array(results[peer][0])
        n = len(regret)
        se = np.std(regret, ddof=1) / math.sqrt(n) if n > 1 else math.nan
        se_diff = np.std(diff, ddof=1) / math.sqrt(n) if n > 1 else math.nan
        rows.append(f"| {key[0]} | {key[1]} | {np.mean(regret):.1f} ± {se:.1f} | {np.mean(regret) / best_peer:.2f} | "
                    f"{np.mean(diff):+.1f} ± {se_diff:.1f} | {np.median(seconds) * 1e6:.2f} |")
    ours = min(np.mean(v[0]) for k, v in results.items() if k[0] == "arqon")
    return rows, ours / best_peer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="seeded streams per problem (default 10)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 runs of 300 steps, no file written")
    args = parser.parse_args(argv)
    runs = 2 if args.quick else args.runs
    horizons = {"a": 300, "b": 300, "c": 300} if args.quick else {"a": 10_000, "b": 10_000, "c": 3_000}
    lines = [f"# Bandit regret beside mabwiser and river", "",
             f"Written by `python bench/selection_regret.py --runs {runs}` (`make bandits`): {runs} seeded streams per "
             "problem, every policy of every library on the same rewards; pseudo-regret against the best arm of the "
             "moment at the horizon (mean ± standard error over the runs), its ratio to the best peer's, the mean "
             "per-run difference to the best peer on the same stream (± its standard error), and the "
             "median wall time per decision + update of each library's own loop (arqon: its @njit kernels in a loop). "
             "SMPyBandits is not installable here (not in the package index this project installs from). Default "
             "settings everywhere except linear Thompson's scale (arqon `explore` 0.5; mabwiser's LinTS alpha 1).", ""]
    ratios = {}
    for problem, (title, _) in PROBLEMS.items():
        results = measure(problem, runs, horizons[problem])
        rows, ratio = table(results)
        ratios[problem] = ratio
        lines += [f"## ({problem}) {title}, horizon {horizons[problem]}", "",
                  "| library | policy | regret | / best peer | minus best peer, paired | us per decision |",
                  "|---|---|---|---|---|---|", *rows, "",
                  f"Best arqon policy / best peer: **{ratio:.2f}**", ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        DOC.write_text(text)
    return ratios


if __name__ == "__main__":
    main()
