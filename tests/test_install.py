"""What an install holds: `arqon --version`, and the demo's install (the core and the `demo` extra) without the
libraries measured against (the `peers` extra) runs the demo."""

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT

ROOT_PATH = Path(ROOT)

PEERS = ("nevergrad", "optuna", "river", "mabwiser", "cma", "cmaes", "scipy", "pandas", "pytest")


def test_version_names_arqon_and_what_it_runs_on():
    out = subprocess.run([sys.executable, "-m", "arqon", "--version"], capture_output=True, text=True, cwd=ROOT)
    declared = tomllib.loads((ROOT_PATH / "pyproject.toml").read_text())["project"]["version"]
    assert out.returncode == 0 and out.stdout.startswith(f"arqon {declared} (numba ")


def test_make_demo_installs_only_the_demo_extra():
    makefile = (ROOT_PATH / "Makefile").read_text()
    demo_rule = next(line for line in makefile.splitlines() if line.startswith("demo:"))
    assert demo_rule.split()[1] == "$(BIN)/.demo"
    stamp = makefile.split("$(BIN)/.demo: pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert "-e '.[demo]'" in stamp and "peers" not in stamp and "dev" not in stamp


@pytest.mark.slow
def test_the_demo_runs_in_a_venv_without_the_peers(tmp_path):
    """A fresh venv with `pip install '.[demo]'`: no peer library (nor pytest, nor scipy) is there, and a short demo
    run and `arqon --version` work."""
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", f"{ROOT}[demo]"], check=True, cwd=tmp_path)
    found = subprocess.run([python, "-c", "import importlib.util as u, sys; "
                            f"print([m for m in {PEERS!r} if u.find_spec(m)])"], capture_output=True, text=True,
                           check=True, cwd=tmp_path)
    assert found.stdout.strip() == "[]"
    arqon = str(tmp_path / "venv" / "bin" / "arqon")
    demo = subprocess.run([arqon, "demo", "--scenario", "fault", "--requests", "200", "--quiet", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert (tmp_path / "out" / "index.html").is_file()
    assert subprocess.run([arqon, "--version"], capture_output=True, text=True).stdout.startswith("arqon ")


def test_the_makefile_layers_install_in_order():
    """`make -n -B test` (a dry run from nothing): the three layers in order, demo first, peers last, no circular
    rule."""
    done = subprocess.run(["make", "-n", "-B", "test"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "Circular" not in done.stderr, done.stderr
    installs = [line for line in done.stdout.splitlines() if "pip install --quiet -e" in line]
    assert [line.split("-e ")[1] for line in installs] == ["'.[demo]'", "'.[dev,demo,discovery]'",
                                                           "'.[dev,demo,discovery,peers]'"]
