"""Write docs/api.md, the API reference, from the docstrings and signatures of arqon's public names.

Run: ``python docs/make_api.py`` (``--check`` exits 1 if docs/api.md is out of date; the test suite runs it).
"""

import argparse
import enum
import importlib
import inspect
import os
import pathlib
import re
import sys
import types
import typing

import msgspec
import numpy as np

OUT = pathlib.Path(__file__).resolve().parent / "api.md"

# (module, names or None for every public function and class the module defines, in source order, and a line on it)
SECTIONS = [
    ("arqon", None, "The Python shell: configs, the tuner, the safety executor, telemetry and the audit log."),
    ("arqon.kernels", None, "The compiled core, callable from Python and from inside your own `@njit` code."),
    ("arqon.kernels.telemetry", None, "Telemetry inside `@njit`: emit records, read window statistics, tune from them."),
    ("arqon.kernels.guard", None, "The safety executor inside `@njit` (the state from `Executor.state`)."),
    ("arqon.compat", None, "Interfaces of other tuning libraries over arqon (ArqonHPO's `ArqonSolver`)."),
    ("arqon.kernels.audit", None, "Audited tuner calls inside `@njit` (the ring from `AuditLog.ring`)."),
    ("arqon.audit", ["read_log", "replay", "replay_log", "record_dicts"], "Reading and replaying audit logs."),
    ("arqon.report", ["report", "read_trace", "Trace", "plot_trace"], "Reports from audit logs."),
    ("arqon.catalog", ["load_catalog", "Catalog", "CatalogRefused", "generate_key", "public_key", "key_id",
                       "init_catalog", "add_variant", "promote", "sign_catalog", "read_catalog", "load_figures",
                       "Variant", "Payload", "Envelope", "Evidence", "VariantMeta"],
     "The approved variant catalog: signed, versioned, lifecycle-governed (`arqon catalog` on the command line)."),
    ("arqon.discovery", ["discover", "Outcome", "Candidate", "load_spec"],
     "Offline discovery: search, six gates, promotion into a catalog (`arqon discover` on the command line)."),
    ("arqon.discovery.spec", ["Spec", "Knob", "Search", "Gates", "Canary", "Approval", "Promote"],
     "The discovery spec's sections, decoded from TOML, JSON or YAML."),
]


def unwrap(obj):
    """A Numba dispatcher's Python function, else the object itself."""
    return getattr(obj, "py_func", obj)


def public_names(module):
    if hasattr(module, "__all__"):
        return list(module.__all__)
    found = []
    for name, obj in vars(module).items():
        target = unwrap(obj)
        if name.startswith("_") or not (inspect.isfunction(target) or inspect.isclass(target)):
            continue
        if getattr(target, "__module__", None) == module.__name__:
            found.append((inspect.getsourcelines(target)[1], name))
    return [name for _, name in sorted(found)]


def doc(obj) -> str:
    """The object's own docstring (a class's inherited one does not count), dedented."""
    target = unwrap(obj)
    text = vars(target).get("__doc__") if isinstance(target, type) else inspect.getdoc(target)
    return inspect.cleandoc(text or "")


def annotation(value) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value).replace("typing.", "")


def signature(name, obj, method=False) -> str:
    """``name(params) -> returns`` with annotations as written in the source, ``self`` and object addresses left out."""
    try:
        sig = inspect.signature(unwrap(obj))
    except (TypeError, ValueError):
        return name
    params = []
    for i, p in enumerate(sig.parameters.values()):
        if method and i == 0:
            continue
        text = p.name if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) else ("*" if p.kind == p.VAR_POSITIONAL
                                                                                else "**") + p.name
        if p.annotation is not p.empty:
            text += f": {annotation(p.annotation)}"
        if p.default is not p.empty:
            default = p.default.__name__ if callable(p.default) else repr(p.default)
            text += f" = {default}" if p.annotation is not p.empty else f"={default}"
        if p.kind == p.KEYWORD_ONLY and not any(q.startswith("*") for q in params):
            params.append("*")
        params.append(text)
    returns = "" if sig.return_annotation is sig.empty else f" -> {annotation(sig.return_annotation)}"
    return f"{name}({', '.join(params)}){returns}"


def constant_note(module, name) -> str:
    """The comment after ``NAME = ...`` where the constant is defined (the module or one of its submodules)."""
    pattern = re.compile(rf"^{name}\s*=.*#\s*(.+)$", re.M)
    for other in sorted(sys.modules):
        if other == module.__name__ or other.startswith(module.__name__ + "."):
            source = inspect.getsource(sys.modules[other]) if getattr(sys.modules[other], "__file__", None) else ""
            match = pattern.search(source)
            if match:
                return match.group(1)[0].upper() + match.group(1)[1:]
    return ""


def struct_fields(cls) -> list[str]:
    hints = typing.get_type_hints(cls)
    lines = []
    for field in msgspec.structs.fields(cls):
        kind = inspect.formatannotation(hints[field.name]).replace("typing.", "")
        if field.default is not msgspec.NODEFAULT:
            default = f" = {field.default!r}"
        elif field.default_factory is not msgspec.NODEFAULT:
            default = f" = {field.default_factory()!r}"
        else:
            default = ""
        lines.append(f"- `{field.encode_name}: {kind}{default}`")
    return lines


def members(cls) -> list[str]:
    lines = []
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, property):
            lines.append(f"- **`{name}`** (property): {doc(attr.fget)}".rstrip())
        elif isinstance(attr, (classmethod, staticmethod)):
            method = isinstance(attr, classmethod)
            lines.append(f"- **`{signature(name, attr.__func__, method)}`**: {doc(attr.__func__)}".rstrip())
        elif inspect.isfunction(attr):
            lines.append(f"- **`{signature(name, attr, method=True)}`**: {doc(attr)}".rstrip())
        elif isinstance(attr, types.MemberDescriptorType) and inspect.getdoc(attr):
            # a slot; one holding a function documents it as "name(params)\n\nwhat it does"
            head, _, rest = inspect.getdoc(attr).partition("\n\n")
            text = f"- **`{head}`**: {rest}" if head.startswith(f"{name}(") else f"- **`{name}`**: {head}"
            lines.append(text.rstrip())
    return [line.replace("\n", "\n  ") for line in lines]


def entry(module, name) -> list[str]:
    obj, qualified = getattr(module, name), f"{module.__name__}.{name}"
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        values = ", ".join(f"`{m.name}` = {m.value}" for m in obj)
        return [f"### `{qualified}`", "", doc(obj), "", f"Members: {values}.", ""]
    if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
        return [f"### `{qualified}`", "", doc(obj), "", "Fields:", "", *struct_fields(obj), ""]
    if isinstance(obj, type):
        head = signature(qualified, obj.__init__, method=True) if "__init__" in vars(obj) else qualified
        body = members(obj)
        return [f"### `{head.split(' -> ')[0]}`", "", doc(obj), "", *body, *([""] if body else [])]
    if callable(obj):
        return [f"### `{signature(qualified, obj)}`", "", doc(obj), ""]
    if isinstance(obj, np.dtype):
        fields = ", ".join(f"`{f}`" for f in obj.names)
        return [f"### `{qualified}`", "", f"{constant_note(module, name)}. A record dtype ({obj.itemsize} bytes) with "
                f"fields {fields}.", ""]
    return [f"### `{qualified}` = `{obj!r}`", "", constant_note(module, name), ""]


def cli_help() -> list[str]:
    from arqon.cli import _parser

    parser = _parser()
    lines = ["## The command line", "", "`arqon --help` and each command's `--help`, as printed.", ""]
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for title, sub in [("arqon", parser), *[(f"arqon {n}", p) for n, p in commands.choices.items()]]:
        lines += [f"### `{title}`", "", "```", sub.format_help().rstrip(), "```", ""]
    return lines


def render() -> str:
    os.environ["COLUMNS"] = "110"  # argparse wraps help to the terminal: fix it so the output is reproducible
    lines = ["# API reference", "",
             "Generated from the docstrings by `python docs/make_api.py`; a test fails when this file is out of date.",
             ""]
    lines += [f"- [`{module}`](#{module.replace('.', '')})" for module, _, _ in SECTIONS]
    lines += ["- [The command line](#the-command-line)", ""]
    for module_name, names, about in SECTIONS:
        module = importlib.import_module(module_name)
        lines += [f"## {module_name}", "", about, ""]
        for name in names or public_names(module):
            lines += entry(module, name)
    lines += cli_help()
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python docs/make_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
