"""Memory safety: seeded corruptions of a live state's header and truncations of its buffer, each tuner strategy, the
safety executor, telemetry (its metric record too), the ring (also as an audit ring) and the bandit selector (GLR,
sliding-window and linear layouts), from Python and from ``@njit``,
in child processes (``tests/fuzz_states.py``): no crash, no write outside the buffer, and every state the layout
declaration calls invalid refused with BAD_STATE and left untouched."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _campaign(strategy, mode, seed):
    out = subprocess.run([sys.executable, "-m", "tests.fuzz_states", strategy, mode, str(seed)], capture_output=True,
                         text=True, cwd=ROOT, timeout=600)
    lines = out.stdout.splitlines()
    if out.returncode != 0:
        started = [line for line in lines if line.startswith("case ")]
        pytest.fail(f"{strategy} ({mode}) exited with {out.returncode} during {started[-1] if started else 'set-up'}"
                    f" (rerun: python -m tests.fuzz_states {strategy} {mode} {seed})\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


@pytest.mark.parametrize("mode", ["python", "njit"])
def test_corrupted_and_truncated_states_are_refused_without_a_crash_or_a_stray_write(mode, capsys):
    totals = {}
    for seed, strategy in enumerate(("spsa", "es", "pbt", "cmaes", "guard", "telemetry", "ring", "bandit-glr",
                                     "bandit-window", "bandit-linear")):
        s = _campaign(strategy, mode, seed)
        assert s["outside_writes"] == [] and s["accepted_invalid"] == [] and s["changed_when_refused"] == []
        assert s["refused_valid"] == []  # a valid state is never driven into one its own check refuses
        assert s["refused_invalid"] == s["invalid"] > 50 and s["cases"] > 250
        totals[strategy] = s
    with capsys.disabled():
        print(f"\n  state fuzz ({mode}): " + "; ".join(
            f"{k} {v['cases']} cases, {v['invalid']} invalid, all refused" for k, v in totals.items())
            + "; crashes 0, writes outside the buffer 0")
