"""Declarations found by a package scan: each module of a package that sets a given name (a fault kind's
``KIND``, a summary figure's ``FIGURE``), so that adding one is adding its module."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def declared(package: str, name: str) -> list[tuple[str, Any]]:
    """``(module name, value)`` of every module of ``package`` that sets ``name``, in module-name order."""
    found = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        value = getattr(module, name, None)
        if value is not None:
            found.append((module.__name__, value))
    return found
