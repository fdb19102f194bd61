"""The timing-contracts checker: breaches are found and named; budgets files are validated. (The real kernels' timing
is checked by `arqon contracts` in CI, not here.)"""

import json

import numba
import pytest

from arqon import cli, contracts
from arqon.config import ConfigError


@numba.njit
def _slow_step(n):
    x = 0.0
    for i in range(n * 20_000):  # about 100x the budget of a d=16 step
        x += i * 1e-9
    return x


def test_a_slowed_kernel_is_reported_as_a_breach():
    probes = {**contracts.PROBES, "step.njit.d16": lambda: (lambda n: _slow_step(n))}
    report = contracts.check(mode="both", only=["step.njit.d16", "rng.next"], probes=probes, repetitions=2,
                             samples=20)
    assert {r.name for r in report.rows} == {"step.njit.d16", "rng.next"}
    slow = next(r for r in report.rows if r.name == "step.njit.d16")
    assert slow.timing.p50_ns > 1000
    assert any(b.startswith("p50 ratio") for b in slow.breaches) and any("ns >" in b for b in slow.breaches)
    assert all(b.startswith("step.njit.d16: ") for b in report.breaches)
    assert slow.attempts == 2  # measured again, and breached again


def _budgets(tmp_path, kernels):
    path = tmp_path / "budgets.toml"
    path.write_text("[calibration]\nreference_ns = 100.0\n" + "".join(
        f'[kernels."{name}"]\np50_ns = {p50}\np99_ns = {p99}\nmax_p99_ns = {mx}\n' for name, (p50, p99, mx) in
        kernels.items()))
    return path


def test_cli_exits_1_and_names_the_breach(tmp_path, capsys):
    path = _budgets(tmp_path, {"rng.next": (1e-6, 1e9, 1e9)})
    code = cli.main(["contracts", "--budgets", str(path), "--only", "rng.next", "--repetitions", "2", "--samples",
                     "20", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "BREACH rng.next: p50 ratio" in out and "rng.next" in out.splitlines()[3]


def test_cli_json_report(tmp_path, capsys):
    path = _budgets(tmp_path, {"rng.next": (1e9, 1e9, 1e9)})
    code = cli.main(["contracts", "--budgets", str(path), "--only", "rng.next", "--repetitions", "2", "--samples",
                     "20", "--json", "--quiet", "--mode", "both"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] and report["mode"] == "both"
    row = report["kernels"]["rng.next"]
    assert row["breaches"] == [] and row["budget_ns"]["p50_ns"] == 1e9
    assert 0 < row["ns"]["best_p50_ns"] <= row["ns"]["p50_ns"] <= row["ns"]["p99_ns"] <= row["ns"]["max_p99_ns"]
    assert 0 < row["ratio"]["best_p50_ns"] <= row["ratio"]["p50_ns"] <= row["ratio"]["max_p99_ns"]


def test_rounds_interleave_kernels_and_ratios_compare_figures_of_the_same_round(monkeypatch):
    """A machine that runs everything 3x slower in every other round (on a fake clock): each kernel's rounds alternate
    10 and 30 ns, and each ratio to the same round's calibration (100 or 300 ns) is exactly 0.1 and 0.2."""
    clock, slow, order = [0], [False], []

    def costing(name, ns):
        def run(n):
            clock[0] += n * ns * (3 if slow[0] else 1)
            order.append(name)
        return run

    def progress(message):
        if message.startswith("round "):
            slow[0] = int(message.split()[1].split("/")[0]) % 2 == 0
            order.append(message)

    monkeypatch.setattr(contracts.time, "thread_time_ns", lambda: clock[0])
    monkeypatch.setattr(contracts, "_calibration_loop", costing("calibration", 100))
    probes = {"a": lambda: costing("a", 10), "b": lambda: costing("b", 20)}
    budgets = contracts.Budgets(contracts.Calibration(100.0), {})
    report = contracts.check(budgets, only=["a", "b"], probes=probes, repetitions=4, samples=10, progress=progress)
    a, b = report.rows
    assert (a.timing.p50_ns, a.timing.best_p50_ns, a.timing.max_p99_ns) == (20, 10, 30)  # median of 10, 30, 10, 30
    assert (b.timing.p50_ns, b.timing.best_p50_ns) == (40, 20)
    assert vars(a.ratio) == pytest.approx(dict(p50_ns=0.1, p99_ns=0.1, max_p99_ns=0.1, best_p50_ns=0.1))
    assert vars(b.ratio) == pytest.approx(dict(p50_ns=0.2, p99_ns=0.2, max_p99_ns=0.2, best_p50_ns=0.2))
    rounds = "".join("|" if step.startswith("round") else step[0] for step in order[order.index("round 1/4"):])
    assert rounds == "|" + "|".join(["c" * 10 + "a" * 10 + "b" * 10] * 4)  # each round: calibration, a, b


def test_shipped_budgets_cover_every_measured_kernel():
    assert set(contracts.load_budgets().kernels) == set(contracts.PROBES)


@pytest.mark.parametrize("text, message", [
    ("[calibration]\nreference_ns = -1\n[kernels]\n", "Expected `float` > 0.0 - at `$.calibration.reference_ns`"),
    ("[calibration]\nreference_ns = 1\n[kernels.x]\np50_ns = 1\np99_ns = 1\n", "missing required field `max_p99_ns`"),
    ("[calibration]\nreference_ns = 1\nspeed = 2\n[kernels]\n", "unknown field `speed`"),
    ("[calibration\n", "not valid TOML"),
])
def test_bad_budgets_file_is_one_clear_error(tmp_path, text, message, capsys):
    path = tmp_path / "b.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="b.toml"):
        contracts.load_budgets(path)
    assert cli.main(["contracts", "--budgets", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arqon contracts: ") and message in err and len(err.strip().splitlines()) == 1


def test_unknown_kernel_names_are_errors(tmp_path, capsys):
    assert cli.main(["contracts", "--budgets", str(_budgets(tmp_path, {"warp.drive": (1, 1, 1)}))]) == 2
    assert "budgets name kernels that are not measured: warp.drive" in capsys.readouterr().err
    assert cli.main(["contracts", "--only", "warp.drive"]) == 2
    assert "unknown kernels: warp.drive; known: step.njit.d2" in capsys.readouterr().err
    assert cli.main(["contracts", "--only", "rng.next,warp.drive", "--only", "ring.push", "x"]) == 2  # all named count
    assert "unknown kernels: warp.drive, x; known: step.njit.d2" in capsys.readouterr().err


def test_contracts_help_lists_every_measured_kernel():
    from arqon.cli import _parser
    from arqon.contracts import PROBES

    epilog = _parser()._subparsers._group_actions[0].choices["contracts"].epilog
    assert [k for k in PROBES if k not in epilog] == []


def test_a_breach_that_does_not_recur_is_not_reported(monkeypatch):
    """On a fake clock: a kernel 100x slow only while first measured breaches with no retry, and with one it is
    measured again, passes, and says so."""
    clock, measurements = [0], [0]

    def kernel(n):
        clock[0] += n * (1000 if measurements[0] == 1 else 10)

    def progress(message):
        if message == "round 1/2":
            measurements[0] += 1

    monkeypatch.setattr(contracts.time, "thread_time_ns", lambda: clock[0])
    monkeypatch.setattr(contracts, "_calibration_loop", lambda n: clock.__setitem__(0, clock[0] + 100 * n))
    budgets = contracts.Budgets(contracts.Calibration(100.0), {"k": contracts.Budget(20.0, 20.0, 20.0)})
    for retries, breached, attempts in [(0, True, 1), (1, False, 2)]:
        measurements[0] = 0
        report = contracts.check(budgets, only=["k"], probes={"k": lambda: kernel}, repetitions=2, samples=10,
                                 progress=progress, retries=retries)
        (row,) = report.rows
        assert (bool(report.breaches), row.attempts) == (breached, attempts)
    assert row.timing.p50_ns == 10 and "ok (measured 2x)" in contracts.format_table(report, budgets)


@pytest.mark.parametrize("flag, value", [("--repetitions", "0"), ("--samples", "9"), ("--retries", "-1")])
def test_counts_out_of_range_are_one_clear_error(flag, value, capsys):
    assert cli.main(["contracts", "--only", "rng.next", flag, value]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "arqon contracts: --repetitions must be >= 1, --samples >= 10 and --retries >= 0"
