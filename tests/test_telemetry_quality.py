"""The quality figures of bench/telemetry_quality.py, in their quick form, held to bounds: a regression here means
estimates or detectors got worse."""

from bench import telemetry_quality


def test_quantile_accuracy_on_lognormal_samples():
    rows = {(name.split()[0], q): (median, worst) for name, q, median, worst in
            telemetry_quality.quantile_accuracy(100_000, range(2))}
    for q in (0.5, 0.99, 0.999):
        assert rows[("sketch", q)][1] <= 0.01  # the guarantee
    assert rows[("P-square", 0.5)][1] < 2e-3 and rows[("P-square", 0.99)][1] < 5e-3
    assert rows[("P-square", 0.999)][1] < 0.05  # P-square's far tail is coarse


def test_drift_detectors_false_alarms_and_delay(tmp_path):
    for row in telemetry_quality.drift_figures(200_000, 50, quick=True):
        if row["detector"].startswith("arqon"):
            assert row["false_per_1e6"] <= 100, row
            assert row["delay_median"] <= 30 and row["missed"] == 0, row


def test_script_writes_the_tables(tmp_path):
    out = tmp_path / "q.md"
    assert telemetry_quality.main(["--quick", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| sketch (accuracy 0.01) | 0.999 |" in text and "| arqon CUSUM" in text
