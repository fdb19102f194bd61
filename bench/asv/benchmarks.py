"""asv benchmarks: every hot-path kernel the contracts checker measures (one list: ``arqon.contracts.PROBES``), from
Python and inside @njit, plus cold start with a warm and with a cold Numba cache."""

from arqon.contracts import PROBES

CALLS = 1000


class Kernel:
    """Time per asv sample covers CALLS calls of the kernel."""

    params = sorted(PROBES)
    param_names = ["kernel"]

    def setup(self, kernel):
        self.run = PROBES[kernel]()
        self.run(CALLS)  # compile and warm

    def time_1000_calls(self, kernel):
        self.run(CALLS)


def timeraw_import_and_first_step_warm_cache():
    return """
    import arqon
    t = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}]})
    t.step(1.0)
    """


def timeraw_import_and_first_step_cold_cache():
    """Compiles every tuner kernel: tens of seconds on a 2-core machine, past asv's default 60 s limit on a slow one."""
    return """
    import os, tempfile
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()
    import arqon
    t = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}]})
    t.step(1.0)
    """


timeraw_import_and_first_step_cold_cache.timeout = 600
