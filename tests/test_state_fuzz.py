"""Memory safety: seeded corruptions of a live state's header and truncations of its buffer, each tuner strategy, the
safety executor, telemetry (its metric record too), the ring (also as an audit ring) and the bandit selector (GLR,
sliding-window and linear layouts), from Python and from ``@njit``,
in one child process per mode (``tests/fuzz_states.py``): no crash, no write outside the buffer, and every state the layout
declaration calls invalid refused with BAD_STATE and left untouched."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


COMPONENTS = ("spsa", "es", "pbt", "cmaes", "guard", "telemetry", "ring", "bandit-glr", "bandit-window",
              "bandit-linear")


def _campaigns(mode):
    """Every component's campaign in one child process (its start-up, Numba's and the kernels', is most of the
    cost), seeds 0, 1, ... in COMPONENTS order."""
    out = subprocess.run([sys.executable, "-m", "tests.fuzz_states", ",".join(COMPONENTS), mode, "0"],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    lines = out.stdout.splitlines()
    if out.returncode != 0:
        started = [line for line in lines if " case " in line]
        culprit = started[-1] if started else "set-up"
        pytest.fail(f"the state fuzz ({mode}) exited with {out.returncode} during {culprit} (rerun: python -m "
                    f"tests.fuzz_states {culprit.split()[0] if started else ','.join(COMPONENTS)} {mode} "
                    f"{COMPONENTS.index(culprit.split()[0]) if started else 0})\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


@pytest.mark.parametrize("mode", ["python", "njit"])
def test_corrupted_and_truncated_states_are_refused_without_a_crash_or_a_stray_write(mode, capsys):
    totals = _campaigns(mode)
    assert list(totals) == list(COMPONENTS)
    for strategy, s in totals.items():
        assert s["outside_writes"] == [] and s["accepted_invalid"] == [] and s["changed_when_refused"] == [], strategy
        assert s["refused_valid"] == [], strategy  # a valid state is never driven into one its own check refuses
        assert s["refused_invalid"] == s["invalid"] > 50 and s["cases"] > 250, strategy
    with capsys.disabled():
        print(f"\n  state fuzz ({mode}): " + "; ".join(
            f"{k} {v['cases']} cases, {v['invalid']} invalid, all refused" for k, v in totals.items())
            + "; crashes 0, writes outside the buffer 0")
