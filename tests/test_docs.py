"""The docs: every Python block of the quickstart and the cookbook runs, and the API reference is current and complete."""

import pathlib
import re

import pytest

from tests.conftest import load_script

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_blocks(name):
    return BLOCK.findall((DOCS / name).read_text())


@pytest.mark.parametrize("name", ["quickstart.md", "cookbook.md", "catalog.md"])
def test_every_python_block_runs(name, tmp_path, monkeypatch, capsys):
    """The blocks of one page run in order in one namespace, as a reader would paste them; their asserts must hold."""
    blocks = python_blocks(name)
    assert blocks, f"{name} has no Python blocks"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{name}[block {i}]", "exec"), namespace)  # noqa: S102 - the docs' own code
    assert capsys.readouterr().out  # each page prints what it found


@pytest.fixture(scope="module")
def make_api():
    return load_script(DOCS / "make_api.py")


def test_api_reference_is_current(make_api):
    assert (DOCS / "api.md").read_text() == make_api.render(), "docs/api.md is stale: run python docs/make_api.py"


def test_every_public_name_and_member_is_documented(make_api):
    text = make_api.render()
    undocumented = []
    for heading, body in re.findall(r"^### (.+)\n\n(.*?)(?=^### |^## |\Z)", text, re.M | re.S):
        first = body.strip().splitlines()[0] if body.strip() else ""
        if not first or first.startswith(("- **", "Members:", "Fields:")):
            undocumented.append(heading)
    undocumented += re.findall(r"^- \*\*(.+?)\*\*(?: \(property\))?:\s*$", text, re.M)
    assert not undocumented
    for module, _, _ in make_api.SECTIONS:
        assert f"## {module}\n" in text


def test_docs_link_to_pages_that_exist():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([a-z_-]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (DOCS / target).exists(), f"{page.name} links to missing {target}"
