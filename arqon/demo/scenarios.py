"""The demo's knobs and scripted scenarios: plain data (numpy and attrs only), so the command line can list them
without loading the compiled service."""

from __future__ import annotations

import attrs
import numpy as np

KNOBS = [
    {"name": "batch_size", "min": 1, "max": 256, "scale": "log", "integer": True},
    {"name": "batch_timeout_ms", "min": 0.1, "max": 20.0, "scale": "log"},
    {"name": "workers", "min": 1, "max": 64, "scale": "log", "integer": True},
    {"name": "cache_ttl_s", "min": 1.0, "max": 600.0, "scale": "log"},
    {"name": "retry_backoff_ms", "min": 1.0, "max": 500.0, "scale": "log"},
]
# environment columns, one row per window
LOAD, HEAVY, CORES, FAIL, BURST, STALE = range(6)
ENV_COLUMNS = ("load", "heavy", "cores", "fail", "burst", "stale")
FAULTY_CONFIG = np.array([256.0, 20.0, 2.0, 10.0, 20.0])


@attrs.frozen
class Scenario:
    name: str
    title: str
    description: str
    steps: int
    change: int  # the step where the main change happens (re-convergence is timed from it)
    fault: tuple[int, int] | None = None  # steps [start, end) during which a faulty source pushes FAULTY_CONFIG

    def environment(self) -> np.ndarray:
        """The (steps, 6) environment, one row per window: load, heavy share, cores, failure rate, burst, staleness."""
        n, t = self.steps, np.arange(self.steps)
        env = np.empty((n, len(ENV_COLUMNS)))
        env[:, LOAD], env[:, HEAVY], env[:, CORES] = 20.0, 0.2, 16.0
        env[:, FAIL], env[:, BURST], env[:, STALE] = 0.025, 0.3, 0.02
        after = t >= self.change
        if self.name == "load-step":
            env[after, LOAD] = 50.0
        elif self.name == "mix-drift":
            env[:, HEAVY] = 0.1 + 0.5 * np.clip((t - self.change) / (n - self.change), 0.0, 1.0)
        elif self.name == "resource-limit":
            env[after, CORES] = 4.0
        return env


SCENARIOS = {s.name: s for s in (
    Scenario("load-step", "A step change in load", "Load jumps from 20 to 50 requests/ms at step 600.", 2400, 600),
    Scenario("mix-drift", "A slow drift in workload mix", "The heavy share drifts from 10% to 60% from step 600 on.",
             2400, 600),
    Scenario("resource-limit", "A change in resource limits", "A CPU quota cuts the cores from 16 to 4 at step 600.",
             2400, 600),
    Scenario("fault", "An injected faulty proposal",
             "From step 1200 to 1500 a faulty source pushes a bad configuration (batches of 256 held up to 20 ms, 2 "
             "workers) instead of the tuner's proposals, every step; it breaches the latency SLO wherever it goes live.",
             2400, 1200, (1200, 1500)),
)}

# phase 2: a selector among a signed catalog's variants (arqon.demo.inference), as (title, description)
INFERENCE = ("A simulated inference server choosing among approved variants",
             "12 approved variants in a signed catalog (fp16 / int8 / int4, full depth or early exit, a single-request "
             "or an 8-request batch kernel); the hardware class (GPU, or a CPU fail-over host too small for fp16), "
             "the prompt length and the load change every 600 steps; p99 latency SLO 400 ms.")

# phase 2, the real one: Numba kernel variants from a signed catalog, timed on this machine (arqon.demo.kernels)
KERNELS = ("Real kernel variants chosen by their measured time",
           "Nine blocked matrix-multiply builds (two loop orders x four tile sizes, and one that skips the last "
           "partial tile) go through a correctness gate against NumPy; the eight that pass are signed into a catalog; "
           "one selector per input size (64, then 192, then 64 again) picks the live build through the executor by "
           "its measured time on this machine.")
