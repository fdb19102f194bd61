import importlib.util
import io
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import arqon


def space(d, lo=-5.0, hi=5.0, **extra):
    """A config dict with ``d`` linear parameters x0..x{d-1} in [lo, hi]."""
    return {"params": [{"name": f"x{i}", "min": lo, "max": hi} for i in range(d)], **extra}


def sphere(x, centre=1.2345):
    return float(np.sum((np.asarray(x) - centre) ** 2))


SNAPSHOTS = ("copy", "np.save", "pickle")  # the ways a user keeps a state: each must give a state that runs


def snapshot(array, how):
    """A copy of ``array`` made as ``how`` (one of SNAPSHOTS) says: ``np.copy``, an ``np.save``/``np.load`` round trip
    through memory, or a pickle round trip."""
    if how == "copy":
        return array.copy()
    if how == "pickle":
        return pickle.loads(pickle.dumps(array))
    buffer = io.BytesIO()
    np.save(buffer, array)
    buffer.seek(0)
    return np.load(buffer)


@pytest.fixture
def tuner16():
    t = arqon.Tuner(space(16, seed=7))
    t.ask()
    return t


def load_script(path):
    """Import a script that is not part of a package (an example, a docs tool) as a module named after its file."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # numba's cache locates cache=True functions through the module
    spec.loader.exec_module(module)
    return module


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_in_fresh_process(code, env=None):
    """Run Python ``code`` (dedented) in a new interpreter from the project root, with ``env`` added to this
    process's environment; return its standard output (the test fails, showing its stderr, if it exits non-zero)."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **(env or {})}, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout
