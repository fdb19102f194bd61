"""Names a package exports but imports only on first use (so ``import arqon`` and ``arqon --help`` stay light)."""

import importlib


def lazy_exports(package: str, namespace: dict, exports: dict[str, str]):
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose globals are ``namespace``: ``exports`` maps each name
    to the module it is imported from on first use (then kept in ``namespace``)."""

    def __getattr__(name):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
