"""Tune the relaxation factor of an SOR Poisson solver online, inside @njit, while the grid is refined.

A simulation solves -laplace(u) = f on the unit square (u = 0 on the boundary, 5-point stencil, n x n interior points)
once per time step with a new right-hand side, by successive over-relaxation in natural order, until the residual
falls below ``TOL`` of its starting value. The sweeps a solve needs depend sharply on the relaxation factor omega,
and the best omega depends on the grid: 2 / (1 + sin(pi h)) for this model problem, h = 1 / (n + 1). The simulation
refines its grid in phases (n = 32, 64, 128); one arqon tuner, called from inside the same @njit loop after every
solve with the log of its sweep count, starts at the textbook default omega = 1 (Gauss-Seidel) and follows the best
value from grid to grid. The tuned knob is ``gap = 2 - omega`` on a log scale, because the optimum crowds toward 2.

For each phase the example prints the tuner's omega at the end, the model problem's optimum, and the sweeps and wall
time per solve at the end of the phase against the same solves at omega = 1 (Gauss-Seidel, the textbook default)
and at omega = 1.5 (a common fixed choice), all measured in this run.

Run: ``python examples/sor_poisson.py`` (``--solves N`` per phase, ``--grids 32,64,128``).
"""

import argparse
import math
import time

import numba
import numpy as np

import arqon
from arqon.kernels import ask, drop_stale_cache, proposal, rng_seed, rng_uniform, step


def _cache_probe():
    pass


drop_stale_cache(_cache_probe)  # the cache=True functions below inline arqon kernels: drop them when arqon changes

CONFIG = {
    "params": [{"name": "gap", "min": 0.002, "max": 1.5, "scale": "log", "init": 1.0}],  # omega = 2 - gap
    "seed": 11,
    "spsa": {"gains": "constant", "c": 0.02, "initial_step": 0.03, "max_step": 0.08},
}
TOL = 1e-6  # stop when the sweep's residual norm is below TOL times the first sweep's
MAX_SWEEPS = 200_000
TAIL = 20  # solves at the end of each phase that measure where the tuner arrived


@numba.njit(cache=True)
def sor_solve(u, f, omega, tol, max_sweeps):
    """Solve -laplace(u) = f with zero boundary by SOR in natural order; u (n+2, n+2) holds the boundary ring and
    the starting guess, f (n+2, n+2) the source. Mutates: u. Allocates: nothing. Returns: the sweeps used
    (max_sweeps if the residual never fell below tol times the first sweep's)."""
    n = u.shape[0] - 2
    h2 = 1.0 / ((n + 1) * (n + 1))
    first = 0.0
    for sweep in range(1, max_sweeps + 1):
        norm = 0.0
        for i in range(1, n + 1):
            for j in range(1, n + 1):
                r = h2 * f[i, j] + u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1] - 4.0 * u[i, j]
                u[i, j] += 0.25 * omega * r
                norm += r * r
        if sweep == 1:
            first = norm
        if norm <= tol * tol * first:
            return sweep
    return max_sweeps


@numba.njit(cache=True)
def solve_new_source(u, f, rng, omega):
    """One time step: fill the interior of f with a fresh source, uniform in [-1, 1), and solve it from u = 0.
    Mutates: u, f, rng. Returns: the sweeps used."""
    n = f.shape[0] - 2
    for i in range(1, n + 1):
        for j in range(1, n + 1):
            f[i, j] = 2.0 * rng_uniform(rng) - 1.0
    u[:, :] = 0.0
    return sor_solve(u, f, omega, TOL, MAX_SWEEPS)


@numba.njit(cache=True)
def tune_phase(state, n, solves, rng, log):
    """Run ``solves`` time steps on an n x n grid, each a fresh source solved from zero with the tuner's omega, and
    tell the tuner log(sweeps) after each. log[k] = (omega, sweeps). Mutates: state, rng, log."""
    u = np.zeros((n + 2, n + 2))
    f = np.zeros((n + 2, n + 2))
    ask(state)
    x = proposal(state)
    for k in range(solves):
        omega = 2.0 - x[0]
        sweeps = solve_new_source(u, f, rng, omega)
        log[k, 0], log[k, 1] = omega, sweeps
        step(state, math.log(sweeps))


@numba.njit(cache=True)
def fixed_solves(n, omega, solves, seed):
    """Sweeps of ``solves`` solves at a fixed omega on the sources a fresh rng seeded with ``seed`` draws."""
    rng = np.zeros(4, np.uint64)
    rng_seed(rng, np.uint64(seed))
    u = np.zeros((n + 2, n + 2))
    f = np.zeros((n + 2, n + 2))
    out = np.zeros(solves)
    for k in range(solves):
        out[k] = solve_new_source(u, f, rng, omega)
    return out


def optimal_omega(n):
    """The model problem's optimum: 2 / (1 + sin(pi h)), h = 1 / (n + 1)."""
    return 2.0 / (1.0 + math.sin(math.pi / (n + 1)))


def fixed(n, omega, solves=5, seed=77):
    """Median sweeps and median wall seconds of ``solves`` solves at a fixed omega, each on its own seeded source."""
    sweeps, seconds = [], []
    for k in range(solves):
        t0 = time.perf_counter()
        sweeps.append(fixed_solves(n, omega, 1, seed + k)[0])
        seconds.append(time.perf_counter() - t0)
    return float(np.median(sweeps)), float(np.median(seconds))


def run(grids, solves, seed=1):
    """Tune through the phases; returns one dict per grid with the tuned omega and the measured sweeps."""
    tuner = arqon.Tuner(CONFIG)
    rng = np.zeros(4, np.uint64)
    rng_seed(rng, np.uint64(seed))
    rows = []
    for n in grids:
        log = np.zeros((solves, 2))
        tune_phase(tuner.state, n, solves, rng, log)
        omega = float(2.0 - tuner.recommend()["gap"])
        tail = log[-TAIL:]
        rows.append({
            "n": n, "omega": omega, "optimum": optimal_omega(n), "log": log,
            "tuning": float(np.median(tail[:, 1])), "tuning_sweeps": float(log[:, 1].sum()),
            "tuned": fixed(n, omega), "optimum_sweeps": fixed(n, optimal_omega(n))[0],
            "gauss_seidel": fixed(n, 1.0), "fixed_1_5": fixed(n, 1.5)[0],
        })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--solves", type=int, default=200, help="solves (time steps) per grid phase (default 200)")
    parser.add_argument("--grids", default="32,64,128", help="interior points per side, one phase each (default "
                        "32,64,128)")
    args = parser.parse_args(argv)
    try:
        grids = [int(g) for g in args.grids.split(",")]
    except ValueError:
        parser.error(f"--grids must be comma-separated integers, got {args.grids!r}")
    if any(g < 4 for g in grids):
        parser.error("--grids: every grid needs at least 4 interior points per side")
    if args.solves < 2 * TAIL:
        parser.error(f"--solves must be at least {2 * TAIL}")

    run([8], 2 * TAIL)  # compile (or load from cache) outside the timing
    t0 = time.perf_counter()
    rows = run(grids, args.solves)
    t1 = time.perf_counter()

    print(f"sweeps per solve to a {TOL:g} residual reduction. 'tuning': median of the phase's last {TAIL} solves, "
          "probes\nincluded; the others: median of 5 solves on 5 other sources at a fixed omega (the tuner's final "
          "one,\nthe model optimum, 1.0 = Gauss-Seidel, 1.5). Speed-ups are omega = 1.0 (or 1.5) over 'tuning'; "
          "wall: the\nmedian seconds per solve at omega = 1.0 over those at the tuner's omega, same 5 sources.\n")
    print(f"{'grid':>8s} {'omega':>7s} {'optimum':>8s} {'tuning':>7s} {'tuned':>6s} {'optimum':>8s} {'1.0':>7s}"
          f" {'1.5':>6s} {'vs 1.0':>7s} {'vs 1.5':>7s} {'wall vs 1.0':>12s}")
    for r in rows:
        n = r["n"]
        (tuned, wall_tuned), (gauss_seidel, wall_gs) = r["tuned"], r["gauss_seidel"]
        print(f"{n:4d}x{n:<3d} {r['omega']:7.4f} {r['optimum']:8.4f} {r['tuning']:7.0f} {tuned:6.0f}"
              f" {r['optimum_sweeps']:8.0f} {gauss_seidel:7.0f} {r['fixed_1_5']:6.0f}"
              f" {gauss_seidel / r['tuning']:6.1f}x {r['fixed_1_5'] / r['tuning']:6.1f}x"
              f" {wall_gs / wall_tuned:11.1f}x")
    total = sum(r["tuning_sweeps"] for r in rows)
    total_gs = sum(r["gauss_seidel"][0] * args.solves for r in rows)
    print(f"\nall {args.solves * len(rows)} solves, tuning included: {total:,.0f} sweeps against about "
          f"{total_gs:,.0f} at omega = 1 ({total_gs / total:.1f}x); run time {t1 - t0:.1f} s")


if __name__ == "__main__":
    main()
