"""asv benchmarks of the tuner step, from Python and inside @njit, and of cold start (import, first step)."""

from .common import STEPS, VALUES, njit_steps, tuner


class PythonStep:
    params = [2, 16, 128]
    param_names = ["d"]

    def setup(self, d):
        self.tuner = tuner(d)

    def time_step(self, d):
        self.tuner.step(1.0)


class NjitStep:
    """Time per call covers STEPS steps inside one @njit loop."""

    params = [2, 16, 128]
    param_names = ["d"]

    def setup(self, d):
        self.tuner = tuner(d)
        njit_steps(self.tuner.state, VALUES, 10)

    def time_10k_steps(self, d):
        njit_steps(self.tuner.state, VALUES, STEPS)


def timeraw_import_and_first_step():
    return """
    import arqon
    t = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}]})
    t.step(1.0)
    """
