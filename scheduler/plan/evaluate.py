"""Evaluating plan points: replications with common random numbers, confidence bounds, verdicts.

Replication *r* of every point runs with the same seed (the sweep's ``replication_seed``), so points are
compared on the same traffic. A point first runs ``initial`` replications; one whose confidence interval
straddles a target's threshold gets the rest, up to ``replications``. A condition ``<``/``<=`` holds when
the upper confidence bound of the mean does, ``>``/``>=`` when the lower bound does, ``==`` when both do;
a run without a value (no task of the workload had a wait) or a failed run fails the point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scheduler.errors import NeuronSimError
from scheduler.plan.cache import RunCache, run_key
from scheduler.sweep import OK, Run, confidence_interval, execute_runs, point_label, portable, replication_seed
from scheduler.targets import Condition, Target

MONTH_SECONDS = 30 * 86400


@dataclass(frozen=True)
class Bound:
    """One condition at one point: the mean, its interval, and the verdict."""

    condition: str
    column: str
    mean: float
    low: float
    high: float
    holds: bool
    straddles: bool  # undecided: more replications could change the verdict
    gap: float       # how far the bound that counts is from the threshold (<= 0 when it holds)


@dataclass
class PointResult:
    """An evaluated point: its overrides, one row per replication, and what they say."""

    key: tuple[tuple[str, Any], ...]
    label: str = ""
    price_per_hour: float = math.nan
    rows: list[dict[str, Any]] = field(default_factory=list)
    bounds: list[Bound] = field(default_factory=list)
    error: str | None = None
    meets: bool = False
    cost_usd: tuple[float, float, float] = (math.nan, math.nan, math.nan)  # mean, low, high per run
    month_usd: tuple[float, float, float] = (math.nan, math.nan, math.nan)

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.key)

    @property
    def replications(self) -> int:
        return len(self.rows)


def fleet_price(loaded: Any) -> float:
    """The fleet's on-demand price per hour (fixed fleets: count x the catalog price): the search's cost
    order and lower bound. The answer itself is ranked by the simulated ``cost_usd``."""
    total = 0.0
    for fleet in loaded.model.cluster.fleets:
        price = loaded.catalog.get(fleet.instance_type).price_per_hour
        total += fleet.count * (price or 0.0)
    return total


def judge(condition: Condition, values: np.ndarray, confidence: float) -> Bound:
    """The verdict of one condition on a point's replications."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0 or not np.all(np.isfinite(values)):
        return Bound(condition.text, condition.column, math.nan, math.nan, math.nan, False, False, math.inf)
    mean, _std, low, high = confidence_interval(values, confidence)
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = mean
    value, op = condition.value, condition.op
    if op in ("<", "<="):
        holds, fails, gap = condition.holds(high), not condition.holds(low), high - value
    elif op in (">", ">="):
        holds, fails, gap = condition.holds(low), not condition.holds(high), value - low
    elif op == "==":
        holds = condition.holds(low) and condition.holds(high)
        fails, gap = not (low <= value <= high), max(abs(high - value), abs(low - value))
    else:  # !=
        holds = not (low <= value <= high)
        fails, gap = low == high == value, 0.0 if holds else 1.0
    if holds:
        gap = min(gap, 0.0)
    # one run gives no interval: its verdict stands only if no more replications are allowed
    undecided = (not holds and not fails) or len(values) == 1
    return Bound(condition.text, condition.column, mean, low, high, holds, undecided, gap)


class Evaluator:
    """Evaluates points of one scenario, batch by batch, on the sweep's executors, through the cache."""

    def __init__(self, load: Callable[[Mapping[str, Any]], Any], target: Target, *, base_seed: int,
                 scenario_key: str, replications: int, initial: int, confidence: float, until: float | None,
                 executor: str, workers: int | None, scheduler: Any, cache: RunCache,
                 on_batch: Callable[[PointResult | None], None] | None = None) -> None:
        self.load, self.target = load, target
        self.base_seed, self.scenario_key = base_seed, scenario_key
        self.replications, self.initial = replications, max(1, min(initial, replications))
        self.confidence, self.until = confidence, until
        self.executor, self.workers, self.scheduler = executor, workers, scheduler
        self.cache, self.on_batch = cache, on_batch
        self.points: dict[tuple[tuple[str, Any], ...], PointResult] = {}
        self.order: list[tuple[tuple[str, Any], ...]] = []  # evaluation order: the point ids of plan.parquet
        self.simulated = 0  # runs simulated now (not read from the cache)
        self.from_cache = 0

    def seeds(self, n: int) -> list[int]:
        return [replication_seed(self.base_seed, r) for r in range(n)]

    def evaluate(self, keys: Sequence[tuple[tuple[str, Any], ...]]) -> list[PointResult]:
        """The results of ``keys`` (evaluating those not seen yet), in the order given."""
        fresh = [k for k in dict.fromkeys(keys) if k not in self.points]
        shipped: dict[int, dict[str, Any]] = {}
        for key in fresh:
            result = PointResult(key)
            self.points[key] = result
            self.order.append(key)
            try:
                loaded = self.load(dict(key))
            except NeuronSimError as exc:
                result.error = str(exc)
                continue
            from scheduler.scenario.cluster import fleet_label

            result.label = point_label(fleet_label(loaded.model.cluster), list(key))
            result.price_per_hour = fleet_price(loaded)
            shipped[len(self.order) - 1] = portable(loaded)
        index = {key: i for i, key in enumerate(self.order)}
        todo = [k for k in fresh if self.points[k].error is None]
        self._run(todo, self.initial, index, shipped)
        more = [k for k in todo if self.points[k].replications < self.replications
                and any(b.straddles for b in self.points[k].bounds)]
        self._run(more, self.replications, index, shipped)
        return [self.points[k] for k in keys]

    def _run(self, keys: Sequence[tuple[tuple[str, Any], ...]], upto: int, index: Mapping[Any, int],
             shipped: Mapping[int, dict[str, Any]]) -> None:
        if not keys:
            return
        seeds = self.seeds(upto)
        runs: list[Run] = []
        wanted: dict[int, tuple[Any, int, str]] = {}
        for key in keys:
            point = self.points[key]
            for r in range(point.replications, upto):
                cache_key = run_key(self.scenario_key, dict(key), seeds[r], self.until)
                row = self.cache.get(cache_key)
                if row is not None:
                    self.from_cache += 1
                    point.rows.append({"replication": r, "run_seed": seeds[r], **row})
                    continue
                run = Run(run=len(runs), point=index[key], replication=r, overrides=dict(key), seed=seeds[r])
                runs.append(run)
                wanted[run.run] = (key, r, cache_key)
        if runs:
            rows = execute_runs(shipped, runs, self.until, executor=self.executor, workers=self.workers,
                                scheduler=self.scheduler)
            self.simulated += len(runs)
            for run_id, (key, r, cache_key) in wanted.items():
                row = {k: v for k, v in rows[run_id].items() if k != "wall_seconds"}
                self.cache.put(cache_key, row)
                self.points[key].rows.append({"replication": r, "run_seed": seeds[r], **row})
        for key in keys:
            point = self.points[key]
            point.rows.sort(key=lambda row: row["replication"])
            self._judge(point)
        if self.on_batch is not None:
            self.on_batch(None)

    def _judge(self, point: PointResult) -> None:
        failed = [row for row in point.rows if row.get("status") != OK]
        if failed:
            point.error = str(failed[0].get("error"))
        ok = [row for row in point.rows if row.get("status") == OK]

        def column(name: str) -> np.ndarray:
            return np.array([math.nan if row.get(name) is None else float(row[name]) for row in ok], dtype=float)

        point.bounds = [judge(c, column(c.column), self.confidence) for c in self.target.conditions]
        point.meets = not failed and all(b.holds for b in point.bounds)
        cost = column("cost_usd")
        if len(cost) and np.all(np.isfinite(cost)):
            mean, _s, low, high = confidence_interval(cost, self.confidence)
            low, high = (low, high) if math.isfinite(low) else (mean, mean)
            point.cost_usd = (mean, low, high)
            period = column("sim_seconds")
            seconds = float(period.mean()) if len(period) and np.all(np.isfinite(period)) else math.nan
            scale = MONTH_SECONDS / seconds if seconds and math.isfinite(seconds) else math.nan
            point.month_usd = (mean * scale, low * scale, high * scale)
