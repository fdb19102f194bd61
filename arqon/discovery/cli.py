"""``arqon discover SPEC``: run a discovery spec, print what it found, end with ``digest <sha256>``."""

from __future__ import annotations

import sys

from arqon.config import ConfigError

DESCRIPTION = """\
Search the variant space SPEC (a TOML file) describes with CMA-ES, ES or a genetic algorithm, evaluating candidates
with the spec's evaluate(variant, seed, scenario) on local processes or a dask.distributed cluster; send the best
candidates through six gates (correctness, constraints, robustness, regression against the baseline, a staging
canary through the safety executor, signed approval) and promote those that pass into the spec's catalog. Every
evaluation is journaled in the run's folder: a run killed at any point continues with --resume and ends with the
same result; a finished run run again prints its result without evaluating anything. The search and its result do
not depend on the number of workers or the order evaluations complete in."""


def add_parser(commands) -> None:
    d = commands.add_parser("discover", help="search offline for variants and promote those that pass the gates",
                            description=DESCRIPTION,
                            epilog="Output: a table of the gated candidates (G: gates passed, x: failed, -: "
                                   "skipped, ?: pending), where each went, and as the last line `digest <sha256>` "
                                   "over every evaluation, verdict and promotion (no clock in it). Exit codes: 0 "
                                   "the run finished, 2 bad input or a lost evaluation (the journal keeps what was "
                                   "done: --resume continues).")
    d.add_argument("spec", metavar="SPEC", help="the discovery spec (TOML, JSON or YAML)")
    d.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    d.add_argument("--scheduler", metavar="ADDRESS",
                   help="run evaluations on the dask.distributed scheduler at ADDRESS (tcp://HOST:PORT) instead")
    d.add_argument("--chunk", type=int, default=1,
                   help="evaluations per submitted task (default 1; raise it when an evaluation is short against a "
                        "task's overhead, about 4 ms on dask)")
    d.add_argument("--out", metavar="DIR", help="the run's folder: journal and evidence (default: SPEC's folder / "
                                                "NAME.discovery)")
    d.add_argument("--resume", action="store_true", help="continue an unfinished run from its journal")
    d.add_argument("--quiet", action="store_true", help="no progress bars")


def _mark(verdict: str) -> str:
    return {"pass": "G", "fail": "x", "skipped": "-", "pending": "?"}[verdict]


def summary(outcome) -> str:
    """The result as text: the search, then one row per gated candidate."""
    spec = outcome.spec
    ok = [e for e in outcome.evaluations if e["error"] is None]
    failed = len(outcome.evaluations) - len(ok)
    sense = 1.0 if spec.direction == "minimize" else -1.0
    best = min(ok, key=lambda e: sense * e["objective"], default=None)
    base = outcome.baseline["nominal"]
    lines = [f"{spec.name}: {outcome.strategy}, {spec.generations} generations of {spec.population}, "
             f"{len(outcome.evaluations)} evaluations ({failed} failed)" +
             (" - finished before, nothing evaluated" if outcome.finished_before else f", {outcome.ran} run now"),
             f"baseline {spec.objective}: mean {sum(base) / len(base):.6g} over {len(base)} gate seeds"
             if all(b == b for b in base) else "baseline: some evaluations failed"]
    if best is not None:
        lines.append(f"best of the search: {spec.objective} {best['objective']:.6g} (generation "
                     f"{best['generation'] + 1}, candidate {best['index'] + 1})")
    lines.append("")
    lines.append(f"{'#':>2}  {spec.objective:>12}  gates   {'outcome':<28} variant")
    for c in outcome.candidates:
        marks = "".join(_mark(r["verdict"]) for r in c.evidence)
        if c.failed_gate:
            where = f"refused: {c.failed_gate}"
        else:
            approval = c.evidence[-1]["verdict"]
            where = (c.promoted + {"pass": " approved", "pending": " signatures due", "skipped": " candidate",
                                   "fail": " not approved"}[approval]) if c.promoted else "passed, not promoted"
        knobs = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in c.variant.items())
        lines.append(f"{c.rank + 1:>2}  {c.objective:>12.6g}  {marks:<6}  {where:<28} {knobs}")
    for c in outcome.candidates:
        for r in c.evidence:
            if r["verdict"] in ("fail", "pending"):
                lines.append(f"  #{c.rank + 1} {r['gate']}: {r['reason']}")
    lines.append(f"evidence: {outcome.out / 'evidence'}")
    return "\n".join(lines)


def run(args) -> int:
    from arqon.discovery.run import discover

    if args.workers < 1 or args.chunk < 1:
        raise ConfigError("--workers and --chunk must be at least 1")
    try:
        outcome = discover(args.spec, out=args.out, workers=args.workers, scheduler=args.scheduler,
                           resume=args.resume, chunk=args.chunk, progress=not args.quiet)
    except RuntimeError as e:  # a lost worker: what was committed stays in the journal
        raise ConfigError(f"{e}; the journal keeps every evaluation finished before: --resume continues") from None
    except KeyboardInterrupt:
        print("arqon discover: interrupted; the journal keeps every evaluation finished: --resume continues",
              file=sys.stderr)
        return 130
    from arqon.discovery.report import write_report

    page = write_report(outcome)
    print(summary(outcome))
    print(f"report: {page}")
    print(f"digest {outcome.digest}")
    return 0
