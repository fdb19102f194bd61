"""A discovery run's report: ``report.html`` in the run's folder, with ``search.png`` (every evaluation's objective by
generation, the best so far, the baseline's mean) and a table of each gated candidate's verdicts and reasons. Needs
matplotlib (the ``discovery`` or ``demo`` extra); without it the page has the tables only."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from arqon.discovery.gates import GATES
from arqon.report import _pyplot, _save, html_table, write_page


def plot_search(outcome, path: Path) -> Path:
    """Every search evaluation's objective against its generation (failed ones as red marks at the bottom), the
    best so far, and the baseline's mean over the gate seeds."""
    spec = outcome.spec
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    g = np.array([e["generation"] + 1 for e in outcome.evaluations], dtype=float)
    y = np.array([e["objective"] for e in outcome.evaluations])
    ok = np.isfinite(y)
    jitter = (np.arange(len(g)) % max(spec.population, 1)) / max(spec.population, 1) * 0.5 - 0.25
    ax.scatter(g[ok] + jitter[ok], y[ok], s=10, color="tab:blue", alpha=0.6, label="an evaluation")
    if (~ok).any():
        low = np.nanmin(y) if ok.any() else 0.0
        ax.scatter(g[~ok] + jitter[~ok], np.full((~ok).sum(), low), marker="x", color="tab:red",
                   label="failed evaluation")
    sense = 1.0 if spec.direction == "minimize" else -1.0
    best = [sense * min((sense * v for v in y[: i + 1] if math.isfinite(v)), default=math.nan) for i in range(len(y))]
    ax.plot(g + jitter, best, color="black", lw=1.2, label="best so far")
    base = outcome.baseline["nominal"]
    if base and all(math.isfinite(b) for b in base):
        ax.axhline(float(np.mean(base)), color="tab:green", ls="--", lw=1, label="baseline (mean, gate seeds)")
    ax.set_xticks(range(1, spec.generations + 1, max(1, spec.generations // 12)))
    ax.set_xlabel("generation")
    ax.set_ylabel(f"{spec.objective} ({'lower' if sense > 0 else 'higher'} is better)")
    ax.set_title(f"{spec.name}: {outcome.strategy} search, {len(y)} evaluations")
    ax.legend(fontsize=8)
    return _save(fig, path)


def write_report(outcome) -> Path:
    """``report.html`` (and ``search.png`` when matplotlib is installed) in the run's folder."""
    out = outcome.out
    from arqon.config import ConfigError

    try:
        image = f'<img src="{plot_search(outcome, out / "search.png").name}">'
    except ConfigError as e:  # no matplotlib
        image = f"<p>{html.escape(str(e))}</p>"
    rows = []
    for c in outcome.candidates:
        verdicts = {r["gate"]: r["verdict"] for r in c.evidence}
        rows.append({"#": c.rank + 1, "variant": ", ".join(f"{k}={v}" for k, v in c.variant.items()),
                     outcome.spec.objective: c.objective, **{gate: verdicts.get(gate) for gate in GATES},
                     "outcome": c.promoted or (f"refused: {c.failed_gate}" if c.failed_gate else "not promoted")})
    reasons = "".join(f"<li>#{c.rank + 1} {html.escape(r['gate'])} ({r['verdict']}): {html.escape(r['reason'])}</li>"
                      for c in outcome.candidates for r in c.evidence)
    body = (f"<h1>Discovery: {html.escape(outcome.spec.name)}</h1>{image}<h2>Gated candidates</h2>"
            f"{html_table(rows)}<h2>Every verdict</h2><ul>{reasons}</ul><p>digest <code>{outcome.digest}</code></p>")
    return write_page(out / "report.html", f"arqon discover {outcome.spec.name}", body)
