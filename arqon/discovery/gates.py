"""The promotion gates' verdicts, computed from evaluations already made (so a resumed run computes the same ones).

Each gate gives one evidence record: ``{"gate", "verdict", "reason", "figures", "inputs"}`` with verdict ``pass``,
``fail``, ``skipped`` (the spec does not declare it) or ``pending`` (approval awaits more signatures). The regression
and robustness gates are non-inferiority tests on paired samples: candidate and baseline are evaluated with the same
seeds, and the gate passes only when the one-sided Wilcoxon signed-rank test finds the candidate no worse than the
baseline by more than ``tolerance`` at level ``alpha`` (the paired counterpart of Mann-Whitney; exact, with ties).
"""

from __future__ import annotations

import math

import numpy as np

from arqon.discovery.spec import Spec

GATES = ("correctness", "constraints", "robustness", "regression", "canary", "approval")
EXACT_UP_TO = 400  # pairs: beyond this, the normal approximation (with the ties' correction) is used


def signed_rank_less(d) -> tuple[float, int]:
    """P(W+ <= w) under the null that ``d`` is symmetric about 0, where W+ is the sum of the ranks of |d| over the
    positive d: the one-sided p-value for "the median of d is below 0". Zeros are dropped; tied |d| share their mean
    rank; the distribution is the exact one given those ranks (up to ``EXACT_UP_TO`` nonzero values). Returns (p, n)."""
    d = np.asarray(d, dtype=np.float64)
    d = d[d != 0.0]
    n = d.shape[0]
    if n == 0:
        return 1.0, 0
    a = np.abs(d)
    order = np.argsort(a, kind="stable")
    doubled = np.empty(n, dtype=np.int64)  # twice the mean rank of each value's tie group: an integer
    i = 0
    while i < n:
        j = i
        while j + 1 < n and a[order[j + 1]] == a[order[i]]:
            j += 1
        doubled[order[i:j + 1]] = i + j + 2
        i = j + 1
    w = int(doubled[d > 0].sum())
    if n > EXACT_UP_TO:
        mean = doubled.sum() / 2.0
        _, counts = np.unique(a, return_counts=True)
        var = (n * (n + 1) * (2 * n + 1) / 6.0 - float(np.sum(counts ** 3 - counts)) / 12.0)  # in doubled units: x4
        z = (w + 1.0 - mean) / math.sqrt(var)  # continuity: one doubled unit = half a rank
        return 0.5 * math.erfc(-z / math.sqrt(2.0)), n
    dist = np.zeros(int(doubled.sum()) + 1)
    dist[0] = 1.0
    top = 0
    for r in doubled.tolist():
        shifted = dist[:top + 1].copy()
        dist[:top + 1] *= 0.5
        dist[r:top + r + 1] += 0.5 * shifted
        top += r
    return float(min(1.0, dist[:w + 1].sum())), n


def record(gate: str, verdict: str, reason: str, figures: dict | None = None, inputs: dict | None = None) -> dict:
    return {"gate": gate, "verdict": verdict, "reason": reason, "figures": figures or {}, "inputs": inputs or {}}


def mean_of(result: dict | None, metric: str) -> float:
    """The mean of ``metric``'s samples in an evaluation's result (NaN when it failed or lacks the metric)."""
    if result is None or metric not in result:
        return math.nan
    return math.fsum(result[metric]) / len(result[metric])


def statistic(samples: list[float], stat: str) -> float:
    """``stat`` (mean, median, min, max, pNN) of ``samples``."""
    x = np.asarray(samples, dtype=np.float64)
    if stat == "mean":
        return math.fsum(samples) / len(samples)
    if stat in ("min", "max"):
        return float(getattr(x, stat)())
    q = 50.0 if stat == "median" else float(stat[1:])
    return float(np.percentile(x, q))


def not_worse(spec: Spec, candidate: list[float], baseline: list[float], scenario: str) -> tuple[bool, dict, str]:
    """The non-inferiority test of the candidate's per-seed objectives against the baseline's (same seeds)."""
    g = spec.gates
    sense = 1.0 if spec.direction == "minimize" else -1.0
    c, b = np.asarray(candidate), np.asarray(baseline)
    figures = {"candidate_median": float(np.median(c)), "baseline_median": float(np.median(b)),
               "seeds": len(candidate)}
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(b))):
        failed = int(np.sum(~np.isfinite(c))), int(np.sum(~np.isfinite(b)))
        return False, figures, f"{scenario}: {failed[0]} candidate and {failed[1]} baseline evaluations failed"
    d = sense * (c - b) - g.tolerance * np.abs(b)
    p, n = signed_rank_less(d)
    worse = int(np.sum(sense * (c - b) > 0))
    figures.update(p=p, worse_seeds=worse)
    tol = f" beyond {g.tolerance:.3g} of it" if g.tolerance else ""
    verdict = p <= g.alpha
    word = "no worse than" if verdict else "not shown no worse than"
    return verdict, figures, (f"{scenario}: {word} the baseline{tol} (median {figures['candidate_median']:.6g} "
                              f"against {figures['baseline_median']:.6g}, worse on {worse} of {len(c)} seeds, "
                              f"one-sided signed-rank p = {p:.3g}, alpha {g.alpha})")


def correctness(spec: Spec, checks: list) -> dict:
    """Gate 1 from the ``check`` results at each gate seed: ``(broken names, error)`` pairs."""
    if spec.gates.check is None:
        return record("correctness", "skipped", "no `gates.check` declared")
    errors = [e for _, e in checks if e is not None]
    broken = sorted({name for names, e in checks if e is None for name in names})
    figures = {"checks": len(checks), "failed": sum(1 for names, e in checks if e is not None or names)}
    inputs = {"check": spec.gates.check}
    if errors:
        return record("correctness", "fail", f"the check raised: {errors[0]}", figures, inputs)
    if broken:
        return record("correctness", "fail", f"breaks {', '.join(broken)} on {figures['failed']} of "
                                              f"{len(checks)} seeds", figures, inputs)
    return record("correctness", "pass", f"every invariant holds on {len(checks)} seeds", figures, inputs)


def constraints(spec: Spec, results: list) -> dict:
    """Gate 2 over every sample of the candidate's nominal evaluations."""
    declared = spec.gates.parsed_constraints
    if not declared:
        return record("constraints", "skipped", "no `gates.constraints` declared")
    inputs = {"constraints": list(spec.gates.constraints)}
    if any(r is None for r in results):
        return record("constraints", "fail", f"{sum(r is None for r in results)} nominal evaluations failed", {},
                      inputs)
    figures, broken = {}, []
    for (metric, stat, op, limit), text in zip(declared, spec.gates.constraints, strict=True):
        samples = [x for r in results for x in r.get(metric, [])]
        if not samples:
            broken.append(f"`{text}`: {metric} was not measured")
            continue
        value = statistic(samples, stat)
        figures[f"{metric}_{stat}"] = value
        if not (value <= limit if op == "<=" else value >= limit):
            broken.append(f"`{text}`: measured {value:.6g} over {len(samples)} samples")
    if broken:
        return record("constraints", "fail", "; ".join(broken), figures, inputs)
    return record("constraints", "pass", f"{len(declared)} constraints hold over every nominal sample", figures,
                  inputs)


def compared(spec: Spec, gate: str, pairs: dict) -> dict:
    """Gates 3 and 4: ``pairs`` maps a scenario's name to (candidate results, baseline results), seed by seed."""
    if not pairs:
        return record(gate, "skipped", "no `gates.scenarios` declared")
    figures, failed, passed = {}, [], []
    for scenario, (cand, base) in pairs.items():
        ok, figures[scenario], reason = not_worse(spec, [mean_of(r, spec.objective) for r in cand],
                                                  [mean_of(r, spec.objective) for r in base], scenario)
        (passed if ok else failed).append(reason)
    inputs = {"objective": spec.objective, "direction": spec.direction, "tolerance": spec.gates.tolerance,
              "alpha": spec.gates.alpha, "scenarios": list(pairs)}
    return record(gate, "fail" if failed else "pass", "; ".join(failed or passed), figures, inputs)


def canary(spec: Spec, candidate: list, baseline: list) -> dict:
    """Gate 5: the staging simulation through the safety executor (see ``arqon.discovery.spec.Canary``).
    ``candidate``/``baseline``: their staging results, seed by seed; the samples of each metric, concatenated in
    seed order, are the stream of observations (repeated from its start if the simulation outlasts it)."""
    from arqon.catalog import in_memory
    from arqon.executor import Executor, Flags

    c = spec.gates.canary
    if c is None:
        return record("canary", "skipped", "no `gates.canary` declared")
    policy = c.executor_policy
    inputs = {"steps": c.steps, "warmup": c.warmup, "slos": list(policy.slos),
              "stages": len(policy.canary.stages) if policy.canary else 0}
    metrics = list(policy.metrics)
    streams = {}
    for who, results in (("candidate", candidate), ("baseline", baseline)):
        if any(r is None for r in results):
            return record("canary", "fail", f"{sum(r is None for r in results)} staging evaluations of the {who} "
                                            "failed", {}, inputs)
        missing = [m for m in metrics if any(m not in r for r in results)]
        if missing:
            return record("canary", "fail", f"the {who}'s staging evaluations lack {missing}", {}, inputs)
        columns = [[x for r in results for x in r[m]] for m in metrics]
        length = min(len(col) for col in columns)
        streams[who] = np.array([col[:length] for col in columns]).T
    executor = Executor(policy, None, in_memory("staging", ("baseline", "candidate")))
    seen = {"baseline": 0, "candidate": 0}
    promoted_at = rolled_back_at = None
    why = ""
    for t in range(c.steps):
        if t == c.warmup:
            executor.swap("candidate", t)
        live = executor.variant
        row = streams[live][seen[live] % streams[live].shape[0]]
        seen[live] += 1
        flags = executor.observe(row.tolist(), t)
        if flags & Flags.ROLLED_BACK and rolled_back_at is None and t >= c.warmup:
            rolled_back_at, why = t, "|".join(f.name for f in Flags if f.value and flags & f.value == f.value)
        if promoted_at is None and t >= c.warmup and executor.baseline["variant"] == "candidate":
            promoted_at = t
    counts = executor.counters()
    figures = {"promoted_at": -1 if promoted_at is None else promoted_at, "rollbacks": counts["rollbacks"],
               "breaches": counts["breaches"], "candidate_observations": seen["candidate"]}
    if rolled_back_at is not None:
        return record("canary", "fail", f"rolled back at step {rolled_back_at} of {c.steps} ({why})", figures, inputs)
    if promoted_at is None:
        return record("canary", "fail", f"not promoted to known-good within {c.steps - c.warmup} observations",
                      figures, inputs)
    return record("canary", "pass", f"promoted to known-good at step {promoted_at} (swapped in at {c.warmup}), no "
                                    "rollback", figures, inputs)
