"""A summary figure declared in one module: its name (the key in summary.json, and its metric name in
sweeps and targets), type, unit, label, meaning and how it is computed from the run.

Each module of :mod:`scheduler.results.figures` that sets ``FIGURE`` adds one figure; :func:`figures` finds
them by scanning the package. :class:`~scheduler.results.summary.RunSummary` holds their values in
``figures`` (written into summary.json key by key, after the instance counts); the terminal and the report
read their label and unit, docs/outputs.md lists them (a generated table), and sweeps average them like
any other figure. A figure is computed once, at the end of a run, from a
:class:`~scheduler.results.record.RunRecord`: the run's summary (every other field), its timeline and
its events. A figure that needs more of the engine than these needs the record (and the engine) to offer it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from scheduler.declared import declared

PACKAGE = "scheduler.results.figures"
UNITS = ("s", "%", "USD", "count", "h", "")  # as scheduler.readable shows them


@dataclass(frozen=True)
class Figure:
    """One figure of summary.json. ``kind`` is ``int`` or ``float`` (``optional``: it may be None, such as a
    percentile of nothing); ``unit`` one of :data:`UNITS`; ``label`` how the terminal and the report name
    it; ``doc`` its meaning, one paragraph, for docs/outputs.md; ``compute`` its value from the run (a
    :class:`~scheduler.results.record.RunRecord`)."""

    name: str
    kind: type
    unit: str
    label: str
    doc: str
    compute: Callable[[Any], Any]
    optional: bool = False

    def __post_init__(self) -> None:
        if self.kind not in (int, float):
            raise ValueError(f"figure {self.name}: kind must be int or float, got {self.kind!r}")
        if self.unit not in UNITS:
            raise ValueError(f"figure {self.name}: unit must be one of {UNITS}, got {self.unit!r}")

    @property
    def annotation(self) -> Any:
        """The type a summary.json value of it has (read back by :mod:`scheduler.results.codec`)."""
        return self.kind | None if self.optional else self.kind


@cache
def figures() -> tuple[Figure, ...]:
    """Every declared figure, by module name."""
    found: dict[str, Figure] = {}
    for module, figure in declared(PACKAGE, "FIGURE"):
        if not isinstance(figure, Figure):
            raise TypeError(f"{module}.FIGURE is not a Figure")
        if figure.name in found:
            raise ValueError(f"two figures are named {figure.name!r}")
        if figure.name in _contract_keys():
            raise ValueError(f"{module}: summary.json already has a field {figure.name!r}")
        found[figure.name] = figure
    return tuple(found.values())


def _contract_keys() -> frozenset[str]:
    """The keys summary.json's dataclasses write (imported when asked: the contract imports this module)."""
    from scheduler.results import codec

    summary = importlib.import_module("scheduler.results.summary")
    return frozenset(codec.keys(summary.RunSummary))


def figure_types() -> dict[str, Any]:
    """Each figure's name and the type of its value: what summary.json's figure keys may hold."""
    return {f.name: f.annotation for f in figures()}


def figure(name: str) -> Figure | None:
    """The figure named ``name``, or None."""
    return next((f for f in figures() if f.name == name), None)
