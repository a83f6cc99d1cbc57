"""Sweeps: a grid of scenario variants times replications, run locally or on a Dask cluster.

A parameter is a dotted scenario field path with a list of values (``cluster.fleets.0.count=2,4,8``).
The grid is every combination of the parameters' values (a *grid point*); each point runs
``replications`` times. A run's seed is derived from the point's base seed (the scenario's ``seed``, or
a swept ``seed``) and the replication number alone, with numpy's ``SeedSequence``: it does not depend on
the executor, the number of workers or the order runs finish in, and replication *r* of every grid point
sees the same random stream (common random numbers, which make differences between points less noisy).

Every grid point is loaded and validated in this process, then shipped to the workers as data, so
workers need the ``scheduler`` package but not the scenario's files. A run that raises is recorded with
its error and the sweep goes on. The results are one row per run (parameters and summary metrics) and,
per grid point and metric, the mean and a 95% confidence interval (Student's t).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scheduler.errors import NeuronSimError, ScenarioError, install_command, show_value

# the results contract (scheduler.results): sweeps compute with it, and callers import these names from here too
from scheduler.results.stats import (  # noqa: F401
    CONFIDENCE,
    confidence_interval,
    metric_columns,
    summarize,
    uniform_column,
    wide_summary,
)
from scheduler.results.summary import RunSummary
from scheduler.results.sweeps import (  # noqa: F401
    FLEET_PATHS,
    Parameter,
    Sweep,
    SweepError,
    point_label,
    point_labels,
    point_means,
    read_sweep,
)
from scheduler.results.tables import (  # noqa: F401
    FAILED,
    FLEET,
    ID_COLUMNS,
    MEETS_TARGET,
    NOT_SUMMARIZED,
    OK,
    STATUS_COLUMNS,
    run_metrics,
    split_workload_column,
)

if TYPE_CHECKING:
    from scheduler.targets import Target

EXECUTORS = ("local", "dask")
MAX_RUNS = 100_000  # grid points x replications in one sweep: each run is a simulation, and each a row
DASK_HINT = f"the dask executor needs the optional dependency: {install_command('dask')}"

ProgressFn = Callable[[int, int, int], None]  # (runs done, runs in all, runs failed so far)


# --- the grid ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One run of a sweep: which grid point, which replication, the overrides and the seed it uses."""

    run: int
    point: int
    replication: int
    overrides: Mapping[str, Any]
    seed: int


def parse_set(text: str) -> Parameter:
    """Read ``PATH=V1,V2,...`` (a ``--set`` option). Commas inside brackets, braces or quotes do not split,
    so ``cluster.fleets.0.availability_zones=[us-east-1a, us-east-1b]`` is one value."""
    path, sep, rest = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise SweepError(f"--set needs PATH=V1,V2,... such as cluster.fleets.0.count=2,4; got {text!r}")
    values = _split_values(rest, text)
    if any(not v for v in values):
        raise SweepError(f"--set {text!r} has an empty value")
    return Parameter(path, tuple(values))


def _split_values(text: str, whole: str) -> list[str]:
    values: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    if depth != 0 or quote:
        raise SweepError(f"--set {whole!r}: unbalanced brackets or quotes")
    values.append(text[start:].strip())
    return values


def replication_seed(base_seed: int, replication: int) -> int:
    """The seed of replication ``replication`` of a grid point whose base seed is ``base_seed``.

    A pure function of the two numbers (numpy ``SeedSequence``), below 2**63 like a scenario's seed.
    """
    state = np.random.SeedSequence([int(base_seed), int(replication)]).generate_state(1, np.uint64)
    return int(state[0]) >> 1


def check_size(parameters: Sequence[Parameter], replications: int) -> None:
    """Refuse a sweep of more than MAX_RUNS runs before a single one is set up."""
    runs = math.prod(len(p.values) for p in parameters) * replications
    if runs > MAX_RUNS:
        raise SweepError(f"the sweep would make {show_value(runs)} runs (grid points x --replications); "
                         f"at most {MAX_RUNS:,} are allowed", path="--replications")


def grid_points(parameters: Sequence[Parameter]) -> list[dict[str, Any]]:
    """Every combination of the parameters' values, the first parameter varying slowest."""
    paths = [p.path for p in parameters]
    if len(set(paths)) != len(paths):
        raise SweepError("a parameter is swept twice: " + ", ".join(sorted({p for p in paths
                                                                             if paths.count(p) > 1})))
    combos = itertools.product(*(p.values for p in parameters))
    return [dict(zip(paths, combo, strict=True)) for combo in combos]


def expand_runs(points: Sequence[Mapping[str, Any]], base_seeds: Sequence[int], replications: int
                ) -> list[Run]:
    """Grid points x replications; run ids count replications fastest."""
    if replications < 1:
        raise SweepError(f"--replications must be at least 1, got {replications}")
    return [Run(run=p * replications + r, point=p, replication=r, overrides=dict(point),
                seed=replication_seed(base_seeds[p], r))
            for p, point in enumerate(points) for r in range(replications)]


# --- one run (in a worker) --------------------------------------------------------------------------

def portable(loaded: Any) -> dict[str, Any]:
    """A LoadedScenario as picklable data (its catalog as a tuple of instance types)."""
    data = {f.name: getattr(loaded, f.name) for f in dataclasses.fields(loaded)}
    data["catalog"] = tuple(loaded.catalog.values())
    return data


def restore(data: Mapping[str, Any]) -> Any:
    """The LoadedScenario that :func:`portable` packed."""
    from scheduler.catalog.catalog import Catalog
    from scheduler.scenario import LoadedScenario

    return LoadedScenario(**{**data, "catalog": Catalog(data["catalog"])})


def run_one(scenario: Mapping[str, Any], run: Run, until: float | None = None) -> dict[str, Any]:
    """Simulate one run and return its row of metrics; an exception becomes a failed row, never escapes."""
    from scheduler.scenario.cluster import fleet_label
    from scheduler.sim.engine import Simulation

    try:
        loaded = restore(scenario)
        results = Simulation(loaded, seed=run.seed, until=until).run()
        return {"status": OK, "error": None, FLEET: fleet_label(loaded.model.cluster),
                **summary_metrics(results.summary)}
    except Exception as exc:  # a failed run is data: the sweep records it and goes on
        return {"status": FAILED, "error": _one_line(exc)}


def summary_metrics(summary: RunSummary) -> dict[str, Any]:
    """The flat, tabular part of a run summary (see :func:`scheduler.results.tables.run_metrics`)."""
    return run_metrics(summary)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the sweep --------------------------------------------------------------------------------------

def run_sweep(scenario: str | Path | Mapping[str, Any], parameters: Sequence[Parameter] = (), *,
              replications: int = 1, executor: str = "local", workers: int | None = None,
              scheduler: Any = None, seed: int | None = None, until: float | None = None,
              source: str | Path | None = None, progress: ProgressFn | None = None) -> Sweep:
    """Run every grid point ``replications`` times and collect the rows.

    ``scenario`` is a scenario file, or a scenario mapping (then ``source`` names the file it stands for:
    relative task-definition paths resolve from its folder; default the current folder). ``executor`` is
    ``local`` (a process pool of ``workers``, default the CPU count; ``workers=1`` runs in this process)
    or ``dask`` (``scheduler``: a scheduler address, a ``distributed.Client``, or None for a
    ``LocalCluster`` of ``workers``). ``seed`` replaces the scenario's seed as the base seed of points
    that do not sweep ``seed`` themselves.
    """
    from scheduler.scenario import load_scenario, scenario_from_mapping

    if executor not in EXECUTORS:
        raise SweepError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise SweepError(f"--workers must be at least 1, got {workers}")
    if replications < 1:
        raise SweepError(f"--replications must be at least 1, got {replications}")
    parameters = tuple(parameters)
    check_size(parameters, replications)
    points = grid_points(parameters)
    if isinstance(scenario, Mapping):
        label = str(source) if source is not None else str(Path.cwd() / "scenario.yaml")

        def load(overrides: Mapping[str, Any]) -> Any:
            return scenario_from_mapping(scenario, path=label, overrides=overrides)
    else:
        label = str(scenario)

        def load(overrides: Mapping[str, Any]) -> Any:
            return load_scenario(scenario, overrides=overrides)

    base = load({"seed": seed} if seed is not None else {})  # a broken file fails here, before any run
    shipped: dict[int, dict[str, Any]] = {}
    load_errors: dict[int, str] = {}
    base_seeds: list[int] = []
    for index, point in enumerate(points):
        overrides = dict(point)
        if seed is not None and "seed" not in overrides:
            overrides = {"seed": seed, **overrides}
        try:
            loaded = load(overrides)
        except NeuronSimError as exc:
            load_errors[index] = str(exc)
            base_seeds.append(int(base.model.seed))
            continue
        shipped[index] = portable(loaded)
        base_seeds.append(int(loaded.model.seed))
    if points and not shipped:
        first = next(iter(load_errors.values()))
        raise ScenarioError(f"no grid point of the sweep loads; the first: {first}")
    runs = expand_runs(points, base_seeds, replications)
    rows: dict[int, dict[str, Any]] = {}
    to_run: list[Run] = []
    for run in runs:
        if run.point in load_errors:
            rows[run.run] = {"status": FAILED, "error": load_errors[run.point]}
        else:
            to_run.append(run)
    tracker = _Tracker(len(runs), progress)
    for row in rows.values():
        tracker.done(row)
    if executor == "dask":
        results = _run_dask(shipped, to_run, until, workers, scheduler, tracker)
    else:
        results = _run_local(shipped, to_run, until, workers, tracker)
    rows.update(results)
    frame = runs_frame(runs, rows, parameters)
    return Sweep(scenario=base.model.name, source=label, parameters=parameters, replications=replications,
                 executor=executor, runs=frame, summary=summarize(frame, [p.path for p in parameters]),
                 base_seeds=tuple(base_seeds), until=until, notices=base.notices)


def execute_runs(shipped: Mapping[int, dict[str, Any]], runs: Sequence[Run], until: float | None, *,
                 executor: str = "local", workers: int | None = None, scheduler: Any = None,
                 progress: ProgressFn | None = None) -> dict[int, dict[str, Any]]:
    """Run ``runs`` (each on the scenario ``shipped[run.point]``, see :func:`portable`) on the local process
    pool or on Dask, as a sweep does; one row per run id. ``scheduler`` may be an open ``distributed.Client``
    (a planner runs many small batches on one cluster)."""
    tracker = _Tracker(len(runs), progress)
    if executor == "dask":
        return _run_dask(shipped, runs, until, workers, scheduler, tracker)
    return _run_local(shipped, runs, until, workers, tracker)


class _Tracker:
    def __init__(self, total: int, progress: ProgressFn | None) -> None:
        self.total, self.progress, self.count, self.failed = total, progress, 0, 0

    def done(self, row: Mapping[str, Any]) -> None:
        self.count += 1
        self.failed += row.get("status") != OK
        if self.progress is not None:
            self.progress(self.count, self.total, self.failed)


def _run_local(shipped: Mapping[int, dict[str, Any]], runs: Sequence[Run], until: float | None,
               workers: int | None, tracker: _Tracker, *,
               task: Callable[..., dict[str, Any]] = run_one) -> dict[int, dict[str, Any]]:
    """Run on a local process pool. A worker process that dies (the OOM killer, a crash) breaks the whole
    pool: the runs it took down are sent again in a new pool, and on the last of ``WORKER_ATTEMPTS``
    each alone, so that a run that kills its worker every time is recorded as failed and takes no
    other run with it."""
    rows: dict[int, dict[str, Any]] = {}
    workers = min(workers or os.cpu_count() or 1, max(len(runs), 1))
    if workers == 1:
        for run in runs:
            rows[run.run] = task(shipped[run.point], run, until)
            tracker.done(rows[run.run])
        return rows
    # spawn, not fork: workers start clean (no inherited threads or state) on every platform
    context = multiprocessing.get_context("spawn")
    pending: list[Run] = list(runs)
    for attempt in range(1, WORKER_ATTEMPTS + 1):
        last = attempt == WORKER_ATTEMPTS
        groups = [[run] for run in pending] if last and attempt > 1 else [pending]
        pending = []
        for group in groups:
            pending += _pool_round(context, min(workers, len(group)), shipped, group, until, task, rows, tracker,
                                   attempt if last else 0)
        if not pending:
            break
    return rows


def _pool_round(context: Any, workers: int, shipped: Mapping[int, dict[str, Any]], runs: Sequence[Run],
                until: float | None, task: Callable[..., dict[str, Any]], rows: dict[int, dict[str, Any]],
                tracker: _Tracker, final_attempt: int) -> list[Run]:
    """One pool over ``runs``; returns the runs a broken pool took down (recorded as failed instead when
    ``final_attempt`` is the number of the last attempt)."""
    broken: list[Run] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future, Run] = {pool.submit(task, shipped[run.point], run, until): run for run in runs}
        try:
            for future in as_completed(futures):
                run = futures[future]
                try:
                    row = future.result()
                except BrokenProcessPool as exc:
                    if not final_attempt:
                        broken.append(run)
                        continue
                    row = {"status": FAILED, "error": f"{_one_line(exc)} (sent {final_attempt} times; the "
                                                      "worker process died each time)"}
                except Exception as exc:  # the worker could not run it: record it, go on
                    row = {"status": FAILED, "error": _one_line(exc)}
                rows[run.run] = row
                tracker.done(row)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return broken


WORKER_ATTEMPTS = 3  # a run whose worker died (or whose result was lost) is sent at most this often


def _run_dask(shipped: Mapping[int, dict[str, Any]], runs: Sequence[Run], until: float | None,
              workers: int | None, scheduler: Any, tracker: _Tracker, *,
              task: Callable[..., dict[str, Any]] = run_one) -> dict[int, dict[str, Any]]:
    """Run on Dask. A run's own errors come back as failed rows (``run_one`` catches them); a worker that
    dies under a run (Dask's ``KilledWorker`` once its own retries are spent, a lost result, a cancelled
    future) sends the run again, up to ``WORKER_ATTEMPTS`` in all, then records it as failed with why.
    Runs are deterministic, so a run sent again gives the row it would have given the first time."""
    rows: dict[int, dict[str, Any]] = {}
    attempts: dict[int, int] = {}
    with dask_client(scheduler, workers) as client:
        import distributed

        # each grid point travels to the cluster once, not once per replication
        scattered = {point: client.scatter([data])[0] for point, data in shipped.items()}

        def submit(run: Run) -> Any:
            attempts[run.run] = attempts.get(run.run, 0) + 1
            if attempts[run.run] > 1 and scattered[run.point].status != "finished":
                # the scattered scenario died with its worker: send it again
                scattered[run.point] = client.scatter([shipped[run.point]], hash=False)[0]
            return client.submit(task, scattered[run.point], run, until, pure=False)

        futures = {submit(run): run for run in runs}
        pending = distributed.as_completed(list(futures))
        try:
            for future in pending:
                run = futures.pop(future)
                try:
                    row = future.result()
                except (Exception, asyncio.CancelledError) as exc:  # the worker, not the run, failed
                    if attempts[run.run] < WORKER_ATTEMPTS:
                        again = submit(run)
                        futures[again] = run
                        pending.add(again)
                        continue
                    row = {"status": FAILED, "error": f"{_one_line(exc)} (sent {attempts[run.run]} times; "
                                                      "the worker failed each time)"}
                rows[run.run] = row
                tracker.done(row)
        except BaseException:
            client.cancel(list(futures))
            raise
    return rows


@contextlib.contextmanager
def dask_client(scheduler: Any = None, workers: int | None = None, *, timeout: str = "20s") -> Iterator[Any]:
    """A ``distributed.Client``: the one given, one connected to an address (waiting up to ``timeout``),
    or one on a new LocalCluster (closed again on exit; a client passed in is left open)."""
    try:
        import distributed
    except ImportError:
        raise SweepError(DASK_HINT) from None
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                dashboard_address=None))
            client = stack.enter_context(distributed.Client(cluster))
        else:
            try:
                client = stack.enter_context(distributed.Client(str(scheduler), timeout=timeout))
            except (OSError, TimeoutError) as exc:
                raise SweepError(f"cannot reach the Dask scheduler at {scheduler}: {_one_line(exc)}",
                                 path="--scheduler") from None
            except (ValueError, TypeError, OverflowError) as exc:  # raised by distributed's address parser
                raise SweepError(f"not a Dask scheduler address such as tcp://host:8786: {show_value(scheduler)}"
                                 f" ({_one_line(exc)})", path="--scheduler") from None
        yield client


# --- tables -----------------------------------------------------------------------------------------

def runs_frame(runs: Sequence[Run], rows: Mapping[int, Mapping[str, Any]],
               parameters: Sequence[Parameter]) -> pd.DataFrame:
    """One row per run, in run order: ids, parameter values, status, error, metrics."""
    paths = [p.path for p in parameters]
    records = []
    for run in sorted(runs, key=lambda r: r.run):
        record: dict[str, Any] = {"run": run.run, "point": run.point, "replication": run.replication,
                                  "run_seed": run.seed}
        record.update({path: _display_value(run.overrides[path]) for path in paths})
        result = dict(rows[run.run])
        record["status"] = result.pop("status")
        record["error"] = result.pop("error", None)
        record.update(result)
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        frame = pd.DataFrame(columns=[*ID_COLUMNS, *paths, *STATUS_COLUMNS])
    for path in paths:
        frame[path] = uniform_column(frame[path])
    for column in frame.columns:  # per-workload figures: plain numbers, NaN where a run had none
        if split_workload_column(column)[1] is not None and frame[column].dtype == object:
            frame[column] = pd.to_numeric(frame[column].astype(float))
    frame["error"] = frame["error"].astype(object).where(frame["error"].notna(), None)
    for column in ("run", "point", "replication"):
        frame[column] = frame[column].astype("int64")
    frame["run_seed"] = frame["run_seed"].astype("int64")
    return frame


def _display_value(value: Any) -> Any:
    """A parameter value as a table cell: strings read as YAML (as the override reads them)."""
    from scheduler.scenario import parse_yaml

    if isinstance(value, str) and value.strip():
        try:
            value = parse_yaml(value, "--set")
        except ScenarioError:
            return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str)
    return value


# --- points in a planner's words, and targets -------------------------------------------------------

def apply_target(sweep: Sweep, target: Target) -> None:
    """Mark the grid points whose means meet ``target``: a ``meets_target`` column on every run row of the
    point, and in ``sweep.meta`` the target and the cheapest point meeting it (by mean ``cost_usd``; None
    when no point does). A point whose runs all failed meets nothing."""
    means = point_means(sweep, [*target.columns, "cost_usd"])
    ok_points = set(sweep.runs.loc[sweep.runs["status"] == OK, "point"].astype(int))
    meets = {p: p in ok_points and target.holds(values) for p, values in means.items()}
    sweep.runs[MEETS_TARGET] = sweep.runs["point"].map(meets).astype(bool)
    labels = point_labels(sweep)
    def cost(p: int) -> float:
        value = means[p]["cost_usd"]
        return value if math.isfinite(value) else math.inf

    passing = sorted((p for p, ok in meets.items() if ok), key=lambda p: (cost(p), p))
    cheapest = passing[0] if passing else None
    sweep.meta["target"] = target.text
    sweep.meta["points_meeting_target"] = [int(p) for p in sorted(passing)]
    sweep.meta["cheapest_meeting_target"] = None if cheapest is None else {
        "point": int(cheapest), "label": labels[cheapest], "cost_usd": means[cheapest]["cost_usd"]}


# --- the folder -------------------------------------------------------------------------------------

def write_sweep(sweep: Sweep, out: str | Path, *, force: bool = False) -> list[Path]:
    """Replace the folder ``out`` with the sweep's files (see :class:`~scheduler.results_folder.ResultsFolder`:
    an earlier sweep's folder is replaced only with ``force``)."""
    from scheduler.output import ResultsFolder

    with ResultsFolder(out, "sweep", force=force) as folder:
        names = [p.name for p in write_sweep_files(sweep, folder.staging)]
        final = folder.commit()
    return [final / name for name in names]


def write_sweep_files(sweep: Sweep, folder: Path) -> list[Path]:
    """Write ``sweep.parquet``, ``sweep_summary.parquet``/``.json`` and ``sweep.json`` (last: its presence
    says the folder is complete) into a staging folder, each to a temporary name and renamed."""
    from scheduler.output import write_json, write_parquet

    folder = Path(folder)
    write_parquet(folder / "sweep.parquet", sweep.runs)
    write_parquet(folder / "sweep_summary.parquet", sweep.summary)
    write_json(folder / "sweep_summary.json", sweep.summary.to_dict(orient="records"))
    write_json(folder / "sweep.json", sweep.describe())
    return [folder / name for name in ("sweep.parquet", "sweep_summary.parquet", "sweep_summary.json",
                                       "sweep.json")]


# --- a progress bar ---------------------------------------------------------------------------------

class RunProgress:
    """A rich progress bar over a sweep's runs (shown only when ``console`` is a terminal).

    Use as a context manager; the value it gives is the ``progress`` callback for :func:`run_sweep`.
    """

    def __init__(self, console: Any, name: str) -> None:
        self.console, self.name, self.bar, self.task = console, name, None, None

    def __enter__(self) -> ProgressFn | None:
        if not self.console.is_terminal:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("runs"), TimeElapsedColumn(), console=self.console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task(f"sweep {self.name}", total=None)
        return self.update

    def update(self, done: int, total: int, failed: int) -> None:
        if self.bar is not None:
            note = f" ({failed} failed)" if failed else ""
            self.bar.update(self.task, completed=done, total=total, description=f"sweep {self.name}{note}")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
