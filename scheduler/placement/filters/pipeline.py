"""One pass through the filters. The survivors after each step are kept, so a failure's explanation (how
many candidates each step removed, the closest instance and what it lacks) is read off the pass itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scheduler.ecs.taskspec import Constraint
from scheduler.placement.columns import ColumnView
from scheduler.placement.filters import resources, static
from scheduler.placement.filters.base import Filter, Request
from scheduler.placement.results import Step


@dataclass(slots=True)
class StaticPass:
    """The static steps of one request over instance rows: the rows left after each step."""

    start: np.ndarray                               # candidate rows before the first step
    left: list[tuple[Filter, np.ndarray]]           # (filter, rows left after it), in order

    @property
    def mask(self) -> np.ndarray:
        return self.left[-1][1] if self.left else self.start

    @property
    def failed(self) -> Filter | None:
        """The step that left no row (None when some row passed every step)."""
        if self.left and not self.left[-1][1].any():
            return self.left[-1][0]
        return None

    def steps(self) -> list[Step]:
        out, before = [], int(self.start.sum())
        for f, mask in self.left:
            after = int(mask.sum())
            out.append(Step(f.name, before, before - after))
            before = after
        return out


def run_static(req: Request, start: np.ndarray | None = None, *, stop_early: bool = True) -> StaticPass:
    """Run the static steps over rows, from ``start`` (every row when None); stop at the first step that
    leaves no row."""
    n = len(req.state)
    mask = np.ones(n, bool) if start is None else start
    out = StaticPass(mask, [])
    step: tuple[Filter, Constraint | None]
    for step in static.steps_for(req):
        f, c = step
        mask = mask & _static_mask(f, req, c)
        out.left.append((f, mask))
        if stop_early and not mask.any():
            break
    return out


def _static_mask(f: Filter, req: Request, c: Constraint | None) -> np.ndarray:
    if f.cache_key is None:
        return f.test(req, c)
    cache = req.state.static_masks
    key = f.cache_key(req)
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = f.test(req, c)
    return hit


@dataclass(slots=True)
class ResourcePass:
    """The resource filters over ``items`` of a view: which items pass each, and all of them."""

    view: ColumnView
    items: np.ndarray
    filters: list[Filter]
    passed: list[np.ndarray]   # one mask over ``items`` per filter
    ok: np.ndarray             # items passing every filter

    def feasible(self) -> np.ndarray:
        return self.items[self.ok]

    def explain(self) -> tuple[list[Step], Filter, int, tuple[str, ...]]:
        """Per-step counts in rows, the step that left none, the closest row and what it lacks.

        The closest is the item failing the fewest filters; among equals the one with the lowest row."""
        sizes = self.view.size[self.items]
        table = np.array(self.passed)  # filters x items
        left = (np.logical_and.accumulate(table, axis=0) @ sizes).tolist()
        steps, before, failed = [], int(sizes.sum()), self.filters[-1]
        for f, after in zip(self.filters, left, strict=True):
            steps.append(Step(f.name, before, before - after))
            if not after:
                failed = f
                break
            before = after
        misses = len(self.filters) - table.sum(axis=0)
        firsts = self.view.first[self.items]
        j = int(np.argmin(np.where(misses == misses.min(), firsts, np.iinfo(np.int64).max)))
        lacks = tuple(f.name for f, ok in zip(self.filters, table[:, j].tolist(), strict=True) if not ok)
        return steps, failed, int(firsts[j]), lacks


def run_resources(view: ColumnView, req: Request, items: np.ndarray) -> ResourcePass:
    """Every applicable resource filter over ``items`` (not only the survivors of the previous one: the
    explanation needs each filter's own answer to find the closest instance)."""
    filters = [f for f in resources.RESOURCES if f.applies(req)]
    passed = [f.test(view, req, items) for f in filters]
    ok = passed[0].copy()
    for m in passed[1:]:
        ok &= m
    return ResourcePass(view, items, filters, passed, ok)
