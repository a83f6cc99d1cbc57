"""What a plan searches: integer ranges (``--vary PATH=LO..HI``) and categorical choices (``--choose PATH=a,b``).

A *point* is one value per dimension and per choice. Counts are assumed to make things no worse as they
grow (see docs/planning.md), so a range is an ordered axis; a choice is an unordered set of values, each
searched on its own.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.errors import NeuronSimError, show_value

MAX_GRID = 10_000_000  # points of the full grid a plan may search (it simulates only a small share of them)
_RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$")


class PlanInputError(NeuronSimError):
    """A --vary or --choose option that cannot be read."""


@dataclass(frozen=True)
class Dimension:
    """An integer scenario field searched over ``lo..hi`` (both included)."""

    path: str
    lo: int
    hi: int

    @property
    def values(self) -> range:
        return range(self.lo, self.hi + 1)


@dataclass(frozen=True)
class Choice:
    """A scenario field taking one of ``values`` (instance type, Spot share, launch type...)."""

    path: str
    values: tuple[Any, ...]


def parse_vary(text: str) -> Dimension:
    """Read ``PATH=LO..HI`` (integers, LO <= HI)."""
    path, sep, rest = text.partition("=")
    path = path.strip()
    match = _RANGE.match(rest)
    if not sep or not path or match is None:
        raise PlanInputError(f"--vary needs PATH=LO..HI with integers, such as cluster.fleets.0.count=4..40; "
                             f"got {show_value(text)}", path="--vary")
    lo, hi = int(match[1]), int(match[2])
    if lo > hi:
        raise PlanInputError(f"{show_value(text)}: the range {lo}..{hi} is empty (LO must be at most HI)",
                             path="--vary")
    if lo < 0:
        raise PlanInputError(f"{show_value(text)}: a count cannot be negative", path="--vary")
    return Dimension(path, lo, hi)


def parse_choose(text: str) -> Choice:
    """Read ``PATH=A,B,...`` with the sweep's value syntax (commas inside brackets or quotes do not split)."""
    from scheduler.sweep import SweepError, parse_set

    try:
        parameter = parse_set(text)
    except SweepError as exc:
        raise PlanInputError(str(exc).replace("--set", "--choose"), path="--choose") from None
    if len(set(map(str, parameter.values))) != len(parameter.values):
        raise PlanInputError(f"{show_value(text)} names a value twice", path="--choose")
    return Choice(parameter.path, parameter.values)


def check_space(dimensions: Sequence[Dimension], choices: Sequence[Choice]) -> int:
    """Refuse an empty search or a path given twice; the size of the full grid."""
    if not dimensions:
        raise PlanInputError("a plan needs at least one --vary PATH=LO..HI to search", path="--vary")
    paths = [d.path for d in dimensions] + [c.path for c in choices]
    twice = sorted({p for p in paths if paths.count(p) > 1})
    if twice:
        raise PlanInputError(f"{', '.join(twice)} is searched twice", path="--vary")
    size = 1
    for d in dimensions:
        size *= len(d.values)
    for c in choices:
        size *= len(c.values)
    if size > MAX_GRID:
        raise PlanInputError(f"the ranges make a grid of {size:,} points; at most {MAX_GRID:,}", path="--vary")
    return size


def choice_combos(choices: Sequence[Choice]) -> list[tuple[Any, ...]]:
    """Every combination of the choices' values, in the order given."""
    return list(itertools.product(*(c.values for c in choices)))
