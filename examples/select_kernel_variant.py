"""Pick the fastest of several Numba kernel variants by their measured time, online, with SLA-first eligibility.

Four variants compute the same row sums of a matrix: a row-major loop, a column-major loop (strided reads), a
``fastmath`` loop, and NumPy's ``sum``. A fifth variant is fast but WRONG (it skips the last column): a correctness
check masks it before it can ever be chosen. Each decision runs the chosen variant once, times it, and gives the
selector the reward ``exp(-time / reference)`` in (0, 1] (faster: larger). Thompson sampling converges on the fastest
variant while still re-checking the others now and then.

Run: ``python examples/select_kernel_variant.py`` (about 5 s).
"""

import math
import time

import numba
import numpy as np

import arqon


@numba.njit(cache=True)
def rows_loop(a, out):
    for i in range(a.shape[0]):
        acc = 0.0
        for j in range(a.shape[1]):
            acc += a[i, j]
        out[i] = acc


@numba.njit(cache=True)
def columns_loop(a, out):
    out[:] = 0.0
    for j in range(a.shape[1]):
        for i in range(a.shape[0]):
            out[i] += a[i, j]


@numba.njit(cache=True, fastmath=True)
def rows_fastmath(a, out):
    for i in range(a.shape[0]):
        acc = 0.0
        for j in range(a.shape[1]):
            acc += a[i, j]
        out[i] = acc


def numpy_sum(a, out):
    np.sum(a, axis=1, out=out)


@numba.njit(cache=True, fastmath=True)
def rows_skipping_last(a, out):  # fast and wrong
    for i in range(a.shape[0]):
        acc = 0.0
        for j in range(a.shape[1] - 1):
            acc += a[i, j]
        out[i] = acc


VARIANTS = {"rows": rows_loop, "columns": columns_loop, "rows_fastmath": rows_fastmath, "numpy": numpy_sum,
            "rows_skip_last": rows_skipping_last}


def timed(kernel, a, out):
    start = time.perf_counter_ns()
    kernel(a, out)
    return (time.perf_counter_ns() - start) * 1e-3  # us


def main(decisions=400, seed=0, quiet=False):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(256, 256))
    out = np.zeros(a.shape[0])
    expected = a.sum(axis=1)
    names = list(VARIANTS)
    correct = []
    for name in names:  # compile, then the correctness gate: only variants that compute the right answer are eligible
        VARIANTS[name](a, out)
        correct.append(bool(np.allclose(out, expected)))
    eligible = np.array(correct)
    reference = min(timed(VARIANTS[n], a, out) for n in names for _ in range(3))
    selector = arqon.Selector({"arms": names, "policy": "thompson", "seed": seed})
    arm = selector.select(eligible=eligible)
    times = {name: [] for name in names}
    for _ in range(decisions):
        us = timed(VARIANTS[names[arm]], a, out)
        times[names[arm]].append(us)
        arm = selector.step(math.exp(-us / (4.0 * reference)), eligible=eligible)
    medians = {n: float(np.median(t)) if t else math.nan for n, t in times.items()}
    if not quiet:
        print(f"{decisions} decisions over {len(names)} variants of a 256 x 256 row sum (Thompson sampling)")
        for n in names:
            gate = "ok" if eligible[names.index(n)] else "masked: wrong result"
            print(f"  {n:15s} chosen {len(times[n]):4d} times, median {medians[n]:8.1f} us   ({gate})")
        print(f"most chosen: {max(times, key=lambda n: len(times[n]))}")
    return times, medians, eligible


if __name__ == "__main__":
    main()
