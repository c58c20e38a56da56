"""Lazy package fronts: a package names its public objects and the modules that define them, and
each module is imported only when one of its names is first asked for.

    from plw.lazy import lazy_exports
    _LAZY = {"load_results": "plw.analysis.results"}
    __all__ = list(_LAZY)
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY)

This keeps `import plw.<package>` (and with it the CLI's start-up) free of heavy imports such as
torch, transformers or statsmodels until they are needed. The module imports only the standard
library, so it sits in the base layer below plw.data.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """The module-level `__getattr__` and `__dir__` (PEP 562) of a package with lazy `exports`.

    Args:
        package: the package's `__name__` (named in the AttributeError of an unknown attribute).
        exports: public name -> the module that defines it, imported on first access.

    Returns:
        (__getattr__, __dir__): assign both at the package's top level.
    """

    def __getattr__(name: str):
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        # The package's own globals (submodules already imported included) plus the lazy names,
        # so tab completion and dir() show what attribute access would find.
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
