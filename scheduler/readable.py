"""How results read to people: the label and unit of each summary metric, and one formatter for values.

The terminal tables (``neuron-sim run`` and ``sweep``) and the HTML/Markdown report both print through
these functions, so a number reads the same everywhere: durations in a human unit (``80.9 min``),
shares as percentages (``60.7%``), money in dollars (``$764.27``), counts with thousands separators,
and never scientific notation. Only the standard library: the command line imports it cheaply.
"""

from __future__ import annotations

import math
from typing import Any

from scheduler.results.figure import figure
from scheduler.results.summary import RunSummary
from scheduler.results.tables import REQUEST_METRICS, WORKLOAD_METRICS, split_workload_column, workload_column

__all__ = ["REQUEST_METRICS", "WORKLOAD_METRICS", "split_workload_column", "workload_column"]  # re-exported

# A unit says how a value is shown: "s" a duration, "%" a share (0..1), "USD" money, "count" a number of
# things, "h" hours (shown as a plain number: the label says hours), "" a plain number.
UNIT_AXIS = {"s": "s", "%": "%", "USD": "USD", "count": "count", "h": "h"}

# metric -> (name, unit): the metrics a sweep averages and the report draws.
METRICS: dict[str, tuple[str, str]] = {
    "wait_p50_s": ("p50 wait", "s"),
    "wait_p95_s": ("p95 wait", "s"),
    "wait_p99_s": ("p99 wait", "s"),
    "wait_max_s": ("longest wait", "s"),
    "chip_utilization": ("Neuron chips held", "%"),
    "cpu_utilization": ("CPU reserved", "%"),
    "memory_utilization": ("memory reserved", "%"),
    "cost_usd": ("cost", "USD"),
    "cost_per_completed_task_usd": ("cost per completed task", "USD"),
    "idle_chip_cost_usd": ("cost of idle chips", "USD"),
    "tasks_failed": ("tasks failed", "count"),
    "tasks_waiting_at_end": ("tasks still waiting at the end", "count"),
    "tasks_placed": ("tasks placed", "count"),
    "tasks_started": ("tasks started", "count"),
    "tasks_starting_at_end": ("tasks still starting at the end", "count"),
    "tasks_stopped_before_start": ("tasks stopped before they started", "count"),
    "tasks_submitted": ("tasks submitted", "count"),
    "tasks_completed": ("tasks completed", "count"),
    "stranded_chip_hours": ("stranded chip-hours", "h"),
    "instance_hours": ("instance-hours", "h"),
    "service_shortfall_task_hours": ("service shortfall task-h", "h"),
    "shortfall_task_hours": ("shortfall task-h", "h"),
    "startup_p50_s": ("p50 start-up", "s"),
    "startup_p95_s": ("p95 start-up", "s"),
    "startup_p99_s": ("p99 start-up", "s"),
    "startup_max_s": ("longest start-up", "s"),
    **{f"{kind}_{q}_s": (f"{q} {label}", "s") for kind, label in (("latency", "request latency"),
                                                                  ("ttft", "time to first token"),
                                                                  ("queue_wait", "request queueing time"))
       for q in ("p50", "p95", "p99", "max")},
    "requests_dropped": ("requests dropped", "count"),
    "requests_served": ("requests served", "count"),
    "output_tokens_per_second": ("output tokens per second", "count"),
    "requests_per_instance_hour": ("requests per instance-hour", "count"),
    "cost_per_million_tokens_usd": ("cost per million output tokens", "USD"),
}
# (key, column heading, unit): the terminal's and the report's per-workload table
WORKLOAD_ROWS: tuple[tuple[str, str, str], ...] = (
    ("tasks_submitted", "tasks", ""),
    ("tasks_waiting_at_end", "waiting", ""),
    ("wait_p50_s", "wait p50", "s"),
    ("wait_p95_s", "p95", "s"),
    ("wait_p99_s", "p99", "s"),
    ("wait_max_s", "max", "s"),
    ("startup_p99_s", "start-up p99", "s"),
    ("shortfall_task_hours", "short task-h", ""),
    ("tasks_failed", "failed", ""),
)


# (summary key, label, unit): the rows of a run's summary, in order.
RUN_ROWS: tuple[tuple[str, str, str], ...] = (
    ("tasks_submitted", "tasks submitted", ""),
    ("tasks_placed", "tasks placed (given an instance)", ""),
    ("tasks_started", "tasks started (RUNNING)", ""),
    ("tasks_completed", "tasks completed", ""),
    ("tasks_running_at_end", "tasks running at the end", ""),
    ("tasks_starting_at_end", "tasks starting (PENDING) at the end", ""),
    ("tasks_waiting_at_end", "tasks still waiting at the end", ""),
    ("wait_p50_s", "wait, median", "s"),
    ("wait_p95_s", "wait, p95", "s"),
    ("wait_p99_s", "wait, p99", "s"),
    ("wait_max_s", "wait, longest", "s"),
    ("startup_p50_s", "start-up (placed to RUNNING), median", "s"),
    ("startup_p95_s", "start-up, p95", "s"),
    ("startup_p99_s", "start-up, p99", "s"),
    ("startup_max_s", "start-up, longest", "s"),
    ("chip_utilization", "Neuron chips held (time-weighted)", "%"),
    ("cpu_utilization", "CPU reserved (time-weighted)", "%"),
    ("memory_utilization", "memory reserved (time-weighted)", "%"),
    ("stranded_chip_hours", "stranded chip-hours (free chips no Neuron task could use)", ""),
    ("instance_hours", "instance-hours", ""),
    ("cost_usd", "cost", "USD"),
    ("cost_per_completed_task_usd", "cost per completed task", "USD"),
    ("idle_chip_cost_usd", "cost of chips no task held", "USD"),
    ("wall_seconds", "wall-clock time of the simulation", "s"),
)
# (key of summary["faults"], label, unit): what the faults cost; each fault kind's counter has its label in its
# module (scheduler.sim.faults; ``fault_rows()`` gives both, in the report's order)
FAULT_COST_ROWS: tuple[tuple[str, str, str], ...] = (
    ("tasks_stopped", "tasks stopped by faults", ""),
    ("service_tasks_stopped", "of which service tasks (replaced)", ""),
    ("run_task_hours_lost", "RunTask task-hours lost (run time of stopped standalone tasks)", ""),
)

# Keys a summary's title or a section of their own shows, not a row.
HEADER_KEYS = frozenset({"scenario", "seed", "device_mode", "sim_seconds", "tasks_failed", "partial",
                         "service_shortfall_task_hours"})
MACHINE_KEYS = frozenset({"wall_seconds"})  # figures of the machine that ran, not of the scenario
PERIOD_KEYS = frozenset({"cost_usd", "idle_chip_cost_usd"})  # totals whose label names the period covered


def metric_name(metric: str) -> str:
    """A metric's name without its unit (the cells carry the unit): ``wait_p99_s`` -> ``p99 wait``,
    ``wait_p99_s[llama]`` -> ``llama: p99 wait``; a declared figure's is its label."""
    base, workload = split_workload_column(metric)
    declared = figure(base)
    name = declared.label if declared else METRICS.get(base, (base.replace("_", " "), ""))[0]
    return name if workload is None else f"{workload}: {name}"


def metric_unit(metric: str) -> str:
    base, _ = split_workload_column(metric)
    declared = figure(base)
    if declared is not None:
        return declared.unit
    return METRICS.get(base, ("", "USD" if base.endswith("_usd") else ""))[1]


def number_text(value: float, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (all of the integer part), thousands separators and
    no exponent: 6477.3 -> "6,477", 12.345 -> "12.35", 0.000123 -> "0.000123", 3.0 -> "3"."""
    if not math.isfinite(value):
        return "-" if value != value else ("∞" if value > 0 else "-∞")
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = min(max(0, digits - 1 - magnitude), 12)
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def duration_unit(seconds: float) -> tuple[str, float]:
    """The unit a duration of ``seconds`` reads best in: (name, seconds per unit)."""
    size = abs(seconds)
    if not math.isfinite(size) or size < 120:
        return "s", 1.0
    if size < 7200:
        return "min", 60.0
    if size < 3 * 86400:
        return "h", 3600.0
    return "d", 86400.0


def duration_text(seconds: float) -> str:
    """Seconds as a short human duration: 45 s, 12.5 min, 3 h, 7 d (three significant digits)."""
    if not math.isfinite(seconds):
        return number_text(seconds)
    name, per = duration_unit(seconds)
    return f"{number_text(seconds / per, 3)} {name}"


def fmt(value: Any, unit: str = "") -> str:
    """One value as a table cell, in its unit (see UNIT_AXIS); None and NaN are "-"."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "%":
        return f"{float(value) * 100:.1f}%"
    if unit == "USD":
        return f"${float(value):,.2f}"
    if unit == "s":
        return duration_text(float(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return number_text(value)
    return str(value)


def interval_text(mean: float, low: float, high: float, unit: str = "") -> str:
    """A mean and half its confidence interval, in the mean's unit (``80.9 ± 5.2 min``, ``60.7% ± 0.03%``,
    ``$764.27 ± $1.20``); the mean alone when the interval is unknown (one replication) or empty (every
    replication gave the same value)."""
    if mean != mean:
        return "-"
    if low != low or high != high:
        return fmt(mean, unit)
    half = (high - low) / 2
    if half <= 1e-9 * max(1.0, abs(mean)):
        return fmt(mean, unit)
    if unit == "s":
        name, per = duration_unit(mean)
        return f"{number_text(mean / per, 3)} ± {number_text(half / per, 2)} {name}"
    if unit == "%":
        return f"{fmt(mean, unit)} ± {number_text(half * 100, 2)}%"
    return f"{fmt(mean, unit)} ± {fmt(half, unit) if unit == 'USD' else number_text(half, 2)}"


def summary_rows(summary: RunSummary, *, machine: bool = True) -> list[tuple[str, str]]:
    """A run summary as (label, value) rows: the known rows in order, the count of failed tasks, then every
    other cluster-wide number (a declared figure under its label, in its unit). Total costs say the
    simulated period they cover ("cost over 7 d"). ``machine=False`` leaves out what measures the machine
    rather than the scenario (``wall_seconds``)."""
    rows: list[tuple[str, str]] = []
    known = {key for key, _, _ in RUN_ROWS}
    metrics = summary.metrics()
    period = f" over {duration_text(float(summary.sim_seconds))}"
    for key, label, unit in RUN_ROWS:
        if key in metrics and (machine or key not in MACHINE_KEYS):
            rows.append((label + (period if key in PERIOD_KEYS else ""), fmt(metrics[key], unit)))
    rows.insert(3, ("tasks failed", fmt(summary.tasks.failed_total)))
    for key, value in metrics.items():
        if key in known or key in HEADER_KEYS:
            continue
        declared = figure(key)
        if declared is not None:
            rows.append((declared.label, fmt(value, declared.unit)))
        else:
            rows.append((key.replace("_", " "), fmt(value, "USD" if key.endswith("_usd") else "")))
    return rows


# (key, column heading, unit): the terminal's per-service table of request figures
REQUEST_ROWS: tuple[tuple[str, str, str], ...] = (
    ("requests_served", "served", ""),
    ("requests_dropped", "dropped", ""),
    ("latency_p50_s", "latency p50", "s"),
    ("latency_p99_s", "latency p99", "s"),
    ("ttft_p99_s", "TTFT p99", "s"),
    ("queue_wait_p99_s", "queue p99", "s"),
    ("output_tokens_per_second", "tokens/s", ""),
    ("cost_per_million_tokens_usd", "$ per M tokens", "USD"),
)


def request_table(summary: RunSummary) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The request figures of each service that received requests: (column headings, one row per service);
    no rows when no service had requests."""
    columns = ("service", *(heading for _, heading, _ in REQUEST_ROWS))
    rows = [(str(name), *(fmt(figures.metrics().get(key), unit) for key, _, unit in REQUEST_ROWS))
            for name, figures in summary.workloads.items() if figures.requests is not None]
    return columns, rows


def workload_table(summary: RunSummary) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The summary's workloads as a table: (column headings, one row per workload)."""
    columns = ("workload", *(heading for _, heading, _ in WORKLOAD_ROWS))
    rows = [(str(name), *(fmt(figures.metrics().get(key), unit) for key, _, unit in WORKLOAD_ROWS))
            for name, figures in summary.workloads.items()]
    return columns, rows
