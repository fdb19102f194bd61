"""What the pytest-benchmark and asv benchmarks share (the contracts checker's own loops)."""

from arqon.contracts import VALUES, njit_steps, tuner

STEPS = 10_000

__all__ = ["STEPS", "VALUES", "njit_steps", "tuner"]
