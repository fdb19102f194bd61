"""The examples: the SOR solver against a direct solve, the tuner reaching the model problem's optimum, the others run."""

import math
import pathlib

import numpy as np
import pytest

from tests.conftest import load_script

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    return load_script(EXAMPLES / f"{name}.py")


@pytest.fixture(scope="module")
def sor():
    return load("sor_poisson")


def laplacian(n):
    """The 5-point -laplace matrix on an n x n interior grid with zero boundary, times h^2."""
    eye = np.eye(n)
    line = 2 * eye - np.eye(n, k=1) - np.eye(n, k=-1)
    return np.kron(line, eye) + np.kron(eye, line)


@pytest.mark.parametrize("omega", [1.0, 1.5, 1.8])
def test_sor_solves_the_poisson_system(sor, omega):
    n = 12
    rng = np.random.default_rng(3)
    f = np.zeros((n + 2, n + 2))
    f[1:-1, 1:-1] = rng.uniform(-1, 1, (n, n))
    u = np.zeros_like(f)
    sweeps = sor.sor_solve(u, f, omega, 1e-10, 100_000)
    exact = np.linalg.solve(laplacian(n), f[1:-1, 1:-1].ravel() / (n + 1) ** 2).reshape(n, n)
    assert sweeps < 100_000
    np.testing.assert_allclose(u[1:-1, 1:-1], exact, rtol=0, atol=1e-8 * np.abs(exact).max())
    assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)


def test_fewest_sweeps_at_the_model_optimum(sor):
    """Scanning omega, the solver needs the fewest sweeps within 0.015 of 2 / (1 + sin(pi h))."""
    n = 32
    omegas = np.arange(1.70, 1.95, 0.005)
    sweeps = [np.median(sor.fixed_solves(n, omega, 3, 1)) for omega in omegas]
    assert abs(omegas[int(np.argmin(sweeps))] - sor.optimal_omega(n)) < 0.015
    assert np.median(sor.fixed_solves(n, 1.0, 3, 1)) > 8 * min(sweeps)  # Gauss-Seidel


def test_tuner_finds_each_grids_omega_from_gauss_seidel(sor):
    rows = sor.run([16, 32], 160)
    for r in rows:
        gap, best_gap = 2.0 - r["omega"], 2.0 - r["optimum"]
        assert abs(math.log(gap / best_gap)) < 0.35, (r["n"], r["omega"], r["optimum"])
        gauss_seidel = r["gauss_seidel"][0]
        assert r["tuning"] < gauss_seidel / 3  # while still probing
        assert r["tuned"][0] < 1.25 * r["optimum_sweeps"]
    first_pair = 2.0 - rows[0]["log"][:2, 0]
    assert math.sqrt(first_pair[0] * first_pair[1]) == pytest.approx(1.0)  # probes around the textbook default
    again = sor.run([16, 32], 160)
    for a, b in zip(rows, again):
        np.testing.assert_array_equal(a["log"], b["log"])  # same seed, same solves


def test_sor_example_prints_its_table(sor, capsys):
    sor.main(["--grids", "16", "--solves", "60"])
    out = capsys.readouterr().out
    assert "16x16" in out and "tuning included" in out
    with pytest.raises(SystemExit):
        sor.main(["--grids", "16,x"])


def test_quickstart_finds_the_minimum(capsys):
    load("quickstart")
    out = capsys.readouterr().out
    true_value = float(out.split("true value there: ")[1].split()[0])
    assert true_value < 1e-2


def test_njit_loop_beats_its_fixed_gains(capsys):
    load("njit_loop").main(["--windows", "1500", "--rows", "3"])
    out = capsys.readouterr().out
    ratio = float(out.split("tuned/fixed = ")[1].split(")")[0])
    assert ratio < 1.0


def test_selecting_a_kernel_variant_settles_on_the_fastest_correct_one():
    times, medians, eligible = load("select_kernel_variant").main(decisions=300, quiet=True)
    assert times["rows_skip_last"] == [] and not eligible[-1]  # the wrong variant is never run after the gate
    most = max(times, key=lambda n: len(times[n]))
    assert len(times[most]) > 0.6 * 300
    assert medians[most] == min(m for n, m in medians.items() if len(times[n]) >= 3)


def test_catalog_example_runs_only_approved_variants_and_beats_the_worst(capsys):
    """The variant that is wrong at one input size is refused by the correctness gate and never goes live; every live
    variant is an approved one of the verified catalog; the online total is below the worst single variant's."""
    example = load("catalog_kernel_variants")
    out = example.main(decisions=240, seed=1)
    assert "refused: skip_t48" in capsys.readouterr().out
    assert "skip_t48" not in out["ids"] and len(out["ids"]) == 8
    assert all(v.lifecycle == "approved" and v.evidence[-1].by == "gate:correctness+timing"
               for v in out["catalog"].variants)
    assert {variant for _, variant in out["live"]} <= set(out["ids"])
    assert len(out["live"]) == 240
    assert out["total"] < max(out["fixed"].values())


def test_discovery_feeds_the_live_catalog_and_refuses_what_regresses_at_the_peak(tmp_path, capsys):
    """Phase 3: the chat adapter wins the day's traffic and is refused by the robustness gate for the evening peak
    (the model's expected rewards say it is worse than the baseline there); the promoted variants are approved in
    the signed catalog's next version and go live after it is taken, never before."""
    from arqon.demo import inference as inf

    example = load_script(EXAMPLES / "discovery" / "run.py")
    out = example.main(["--out", str(tmp_path / "run"), "--quiet", "--workers", "2"])
    outcome, live, added = out["outcome"], out["live"], out["added"]
    baseline = dict(outcome.spec.baseline)
    refused = [c for c in outcome.candidates if c.failed_gate == "robustness"]
    assert refused and all(c.variant["adapter"] == "chat" for c in refused)
    better_by_day = [c for c in refused
                     if next(r for r in c.evidence if r["gate"] == "regression")["verdict"] == "pass"]
    assert better_by_day  # better than the baseline on the day's traffic ...
    for c in refused:
        peak = next(r for r in c.evidence if r["gate"] == "robustness")["figures"]["peak"]
        assert peak["candidate_median"] < peak["baseline_median"]  # ... worse at the peak, as the model says:
        context = ("gpu", "long", "high")
        assert inf.expected(c.variant, *context)["reward"] < inf.expected(baseline, *context)["reward"]
    promoted = [c for c in outcome.candidates if c.promoted]
    assert promoted and all(c.evidence[-1]["verdict"] == "pass" for c in promoted)
    assert set(added) == {c.promoted.split("@")[0] for c in promoted}
    assert all(v.lifecycle == "approved" for v in out["catalog"].variants if v.id in added)
    half = example.HALF
    assert not set(added) & set(live.live[:half])
    assert set(added) & set(live.live[half:])
    assert "no restart" in capsys.readouterr().out
