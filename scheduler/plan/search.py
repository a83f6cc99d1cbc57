"""The search: the cheapest point of the ranges that meets every target, without simulating the grid.

Assumptions (checked where the search looks, see docs/planning.md): within one combination of the
choices, more of any counted resource never makes a target worse (the feasible points form an up-set)
and never costs less. The cheapest feasible point then lies on the boundary of the up-set, a staircase.
The search bisects the widest dimension for each value of the others, from their largest values down,
starting each bisection at the bound the staircase already gives (so a flat stretch of the staircase
costs one evaluation per step); what is known feasible or infeasible is inferred by dominance, not
simulated again, and a point that costs more than the best found so far is never simulated. A
combination of choices whose cheapest possible point costs more than the best found is skipped.

Where two evaluated points contradict the assumption (a smaller point meets the targets, a larger one
does not), the combination is searched again exhaustively in order of price, the first point that meets
the targets being its cheapest, and the plan says so.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.plan.evaluate import Evaluator, PointResult
from scheduler.plan.space import Choice, Dimension, choice_combos

Key = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Violation:
    """Two evaluated points that contradict monotonicity: ``smaller`` meets the targets, ``larger`` not."""

    smaller: str
    larger: str
    conditions: tuple[str, ...]  # the conditions the larger point misses

    def text(self) -> str:
        return (f"monotonicity does not hold: {self.smaller} meets every target but {self.larger} misses "
                f"{', '.join(self.conditions)}; searched that choice exhaustively in order of price")


class Search:
    """One plan's search over ``dimensions`` for every combination of ``choices``."""

    def __init__(self, evaluator: Evaluator, dimensions: Sequence[Dimension], choices: Sequence[Choice],
                 price: Callable[[Key], float], *, parallel: int = 2) -> None:
        self.ev, self.dims, self.choices = evaluator, list(dimensions), list(choices)
        self.price, self.parallel = price, max(1, parallel)
        self.best: PointResult | None = None
        self.violations: list[Violation] = []
        self.exhaustive: list[str] = []  # the choice combinations searched exhaustively

    # -- points
    def key(self, combo: Sequence[Any], values: Sequence[int]) -> Key:
        return tuple((c.path, v) for c, v in zip(self.choices, combo, strict=True)) + tuple(
            (d.path, int(v)) for d, v in zip(self.dims, values, strict=True))

    def _best_price(self) -> float:
        return self.best.price_per_hour if self.best is not None else math.inf

    def _consider(self, results: Sequence[PointResult]) -> None:
        for r in results:
            if r.meets and (self.best is None or _rank(r) < _rank(self.best)):
                self.best = r

    # -- the search
    def run(self) -> PointResult | None:
        combos = choice_combos(self.choices)
        lows = [d.lo for d in self.dims]
        combos.sort(key=lambda c: self.price(self.key(c, lows)))  # cheapest possible point first
        for combo in combos:
            if self.price(self.key(combo, lows)) > self._best_price():
                continue  # even its smallest point costs more than the best found: pruned by the cost bound
            if not self._staircase(combo):
                self._exhaustive(combo)
        return self.best

    def run_grid(self) -> PointResult | None:
        """Every point of the grid, with the same point rule: the reference a search must agree with."""
        for combo in choice_combos(self.choices):
            grid = list(itertools.product(*(d.values for d in self.dims)))
            for start in range(0, len(grid), max(self.parallel, 16)):
                self._evaluate(combo, grid[start:start + max(self.parallel, 16)])
        return self.best

    def _evaluate(self, combo: Sequence[Any], points: Sequence[tuple[int, ...]]) -> list[PointResult]:
        results = self.ev.evaluate([self.key(combo, p) for p in points])
        self._consider(results)
        return results

    def _known(self, combo: Sequence[Any]) -> list[tuple[tuple[int, ...], bool]]:
        """The evaluated points of ``combo`` as (values, meets)."""
        prefix = self.key(combo, [d.lo for d in self.dims])[:len(self.choices)]
        out = []
        for key, point in self.ev.points.items():
            if key[:len(self.choices)] == prefix and not (point.error and not point.rows):
                out.append((tuple(int(v) for _, v in key[len(self.choices):]), point.meets))
        return out

    def _violation(self, combo: Sequence[Any]) -> Violation | None:
        known = self._known(combo)
        for (p, p_ok), (q, q_ok) in itertools.product(known, known):
            if p_ok and not q_ok and all(a <= b for a, b in zip(p, q, strict=True)):
                larger = self.ev.points[self.key(combo, q)]
                missed = tuple(b.condition for b in larger.bounds if not b.holds) or ("a failed run",)
                return Violation(self.ev.points[self.key(combo, p)].label, larger.label, missed)
        return None

    def _staircase(self, combo: Sequence[Any]) -> bool:
        """Walk the boundary of the feasible up-set of ``combo``; False when monotonicity failed."""
        widest = max(range(len(self.dims)), key=lambda i: (len(self.dims[i].values), -i))
        others = [i for i in range(len(self.dims)) if i != widest]
        axis = self.dims[widest]
        outer = itertools.product(*(reversed(self.dims[i].values) for i in others))
        for values in outer:
            def point(x: int, values: tuple[int, ...] = values) -> tuple[int, ...]:
                full = [0] * len(self.dims)
                for i, v in zip(others, values, strict=True):
                    full[i] = v
                full[widest] = x
                return tuple(full)

            known = self._known(combo)
            lo, hi = axis.lo, axis.hi + 1  # the answer on this line lies in [lo, hi]; hi + 1: none known
            for q, ok in known:
                if not ok and all(a >= b for a, b in zip(q, point(axis.lo), strict=True)) and \
                        all(q[i] >= v for i, v in zip(others, values, strict=True)):
                    lo = max(lo, q[widest] + 1)  # a larger point fails: so does everything below it
                if ok and all(q[i] <= v for i, v in zip(others, values, strict=True)):
                    hi = min(hi, q[widest])
            if lo > axis.hi:
                continue  # nothing on this line meets the targets
            if self.price(self.key(combo, point(lo))) > self._best_price():
                continue  # the cheapest point left on this line costs more than the best
            first = True
            while lo < hi:
                probes = self._probes(lo, hi, axis.hi, first, combo, point)
                first = False
                if not probes:  # everything left costs more than the best: nothing cheaper here
                    break
                results = self._evaluate(combo, [point(x) for x in probes])
                for x, r in zip(probes, results, strict=True):
                    if r.meets:
                        hi = min(hi, x)
                    else:
                        lo = max(lo, x + 1)
                if self._violation(combo) is not None:
                    self.violations.append(self._violation(combo))
                    return False
        return self._violation(combo) is None

    def _probes(self, lo: int, hi: int, top: int, first: bool, combo: Sequence[Any],
                point: Callable[[int], tuple[int, ...]]) -> list[int]:
        """Up to ``parallel`` points of [lo, hi) to evaluate together: the low end first (a flat
        staircase), the top when nothing above is known to pass, the rest evenly spaced; none priced
        above the best found so far."""
        last = min(hi - 1, top)
        cap = self._best_price()
        allowed = [x for x in range(lo, last + 1) if self.price(self.key(combo, point(x))) <= cap]
        if not allowed:
            return []
        last = allowed[-1]
        picks: list[int] = [lo] if first else []
        if hi > top and last == top:
            picks.append(top)
        room = self.parallel - len(picks)
        if room > 0 or not picks:
            span = [x for x in range(lo, last + 1) if x not in picks]
            n = max(room, 1)
            for j in range(1, n + 1):
                if span:
                    picks.append(span[min(len(span) - 1, (len(span) * j) // (n + 1))])
        return sorted(set(picks))[: max(self.parallel, 1) + (1 if first else 0)]

    def _exhaustive(self, combo: Sequence[Any]) -> None:
        """Every point of ``combo`` in order of price, until one meets the targets (its cheapest)."""
        label = ", ".join(f"{c.path}={v}" for c, v in zip(self.choices, combo, strict=True)) or "the ranges"
        self.exhaustive.append(label)
        grid = sorted(itertools.product(*(d.values for d in self.dims)),
                      key=lambda p: (self.price(self.key(combo, p)), p))
        for start in range(0, len(grid), self.parallel):
            batch = [p for p in grid[start:start + self.parallel]
                     if self.price(self.key(combo, p)) <= self._best_price()]
            if not batch:
                return
            results = self._evaluate(combo, batch)
            if any(r.meets for r in results):
                return


def _rank(point: PointResult) -> tuple[float, float]:
    cost = point.cost_usd[0]
    return (cost if math.isfinite(cost) else math.inf, point.price_per_hour)
