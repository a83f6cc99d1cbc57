"""What a report says: sections of text, tables and figures, built from a run or a sweep folder.

The document is plain data (:class:`Report`); :mod:`scheduler.report.render` writes it as HTML (figures
embedded) and Markdown (figures as PNG files beside it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scheduler.errors import NeuronSimError
from scheduler.readable import (
    fmt,
    interval_text,
    metric_name,
    metric_unit,
    split_workload_column,
    summary_rows,
    workload_column,
    workload_table,
)
from scheduler.report import figures as fg
from scheduler.results.summary import RunSummary
from scheduler.sim.faults import fault_rows

if TYPE_CHECKING:
    from scheduler.results.sweeps import Sweep


class ReportError(NeuronSimError):
    """A folder that holds no run or sweep results."""


@dataclass(frozen=True)
class Chart:
    """One figure of a report, rendered to PNG."""

    name: str       # file stem: figures/<name>.png
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class TableBlock:
    """A small table of already formatted cells."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[TableBlock] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass
class Report:
    title: str
    subtitle: str
    sections: list[Section]

    @property
    def charts(self) -> list[Chart]:
        return [chart for section in self.sections for chart in section.charts]


def folder_kind(folder: Path) -> str:
    """``sweep`` or ``run``, from the files the folder holds."""
    if (folder / "sweep.json").is_file() and (folder / "sweep.parquet").is_file():
        return "sweep"
    if (folder / "summary.json").is_file():
        return "run"
    raise ReportError("holds no neuron-sim results (no summary.json from `run`, no sweep.json from `sweep`)",
                      file=str(folder))


def _chart(section: Section, name: str, title: str, caption: str, make: Callable[[], Any]) -> None:
    figure = make()
    if figure is not None:
        section.charts.append(Chart(name, title, caption, fg.png_bytes(figure)))


def summary_table(summary: RunSummary) -> TableBlock:
    """The run summary as label/value rows; figures this table does not know are listed after the known."""
    # wall-clock time measures the machine, not the scenario: kept out so the same seed gives the same report
    return TableBlock(("metric", "value"), tuple(summary_rows(summary, machine=False)))


# --- a run ------------------------------------------------------------------------------------------

def run_report(folder: Path) -> Report:
    """The report of a ``neuron-sim run`` results folder."""
    data = _damaged_is_one_line(folder / "summary.json", lambda path: json.loads(path.read_text(encoding="utf-8")))
    summary = RunSummary.from_json(data, file=str(folder / "summary.json"))  # another version's: one line
    tasks = _read(folder / "tasks.parquet", columns=TASK_COLUMNS)
    timeline = _read(folder / "timeline.parquet")
    span = summary.sim_seconds
    title = f"neuron-sim report: {summary.scenario}"
    subtitle = f"seed {summary.seed}, device mode {summary.device_mode}, {fmt(span, 's')} simulated"
    overview = Section("Summary", tables=[summary_table(summary)])
    if summary.partial:
        overview.paragraphs.append(f"The run was interrupted after {fmt(span, 's')} of simulated time: every "
                                   "figure below covers only that part.")
    overview.paragraphs.append(
        "Utilization is time-weighted over the whole run: the share of registered capacity held or reserved "
        "by running tasks. Waits are from submission to RUNNING; a task that had not started when the run ended "
        "counts with its wait so far, so a task that never started raises the percentiles.")
    columns, per_workload = workload_table(summary)
    if per_workload:
        overview.tables.append(TableBlock(columns, tuple(per_workload), caption=(
            "Per workload: tasks submitted, still waiting for a place at the end, waits, p99 start-up "
            "(placement to RUNNING), service shortfall in task-hours (- for a workload that is not a "
            "service) and tasks that never ran.")))
    usage = Section("Utilization")
    _chart(usage, "utilization", "Utilization over time by instance type",
           "Chips held, CPU units and memory reserved by running tasks, as a share of what each instance "
           "type registered, at every sample.", lambda: fg.utilization_figure(timeline, span))
    waiting = Section("Queue and waits")
    _chart(waiting, "queue", "Queue length over time",
           "Tasks waiting for a place (PROVISIONING) and tasks running, cluster-wide, at every sample.",
           lambda: fg.queue_figure(timeline, span))
    _chart(waiting, "wait_cdf", "Wait-time distribution",
           "Cumulative share of tasks by how long they waited from submission to RUNNING (a task that never "
           "started counts with the time it waited, as in the summary); dashed lines mark p50, p95 and p99.",
           lambda: fg.wait_cdf_figure(tasks, span if isinstance(span, int | float) else None))
    if tasks is None or "wait_s" not in tasks.columns or tasks["wait_s"].notna().sum() == 0:
        waiting.paragraphs.append("No task started, so there is no wait-time distribution.")
    failures = Section("Failures")
    _chart(failures, "failures", "Failures by reason",
           "Tasks that could not be placed or failed at container start, by ECS reason.",
           lambda: fg.failures_figure(summary))
    if not failures.charts:
        failures.paragraphs.append("No task failed to be placed or to start.")
    cost = Section("Cost")
    _chart(cost, "cost", "Cost by instance type",
           "Instance-hours times the catalog's on-demand price per hour, by instance type.",
           lambda: fg.cost_figure(summary))
    if not cost.charts:
        cost.paragraphs.append("The run has no priced instance-hours.")
    sections = [overview, usage, waiting, failures]
    requests = _requests_section(summary, _read(folder / "service_load.parquet"), timeline, span)
    if requests is not None:
        sections.append(requests)
    resilience = _faults_section(summary)
    if resilience is not None:
        sections.append(resilience)
    return Report(title, subtitle, [*sections, cost])


REQUEST_ROWS = (("requests_served", "served", ""), ("requests_dropped", "dropped", ""),
                ("ttft_p99_s", "TTFT p99", "s"), ("latency_p50_s", "latency p50", "s"),
                ("latency_p99_s", "latency p99", "s"), ("queue_wait_p99_s", "queue p99", "s"),
                ("output_tokens_per_second", "tokens/s", ""), ("requests_per_instance_hour", "req/instance-h", ""),
                ("cost_per_million_tokens_usd", "USD/M tokens", ""))


def _requests_section(summary: RunSummary, load: pd.DataFrame | None, timeline: pd.DataFrame | None,
                      span: Any) -> Section | None:
    """Services with requests: their request figures and latency over time with tasks and instances."""
    services = [name for name, w in summary.workloads.items() if w.requests is not None]
    if not services:
        return None
    section = Section("Requests")
    figures = {name: summary.workloads[name].metrics() for name in services}
    rows = tuple((name, *(fmt(figures[name].get(key), unit) for key, _, unit in REQUEST_ROWS)) for name in services)
    section.tables.append(TableBlock(("service", *(label for _, label, _ in REQUEST_ROWS)), rows, caption=(
        "Per service with requests: requests served and dropped, time to first token, end-to-end latency and "
        "queueing time percentiles, output tokens per second, requests per instance-hour of the run and the "
        "run's cost per million output tokens.")))
    for name in services:
        _chart(section, f"requests_{_slug(name)}", f"Requests to {name} over time",
               "Latency percentiles of the requests that arrived in each one-minute metric period, requests per "
               "period, the service's desired and RUNNING tasks as Service Auto Scaling set them, and the "
               "cluster's container instances.",
               lambda name=name: fg.service_load_figure(load, timeline, name, span))
    return section


def _faults_section(summary: RunSummary) -> Section | None:
    """Faults and service shortfall, when the run had either."""
    faults = summary.fault_metrics()
    short = summary.service_shortfall_task_hours
    if not any(faults.values()) and not any(short.values()):
        return None
    section = Section("Faults and service shortfall")
    if any(faults.values()):
        section.tables.append(TableBlock(("fault or cost", "value"), tuple(
            (label, fmt(faults[key], unit)) for key, label, unit in fault_rows() if key in faults)))
    if short:
        section.paragraphs.append(
            "Service shortfall: desired tasks minus running tasks, integrated over the run, in task-hours. "
            "It counts waiting for capacity as well as replacing tasks that faults stopped.")
        section.tables.append(TableBlock(("service", "shortfall (task-hours)"), tuple(
            (name, fmt(hours)) for name, hours in sorted(short.items()))))
    return section


# all the figures need of a long task table
TASK_COLUMNS = ("workload", "wait_s", "start", "final_state", "submit", "end", "stop_code")


def _damaged_is_one_line(path: Path, read: Callable[[Path], Any]) -> Any:
    """``read(path)``; a damaged file (truncated, not JSON or Parquet) is a :class:`ReportError` naming it."""
    try:
        return read(path)
    except Exception as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ReportError(f"cannot be read, the results are damaged ({type(exc).__name__}: {detail}); run the "
                          "scenario again to rewrite them", file=str(path)) from None


def _read(path: Path, columns: tuple[str, ...] | None = None) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return _damaged_is_one_line(path, lambda p: _read_table(p, columns))


def _read_table(path: Path, columns: tuple[str, ...] | None) -> pd.DataFrame:
    if columns is not None:
        import pyarrow.parquet as pq

        present = set(pq.read_schema(path).names)
        return pd.read_parquet(path, columns=[c for c in columns if c in present])
    return pd.read_parquet(path)


# --- a sweep ----------------------------------------------------------------------------------------

POINT_METRICS = ("wait_p99_s", "service_shortfall_task_hours", "chip_utilization", "cost_usd", "tasks_failed")
MAX_WORKLOAD_COLUMNS = 4  # per-workload columns a point table shows (sweep.parquet has them all)


def workload_point_metrics(columns: Sequence[str]) -> list[str]:
    """Each workload's p99 wait and each service's shortfall, when the sweep has more than one workload
    (otherwise they repeat the cluster's)."""
    waits = [c for c in columns if split_workload_column(c)[0] == "wait_p99_s" and split_workload_column(c)[1]]
    if len(waits) < 2:
        return []
    shorts = {c for c in columns if split_workload_column(c)[0] == "shortfall_task_hours"}
    chosen: list[str] = []
    for wait in waits:
        short = workload_column("shortfall_task_hours", split_workload_column(wait)[1] or "")
        chosen += [wait, *([short] if short in shorts else [])]
    return chosen


def frontier_waits(sweep: Sweep) -> list[str]:
    """The wait the frontier is drawn against: the waits a target names, else each workload's p99 (a point
    then stands at its slowest workload: a pooled p99 hides a small service behind a large batch stream),
    else the cluster's p99."""
    from scheduler.targets import parse_target

    target = sweep.meta.get("target")
    named = [c for c in (parse_target(target).columns if target else [])
             if split_workload_column(c)[0].startswith("wait_")]
    if named:
        return named
    per_workload = [c for c in sweep.runs.columns
                    if split_workload_column(c)[0] == "wait_p99_s" and split_workload_column(c)[1] is not None]
    return per_workload if len(per_workload) > 1 else ["wait_p99_s"]


def target_sentence(sweep: Sweep) -> str | None:
    """What the target says of the grid: the cheapest point meeting it, or that none does (None without a
    target)."""
    target = sweep.meta.get("target")
    if not target:
        return None
    cheapest = sweep.meta.get("cheapest_meeting_target")
    met = len(sweep.meta.get("points_meeting_target") or ())
    points = sweep.runs["point"].nunique()
    if not cheapest:
        return f"target {target}: no grid point meets it (0 of {points}; judged on the means over replications)"
    cost = cheapest.get("cost_usd")
    money = f" at {fmt(cost, 'USD')}" if isinstance(cost, int | float) and cost == cost else ""
    return (f"target {target}: {met} of {points} grid points meet it (means over replications); the cheapest is "
            f"{cheapest.get('label')}{money}")


def simulated_period(sweep: Sweep) -> float | None:
    """The simulated time every run of a sweep covered, or None when the runs differ (or none finished)."""
    if "sim_seconds" not in sweep.runs.columns:
        return None
    spans = sweep.runs["sim_seconds"].dropna().unique()
    return float(spans[0]) if len(spans) == 1 else None


def constant_text(constant: Mapping[str, float], period: float | None = None) -> str:
    """``cost: $764.27; tasks failed: 0``: metrics with one value at every grid point, in their units."""
    return "; ".join(f"{_metric_header(m, period)}: {fmt(v, metric_unit(m))}" for m, v in constant.items())


def _metric_header(metric: str, period: float | None) -> str:
    if period is not None and metric_unit(metric) == "USD" and metric != "cost_per_completed_task_usd":
        return f"{metric_name(metric)} over {fmt(period, 's')}"
    return metric_name(metric)


def sweep_point_table(sweep: Sweep, metrics: Sequence[str] | None = None) -> tuple[TableBlock, str]:
    """One row per grid point: the point in a planner's words (its fleet and other swept values), runs ok,
    each metric's mean ± half its 95% confidence interval and, with a target, whether the point meets it.
    The metrics are the cluster's (POINT_METRICS), what the target reads, and the per-workload p99 waits and
    shortfalls that differ between points (at most MAX_WORKLOAD_COLUMNS; sweep.parquet has them all).
    Cluster metrics with the same value at every point leave the table for the sentence returned beside it."""
    from scheduler.results.stats import wide_summary
    from scheduler.results.sweeps import point_labels
    from scheduler.results.tables import MEETS_TARGET

    summary = sweep.summary
    paths = sweep.parameter_paths
    known = set(summary["metric"])
    target_columns: list[str] = []
    if metrics is None:
        from scheduler.targets import parse_target

        target = sweep.meta.get("target")
        target_columns = [c for c in (parse_target(target).columns if target else []) if c in known]
        cluster = [m for m in POINT_METRICS if m in known]
        per_workload = [m for m in workload_point_metrics(list(sweep.runs.columns)) if m in known]
    else:
        cluster, per_workload = [m for m in metrics if m in known], []
    several = summary["point"].nunique() > 1
    varying, constant = fg.split_constant(summary, [*cluster, *target_columns]) if several else (
        [*cluster, *target_columns], {})
    moving = fg.split_constant(summary, per_workload)[0] if several else per_workload
    shown = [m for m in cluster if m in varying] + [m for m in target_columns if m in varying and m not in cluster]
    shown += [m for m in moving if m not in shown][:MAX_WORKLOAD_COLUMNS]
    wide = wide_summary(summary, paths, shown) if shown else summary.drop_duplicates("point")[
        ["point", *paths, "runs", "failed"]]
    labels = point_labels(sweep)
    meets = (sweep.runs.groupby("point")[MEETS_TARGET].first().to_dict()
             if MEETS_TARGET in sweep.runs.columns else None)
    rows = []
    for row in wide.to_dict("records"):
        cells = [labels.get(int(row["point"]), "?"), f"{int(row['runs'] - row['failed'])}/{int(row['runs'])}"]
        cells += [interval_text(*(row[f"{m}_{stat}"] for stat in ("mean", "ci_low", "ci_high")), metric_unit(m))
                  for m in shown]
        if meets is not None:
            cells.append("yes" if meets.get(row["point"]) else "no")
        rows.append(tuple(cells))
    period = simulated_period(sweep)
    columns = ("grid point", "runs ok", *(_metric_header(m, period) for m in shown),
               *(("meets target",) if meets is not None else ()))
    return TableBlock(columns, tuple(rows)), constant_text(constant, period)


def sweep_report(folder: Path) -> Report:
    """The report of a ``neuron-sim sweep`` results folder."""
    from scheduler.results.sweeps import point_labels, read_sweep
    from scheduler.results.tables import MEETS_TARGET

    sweep = read_sweep(folder)
    paths = sweep.parameter_paths
    runs, summary = sweep.runs, sweep.summary
    failed = sweep.failed
    title = f"neuron-sim sweep report: {sweep.scenario}"
    grid = " x ".join(f"{p.path} in {{{', '.join(map(str, p.values))}}}" for p in sweep.parameters)
    grid = grid or "no parameter"
    subtitle = (f"{len(runs)} runs: {grid}, {sweep.replications} replication(s) each, "
                f"executor {sweep.executor}")
    overview = Section("Grid points")
    overview.paragraphs.append(
        "Each grid point ran once per replication; replication r of every point used the same seed, derived "
        "from the base seed and r. Cells show the mean over replications ± half its 95% confidence interval "
        "(Student's t); a cell without ± had one replication, or the same value in every replication.")
    if len(failed):
        overview.paragraphs.append(f"{len(failed)} of {len(runs)} runs failed; they are listed under "
                                   "'Failed runs' and left out of the means.")
    table, same = sweep_point_table(sweep)
    overview.tables.append(table)
    sentence = target_sentence(sweep)
    if sentence:
        overview.paragraphs.append(sentence[0].upper() + sentence[1:] + ".")
    sections = [overview]
    charts = Section("Metrics against each parameter")
    varying, constant = fg.split_constant(summary)
    if constant:
        same_here = constant_text(constant, simulated_period(sweep))
        charts.paragraphs.append(f"The same at every grid point (not drawn): {same_here}.")
    if same:
        overview.paragraphs.append(f"The same at every grid point: {same}.")
    for index, path in enumerate(paths if varying else []):
        _chart(charts, f"sweep_{index}_{_slug(path)}", f"Metrics against {path}",
               f"Mean over replications with the 95% confidence interval, against {path}.",
               lambda path=path: fg.sweep_metric_figure(summary, runs, path, paths))
    if not paths:
        charts.paragraphs.append("The sweep has no parameter: only replications of the scenario as it is.")
    sections.append(charts)
    frontier = Section("Cost against wait")
    meets = runs.groupby("point")[MEETS_TARGET].first().to_dict() if MEETS_TARGET in runs.columns else None
    cheapest = (sweep.meta.get("cheapest_meeting_target") or {}).get("point")
    waits = frontier_waits(sweep)
    which = ("the p99 wait of its slowest workload" if len(waits) > 1 else
             f"its mean {metric_name(waits[0])}")
    _chart(frontier, "frontier", "Cost against p99 wait",
           f"Each grid point, named by its fleet, at {which} (tasks that never started count at their wait so far) "
           "and its mean cost; a point short of service task-hours says how many. The red line joins the points "
           "that no other point beats on both" + ("; green rings meet the target, the star is the cheapest of "
           "them." if meets is not None else "."),
           lambda: fg.frontier_figure(summary, paths, wait=waits, labels=point_labels(sweep), meets=meets,
                                      cheapest=cheapest))
    sentence = target_sentence(sweep)
    if sentence:
        frontier.paragraphs.append(sentence[0].upper() + sentence[1:] + ".")
    if not frontier.charts:
        frontier.paragraphs.append("No grid point has both a p99 wait and a cost.")
    sections.append(frontier)
    if len(failed):
        table = TableBlock(("run", *paths, "replication", "error"), tuple(
            (str(r["run"]), *(str(r[p]) for p in paths), str(r["replication"]), _clip(str(r["error"]), 300))
            for r in failed.head(50).to_dict("records")))
        more = [f"... and {len(failed) - 50} more."] if len(failed) > 50 else []
        sections.append(Section("Failed runs", paragraphs=more, tables=[table]))
    return Report(title, subtitle, sections)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[:60] or "parameter"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_document(folder: Path) -> Report:
    """The report of a run or sweep folder."""
    return sweep_report(folder) if folder_kind(folder) == "sweep" else run_report(folder)

