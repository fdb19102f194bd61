"""A Numba simulation that tunes its own controller gains online while the plant it controls drifts.

A PI controller holds a first-order plant with an actuator dead time at a setpoint that steps every 50 time steps. Too
little gain tracks slowly, too much oscillates through the dead time; the plant's pole and gain drift slowly and jump once
(a "load change"), so the best (kp, ki) keep moving. Every window of 200 simulation steps the loop
measures its tracking cost and calls ``arqon.kernels.step`` from inside @njit: no Python in the loop. The same plant,
noise and setpoints are run beside it with the starting gains held fixed, for comparison.

Run: ``python examples/njit_loop.py`` (``--windows N`` to change the length).
"""

import argparse
import time

import numba
import numpy as np

import arqon
from arqon.kernels import ask, drop_stale_cache, proposal, rng_seed, rng_uniform, step


def _cache_probe():
    pass


drop_stale_cache(_cache_probe)  # the cache=True functions below inline arqon kernels: drop them when arqon changes

CONFIG = {
    "params": [
        {"name": "kp", "min": 0.05, "max": 20.0, "scale": "log", "init": 1.0},
        {"name": "ki", "min": 0.05, "max": 50.0, "scale": "log", "init": 1.0},
    ],
    "seed": 7,
    "spsa": {"gains": "constant", "c": 0.05, "initial_step": 0.02, "max_step": 0.05},
}
WINDOW = 200  # simulation steps per measurement
DT = 0.02
DEAD_TIME = 8  # steps between the controller's output and the plant's input


@numba.njit(cache=True)
def plant(w, n_windows):
    """Pole and gain of the plant during window ``w``: slow drift, and a jump two thirds of the way through."""
    phase = 2.0 * np.pi * w / n_windows
    pole = 1.0 + 0.6 * np.sin(phase)
    gain = 2.0 + 1.0 * np.cos(0.5 * phase)
    if w >= 2 * n_windows // 3:
        pole *= 3.0
        gain *= 0.4
    return pole, gain


@numba.njit(cache=True)
def run_window(kp, ki, pole, gain, sim, delay, noise_rng, start):
    """Simulate one window with PI gains (kp, ki), continuing from sim = [y, integral] and the dead-time line ``delay``.
    Returns the mean squared tracking error plus a small control-effort term."""
    y, integral = sim[0], sim[1]
    cost = 0.0
    for t in range(WINDOW):
        setpoint = 1.0 if ((start + t) // 50) % 2 == 0 else -1.0
        error = setpoint - y
        integral = min(max(integral + error * DT, -10.0), 10.0)
        slot = (start + t) % DEAD_TIME
        u = delay[slot]  # the output computed DEAD_TIME steps ago reaches the plant now
        delay[slot] = min(max(kp * error + ki * integral, -20.0), 20.0)
        y += DT * (-pole * y + gain * u) + 0.02 * (rng_uniform(noise_rng) - 0.5)
        cost += error * error + 1e-3 * u * u
    sim[0], sim[1] = y, integral
    return cost / WINDOW


@numba.njit(cache=True)
def simulate(state, n_windows, log):
    """Run ``n_windows`` windows, tuning (kp, ki) online; log[w] = (pole, gain, kp, ki, tuned cost, fixed cost)."""
    noise_tuned = np.zeros(4, np.uint64)
    noise_fixed = np.zeros(4, np.uint64)
    sim_tuned, sim_fixed = np.zeros(2), np.zeros(2)
    delay_tuned, delay_fixed = np.zeros(DEAD_TIME), np.zeros(DEAD_TIME)
    rng_seed(noise_tuned, np.uint64(99))
    rng_seed(noise_fixed, np.uint64(99))  # same noise for both runs
    ask(state)
    x = proposal(state)
    kp0, ki0 = x[0], x[1]
    for w in range(n_windows):
        pole, gain = plant(w, n_windows)
        kp, ki = x[0], x[1]
        cost = run_window(kp, ki, pole, gain, sim_tuned, delay_tuned, noise_tuned, w * WINDOW)
        fixed = run_window(kp0, ki0, pole, gain, sim_fixed, delay_fixed, noise_fixed, w * WINDOW)
        log[w, 0], log[w, 1], log[w, 2], log[w, 3], log[w, 4], log[w, 5] = pole, gain, kp, ki, cost, fixed
        step(state, cost)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=6000, help="measurement windows to run (default 6000)")
    parser.add_argument("--rows", type=int, default=12, help="rows in the progress table (default 12)")
    args = parser.parse_args(argv)
    if args.windows < args.rows or args.rows < 1:
        parser.error("--windows must be at least --rows, and --rows at least 1")

    tuner = arqon.Tuner(CONFIG)
    log = np.zeros((args.windows, 6))
    t0 = time.perf_counter()
    simulate(tuner.state, 2, np.zeros((2, 6)))  # compile (or load from cache) outside the timing
    tuner = arqon.Tuner(CONFIG)
    t1 = time.perf_counter()
    simulate(tuner.state, args.windows, log)
    t2 = time.perf_counter()

    block = args.windows // args.rows
    print("kp and ki: geometric mean of the block's proposals; costs: block means (lower is better)\n")
    print(f"{'windows':>13s} {'pole':>5s} {'gain':>5s} {'kp':>7s} {'ki':>7s} {'tuned cost':>11s} {'fixed cost':>11s}"
          f" {'ratio':>6s}")
    for r in range(args.rows):
        part = log[r * block:(r + 1) * block]
        tuned, fixed = part[:, 4].mean(), part[:, 5].mean()
        kp, ki = np.exp(np.log(part[:, 2:4]).mean(axis=0))
        print(f"{r * block:6d}-{(r + 1) * block - 1:<6d} {part[-1, 0]:5.2f} {part[-1, 1]:5.2f} {kp:7.3f}"
              f" {ki:7.3f} {tuned:11.4f} {fixed:11.4f} {tuned / fixed:6.2f}")
    total_tuned, total_fixed = log[:, 4].mean(), log[:, 5].mean()
    steps = args.windows * WINDOW * 2
    print(f"\nmean cost: tuned {total_tuned:.4f}, fixed gains {total_fixed:.4f} "
          f"(tuned/fixed = {total_tuned / total_fixed:.2f})")
    print(f"{args.windows} tuner steps and {steps:,} simulation steps in {t2 - t1:.3f} s inside @njit "
          f"(first call with compile/cache load: {t1 - t0:.2f} s)")


if __name__ == "__main__":
    main()
