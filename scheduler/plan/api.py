"""``plan(...)``: the cheapest configuration of a scenario that meets every target, as a typed result.

Used by ``neuron-sim plan`` and from notebooks. The search (:mod:`scheduler.plan.search`) asks the
evaluator (:mod:`scheduler.plan.evaluate`) for points; the evaluator runs them on the sweep's executors
(a local process pool or Dask) through the cache (:mod:`scheduler.plan.cache`).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scheduler.errors import NeuronSimError
from scheduler.plan.cache import RunCache, scenario_hash
from scheduler.plan.evaluate import Evaluator, PointResult, fleet_price
from scheduler.plan.search import Key, Search, Violation
from scheduler.plan.space import Choice, Dimension, check_space, parse_choose, parse_vary
from scheduler.sweep import EXECUTORS, SweepError, dask_client
from scheduler.targets import Target, parse_targets

_FLEET_FIELD = re.compile(r"^cluster\.fleets(?:\.(\d+)|\[(\d+)\])\.(count|instance_type)$")


@dataclass(frozen=True)
class PlanPoint:
    """An evaluated configuration in a planner's words."""

    point: int
    label: str                      # the fleet: ``inf2.24xlarge x12, trn1.32xlarge x4``
    values: dict[str, Any]          # the searched fields' values
    meets: bool
    replications: int
    cost_per_month: tuple[float, float, float]  # USD: mean and confidence interval, scaled to 30 days
    cost_usd: tuple[float, float, float]        # USD per run (the simulated period)
    figures: dict[str, tuple[float, float, float]]  # per target column: mean, low, high
    missed: tuple[str, ...] = ()


@dataclass
class PlanResult:
    """What a plan found: the answer (None when nothing in the ranges meets the targets), alternatives,
    every evaluated run (``runs``, as in plan.parquet) and how much work the search took."""

    scenario: str
    target: str
    best: PlanPoint | None
    alternatives: list[PlanPoint]
    points: list[PlanPoint]
    runs: pd.DataFrame
    dimensions: tuple[Dimension, ...]
    choices: tuple[Choice, ...]
    replications: int
    confidence: float
    until: float | None
    base_seed: int
    grid_points: int
    simulations: int            # runs the plan's answer rests on (in plan.parquet)
    simulated: int              # of those, simulated by this call (the rest came from the cache)
    violations: list[str] = field(default_factory=list)
    exhaustive: list[str] = field(default_factory=list)
    closest_miss: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # the answer's values, for its scenario file

    @property
    def grid_simulations(self) -> int:
        """Runs an exhaustive sweep of the same ranges would make at full replications."""
        return self.grid_points * self.replications

    def describe(self) -> dict[str, Any]:
        """plan.json: the question, the answer, the alternatives and the effort."""
        def point(p: PlanPoint | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {"point": p.point, "label": p.label, "values": p.values, "replications": p.replications,
                    "cost_per_month_usd": list(p.cost_per_month), "cost_usd": list(p.cost_usd),
                    "figures": {k: list(v) for k, v in p.figures.items()}, "meets_target": p.meets,
                    "missed": list(p.missed)}

        return {"scenario": self.scenario, "target": self.target,
                "vary": [{"path": d.path, "lo": d.lo, "hi": d.hi} for d in self.dimensions],
                "choose": [{"path": c.path, "values": list(c.values)} for c in self.choices],
                "replications": self.replications, "confidence": self.confidence, "until": self.until,
                "base_seed": self.base_seed, "best": point(self.best),
                "alternatives": [point(p) for p in self.alternatives],
                "points_evaluated": len(self.points), "grid_points": self.grid_points,
                "simulations": self.simulations, "simulated_now": self.simulated,
                "grid_simulations": self.grid_simulations,
                "monotonicity_violations": self.violations, "searched_exhaustively": self.exhaustive,
                "closest_miss": self.closest_miss}


class PlanError(NeuronSimError):
    """A plan that cannot start (bad options, an executor that is not there)."""


def read_options(vary: Sequence[str | Dimension], choose: Sequence[str | Choice]
                 ) -> tuple[tuple[Dimension, ...], tuple[Choice, ...]]:
    """``--vary``/``--choose`` texts (or already built objects) as dimensions and choices."""
    dims = tuple(v if isinstance(v, Dimension) else parse_vary(v) for v in vary)
    choices = tuple(c if isinstance(c, Choice) else parse_choose(c) for c in choose)
    return dims, choices


def plan(scenario: str | Path | Mapping[str, Any], vary: Sequence[str | Dimension] | Mapping[str, Any],
         target: str | Sequence[str] | Target, *, choose: Sequence[str | Choice] | Mapping[str, Any] = (),
         replications: int = 5, initial: int = 2, confidence: float = 0.95, until: float | None = None,
         executor: str = "local", workers: int | None = None, scheduler: Any = None, seed: int | None = None,
         source: str | Path | None = None, cache: RunCache | None = None, method: str = "search",
         on_batch: Callable[[PlanResult | None, int], None] | None = None) -> PlanResult:
    """Search the ranges for the cheapest configuration meeting ``target``.

    ``vary``: ``["cluster.fleets.0.count=4..40", ...]`` or ``{"cluster.fleets.0.count": range(4, 41)}``;
    ``choose``: ``["cluster.fleets.0.instance_type=inf2.24xlarge,inf2.48xlarge"]`` or a mapping path ->
    values. ``target``: ``"wait_p99[llama]<60s, shortfall[llama]==0"``. ``scenario`` is a file or a
    scenario mapping (then ``source`` names the file it stands for). ``cache``: runs already simulated
    (the CLI passes the output folder's). ``method="grid"`` evaluates every point instead of searching
    (the reference the search is tested against; same point rule).
    """
    from scheduler.scenario import load_scenario, scenario_from_mapping
    from scheduler.scenario.compile import workload_kinds, workloads_with_requests

    if isinstance(vary, Mapping):
        vary = [_range_dimension(path, values) for path, values in vary.items()]
    if isinstance(choose, Mapping):
        choose = [Choice(path, tuple(values)) for path, values in choose.items()]
    dims, choices = read_options(vary, choose)
    grid = check_space(dims, choices)
    if isinstance(target, Target):
        goal = target
    else:
        goal = parse_targets([target] if isinstance(target, str) else list(target))
    if goal is None:
        raise PlanError("a plan needs a --target such as 'wait_p99<60s,shortfall==0'", path="--target")
    if executor not in EXECUTORS:
        raise PlanError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}", path="--executor")
    if replications < 1:
        raise PlanError(f"--replications must be at least 1, got {replications}", path="--replications")
    if not 1 <= initial <= replications:
        raise PlanError(f"--initial must be between 1 and --replications ({replications}), got {initial}",
                        path="--initial")
    if not 0 < confidence < 1:
        raise PlanError(f"--confidence is a level between 0 and 1 such as 0.95, got {confidence}", path="--confidence")
    if workers is not None and workers < 1:
        raise PlanError(f"--workers must be at least 1, got {workers}", path="--workers")
    if isinstance(scenario, Mapping):
        label = str(source) if source is not None else str(Path.cwd() / "scenario.yaml")

        def load(overrides: Mapping[str, Any]) -> Any:
            return scenario_from_mapping(scenario, path=label, overrides=overrides)
    else:
        def load(overrides: Mapping[str, Any]) -> Any:
            return load_scenario(scenario, overrides=overrides)
    seeded = {"seed": seed} if seed is not None else {}
    if until is not None:
        seeded["duration"] = until
    base = load(seeded)
    goal.check_workloads(workload_kinds(base.model.workloads),
                         with_requests=workloads_with_requests(base.model.workloads))

    def load_point(overrides: Mapping[str, Any]) -> Any:
        return load({**seeded, **overrides})

    _check_values(load_point, dims, choices)
    price = _pricer(base, load_point)
    parallel = workers or _cpus()
    with _client(executor, scheduler, workers) as client:
        evaluator = Evaluator(load_point, goal, base_seed=int(base.model.seed), scenario_key=scenario_hash(base),
                              replications=replications, initial=initial, confidence=confidence, until=until,
                              executor=executor, workers=workers, scheduler=client, cache=cache or RunCache(),
                              on_batch=(lambda _p: on_batch(None, evaluator.simulated)) if on_batch else None)
        search = Search(evaluator, dims, choices, price, parallel=parallel)
        if method == "grid":
            search.run_grid()
        elif method == "search":
            search.run()
        else:
            raise PlanError(f"unknown method {method!r}; use search or grid", path="method")
    return _result(base, goal, evaluator, search, dims, choices, grid, replications, confidence, until)


def _range_dimension(path: str, values: Any) -> Dimension:
    if isinstance(values, str):
        return parse_vary(f"{path}={values}")
    values = sorted(int(v) for v in values)
    if not values or values != list(range(values[0], values[-1] + 1)):
        raise PlanError(f"{path}: a searched range is consecutive integers (range(lo, hi + 1))", path="vary")
    return Dimension(path, values[0], values[-1])


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


@contextlib.contextmanager
def _client(executor: str, scheduler: Any, workers: int | None) -> Iterator[Any]:
    """One Dask client for the whole plan (its batches are small); nothing for the local pool."""
    if executor != "dask":
        yield None
        return
    try:
        with dask_client(scheduler, workers) as client:
            yield client
    except SweepError as exc:
        raise PlanError(str(exc), path="--scheduler") from None


def _pricer(base: Any, load: Callable[[Mapping[str, Any]], Any]) -> Callable[[Key], float]:
    """The fleet price per hour of a point: from the base fleets and the point's count and instance-type
    fields when those are all it changes, else by loading the point's scenario."""
    memo: dict[Key, float] = {}
    fleets = [(f.instance_type, int(f.count)) for f in base.model.cluster.fleets]

    def price(key: Key) -> float:
        if key in memo:
            return memo[key]
        mine = [list(f) for f in fleets]
        simple = True
        for path, value in key:
            match = _FLEET_FIELD.match(path)
            index = int(match[1] or match[2]) if match else -1
            if match is None or index >= len(mine):
                simple = False
                break
            mine[index][0 if match[3] == "instance_type" else 1] = value if match[3] == "instance_type" else int(value)
        if simple:
            try:
                value = sum(n * (base.catalog.get(str(t)).price_per_hour or 0.0) for t, n in mine)
            except (KeyError, NeuronSimError):
                simple = False
        if not simple:
            try:
                value = fleet_price(load(dict(key)))
            except NeuronSimError:
                value = math.inf  # a point that does not load is never the answer
        memo[key] = value
        return value

    return price


def _plan_point(index: int, p: PointResult, choices: Sequence[Choice]) -> PlanPoint:
    return PlanPoint(point=index, label=p.label or ", ".join(f"{k}={v}" for k, v in p.key), values=dict(p.key),
                     meets=p.meets, replications=p.replications, cost_per_month=p.month_usd, cost_usd=p.cost_usd,
                     figures={b.column: (b.mean, b.low, b.high) for b in p.bounds},
                     missed=tuple(b.condition for b in p.bounds if not b.holds) + ((p.error,) if p.error else ()))


def _check_values(load_point: Callable[[Mapping[str, Any]], Any], dims: Sequence[Dimension],
                  choices: Sequence[Choice]) -> None:
    """Every value the plan may set loads: a path the scenario does not have, or a value it refuses (an
    unknown instance type), is one line before any simulation, not a plan that finds nothing."""
    probes = [("--vary", d.path, v) for d in dims for v in dict.fromkeys((d.lo, d.hi))]
    probes += [("--choose", c.path, v) for c in choices for v in c.values]
    for option, path, value in probes:
        try:
            load_point({path: value})
        except NeuronSimError as exc:
            raise PlanError(f"{path}={value}: {exc}", path=option) from None


def _result(base: Any, goal: Target, ev: Evaluator, search: Search, dims: Sequence[Dimension],
            choices: Sequence[Choice], grid: int, replications: int, confidence: float,
            until: float | None) -> PlanResult:
    points = [_plan_point(i, ev.points[k], choices) for i, k in enumerate(ev.order)]
    ids = {k: i for i, k in enumerate(ev.order)}
    best = None if search.best is None else points[ids[search.best.key]]
    passing = sorted((p for p in points if p.meets and (best is None or p.point != best.point)),
                     key=lambda p: (_cost(p), p.point))
    runs = plan_runs(ev, dims, choices)
    closest = None if best is not None else closest_miss(ev)
    return PlanResult(scenario=base.model.name, target=goal.text, best=best, alternatives=passing[:3],
                      points=points, runs=runs, dimensions=tuple(dims), choices=tuple(choices),
                      replications=replications, confidence=confidence, until=until,
                      base_seed=int(base.model.seed), grid_points=grid, simulations=len(runs),
                      simulated=ev.simulated, violations=[v.text() for v in _unique(search.violations)],
                      exhaustive=search.exhaustive, closest_miss=closest,
                      overrides={} if best is None else dict(best.values))


def _unique(violations: Sequence[Violation]) -> list[Violation]:
    return list(dict.fromkeys(violations))


def _cost(p: PlanPoint) -> float:
    return p.cost_usd[0] if math.isfinite(p.cost_usd[0]) else math.inf


def plan_runs(ev: Evaluator, dims: Sequence[Dimension], choices: Sequence[Choice]) -> pd.DataFrame:
    """plan.parquet: one row per evaluated run, points numbered in evaluation order."""
    from scheduler.readable import split_workload_column

    records = []
    for index, key in enumerate(ev.order):
        p = ev.points[key]
        head = {"point": index, **{path: value for path, value in key}, "fleet": p.label,
                "meets_target": p.meets, "price_per_hour": p.price_per_hour}
        if not p.rows:
            records.append({**head, "replication": -1, "run_seed": -1, "status": "failed", "error": p.error})
        for row in p.rows:
            records.append({**head, **{k: v for k, v in row.items() if k != "fleet"}})
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return frame
    first = ["point", *[c.path for c in choices], *[d.path for d in dims], "fleet", "replication", "run_seed",
             "status", "error", "meets_target", "price_per_hour"]
    frame = frame[[c for c in first if c in frame.columns] + [c for c in frame.columns if c not in first]]
    for column in frame.columns:
        if split_workload_column(column)[1] is not None and frame[column].dtype == object:
            frame[column] = pd.to_numeric(frame[column].astype(float))
    frame["error"] = frame["error"].astype(object).where(frame["error"].notna(), None)
    return frame.reset_index(drop=True)


def closest_miss(ev: Evaluator) -> str | None:
    """The condition that fails closest over every evaluated point, and by how much (in its unit)."""
    best: tuple[float, str] | None = None
    for p in ev.points.values():
        for b in p.bounds:
            if b.holds or not math.isfinite(b.gap):
                continue
            scale = abs(float(next(c.value for c in ev.target.conditions if c.text == b.condition))) or 1.0
            relative = b.gap / scale
            if best is None or relative < best[0]:
                shown = b.high if math.isfinite(b.high) else b.mean
                best = (relative, f"{b.condition} fails closest: misses by {_number(b.gap)} (mean {_number(b.mean)}, "
                                  f"confidence bound {_number(shown if '<' in b.condition else b.low)}) at {p.label}")
    if best is None:
        failed = next((p for p in ev.points.values() if p.error), None)
        return None if failed is None else f"no point ran: {failed.error}"
    return best[1]


def _number(value: float) -> str:
    return f"{value:,.4g}" if math.isfinite(value) else "n/a"
