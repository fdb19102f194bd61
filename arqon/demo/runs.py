"""``arqon demo``: the simulated service of ``arqon.demo.service`` tuned live through Tier 2 (the tuner), Tier 1 (the
safety executor), telemetry and the audit log, beside the same service run with the static best-at-start configuration
and with the tuner's proposals applied without guardrails; same load, same request noise, same seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import numpy as np

import arqon
from arqon.demo import inference
from arqon.demo import scenarios as sc
from arqon.demo import service as sv
from arqon.kernels import rng_seed
from arqon.outputs import private_folder

SLOS = ("p99_latency <= 60", "error_rate <= 0.01")
P99_LIMIT, ERROR_LIMIT = 60.0, 0.01
METRICS = ["p99_latency", "p50_latency", "error_rate", "cost"]
OPERATOR_DELAY = 50  # steps an operator takes to look at safe mode and resume
KERNEL_DECISIONS = 600  # decisions of the kernels scenario


def tuner_config(seed: int, start: np.ndarray) -> dict:
    """SPSA with constant gains (it tracks a moving optimum), starting from ``start``."""
    params = [{**knob, "init": float(value)} for knob, value in zip(sc.KNOBS, start, strict=True)]
    return {"params": params, "seed": seed,
            "spsa": {"gains": "constant", "c": 0.02, "initial_step": 0.01, "max_step": 0.025}}


def objective(metrics: dict) -> float:
    """What the tuner minimizes: the log of the service's cost plus a penalty growing with how far a window broke an
    SLO, so the tuner learns where the constraints are (the executor enforces them either way)."""
    over = max(metrics["p99_latency"] / P99_LIMIT - 1.0, 0.0) + max(metrics["error_rate"] / ERROR_LIMIT - 1.0, 0.0)
    return math.log(metrics["cost"] + 5.0 * over)  # the log: a timeout storm's spike must not swamp every gradient


POLICY = {
    "params": {k["name"]: {"max_delta_fraction": 0.25} for k in sc.KNOBS},
    "metrics": METRICS,
    "slos": list(SLOS),
    # each candidate is judged at its first window: a p99 more than 30% above the known-good's rolls it back
    "canary": {"metric": "p99_latency", "stages": [{"min_samples": 1, "max_regression": 0.3}]},
    "safe_mode_after": 3,  # three rollbacks in a row: stop applying until an operator resumes
}
TELEMETRY = {"metrics": [
    {"name": "latency", "quantiles": [0.5, 0.99], "accuracy": 0.01},
    {"name": "errors", "quantiles": [], "sketch": False},
    {"name": "objective", "quantiles": [], "sketch": False,
     "drift": {"method": "cusum", "threshold": 12.0, "warmup": 100}},
]}


@attrs.define
class Run:
    """One run of a scenario, one row per window (step)."""

    name: str
    live: np.ndarray  # (steps, 5): the knobs the window ran with
    theta: np.ndarray  # (steps, 5): the tuner's estimate after the window (the live knobs for the static run)
    p99: np.ndarray
    p50: np.ndarray
    errors: np.ndarray
    cost: np.ndarray
    rollbacks: list = attrs.Factory(list)  # steps
    drifts: list = attrs.Factory(list)
    log: Path | None = None

    @property
    def breaches(self) -> np.ndarray:
        return (self.p99 > P99_LIMIT) | (self.errors > ERROR_LIMIT)

    @classmethod
    def empty(cls, name: str, steps: int) -> Run:
        d = len(sc.KNOBS)
        return cls(name, np.zeros((steps, d)), np.zeros((steps, d)), *(np.zeros(steps) for _ in range(4)))


class Service:
    """The simulated service with its telemetry: ``serve(knobs, step)`` runs one window and returns its metrics."""

    def __init__(self, scenario: sc.Scenario, requests: int, seed: int):
        self.env = scenario.environment()
        self.requests = requests
        self.rng = np.zeros(4, np.uint64)
        rng_seed(self.rng, np.uint64(seed))
        self.telemetry = arqon.Telemetry(TELEMETRY)

    def serve(self, knobs: np.ndarray, step: int) -> dict:
        tel = self.telemetry
        tel.new_generation()
        sv.serve_window(knobs, self.env[step], self.rng, tel.state, tel.ring.state, self.requests, step)
        p99, err = tel.stat("latency", "p99"), tel.stat("errors", "mean")
        metrics = {"p99_latency": p99, "p50_latency": tel.stat("latency", "p50"), "error_rate": err,
                   "cost": sv.window_cost(p99, knobs[2], err)}
        tel.emit("objective", objective(metrics), step)
        return metrics


def _keep(run: Run, t: int, knobs, metrics: dict) -> None:
    run.live[t] = knobs
    run.p99[t], run.p50[t] = metrics["p99_latency"], metrics["p50_latency"]
    run.errors[t], run.cost[t] = metrics["error_rate"], metrics["cost"]


def _faulty(scenario: sc.Scenario, t: int) -> bool:
    return scenario.fault is not None and scenario.fault[0] <= t < scenario.fault[1]


def run_static(scenario: sc.Scenario, knobs: np.ndarray, requests: int, seed: int, progress=None) -> Run:
    """The static configuration, held whatever happens (a faulty push still goes live: nothing guards it)."""
    service, run = Service(scenario, requests, seed), Run.empty("static", scenario.steps)
    for t in range(scenario.steps):
        live = sc.FAULTY_CONFIG if _faulty(scenario, t) else knobs
        _keep(run, t, live, service.serve(live, t))
        run.theta[t] = live
        if progress:
            progress.update()
    return run


def run_unguarded(scenario: sc.Scenario, start: np.ndarray, log_path: Path, requests: int, seed: int,
                  progress=None) -> Run:
    """Tier 2 alone: every proposal goes live as it is; the tuner steps on each window's cost."""
    service, run = Service(scenario, requests, seed), Run.empty("no guardrails", scenario.steps)
    tuner = arqon.Tuner(tuner_config(seed, start))
    with arqon.AuditLog(log_path, tuner, metrics=METRICS) as log:
        proposal = log.ask(step=0)
        for t in range(scenario.steps):
            faulty = _faulty(scenario, t)
            live = sc.FAULTY_CONFIG if faulty else proposal.copy()
            log.record_live(live, t - 1)  # decided before step t, in force during it
            metrics = service.serve(live, t)
            log.record_metrics(metrics, t)
            _keep(run, t, live, metrics)
            if faulty:  # the tuner's proposal did not run: nothing to tell it
                service.telemetry.new_generation()
            elif log.step_from(service.telemetry, "objective", "mean", 1) is not None \
                    and tuner.last_status & arqon.Status.REOPENED:
                run.drifts.append(t)
            run.theta[t] = list(tuner.recommend().values())
            if progress:
                progress.update()
    run.log = log_path
    return run


def run_guarded(scenario: sc.Scenario, start: np.ndarray, log_path: Path, requests: int, seed: int,
                progress=None) -> Run:
    """Tier 2 proposes, Tier 1 applies: every proposal (and the faulty push) is validated, clipped to the policy, made
    live with its SLOs watched, and rolled back in the step that sees a breach; the tuner is told a window's cost only
    when its own proposal ran. An operator resumes from safe mode ``OPERATOR_DELAY`` steps after it was entered."""
    service, run = Service(scenario, requests, seed), Run.empty("arqon", scenario.steps)
    tuner = arqon.Tuner(tuner_config(seed, start))
    executor = arqon.Executor(POLICY, tuner)
    flags_of, safe_since = arqon.Flags, None
    with arqon.AuditLog(log_path, tuner, executor=executor) as log:
        proposal = log.ask(step=0)
        for t in range(scenario.steps):
            live = executor.live
            metrics = service.serve(live, t)
            _keep(run, t, live, metrics)
            if np.array_equal(live, proposal) and not _faulty(scenario, t - 1):
                log.step_from(service.telemetry, "objective", "mean", 1)
                if tuner.last_status & arqon.Status.REOPENED:
                    run.drifts.append(t)
            else:
                service.telemetry.new_generation()
            flags = executor.observe(metrics, t)
            if flags & flags_of.ROLLED_BACK:
                run.rollbacks.append(t)
            if executor.safe_mode:
                safe_since = t if safe_since is None else safe_since
                if t - safe_since >= OPERATOR_DELAY:  # the operator looks, and lets the tuner try again
                    executor.resume(t)
                    safe_since = None
            executor.offer(sc.FAULTY_CONFIG if _faulty(scenario, t) else proposal, t)
            run.theta[t] = list(tuner.recommend().values())
            if progress:
                progress.update()
    run.log = log_path
    return run


def best_at_start(scenario: sc.Scenario, requests: int, seed: int, candidates: int = 2000, finalists: int = 20,
                  repeats: int = 10) -> np.ndarray:
    """The static configuration a careful offline study of the starting conditions would pick: the SLO-feasible best
    of ``candidates`` log-uniform random configurations, then the best mean cost of the ``finalists`` over ``repeats``
    more windows each."""
    rng = np.random.default_rng(seed)
    lo = np.log([k["min"] for k in sc.KNOBS])
    hi = np.log([k["max"] for k in sc.KNOBS])
    integer = np.array([k.get("integer", False) for k in sc.KNOBS])
    service = Service(scenario, requests, seed + 1)
    scored = []
    for _ in range(candidates):
        knobs = np.exp(lo + (hi - lo) * rng.random(len(lo)))
        knobs[integer] = np.round(knobs[integer])
        m = service.serve(knobs, 0)
        if m["p99_latency"] <= P99_LIMIT and m["error_rate"] <= ERROR_LIMIT:
            scored.append((m["cost"], knobs))
    scored.sort(key=lambda s: s[0])
    means = []
    for _, knobs in scored[:finalists]:
        ms = [service.serve(knobs, 0) for _ in range(repeats)]
        ok = all(m["p99_latency"] <= P99_LIMIT and m["error_rate"] <= ERROR_LIMIT for m in ms)
        means.append((np.mean([m["cost"] for m in ms]) if ok else np.inf, knobs))
    return min(means, key=lambda s: s[0])[1]


# -- the summary ------------------------------------------------------------------------------------------------------


def reconvergence(cost: np.ndarray, start: int, window: int = 50, tolerance: float = 0.1) -> int | None:
    """Steps after ``start`` until the rolling mean cost (over ``window`` steps) first comes within ``tolerance`` of
    the level it settles at (the mean over the last quarter of the run); None if it never does."""
    settled = cost[len(cost) - len(cost) // 4:].mean()
    rolling = np.convolve(cost[start:], np.ones(window) / window, mode="valid")
    hits = np.flatnonzero(np.abs(rolling - settled) <= tolerance * settled)
    return int(hits[0]) if len(hits) else None


def sign_changes_per_100(values: np.ndarray) -> float:
    """Sign changes of successive non-zero changes of each knob, per 100 steps, averaged over the knobs."""
    total = 0.0
    for column in values.T:
        delta = np.diff(column)
        signs = np.sign(delta[delta != 0.0])
        total += np.count_nonzero(signs[1:] != signs[:-1])
    return 100.0 * total / values.shape[1] / max(len(values) - 1, 1)


def summarize(scenario: sc.Scenario, runs: dict[str, Run]) -> list[dict]:
    """One row per run: mean cost (all, after the change), ratio to static, SLO breaches, rollbacks, re-convergence
    steps after the change, oscillation over the last quarter (live knobs and the tuner's estimate)."""
    static = runs["static"]
    change = scenario.fault[1] if scenario.fault else scenario.change
    last = slice(scenario.steps - scenario.steps // 4, None)
    rows = []
    for name, run in runs.items():
        rows.append({
            "run": name,
            "mean cost": float(run.cost.mean()),
            "cost / static": float(run.cost.mean() / static.cost.mean()),
            "cost after change / static": float(run.cost[change:].mean() / static.cost[change:].mean()),
            "SLO breaches": int(run.breaches.sum()),
            "breaches in fault": int(run.breaches[slice(*scenario.fault)].sum()) if scenario.fault else None,
            "rollbacks": len(run.rollbacks),
            "re-converged after (steps)": None if name == "static" else reconvergence(run.cost, change),
            "knob sign changes /100 (live)": sign_changes_per_100(run.live[last]),
            "estimate sign changes /100": sign_changes_per_100(run.theta[last]),
        })
    return rows


def run_scenario(scenario: sc.Scenario, out: Path, requests: int = 2000, seed: int = 7, static=None,
                 progress=None) -> dict[str, Run]:
    """The three runs of ``scenario``, their audit logs written into ``out``. Both tuners start from the static
    configuration (the executor's first known-good)."""
    private_folder(out)
    for stale in out.glob(f"{scenario.name}-*.arqlog*"):
        stale.unlink()
    if static is None:
        static = best_at_start(scenario, requests, seed)
    return {
        "static": run_static(scenario, static, requests, seed, progress),
        "no guardrails": run_unguarded(scenario, static, out / f"{scenario.name}-unguarded.arqlog", requests, seed,
                                       progress),
        "arqon": run_guarded(scenario, static, out / f"{scenario.name}-arqon.arqlog", requests, seed, progress),
    }


def plot_comparison(scenario: sc.Scenario, runs: dict[str, Run], path: Path) -> Path:
    """Rolling cost and cumulative SLO breaches of the three runs, the change (and fault) marked."""
    from arqon.report import _pyplot, _rolling, _save

    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    for name, run in runs.items():
        top.plot(_rolling(run.cost, 50), lw=1.1, label=name)
        bottom.plot(np.cumsum(run.breaches), lw=1.1, label=name)
    for ax in (top, bottom):
        ax.axvline(scenario.change, color="black", ls=":", lw=1)
        if scenario.fault:
            ax.axvspan(*scenario.fault, color="tab:red", alpha=0.08)
    top.set_yscale("log")
    top.set_ylabel("cost (rolling mean, 50)")
    top.set_title(f"{scenario.title}: arqon against the static best-at-start and the tuner without guardrails")
    top.legend(fontsize=8)
    bottom.set_ylabel("SLO breaches so far")
    bottom.set_xlabel("step")
    bottom.legend(fontsize=8)
    return _save(fig, path)


def summary_text(rows: list[dict]) -> str:
    columns = list(rows[0])
    from arqon.report import format_cell

    cells = [[format_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def main(names: list[str], out: Path, requests: int = 2000, seed: int = 7, progress: bool = True) -> Path:
    """Run the scenarios ``names``, print each summary table, and write the report (PNGs, index.html) into ``out``."""
    from arqon import report

    scenarios = [sc.SCENARIOS[name] for name in names if name in sc.SCENARIOS]
    phase2 = "inference" in names
    real = "kernels" in names
    try:
        from tqdm import tqdm
    except ImportError:
        raise arqon.ConfigError("arqon demo needs the demo extra: pip install 'arqon[demo]'") from None
    report._pyplot()  # fail now, not after the runs, if matplotlib is missing
    private_folder(out)
    # every scenario starts from the same conditions
    static = best_at_start(scenarios[0], requests, seed) if scenarios else None
    total = 3 * sum(s.steps for s in scenarios) + (inference.STEPS if phase2 else 0) + (KERNEL_DECISIONS if real else 0)
    bar = tqdm(total=total, unit="step", disable=not progress, desc="arqon demo")
    sections = []
    for scenario in scenarios:
        bar.set_postfix_str(scenario.name)
        runs = run_scenario(scenario, out, requests, seed, static, bar)
        rows = summarize(scenario, runs)
        print(f"\n{scenario.title} ({scenario.name}): {scenario.description}\n{summary_text(rows)}", flush=True)
        images = [plot_comparison(scenario, runs, out / f"{scenario.name}-comparison.png")]
        images += report.plot_trace(report.read_trace(runs["arqon"].log), out, f"{scenario.name}-arqon-")
        sections.append(f"<h2>{scenario.title}</h2><p>{scenario.description}</p>" + report.html_table(rows)
                        + f"<p>Audit logs: {runs['arqon'].log.name}, {runs['no guardrails'].log.name} "
                          f"(<code>arqon report LOG</code> redraws these plots from either).</p>"
                        + "".join(f'<p><img src="{p.name}"></p>' for p in images))
    if phase2:
        bar.set_postfix_str("inference")
        out_ = inference.run(seed, bar)
        rows = inference.summarize(out_)
        print(f"\n{inference.TITLE} (inference): {inference.DESCRIPTION}\n{summary_text(rows)}", flush=True)
        image = inference.plot(out_, out / "inference-variants.png")
        sections.append(f"<h2>{inference.TITLE}</h2><p>{inference.DESCRIPTION}</p>" + report.html_table(rows)
                        + "<p>Regret: the sum over steps of the expected reward given up, against the best variant "
                          "meeting the SLO in each context (the oracle) and against the best single variant; "
                          "envelope violations: steps whose live variant's envelope excludes the hardware.</p>"
                        + f'<p><img src="{image.name}"></p>')
    if real:
        from arqon.demo import kernels  # compiles its kernels: only when asked for

        bar.set_postfix_str("kernels")
        out_ = kernels.run(KERNEL_DECISIONS, seed, bar)
        rows = kernels.summarize(out_)
        print(f"\n{kernels.TITLE} (kernels): {kernels.DESCRIPTION} Refused by the gate: {', '.join(out_['refused'])}."
              f"\n{summary_text(rows)}", flush=True)
        image = kernels.plot(out_, out / "kernels-variants.png")
        sections.append(f"<h2>{kernels.TITLE}</h2><p>{kernels.DESCRIPTION} Refused by the correctness gate: "
                        f"{', '.join(out_['refused'])}.</p>" + report.html_table(rows)
                        + "<p>Kernel ms: the sum of the live variant's measured times over the decisions; for a single "
                          "variant, its median time per size times the decisions at that size (measured after the "
                          "online run, on the same inputs).</p>" + f'<p><img src="{image.name}"></p>')
    bar.close()
    names = [k["name"] for k in sc.KNOBS]
    intro = "" if static is None else (
             f"<p>The simulated service ({len(names)} knobs: {', '.join(names)}), "
             f"{requests} requests per step, seed {seed}. SLOs: {'; '.join(SLOS)}. The static configuration is the "
             f"best of a random search at the starting conditions: {dict(zip(names, np.round(static, 3).tolist()))}."
             "</p><p>Columns: cost ratios against the static run (lower is better); SLO breaches = steps with p99 "
             "latency or error rate over its limit; re-converged after = steps after the change (or the fault's "
             "end) until the 50-step rolling cost is within 10% of where it settles; sign changes = reversals of "
             "each knob's direction per 100 steps over the last quarter, for the live values (SPSA's +/- "
             "perturbations included) and for the tuner's estimate.</p>")
    return report.write_page(out / "index.html", "arqon demo: live tuning of a simulated service",
                             intro + "".join(sections))
