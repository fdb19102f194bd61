"""Prints, after a benchmark run, each median beside its ratio to the empty-call baselines measured in the same run,
and the ratios benchmarks ask for (``extra_info["versus"]``: the name of the benchmark to divide by)."""


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks:
        return
    medians = {b.name: b.stats.median * 1e9 / b.extra_info.get("steps", 1) for b in session.benchmarks if b.stats}
    tr = terminalreporter
    versus = [(b.name, b.extra_info["versus"]) for b in session.benchmarks if b.stats and "versus" in b.extra_info]
    if versus:
        tr.section("ratios measured in this run")
        for name, other in versus:
            if other in medians:
                tr.write_line(f"{name} {medians[name]:.1f} ns / {other} {medians[other]:.1f} ns = "
                              f"{medians[name] / medians[other]:.1f}x")
    base = {k: v for k, v in medians.items() if "empty" in k}
    if not base:
        return
    tr.section("median ns per step, and ratio to the empty @njit calls of this run")
    cols = sorted(base)
    tr.write_line(f"{'benchmark':46s} {'median ns':>10s} " + " ".join(f"{'/ ' + c[5:]:>28s}" for c in cols))
    for name, ns in medians.items():
        tr.write_line(f"{name:46s} {ns:10.1f} " + " ".join(f"{ns / base[c]:28.2f}" for c in cols))
