"""Lazy public faces (for the engine and the studies): a package's ``__init__`` names its public
API in an ``if TYPE_CHECKING:`` block of imports (what type checkers and readers see) and in
``__all__``; the names are imported on first use. Importing a package therefore costs nothing
until one of its names is used: ``sweep --help`` answers without importing Optuna, MLflow or
matplotlib.

Usage, at the end of a package's ``__init__.py``::

    __getattr__, __dir__ = lazy_face(__name__, __file__, __all__)
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable

__all__ = ["lazy_face", "face_table"]


def face_table(path: str, package: str) -> dict[str, tuple[str, str]]:
    """Public name -> (module, attribute), read from the ``if TYPE_CHECKING:`` imports of the
    ``__init__.py`` at ``path``; ``from <package> import <submodule>`` names a submodule."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    table: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom) and imp.module:
                    for alias in imp.names:
                        table[alias.asname or alias.name] = (imp.module, alias.name)
    return table


def lazy_face(package: str, path: str, names: list[str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the package ``package`` whose ``__init__.py`` is at
    ``path``: each name of ``names`` is imported from its module when first asked for."""
    table: dict[str, tuple[str, str]] = {}

    def __getattr__(name: str) -> object:  # noqa: N807 - PEP 562
        if not table:
            table.update(face_table(path, package))
        if name not in table or name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = table[name]
        if module == package:  # a submodule of the package itself
            value: object = importlib.import_module(f"{package}.{attr}")
        else:
            value = getattr(importlib.import_module(module), attr)
        globals_of(package)[name] = value  # the next access is a plain attribute
        return value

    def __dir__() -> list[str]:  # noqa: N807 - PEP 562
        return sorted(set(names) | set(globals_of(package)))

    return __getattr__, __dir__


def globals_of(package: str) -> dict[str, object]:
    import sys

    return vars(sys.modules[package])
