"""Prints, after a benchmark run, each median beside its ratio to the empty-call baselines measured in the same run."""


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks:
        return
    medians = {b.name: b.stats.median * 1e9 / b.extra_info.get("steps", 1) for b in session.benchmarks if b.stats}
    base = {k: v for k, v in medians.items() if "empty" in k}
    if not base:
        return
    tr = terminalreporter
    tr.section("median ns per step, and ratio to the empty @njit calls of this run")
    cols = sorted(base)
    tr.write_line(f"{'benchmark':46s} {'median ns':>10s} " + " ".join(f"{'/ ' + c[5:]:>28s}" for c in cols))
    for name, ns in medians.items():
        tr.write_line(f"{name:46s} {ns:10.1f} " + " ".join(f"{ns / base[c]:28.2f}" for c in cols))
