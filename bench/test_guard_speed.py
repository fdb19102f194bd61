"""The safety executor inside @njit at d=16: an apply that is accepted (validate + stage + flip; also with every
parameter clipped, and with per-parameter cooldowns), one that is rejected after the full check, and an observation. Uses the contracts checker's loops; per-call medians via extra_info."""

import pytest

from arqon.contracts import PROBES

CALLS = 10_000


@pytest.mark.parametrize("kernel", ["guard.offer.accept.d16", "guard.offer.clip.d16", "guard.offer.accept.cooldown.d16",
                                    "guard.offer.reject.d16", "guard.observe.d16"])
def test_guard_kernel(benchmark, kernel):
    run = PROBES[kernel]()
    run(CALLS)
    benchmark.extra_info["steps"] = CALLS
    benchmark(run, CALLS)
