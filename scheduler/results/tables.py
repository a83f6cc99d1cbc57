"""The tables a run and a sweep write: their columns, in one place, and the naming rule of sweep columns.

A run writes ``tasks.parquet`` (:data:`TASK_COLUMNS`, typed by :data:`TASK_SCHEMA`), ``timeline.parquet``
(:data:`TIMELINE_COLUMNS`), ``scaling_events.parquet`` (:data:`SCALING_EVENT_COLUMNS`),
``capacity_reservation.parquet`` (:data:`CAPACITY_RESERVATION_COLUMNS`) and, for services with requests or
auto scaling, ``service_load.parquet`` (:data:`SERVICE_LOAD_COLUMNS`); the writers take their columns from
here and docs/outputs.md describes each one.

A sweep's ``sweep.parquet`` has one row per run: ids, parameters, status, then the run's figures as flat
numeric columns (:func:`run_metrics`): a cluster-wide figure under its summary name (``wait_p99_s``), a
breakdown's entries as ``<key>:<name>`` (``tasks_failed:RESOURCE:CPU``, ``cost_usd_by_type:inf2.xlarge``),
a fault count as ``faults_<name>``, and a workload's figure as ``<metric>[<workload>]`` (``wait_p99_s[llama]``,
:func:`workload_column`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from scheduler.results.summary import FAULTS, PARTIAL, WORKLOADS, RunSummary

TASK_COLUMNS = ("task_id", "family", "workload", "group", "launch_type", "capacity_provider", "submit",
                "start", "end", "final_state", "stop_code", "stop_reason", "instance_id", "instance_type",
                "availability_zone", "chips", "wait_s", "placed", "startup_s", "pull_s")
_FLOAT_COLUMNS = ("submit", "start", "end", "wait_s", "startup_s", "pull_s")
TASK_SCHEMA = pa.schema([(c, pa.float64() if c in _FLOAT_COLUMNS else pa.bool_() if c == "placed" else pa.string())
                         for c in TASK_COLUMNS])

RESOURCE_COLUMNS = ("chips_total", "chips_held", "chips_stranded", "cpu_total", "cpu_used", "memory_total",
                    "memory_used", "gpus_total", "gpus_used")
TIMELINE_COLUMNS = ("time", "instance_type", "capacity_provider", "instances", *RESOURCE_COLUMNS,
                    "running", "pending", "provisioning", "submitted", "stopped")
SCALING_EVENT_COLUMNS = ("time", "capacity_provider", "action", "count", "instance_type", "reason", "cpr", "service",
                         "old", "policy")
CAPACITY_RESERVATION_COLUMNS = ("time", "capacity_provider", "cpr", "instances", "instances_needed")
SERVICE_LOAD_COLUMNS = ("time", "service", "desired", "running", "requests", "queued", "cpu_utilization",
                        "memory_utilization", "requests_per_target", "desired_after", "latency_p50_s", "latency_p99_s",
                        "ttft_p50_s", "ttft_p99_s")
# each table of a run folder (file stem) and its columns, in order
RUN_TABLES: dict[str, tuple[str, ...]] = {
    "tasks": TASK_COLUMNS, "timeline": TIMELINE_COLUMNS, "scaling_events": SCALING_EVENT_COLUMNS,
    "capacity_reservation": CAPACITY_RESERVATION_COLUMNS, "service_load": SERVICE_LOAD_COLUMNS}

# Figures of a service's requests (a workload's): per workload only, in sweep tables and targets.
REQUEST_METRICS = (*(f"{kind}_{q}_s" for kind in ("latency", "ttft", "queue_wait") for q in ("p50", "p95", "p99",
                                                                                               "max")),
                   "requests_dropped", "requests_served", "output_tokens_per_second", "requests_per_instance_hour",
                   "cost_per_million_tokens_usd")
# The per-workload figures that become sweep columns ``<metric>[<workload>]`` (see workload_column).
WORKLOAD_METRICS = ("tasks_submitted", "tasks_placed", "tasks_started", "tasks_waiting_at_end",
                    "tasks_starting_at_end", "tasks_stopped_before_start", "wait_p50_s", "wait_p95_s",
                    "wait_p99_s", "wait_max_s",
                    "startup_p50_s", "startup_p95_s", "startup_p99_s", "startup_max_s", "shortfall_task_hours",
                    "tasks_failed", *REQUEST_METRICS)
# sweep.parquet: the columns of a run row before its figures, and the values of its status column
ID_COLUMNS = ("run", "point", "replication", "run_seed")
STATUS_COLUMNS = ("status", "error")
FLEET, MEETS_TARGET = "fleet", "meets_target"  # text and bool columns of a run row: not averaged
OK, FAILED = "ok", "failed"
# Columns of a run row that are not simulation results worth averaging.
NOT_SUMMARIZED = frozenset({*ID_COLUMNS, *STATUS_COLUMNS, "wall_seconds", "sim_seconds"})
SHORTFALL_METRIC = "shortfall_task_hours"  # a workload's: only a REPLICA service has one
FAILED_BY_REASON = "tasks_failed"           # a breakdown's key in sweep columns (tasks_failed:<reason>)


def workload_column(metric: str, workload: str) -> str:
    """The flat column of one workload's metric in sweep tables: ``wait_p99_s[llama]``."""
    return f"{metric}[{workload}]"


def split_workload_column(column: str) -> tuple[str, str | None]:
    """``wait_p99_s[llama]`` -> (``wait_p99_s``, ``llama``); a cluster-wide column -> (column, None)."""
    if column.endswith("]") and "[" in column:
        metric, _, rest = column.partition("[")
        return metric, rest[:-1]
    return column, None


def breakdown_column(key: str, name: str) -> str:
    """The flat column of one entry of a summary breakdown: ``tasks_failed:RESOURCE:CPU``."""
    return f"{key}:{name}"


def run_metrics(summary: RunSummary) -> dict[str, Any]:
    """A run's row of figures for sweep tables, in the summary's order: every number as a number.

    ``tasks_failed`` (reason -> count) is its total plus one ``tasks_failed:<reason>`` column per reason;
    ``service_shortfall_task_hours`` likewise (its total, and ``service_shortfall_task_hours:<service>``), as
    is every other breakdown (``cost_usd_by_type`` -> ``cost_usd_by_type:<type>``); the faults are
    ``faults_<name>``; each workload's figures are ``<metric>[<workload>]`` (None where a figure is, such as a
    wait when no task had one; ``shortfall_task_hours[...]`` only for REPLICA services, request figures only
    for services with requests), its failures by reason ``tasks_failed:<reason>[<workload>]``. A snapshot's
    counts are ``snapshot:<name>``.
    """
    metrics = summary.metrics()
    breakdowns = summary.breakdowns()
    row: dict[str, Any] = {}
    for key in summary.to_json():
        if key in metrics:
            row[key] = metrics[key]
        if key in breakdowns:
            row.update({breakdown_column(key, name): n for name, n in sorted(breakdowns[key].items())
                        if isinstance(n, int | float) and not isinstance(n, bool)})
        elif key == FAULTS:
            row.update({f"faults_{name}": n for name, n in summary.fault_metrics().items()})
        elif key == WORKLOADS:
            for workload, figures in summary.workloads.items():
                numbers = figures.metrics()
                for metric in WORKLOAD_METRICS:
                    if metric == SHORTFALL_METRIC and figures.kind != "service":
                        continue  # only a REPLICA service has a desired count to fall short of
                    if metric in REQUEST_METRICS and figures.requests is None:
                        continue  # only a service with requests has request figures
                    row[workload_column(metric, workload)] = numbers.get(metric)
                for reason, n in figures.tasks_failed_by_reason.items():
                    row[workload_column(breakdown_column(FAILED_BY_REASON, reason), workload)] = n
        elif key == PARTIAL:
            row[key] = summary.partial
    return row
