import threading
import time

import numpy as np

import arqon
from arqon.executor import Executor, Flags
from arqon.kernels import guard as g


def _uniform_executor(d=16):
    tuner = arqon.Tuner({"params": [{"name": f"p{i}", "min": 0, "max": 1e9, "init": 0} for i in range(d)]})
    return Executor({"params": {f"p{i}": {} for i in range(d)}, "safe_mode_after": 0}, tuner)


def test_a_reader_spinning_on_live_never_sees_a_torn_snapshot():
    """Every snapshot the writer makes has all coordinates equal; a read that mixes two snapshots is torn. The
    kernels release the GIL, so the writer really runs while the readers read. A control reader that reads the live
    row slowly without the sequence check must see torn snapshots in the same run: the test can see a tear."""
    ex = _uniform_executor()
    stop = threading.Event()
    counts = {"reads": 0, "torn": 0, "applies": 0, "control reads": 0, "control torn": 0}
    header, rows = g.guard_header(ex.state), g.guard_matrix(ex.state)

    def reader():
        while not stop.is_set():
            live = ex.live
            counts["reads"] += 1
            if not (live == live[0]).all():
                counts["torn"] += 1

    def control():
        while not stop.is_set():
            row = int(header["live"])
            live = [rows[row, j] for j in range(16)]
            counts["control reads"] += 1
            if len(set(live)) > 1:
                counts["control torn"] += 1

    def writer():
        proposal = np.zeros(16)
        k = 0
        while not stop.is_set():
            k += 1
            proposal[:] = k
            if ex.offer(proposal, k) & Flags.APPLIED:
                counts["applies"] += 1
            if k % 7 == 0:
                ex.snapback(k)

    threads = [threading.Thread(target=f) for f in (reader, control, writer)]
    for th in threads:
        th.start()
    time.sleep(2.0)
    stop.set()
    for th in threads:
        th.join()
    print(f"\n{counts}")
    assert counts["torn"] == 0 and counts["reads"] > 10_000 and counts["applies"] > 1_000
    assert counts["control torn"] > 0


def test_tuner_proposals_reach_the_system_only_through_the_executor():
    """A tuner behind a max-delta policy: the executor walks the live values toward each proposal, the tuner learns
    only from measurements taken at its own proposals, and it still converges."""
    tuner = arqon.Tuner({"params": [{"name": "a", "min": -5, "max": 5, "init": -4}], "seed": 3,
                         "spsa": {"gains": "constant", "c": 0.02, "initial_step": 0.02}})
    ex = Executor({"params": {"a": {"max_delta": 0.3}}, "metrics": ["cost"], "slos": ["cost <= 100"]}, tuner)
    moves, live = [], ex.live
    for now in range(3000):
        cost = float((live[0] - 2.0) ** 2)
        ex.step(tuner, {"cost": cost}, cost, now)
        new = ex.live
        moves.append(abs(new[0] - live[0]))
        live = new
    assert max(moves) <= 0.3 + 1e-12  # never a bigger jump than the policy allows
    assert abs(tuner.recommend()["a"] - 2.0) < 0.1 and abs(live[0] - 2.0) < 0.5
    assert tuner.n_evaluations > 500  # it was told only at its own proposals, and often enough


def test_safe_mode_and_halted_block_every_apply():
    ex = _uniform_executor(2)
    ex.kill(0)
    assert all(ex.offer([k, k], k) & Flags.HALTED for k in range(1, 50)) and ex.live.tolist() == [0, 0]
    ex.resume(50)
    ex.offer([1, 1], 51)
    assert ex.live.tolist() == [1, 1]


def test_an_observation_without_data_never_promotes_nor_counts_as_a_known_good_sample():
    """No canary stages: a candidate waits for an observation with at least one number (all NaN, or every name
    missing, is no data); the known-good's own levels count only observations with data."""
    tuner = arqon.Tuner({"params": [{"name": "a", "min": 0, "max": 10, "init": 5}]})
    ex = Executor({"params": {"a": {}}, "metrics": ["lat", "err"], "slos": ["lat <= 100"], "safe_mode_after": 0},
                  tuner)
    header = g.guard_header(ex.state)
    ex.observe({"lat": float("nan"), "err": float("nan")}, now=0)
    ex.observe({}, now=1)
    assert header["baseline_samples"] == 0
    ex.observe({"lat": 5.0}, now=2)
    assert header["baseline_samples"] == 1
    assert ex.offer([6.0], now=3) & Flags.APPLIED and ex.phase == arqon.executor.Phase.CANARY
    for now, metrics in enumerate(({"lat": float("nan"), "err": float("nan")}, {}), start=4):
        flags = ex.observe(metrics, now)
        assert not flags & Flags.PROMOTED and ex.phase == arqon.executor.Phase.CANARY, metrics
    assert ex.observe({"err": 0.0}, now=6) & Flags.PROMOTED and ex.baseline == {"a": 6.0}
