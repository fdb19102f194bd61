"""``arqon report``: plots and an HTML page from an audit log alone.

Everything comes from the log's records: the live knob values (LIVE records after every flip; for a log without them,
the tuner's proposals, rebuilt by replaying it), the live catalog variant by name (the variant column's LIVE records,
the approved set's changes from VARIANTS records), the observed metrics (METRIC records), SLO limits (the policy in the
header), rollbacks and safe-mode entries (the executor's OBSERVE flags) and drift detections (DRIFT records).
Needs the ``demo`` extra (matplotlib).
"""

from __future__ import annotations

import html
from pathlib import Path

import attrs
import numpy as np

import arqon
from arqon.audit import read_log
from arqon.config import ConfigError, load_config
from arqon.kernels import audit as k
from arqon.kernels import guard as g
from arqon.outputs import open_private, private_folder
from arqon.policy import load_policy


@attrs.frozen
class Trace:
    """A run as series over the steps it measured (``at``: the steps, ascending; series are indexed by position),
    read from an audit log. Steps may be any integers: counters from 0, timestamps in nanoseconds, negative ones."""

    path: str
    names: tuple[str, ...]  # knobs
    bounds: np.ndarray  # (d, 2)
    log_scale: tuple[bool, ...]
    knobs: np.ndarray  # (steps, d): live values (or proposals, see ``knobs_are``) in force during each step
    knobs_are: str  # "live" or "proposed"
    metrics: dict[str, np.ndarray]  # name -> (steps,), NaN where not observed
    slos: list  # arqon.policy.Slo, absolute ones
    rollbacks: np.ndarray  # steps
    safe_mode: np.ndarray  # steps where safe mode was entered
    drifts: np.ndarray  # steps
    told: np.ndarray  # (steps,) the value told to the tuner at that step, NaN if none
    variants: tuple[str, ...] = ()  # a catalog's variants by index (none without one)
    variant: np.ndarray = np.zeros(0)  # (steps,) the index of the live variant in force during each step
    catalog_changes: np.ndarray = np.zeros(0, np.int64)  # steps where the variants that may be live changed
    at: np.ndarray = np.zeros(0, np.int64)  # (steps,) the step at each position

    @property
    def steps(self) -> int:
        """Steps the trace covers."""
        return len(self.knobs)

    def breaches(self, slos=None) -> np.ndarray:
        """Steps whose observed metrics broke one of ``slos`` (default: every absolute SLO of the policy)."""
        return self.at[self.breached(slos)]

    def breached(self, slos=None) -> np.ndarray:
        """Positions (indices into the series) of ``breaches``."""
        hit = np.zeros(self.steps, bool)
        for slo in self.slos if slos is None else slos:
            v = self.metrics.get(slo.metric)
            if v is not None:
                ok = {"<=": v <= slo.limit, ">=": v >= slo.limit, "<": v < slo.limit, ">": v > slo.limit}[slo.op]
                hit |= ~ok & np.isfinite(v)
        return np.flatnonzero(hit)


def read_trace(path) -> Trace:
    """Read the audit log at ``path`` into series over its steps."""
    log = read_log(path)
    config = load_config(log.header["config"]) if log.header.get("config") is not None else None
    records = log.records
    if len(records) == 0:
        raise ConfigError(f"{path}: the log holds no records")
    kinds = records["kind"]
    observed = records[kinds == k.METRIC]
    told_records = records[(kinds == k.TELL) | (kinds == k.STEP)]
    measured = observed if len(observed) else told_records if len(told_records) else records
    at = np.unique(measured["step"])  # the steps measured: timestamps, say; counters are shown at every step between
    if int(at[-1]) - int(at[0]) < 4 * len(at) + 1000:
        at = np.arange(at[0], at[-1] + 1)
    steps = len(at)
    d = len(config.params) if config is not None else 0
    live = records[kinds == k.LIVE].copy()
    leading = np.flatnonzero((kinds != k.LIVE) | (records["step"] != -1))
    initial = leading[0] if len(leading) else len(records)  # the log opens with the snapshot live at creation
    ahead = max(int(at[0]), np.iinfo(np.int64).min + 1) - 1  # the snapshot live when the log began, logged at step
    live["step"][:initial] = np.minimum(live["step"][:initial], ahead)  # -1: in force from the first step on
    proposed = records[kinds == k.PROPOSAL]
    knobs_are = "live" if len(live) else "proposed"
    if len(live) or config is None:
        changes = live[live["status"] < d]
    else:  # a tuner-only log: its PROPOSAL records, or the proposals rebuilt by replay
        changes = proposed if len(proposed) else _proposals(config, records)
    knobs = _held(changes, at, d)
    named = log.names()
    variant = np.zeros(0)
    if named.variant_column is not None:
        picked = live[live["status"] == named.variant_column].copy()
        picked["status"] = 0
        variant = _held(picked, at, 1)[:, 0]
    catalog_changes = []  # the step of the VARIANTS decision before each segment whose variants that may be live differ
    decided = np.flatnonzero(kinds == k.VARIANTS)
    for start, previous, header in zip(log.starts[1:], log.headers, log.headers[1:]):
        was, now = previous.get("catalog"), header.get("catalog")
        if was and now and was.get("allowed", was["approved"]) != now.get("allowed", now["approved"]):
            before = decided[decided < start]
            if len(before):
                catalog_changes.append(int(records[before[-1]]["step"]))
    names = log.header.get("metrics") or []
    metrics = {name: np.full(steps, np.nan) for name in names}
    for i, index, value in zip(np.searchsorted(at, observed["step"]).tolist(), observed["status"].tolist(),
                               observed["value"].tolist()):
        metrics[names[index]][i] = value
    policy = log.header.get("policy")
    slos = [s for s in load_policy(policy).parsed_slos if not s.relative] if policy else []
    observe = records[kinds == k.OBSERVE]
    flags = observe["status"].astype(np.int64)
    told = np.full(steps, np.nan)
    i = np.minimum(np.searchsorted(at, told_records["step"]), steps - 1)
    exact = at[i] == told_records["step"]
    told[i[exact]] = told_records["value"][exact]
    params = config.params if config is not None else []
    return Trace(str(path), tuple(p.name for p in params), np.array([[p.min, p.max] for p in params]).reshape(-1, 2),
                 tuple(p.scale == "log" for p in params), knobs, knobs_are, metrics, slos,
                 observe["step"][(flags & g.ROLLED_BACK) != 0], observe["step"][(flags & g.SAFE_MODE_ENTERED) != 0],
                 records["step"][kinds == k.DRIFT], told, named.variants or (), variant,
                 np.array(catalog_changes, np.int64), at)


def _held(changes: np.ndarray, at: np.ndarray, d: int) -> np.ndarray:
    """(steps, d) values at the steps ``at`` from LIVE-like records (status = column): each decided at step t is in
    force from the first step of ``at`` after t and held until the next change; before the first, the first."""
    steps = len(at)
    values = np.full((steps, d), np.nan)
    first = np.searchsorted(at, changes["step"], "right").tolist()
    for i, index, value in zip(first, changes["status"].tolist(), changes["value"].tolist()):
        if i < steps:
            values[i, index] = value
    for j in range(d):
        column = values[:, j]
        filled = np.flatnonzero(np.isfinite(column))
        if len(filled):
            column[: filled[0]] = column[filled[0]]
            column[:] = column[filled[np.maximum(np.searchsorted(filled, np.arange(steps), "right") - 1, 0)]]
    return values


def _proposals(config, records) -> np.ndarray:
    """The tuner's proposal after each of its logged events, as LIVE-like records (step, status = index, value: in
    force from the next step, as an executor's), by replaying the log event by event."""
    tuner = arqon.Tuner(config)
    d = len(config.params)
    out = []
    start = 0
    for i in np.flatnonzero(np.isin(records["kind"], (k.ASK, k.TELL, k.STEP))):
        if k.audit_replay(tuner.state, records[start: i + 1], i + 1 - start) != i + 1 - start:
            break  # a divergence or a gap: the proposals after it are unknown
        start = i + 1
        step = int(records[i]["step"])
        out.extend((0, step, value, 0, k.LIVE, j, 0) for j, value in enumerate(tuner.ask().tolist()))
    return np.array(out, dtype=k.AUDIT_RECORD) if out else np.zeros(0, k.AUDIT_RECORD)


# -- plots ------------------------------------------------------------------------------------------------------------


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'arqon[demo]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _events(ax, trace: Trace, label: bool) -> None:
    for steps, color, name in ((trace.rollbacks, "tab:red", "rollback"), (trace.drifts, "tab:purple", "drift"),
                               (trace.safe_mode, "black", "safe mode")):
        for n, s in enumerate(steps):
            ax.axvline(s, color=color, lw=0.6, alpha=0.35, label=name if label and n == 0 else None)


def _rolling(values: np.ndarray, window: int) -> np.ndarray:
    window = max(min(window, len(values)), 1)  # "same" keeps the longer length: never longer than the run
    ok = np.isfinite(values)
    sums = np.convolve(np.where(ok, values, 0.0), np.ones(window), "same")
    counts = np.convolve(ok.astype(float), np.ones(window), "same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def plot_trace(trace: Trace, out: Path, prefix: str = "") -> list[Path]:
    """Write the plots of ``trace`` into ``out``: knobs.png (each knob with its bounds, rollbacks and drifts marked),
    objective.png (cost and latency quantiles over time, SLO lines), slo.png (each SLO metric, its limit, breaches).
    Returns the files written."""
    plt = _pyplot()
    private_folder(out)
    t = trace.at
    written = []

    d = len(trace.names)
    if trace.variants:
        fig, ax = plt.subplots(figsize=(10, 0.35 * len(trace.variants) + 1.6))
        ax.step(t, trace.variant, where="post", lw=0.9, color="tab:blue", label="live variant")
        for n, s in enumerate(trace.catalog_changes):
            ax.axvline(s, color="tab:green", lw=1, ls="--", label="approved set changed" if n == 0 else None)
        _events(ax, trace, label=True)
        ax.set_yticks(range(len(trace.variants)), trace.variants, fontsize=7)
        ax.set_ylim(-0.5, len(trace.variants) - 0.5)
        ax.legend(loc="upper right", fontsize=7, ncol=4)
        ax.set_title("the live catalog variant")
        ax.set_xlabel("step")
        written.append(_save(fig, out / f"{prefix}variants.png"))
    fig, axes = plt.subplots(d, 1, figsize=(10, 1.7 * d + 0.6), sharex=True, squeeze=False) if d else (None, None)
    for j, ax in enumerate(axes[:, 0] if d else ()):
        ax.plot(t, trace.knobs[:, j], lw=0.8, color="tab:blue", label=trace.knobs_are)
        for bound in trace.bounds[j]:
            ax.axhline(bound, color="gray", ls="--", lw=0.8)
        if trace.log_scale[j]:
            ax.set_yscale("log")
        ax.set_ylabel(trace.names[j], fontsize=8)
        _events(ax, trace, label=j == 0)
    if d:
        axes[0, 0].legend(loc="upper right", fontsize=7, ncol=4)
        axes[0, 0].set_title(f"knobs ({trace.knobs_are}) with their bounds (dashed)")
        axes[-1, 0].set_xlabel("step")
        written.append(_save(fig, out / f"{prefix}knobs.png"))

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    cost = trace.metrics.get("cost", trace.told)
    top.plot(t, cost, lw=0.4, color="tab:gray", alpha=0.6, label="per step")
    top.plot(t, _rolling(cost, 50), lw=1.2, color="tab:blue", label="rolling mean (50 steps)")
    top.set_ylabel("cost" if "cost" in trace.metrics else "value told")
    top.set_yscale("log")
    _events(top, trace, label=True)
    top.legend(loc="upper right", fontsize=7, ncol=3)
    top.set_title("objective over time")
    quantiles = [name for name in trace.metrics if name.startswith(("p50", "p90", "p99"))]
    for name in quantiles:
        bottom.plot(t, _rolling(trace.metrics[name], 20), lw=0.9, label=f"{name} (rolling mean, 20 steps)")
    for slo in trace.slos:
        if slo.metric in quantiles:
            bottom.axhline(slo.limit, color="tab:red", ls="--", lw=1, label=f"SLO {slo.metric} {slo.op} {slo.limit:g}")
    if quantiles:
        bottom.set_yscale("log")
        bottom.legend(loc="upper right", fontsize=7)
    bottom.set_ylabel("latency quantiles")
    bottom.set_xlabel("step")
    written.append(_save(fig, out / f"{prefix}objective.png"))

    if trace.slos:
        fig, axes = plt.subplots(len(trace.slos), 1, figsize=(10, 2.4 * len(trace.slos) + 0.5), sharex=True,
                                 squeeze=False)
        for ax, slo in zip(axes[:, 0], trace.slos):
            v = trace.metrics[slo.metric]
            ax.plot(t, v, lw=0.5, color="tab:blue")
            ax.axhline(slo.limit, color="tab:red", ls="--", lw=1, label=f"SLO {slo.metric} {slo.op} {slo.limit:g}")
            bad = trace.breached([slo])
            ax.plot(t[bad], v[bad], "x", color="tab:red", ms=3, label=f"breaches ({len(bad)} steps)")
            ax.set_ylabel(slo.metric, fontsize=8)
            ax.set_yscale("symlog", linthresh=slo.limit / 10 if slo.limit > 0 else 1e-3)
            _events(ax, trace, label=False)
            ax.legend(loc="upper right", fontsize=7)
        axes[0, 0].set_title("SLO metrics, limits and breaches (rollbacks red, drifts purple)")
        axes[-1, 0].set_xlabel("step")
        written.append(_save(fig, out / f"{prefix}slo.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with open_private(path, "wb") as f:
        fig.savefig(f, dpi=90, format=Path(path).suffix[1:] or "png")
    _pyplot().close(fig)
    return path


# -- HTML -------------------------------------------------------------------------------------------------------------


def html_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row.values()) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def format_cell(value) -> str:
    """A table cell: None as "-", floats to 3 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body {{ font-family: sans-serif; max-width: 1000px; margin: 2em auto; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
img {{ max-width: 100%; }} </style></head><body>{body}</body></html>"""


def write_page(path: Path, title: str, body: str) -> Path:
    with open_private(path) as f:
        f.write(PAGE.format(title=html.escape(title), body=f"<h1>{html.escape(title)}</h1>{body}"))
    return path


def trace_rows(trace: Trace) -> list[dict]:
    rows = [{"what": "steps", "value": trace.steps}, {"what": "knobs", "value": ", ".join(trace.names) or None}]
    if trace.variants:
        known = trace.variant[np.isfinite(trace.variant)].astype(int)
        rows += [{"what": "variants", "value": ", ".join(trace.variants)},
                 {"what": "variant switches", "value": int(np.count_nonzero(np.diff(known)))},
                 {"what": "steps live per variant", "value": ", ".join(
                     f"{name} {c}" for name, c in zip(trace.variants, np.bincount(known, minlength=len(trace.variants)))
                     if c)},
                 {"what": "approved-set changes", "value": len(trace.catalog_changes)}]
    rows += [{"what": "SLO breaches (steps)", "value": len(trace.breaches())},
             {"what": "rollbacks", "value": len(trace.rollbacks)},
             {"what": "safe mode entered", "value": len(trace.safe_mode)},
             {"what": "drift detections", "value": len(trace.drifts)}]
    for name, values in trace.metrics.items():
        rows.append({"what": f"mean {name}", "value": float(np.nanmean(values)) if np.isfinite(values).any() else None})
    return rows


def report(path, out) -> Path:
    """Plots of the audit log at ``path`` and an index.html putting them together, in folder ``out``."""
    trace = read_trace(path)
    out = Path(out)
    images = plot_trace(trace, out)
    body = html_table(trace_rows(trace)) + "".join(f'<p><img src="{p.name}"></p>' for p in images)
    return write_page(out / "index.html", f"arqon report: {Path(path).name}", body)
