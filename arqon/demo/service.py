"""A simulated request-serving service (a Numba loop) with five knobs that matter (``scenarios.KNOBS``).

Requests arrive at ``load`` per millisecond. A cache answers the cacheable share of light requests (more of them the
longer ``cache_ttl_s``, but entries older than the data's change time are stale reads, which count as errors). Misses
queue for ``workers`` workers, which take them in batches of up to ``batch_size``, waiting at most ``batch_timeout_ms``
for a batch to fill: a batch costs a fixed setup plus a per-item time (heavy requests cost five times more), so bigger
batches raise capacity but make every member wait for the whole batch. More workers than CPU cores contend for them.
A downstream dependency fails a request now and then; it is retried after ``retry_backoff_ms``, and a retry sent too
soon lands in the same burst of failures and fails too (an error). Past capacity the queue sheds requests (errors).

Each window serves ``requests`` sampled requests: every latency and every error (0 or 1) is a telemetry sample.
The cost a tuner minimizes: ``p99_ms / 50 + 0.05 * workers + 40 * error_rate`` (latency, hardware, failures).
"""

from __future__ import annotations

import math

import numba

from arqon.demo.scenarios import BURST, CORES, FAIL, HEAVY, LOAD, STALE
from arqon.kernels import drop_stale_cache, rng_uniform
from arqon.kernels.telemetry import emit


def _cache_probe():
    pass


drop_stale_cache(_cache_probe)  # serve_window (cache=True) carries arqon kernels: drop it when they change

LATENCY, ERRORS = 0, 1  # telemetry metric ids
SETUP_MS, ITEM_MS, CACHE_MS = 1.0, 0.04, 0.3
CACHE_REUSE_S, DATA_CHANGE_S, BURST_MS = 30.0, 200.0, 30.0


@numba.njit(cache=True)
def serve_window(knobs, env, rng, tel, ring, n_requests, step):
    """Serve ``n_requests`` requests with ``knobs`` (the five values, in KNOBS order) under one ``env`` row, emitting
    each latency (ms) and error (0/1) to the telemetry state ``tel`` and ring ``ring``. Mutates: rng, tel, ring.
    Allocates: nothing. Returns: the number of requests shed for overload."""
    batch, timeout, workers, ttl, backoff = knobs[0], knobs[1], knobs[2], knobs[3], knobs[4]
    load, heavy, cores = env[LOAD], env[HEAVY], env[CORES]
    hit = (1.0 - heavy) * 0.7 * (1.0 - math.exp(-ttl / CACHE_REUSE_S))
    stale = env[STALE] * ttl / (ttl + DATA_CHANGE_S)  # share of hits that are stale
    lam = load * (1.0 - hit) * (1.0 + env[FAIL])  # requests per ms reaching the workers, retries included
    item = ITEM_MS * (1.0 + 4.0 * heavy)
    fill = min(timeout, batch / lam)  # ms to collect a batch
    size = max(1.0, min(batch, lam * timeout))  # a batch's size when it leaves
    contention = 1.0 + 0.25 * max(0.0, workers - cores) / cores
    service = (SETUP_MS + item * size) * contention  # ms per batch
    par = min(workers, cores)
    rho = lam * service / (par * size)
    r = min(rho, 0.97)
    wait = service / par * r / (1.0 - r) + 40.0 * max(rho - 0.97, 0.0)  # mean queueing delay, ms
    shed = max(0.0, 1.0 - 1.0 / rho)
    retry_fails = env[FAIL] + env[BURST] * math.exp(-backoff / BURST_MS)  # a retry lands in the same burst
    n_shed = 0
    for i in range(n_requests):
        error = 0.0
        if rng_uniform(rng) < hit:
            latency = CACHE_MS * (0.5 + rng_uniform(rng))
            if rng_uniform(rng) < stale:
                error = 1.0
        elif rng_uniform(rng) < shed:
            latency = 1000.0  # the client's timeout
            error = 1.0
            n_shed += 1
        else:
            latency = fill * rng_uniform(rng) - wait * math.log(1.0 - rng_uniform(rng)) + service * (
                0.8 + 0.4 * rng_uniform(rng))
            if rng_uniform(rng) < env[FAIL]:
                latency += backoff + service
                if rng_uniform(rng) < retry_fails:
                    error = 1.0
        emit(tel, ring, LATENCY, latency, step)
        emit(tel, ring, ERRORS, error, step)
    return n_shed


def window_cost(p99_ms: float, workers: float, error_rate: float) -> float:
    """The tuner's objective: latency, hardware and failures in one number (lower is better)."""
    return p99_ms / 50.0 + 0.05 * workers + 40.0 * error_rate
