"""``arqon``: the command line. Exit codes: 0 success, 1 a check failed (a contract breach), 2 bad usage or input."""

from __future__ import annotations

import argparse
import sys

from arqon.config import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arqon", description="Machine-speed online tuning of live systems.",
                                     epilog="Exit codes: 0 success, 1 a check failed, 2 bad usage or input.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    c = commands.add_parser(
        "contracts", help="measure every hot-path kernel and check its timing budgets",
        description="Measure every hot-path kernel in this process (p50, p99 and max-of-p99 per call, over batches of "
                    "about 20 us on the thread's CPU clock, so time preempted by other work does not count) and check "
                    "them against a budgets file, as nanoseconds and/or as ratios to a calibration loop measured in "
                    "the same run. Exits 1 naming each breach.",
        epilog="kernels: step.njit.d2, step.njit.d16, step.njit.d128, step.njit.d16.constant (inside @njit), "
               "step.python.d16 (Tuner.step), rng.next, rng.rademacher.d16, guard.offer.accept.d16, "
               "guard.offer.reject.d16, guard.observe.d16 (the safety executor inside @njit), ring.push, "
               "stats.update.ema_p2x3, stats.update.full, telemetry.emit (telemetry inside @njit), "
               "telemetry.emit.python (Telemetry.emit)")
    c.add_argument("--budgets", metavar="FILE", help="budgets TOML (default: the one shipped with arqon)")
    c.add_argument("--mode", choices=["ratio", "ns", "both"], default="ratio",
                   help="what must hold: ratios to the calibration loop (default; machine-independent), absolute ns, "
                        "or both")
    c.add_argument("--only", nargs="+", metavar="KERNEL", help="measure only these kernels")
    c.add_argument("--repetitions", type=int, default=20, help="repetitions per kernel (default 20)")
    c.add_argument("--samples", type=int, default=200, help="timed batches per repetition (default 200)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "contracts":
            from arqon import contracts

            if args.repetitions < 1 or args.samples < 10:
                raise ConfigError("--repetitions must be >= 1 and --samples >= 10")
            return contracts.main(args)
    except ConfigError as e:
        print(f"arqon {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
