"""``arqon``: the command line. Exit codes: 0 success, 1 a check failed (a contract breach, a replay divergence),
2 bad usage or input (a missing or damaged file), 3 a replay identical as far as it goes on an incomplete log."""

from __future__ import annotations

import argparse
import os
import sys

import arqon
from arqon import catalog_cli
from arqon.discovery import cli as discovery_cli
from arqon.config import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arqon", description="Machine-speed online tuning of live systems.",
                                     epilog="Exit codes: 0 success, 1 a check failed, 2 bad usage or input.")
    parser.add_argument("--version", action=_Version, nargs=0, help="print arqon's version and what it runs on")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    c = commands.add_parser(
        "contracts", help="measure every hot-path kernel and check its timing budgets",
        description="Measure every hot-path kernel in this process (p50, p99, max-of-p99 and best p50 per call, over "
                    "batches of about 20 us on the thread's CPU clock, so time preempted by other work does not "
                    "count; the kernels take turns, round by round, so each one's figures span the whole run) and "
                    "check them against a budgets file, as nanoseconds and/or as ratios to a calibration loop "
                    "measured in the same rounds. Exits 1 naming each breach.",
        epilog="kernels: step.njit.d2, step.njit.d16, step.njit.d128, step.njit.d16.constant (inside @njit), "
               "step.python.d16 (Tuner.step), step.njit.d16.es, step.njit.d16.pbt, step.njit.d16.cmaes (one member of "
               "a population strategy inside @njit), step.python.d16.cmaes (Tuner.step, CMA-ES), rng.next, "
               "rng.rademacher.d16, guard.offer.accept.d16, guard.offer.clip.d16, guard.offer.accept.cooldown.d16, "
               "guard.offer.reject.d16, guard.observe.d16 (the safety executor inside @njit), ring.push, "
               "stats.update.ema_p2x3, stats.update.full, telemetry.emit (telemetry inside @njit), "
               "telemetry.emit.python (Telemetry.emit), audit.step.njit.d16 (an audited step inside @njit)")
    c.add_argument("--budgets", metavar="FILE", help="budgets TOML (default: the one shipped with arqon)")
    c.add_argument("--mode", choices=["ratio", "ns", "both"], default="ratio",
                   help="what must hold: ratios to the calibration loop (default; machine-independent), absolute ns, "
                        "or both")
    c.add_argument("--only", nargs="+", action="extend", metavar="KERNEL",
                   help="measure only these kernels (names separated by spaces or commas; may be repeated)")
    c.add_argument("--repetitions", type=int, default=20,
                   help="rounds, each one repetition of the calibration and of every kernel in turn (default 20)")
    c.add_argument("--samples", type=int, default=200, help="timed batches per repetition (default 200)")
    c.add_argument("--retries", type=int, default=1,
                   help="measure a breaching kernel again up to this many times; it breaches only if every "
                        "measurement does (default 1; 0: no second chance)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    r = commands.add_parser(
        "replay", help="re-run a tuner, selector and executor from their audit log and check every decision is "
                       "bit-identical",
        description="Rebuild the tuner, the selector and the executor from the log's header (configs, seeds, policy), "
                    "re-run every logged decision with its logged inputs (the told values and rewards; the vectors "
                    "offered to the executor, the metrics it observed, the operator's calls and their steps), and "
                    "compare each decision's status and state digest with the logged one. Prints how many decisions of "
                    "each component were re-run identical, and the first divergence or the first gap (records the "
                    "audit ring refused), if any.",
        epilog="Exit codes: 0 every event identical and the log complete (closed, every segment present, no torn "
               "tail), 1 a divergence or a gap, 2 the log is missing or damaged, 3 every event read is identical but "
               "the log is incomplete (what is missing is printed on stderr).")
    r.add_argument("log", metavar="LOG", help="the audit log (its first segment; LOG.1, LOG.2 ... are read too)")
    r.add_argument("--policy", metavar="FILE", help="replay the executor under this policy instead of the logged one: "
                                                   "the first decision it changes is reported as the divergence")

    g = commands.add_parser("log", help="show, tail or export an audit log",
                            description="Read an audit log (checking every checksum and the hash chain) and print or "
                                        "export its records. A torn tail is reported on stderr, never hidden.")
    verbs = g.add_subparsers(dest="verb", metavar="VERB", required=True)
    show = verbs.add_parser("show", help="the header and the first records")
    show.add_argument("log", metavar="LOG")
    show.add_argument("-n", "--limit", type=int, default=20, help="records to print (default 20)")
    tail = verbs.add_parser("tail", help="the last records")
    tail.add_argument("log", metavar="LOG")
    tail.add_argument("-n", "--limit", type=int, default=20, help="records to print (default 20)")
    export = verbs.add_parser("export", help="every record as JSON lines or CSV")
    export.add_argument("log", metavar="LOG")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="output format (default jsonl)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    from arqon.demo.scenarios import INFERENCE, KERNELS, SCENARIOS

    d = commands.add_parser(
        "demo", help="tune a simulated service live, beside static and unguarded runs, and write a report",
        description="Run a simulated request-serving service (five knobs: batch size, batch timeout, workers, cache "
                    "TTL, retry backoff) through scripted scenarios, each three times on the same load and noise: "
                    "tuned by arqon (Tier 2 proposes, Tier 1 applies under SLOs, telemetry and an audit log), held at "
                    "the static best-at-start configuration, and tuned without guardrails. Prints a summary table per "
                    "scenario and writes PNG plots, the audit logs and index.html into --out.",
        epilog="scenarios: " + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values())
               + f"; inference: {INFERENCE[1]}; kernels: {KERNELS[1]}")
    d.add_argument("--scenario", nargs="+", choices=[*SCENARIOS, "inference", "kernels", "all"], default=["all"],
                   help="scenarios to run (default: all); inference and kernels are the phase-2 scenarios: selectors "
                        "choosing among a signed catalog's variants through the executor (a simulated inference "
                        "server; real Numba kernels timed here)")
    d.add_argument("--out", default="arqon-demo", metavar="DIR", help="report folder (default ./arqon-demo)")
    d.add_argument("--requests", type=int, default=2000, help="simulated requests per step (default 2000)")
    d.add_argument("--seed", type=int, default=7, help="seed of the tuners and of the request noise (default 7)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")

    p = commands.add_parser("report", help="plots and an HTML page from an audit log",
                            description="Read an audit log and draw its knobs (live values after every flip, or the "
                                        "tuner's proposals rebuilt by replay), objective and latency quantiles, SLO "
                                        "metrics with limits and breaches, rollbacks and drift detections; write "
                                        "them with a summary into --out/index.html.")
    p.add_argument("log", metavar="LOG")
    p.add_argument("--out", metavar="DIR", help="output folder (default: LOG's name + '-report')")

    v = commands.add_parser("validate", help="check a tuner config, an executor policy, a telemetry config or a "
                                             "discovery spec",
                            description="Decode CONFIG (JSON, TOML or YAML by extension) and check it the way arqon "
                                        "will at run time. Prints what it holds, or one line naming the field and "
                                        "the reason.",
                            epilog="Exit codes: 0 valid, 2 invalid or unreadable.")
    v.add_argument("config", metavar="CONFIG")
    v.add_argument("--kind", choices=["auto", "tuner", "policy", "telemetry", "discovery"], default="auto",
                   help="what CONFIG is (default: guessed from its keys: params as a list = tuner, params as a table "
                        "= policy, metrics as a list of tables = telemetry, knobs and evaluate = discovery)")

    commands.add_parser("warmup", help="compile (or load from the cache) every kernel now, and say how long it took",
                        description="Call every Python entry point once on a small state, so that compiled code is "
                                    "in Numba's cache before a live loop needs it. Run it in the image or at deploy "
                                    "time; the first call in production then costs a cache load, not a compile.")
    catalog_cli.add_parser(commands)
    discovery_cli.add_parser(commands)
    return parser


class _Version(argparse.Action):
    """``--version``: arqon's version and what it runs on, worked out only when asked (it imports numba)."""

    def __call__(self, parser, namespace, values, option_string=None):
        import platform

        import numba
        import numpy

        print(f"arqon {arqon.__version__} (numba {numba.__version__}, numpy {numpy.__version__}, "
              f"{platform.python_implementation()} {platform.python_version()})")
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "contracts":
            from arqon import contracts

            if args.repetitions < 1 or args.samples < 10 or args.retries < 0:
                raise ConfigError("--repetitions must be >= 1, --samples >= 10 and --retries >= 0")
            return contracts.main(args)
        if args.command == "replay":
            return _replay(args.log, args.policy)
        if args.command == "log":
            return _log(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "report":
            return _report(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "warmup":
            return _warmup()
        if args.command == "catalog":
            return catalog_cli.run(args)
        if args.command == "discover":
            return discovery_cli.run(args)
    except (ConfigError, FileNotFoundError, ValueError) as e:  # LogCorrupt and LogIncompatible are ValueErrors
        print(f"arqon {args.command}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`arqon log export LOG | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


def _demo(args) -> int:
    from pathlib import Path

    from arqon.demo import runs
    from arqon.demo.scenarios import SCENARIOS

    if args.requests < 100:
        raise ConfigError("--requests must be at least 100 (a window's p99 needs them)")
    names = [*SCENARIOS, "inference", "kernels"] if "all" in args.scenario else list(dict.fromkeys(args.scenario))
    page = runs.main(names, Path(args.out), args.requests, args.seed, progress=not args.quiet)
    print(f"\nreport: {page}")
    return 0


def _report(args) -> int:
    from pathlib import Path

    from arqon.report import report

    out = Path(args.out) if args.out else Path(f"{args.log}-report")
    print(f"report: {report(args.log, out)}")
    return 0


def _validate(args) -> int:
    from pathlib import Path

    from arqon.config import decode, load_config
    from arqon.policy import load_policy
    from arqon.telemetry import load_telemetry_config

    path = Path(args.config)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    kind = args.kind
    if kind == "auto":
        doc = decode(path, dict)
        params, metrics = doc.get("params"), doc.get("metrics")
        kind = "tuner" if isinstance(params, list) else "policy" if isinstance(params, dict) else \
            "telemetry" if isinstance(metrics, list) and metrics and isinstance(metrics[0], dict) else \
            "discovery" if "knobs" in doc and "evaluate" in doc else None
        if kind is None:
            raise ConfigError(f"{path}: cannot tell what this is (no `params` list or table, no `metrics` list of "
                              "tables, no `knobs` and `evaluate`); pass --kind")
    if kind == "tuner":
        c = load_config(path)
        what = f"tuner config: {len(c.params)} parameter(s) ({', '.join(c.names)}), {c.direction}, seed {c.seed}, " \
               f"budget {c.budget or 'none'}, strategy {c.strategy} ({c.spsa.gains} gains)"
    elif kind == "policy":
        p = load_policy(path)
        what = f"executor policy: {len(p.params)} parameter(s) allowed, {len(p.metrics)} metric(s), " \
               f"{len(p.slos)} SLO(s), mode {p.mode}, canary {'on' if p.canary else 'off'}"
    elif kind == "discovery":
        from arqon.discovery.search import strategy_of
        from arqon.discovery.spec import load_spec

        d, _ = load_spec(path)
        what = f"discovery spec: {len(d.knobs)} knob(s) ({', '.join(k.name for k in d.knobs)}), {strategy_of(d)} " \
               f"search of {d.generations} generations of {d.population}, {d.direction} {d.objective}, " \
               f"{len(d.gates.scenarios)} robustness scenario(s), promote into " \
               f"{d.promote.catalog if d.promote else 'no catalog'}"
    else:
        t = load_telemetry_config(path)
        what = f"telemetry config: {len(t.metrics)} metric(s) ({', '.join(m.name for m in t.metrics)}), ring " \
               f"{t.ring.capacity} records ({t.ring.policy})"
    print(f"{path}: valid {what}")
    return 0


def _warmup() -> int:
    import time

    t0 = time.perf_counter()
    import arqon

    tuner = arqon.Tuner({"params": [{"name": "x", "min": 0.0, "max": 1.0}]})
    tuner.step(tuner.ask()[0])
    executor = arqon.Executor({"params": {"x": {}}, "metrics": ["m"], "slos": ["m <= 1"]}, tuner)
    executor.offer([0.5], 0)
    executor.observe([0.0], 1)
    tel = arqon.Telemetry({"metrics": [{"name": "m"}]})
    tel.emit("m", 1.0)
    tel.stat("m", "p99")
    print(f"arqon kernels ready in {time.perf_counter() - t0:.2f} s (compiled or loaded from "
          f"{os.environ.get('NUMBA_CACHE_DIR') or 'the __pycache__ folders'})")
    return 0


def _replay(path, policy=None) -> int:
    from arqon.audit import replay

    result = replay(path, policy)
    for what in result.missing:
        print(f"arqon replay: {path}: {what}", file=sys.stderr)
    per = "; ".join(f"{name} {done} of {total} decisions" for name, (done, total) in result.components.items())
    if result.identical:
        incomplete = ", but the log is incomplete" if result.missing else ""
        print(f"{path}: {result.events} events replayed ({per}), every decision bit-identical{incomplete}")
        return 3 if result.missing else 0
    if result.gap:
        g = result.gap
        print(f"{path}: {result.verified} of {result.events} events identical; then a gap: {g['lost']} record(s) "
              f"refused by a full audit ring before event {g['index']} (step {g['step']}), so replay stops there")
    else:
        d = result.divergence
        flags = (f"flags logged {d['logged_flags'] or 'none'}, replayed {d['replayed_flags'] or 'none'}; "
                 if "replayed_flags" in d else f"flags logged {d['logged_flags'] or 'none'}; ")
        print(f"{path}: {result.verified} of {result.events} events identical; first divergence at event "
              f"{d['index']} ({d['component']} {d['kind']}, step {d['step']}): {flags}state digest logged "
              f"{d['logged_digest']}, replayed {d['replayed_digest']} ({per})")
    return 1


def _log(args) -> int:
    import csv
    import json

    from arqon.audit import read_log, record_dicts
    from arqon.outputs import open_private

    if getattr(args, "limit", 1) < 1:
        raise ConfigError("--limit must be at least 1")
    log = read_log(args.log)
    if log.torn_tail:
        t = log.torn_tail
        print(f"arqon log: torn tail in {t.file}: {t.dropped_bytes} bytes after offset {t.offset} are not records "
              f"(a write cut short); not repaired", file=sys.stderr)
    elif not log.closed:
        print(f"arqon log: {args.log} was not closed (its writer stopped without the end marker)", file=sys.stderr)
    records = log.records
    names = log.names()
    if args.verb == "export":
        out = open_private(args.output) if args.output else sys.stdout
        try:
            if args.format == "jsonl":
                for row in record_dicts(records, names=names):
                    out.write(json.dumps(row) + "\n")
            else:
                fields = ["index", "step", "kind", "name", "value", "status", "flags", "digest", "lost"] + (
                    ["arm"] if names.arms else []) + (["variant", "transition"] if names.variants else [])
                writer = csv.DictWriter(out, fields)
                writer.writeheader()
                writer.writerows(record_dicts(records, names=names))
        finally:
            if args.output:
                out.close()
        return 0
    if args.verb == "show":
        h = log.header
        what = []
        if h.get("config") is not None:
            what.append(f"seed {h['seed']}, params: " + ", ".join(p["name"] for p in h["config"]["params"]))
        if names.arms is not None:
            what.append(f"selector {h['selector'].get('policy', 'thompson')} over arms: " + ", ".join(names.arms))
        print(f"{args.log}: format {h['format']}, arqon {h['library']}, created {h['created']}, "
              f"{len(records)} records in {len(log.segments)} segment(s); " + "; ".join(what))
        shown = None
        for start, header in zip(log.starts, log.headers):
            c = header.get("catalog")
            allowed = c.get("allowed", c["approved"]) if c is not None else None
            if c is not None and (c["version"], c["approved"], allowed) != shown:
                shown = c["version"], c["approved"], allowed
                changes = "; ".join(f"{t['variant']} {t['from']} -> {t['to']}" for t in header.get("transitions") or [])
                print(f"  from record {start}: catalog {c['name']} v{c['version']} (scope {c['scope']}, sha256 "
                      f"{c['digest'][:16]}..., signed by {', '.join(c['signers']) or 'nobody'}), approved: "
                      + ", ".join(c["approved"])
                      + (f"; allowed now: {', '.join(allowed)}" if allowed != c["approved"] else "")
                      + (f"; lifecycle: {changes}" if changes else "")
                      + (f"; refused v{header['refused']['version']}: {header['refused']['reason']}"
                         if header.get("refused") else ""))
        start, rows = 0, records[: args.limit]
    else:
        start = max(len(records) - args.limit, 0)
        rows = records[start:]
    print(f"{'index':>8s} {'step':>8s} {'kind':16s} {'value':>14s} {'status':>10s} {'digest':16s} {'lost':>5s}")
    for row in record_dicts(rows, start, names=names):
        value = "" if row["value"] is None else f"{row['value']:.6g}"
        named = " ".join(str(row[k]) for k in ("name", "arm", "variant", "transition", "flags") if row.get(k))
        print(f"{row['index']:8d} {row['step']:8d} {row['kind']:16s} {value:>14s} {row['status']:10d} "
              f"{row['digest']:16s} {row['lost']:5d}" + (f" {named}" if named else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
