"""The report's figures: results tables in, matplotlib figures out (Agg canvas, no pyplot state).

Each function returns a :class:`matplotlib.figure.Figure`, or None when there is nothing to draw (no
Neuron chips, no failures, no task that started). Every figure has a title, axis labels with units and
a legend where more than one series is drawn, so it reads on its own.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from scheduler.readable import METRICS as READABLE_METRICS
from scheduler.readable import UNIT_AXIS, duration_text, split_workload_column
from scheduler.results.summary import RunSummary

CLUSTER_ROW = "*"  # timeline rows that carry cluster-wide task counts
MAX_LINES = 8      # series per panel before a sweep figure falls back to averaging
WIDTH = 11.0

# metric -> (label with unit, scale applied to values), from the one table of metric names and units
METRICS: dict[str, tuple[str, float]] = {
    metric: (f"{name} ({UNIT_AXIS[unit]})", 100.0 if unit == "%" else 1.0) for metric, (name, unit) in
    READABLE_METRICS.items()}
SWEEP_METRICS = ("wait_p50_s", "wait_p99_s", "chip_utilization", "cpu_utilization", "memory_utilization",
                 "cost_usd", "service_shortfall_task_hours", "tasks_failed", "tasks_waiting_at_end",
                 "stranded_chip_hours")


def metric_label(metric: str) -> str:
    """``p99 wait (s)``; a workload's column ``wait_p99_s[llama]`` reads ``llama: p99 wait (s)``."""
    base, workload = split_workload_column(metric)
    label = METRICS.get(base, (base.replace("_", " "), 1.0))[0]
    return label if workload is None else f"{workload}: {label}"


def metric_scale(metric: str) -> float:
    return METRICS.get(split_workload_column(metric)[0], ("", 1.0))[1]


def png_bytes(figure: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes, rendered by Agg."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def time_unit(seconds: float) -> tuple[str, float]:
    """A readable unit for a time axis spanning ``seconds``: (name, seconds per unit)."""
    if seconds <= 3 * 3600:
        return "minutes", 60.0
    if seconds <= 3 * 86400:
        return "hours", 3600.0
    return "days", 86400.0


def wait_unit(seconds: float) -> tuple[str, float]:
    """A unit for waits whose largest is ``seconds``."""
    if seconds <= 300:
        return "s", 1.0
    if seconds <= 3 * 3600:
        return "min", 60.0
    return "h", 3600.0


def _colors(names: Sequence[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


# --- one run ----------------------------------------------------------------------------------------

def _per_type(timeline: pd.DataFrame) -> pd.DataFrame:
    rows = timeline[timeline["instance_type"] != CLUSTER_ROW]
    levels = ("chips_total", "chips_held", "cpu_total", "cpu_used", "memory_total", "memory_used")
    numeric = [c for c in levels if c in rows.columns]
    return rows.groupby(["time", "instance_type"], sort=True)[numeric].sum().reset_index()


def utilization_figure(timeline: pd.DataFrame, sim_seconds: float | None = None) -> Figure | None:
    """Chips held, CPU and memory reserved over time, one line per instance type."""
    if timeline is None or timeline.empty:
        return None
    per = _per_type(timeline)
    if per.empty:
        return None
    span = float(sim_seconds or per["time"].max() or 1.0)
    unit, scale = time_unit(span)
    types = sorted(per["instance_type"].unique())
    colors = _colors(types)
    panels = (("chips_held", "chips_total", "Neuron chips held by tasks (%)"),
              ("cpu_used", "cpu_total", "CPU units reserved by tasks (%)"),
              ("memory_used", "memory_total", "memory reserved by tasks (%)"))
    figure = Figure(figsize=(WIDTH, 8.5), layout="constrained")
    axes = figure.subplots(3, 1, sharex=True)
    for ax, (used, total, label) in zip(axes, panels, strict=True):
        drawn = 0
        for name in types:
            rows = per[per["instance_type"] == name]
            capacity = rows[total].to_numpy(dtype=float)
            if capacity.max(initial=0) <= 0:
                continue
            share = np.divide(rows[used].to_numpy(dtype=float), capacity, out=np.full(len(rows), np.nan),
                              where=capacity > 0) * 100
            ax.step(rows["time"] / scale, share, where="post", color=colors[name], label=name, linewidth=1.4)
            drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "no instance of this run has Neuron chips", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
        ax.set_ylabel(label)
        ax.set_ylim(-2, 102)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(f"simulated time ({unit})")
    handles, labels = axes[1].get_legend_handles_labels()  # every instance type has CPU
    figure.legend(handles, labels, title="instance type", loc="outside right upper")
    figure.suptitle("Utilization over time by instance type (share of registered capacity)")
    return figure


def queue_figure(timeline: pd.DataFrame, sim_seconds: float | None = None) -> Figure | None:
    """Tasks waiting for a place (PROVISIONING), PENDING and RUNNING over time, cluster-wide."""
    if timeline is None or timeline.empty:
        return None
    rows = timeline[timeline["instance_type"] == CLUSTER_ROW].sort_values("time")
    if rows.empty:
        return None
    unit, scale = time_unit(float(sim_seconds or rows["time"].max() or 1.0))
    t = rows["time"].to_numpy(dtype=float) / scale
    figure = Figure(figsize=(WIDTH, 6.0), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.step(t, rows["provisioning"], where="post", color="tab:red",
             label="waiting for a place (PROVISIONING)")
    if "pending" in rows.columns and rows["pending"].max() > 0:
        top.step(t, rows["pending"], where="post", color="tab:orange",
                 label="placed, not yet running (PENDING)")
    top.set_ylabel("tasks waiting (count)")
    top.set_title("Queue length")
    top.legend(loc="upper left")
    bottom.step(t, rows["running"], where="post", color="tab:blue", label="tasks RUNNING")
    bottom.set_ylabel("tasks running (count)")
    bottom.set_title("Tasks running")
    if "instances" in rows.columns and rows["instances"].nunique() > 1:  # capacity providers scale
        fleet = bottom.twinx()
        fleet.step(t, rows["instances"], where="post", color="tab:gray", linestyle="--",
                   label="container instances")
        fleet.set_ylabel("container instances (count)")
        fleet.set_ylim(bottom=0)
        fleet.yaxis.set_major_locator(MaxNLocator(integer=True))
        lines = bottom.get_lines() + fleet.get_lines()
        bottom.legend(lines, [line.get_label() for line in lines], loc="upper left")
        bottom.set_title("Tasks running and container instances")
    bottom.set_xlabel(f"simulated time ({unit})")
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    figure.suptitle("Tasks waiting and running over time (sampled)")
    return figure


def task_waits(tasks: pd.DataFrame, end: float | None) -> pd.DataFrame:
    """``workload`` and ``wait_s`` of every task with a wait, as the run summary counts them: a started task's
    ``wait_s``; a task that never started and did not fail to start waited until it stopped, or until the run
    ended at ``end`` (left out when ``end`` is None). ``unstarted`` marks the latter."""
    started = tasks[tasks["wait_s"].notna()]
    out = pd.DataFrame({"workload": started.get("workload"), "wait_s": started["wait_s"].astype(float),
                        "unstarted": False})
    if end is None or not {"start", "submit", "end", "stop_code"} <= set(tasks.columns):
        return out
    never = tasks[tasks["start"].isna() & tasks["submit"].notna() & (tasks["stop_code"] != "TaskFailedToStart")]
    until = never["end"].astype(float).fillna(float(end))
    waited = pd.DataFrame({"workload": never.get("workload"), "wait_s": until - never["submit"].astype(float),
                           "unstarted": True})
    return pd.concat([out, waited], ignore_index=True) if len(waited) else out


def wait_cdf_figure(tasks: pd.DataFrame, end: float | None = None) -> Figure | None:
    """The distribution of waits (submission to RUNNING), overall and per workload; with the run's ``end``,
    tasks that never started are in it at the time they waited, as in the summary's percentiles."""
    if tasks is None or tasks.empty or "wait_s" not in tasks.columns:
        return None
    started = task_waits(tasks, end)
    if started.empty:
        return None
    waits = started["wait_s"].to_numpy(dtype=float)
    unit, scale = wait_unit(float(waits.max()))
    figure = Figure(figsize=(WIDTH, 5.5), layout="constrained")
    ax = figure.subplots()
    workloads = sorted(started["workload"].dropna().unique()) if "workload" in started.columns else []
    if 1 < len(workloads) <= MAX_LINES:
        colors = _colors(workloads)
        for name in workloads:
            mine = np.sort(started.loc[started["workload"] == name, "wait_s"].to_numpy(dtype=float))
            none = ", none waited" if mine.max() == 0 else ""
            _ecdf(ax, mine / scale, color=colors[name], label=f"{name} ({len(mine)} tasks{none})",
                  linewidth=1.2, alpha=0.8)
    _ecdf(ax, np.sort(waits) / scale, color="black", label=f"all tasks ({len(waits)})", linewidth=2.2)
    for q, style in ((50, ":"), (95, "--"), (99, "-.")):
        value = float(np.percentile(waits, q))
        ax.axvline(value / scale, color="0.35", linestyle=style, linewidth=1,
                   label=f"p{q} = {duration_text(value)}")
    if waits.max() == 0:
        ax.set_xlim(-0.05, 1)
    ax.set_ylim(0, 101)
    ax.set_xlabel(f"wait from submit to start ({unit})")
    ax.set_ylabel("tasks (%) that waited at most this long")
    unstarted = int(started["unstarted"].sum())
    waiting = 0
    if end is None and {"start", "final_state"} <= set(tasks.columns):
        waiting = int((tasks["start"].isna() & (tasks["final_state"] != "STOPPED")).sum())
    note = (f"; {waiting} task(s) still waiting at the end are not included" if waiting else
            f"; {unstarted} task(s) that never started count at the time they waited" if unstarted else "")
    ax.set_title(f"Wait-time distribution (cumulative){note}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    figure.suptitle("How long tasks waited for a place")
    return figure


def _ecdf(ax: Any, sorted_values: np.ndarray, **style: Any) -> None:
    n = len(sorted_values)
    x = np.concatenate([[sorted_values[0]], sorted_values])
    y = np.concatenate([[0.0], np.arange(1, n + 1) / n * 100])
    ax.step(x, y, where="post", **style)


def failures_figure(summary: RunSummary) -> Figure | None:
    """Tasks that failed to place or start, by reason."""
    failed = summary.tasks.failed
    if not failed:
        return None
    items = sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))
    labels = ["\n".join(textwrap.wrap(str(reason), 60)) or "?" for reason, _ in items]
    counts = [int(n) for _, n in items]
    height = 1.2 + 0.55 * sum(label.count("\n") + 1 for label in labels)
    figure = Figure(figsize=(WIDTH, max(2.8, height)), layout="constrained")
    ax = figure.subplots()
    y = np.arange(len(items))
    bars = ax.barh(y, counts, color="tab:red", height=0.6)
    ax.bar_label(bars, labels=[f"{n:,}" for n in counts], padding=3)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("tasks (count)")
    ax.set_xlim(0, max(counts) * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, axis="x", alpha=0.3)
    of = f" of {summary.tasks.submitted:,} submitted"
    figure.suptitle(f"Failures by reason: {sum(counts):,} task(s){of}")
    return figure


def cost_figure(summary: RunSummary) -> Figure | None:
    """On-demand cost by instance type over the simulated time, with instance-hours."""
    cost = summary.costs.usd_by_type
    if not cost:
        return None
    hours = summary.costs.instance_hours_by_type
    items = sorted(cost.items(), key=lambda kv: (-kv[1], kv[0]))
    names = [name for name, _ in items]
    values = [float(v) for _, v in items]
    figure = Figure(figsize=(WIDTH, max(3.0, 1.2 + 0.45 * len(items))), layout="constrained")
    ax = figure.subplots()
    y = np.arange(len(items))
    bars = ax.barh(y, values, color="tab:green", height=0.6)
    ax.bar_label(bars, labels=[f"${v:,.2f} ({float(hours.get(n, 0)):,.1f} instance-h)" for n, v in items],
                 padding=3, fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("cost (USD, on-demand prices of the catalog)")
    ax.set_xlim(0, max(max(values), 1e-9) * 1.35)
    ax.grid(True, axis="x", alpha=0.3)
    total = float(summary.costs.usd)
    over = f" over {duration_text(float(summary.sim_seconds))}"
    figure.suptitle(f"Cost by instance type: ${total:,.2f}{over}")
    return figure


# --- sweeps -----------------------------------------------------------------------------------------

def _ordered(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
               for v in values)


def _combo_label(paths: Sequence[str], combo: Sequence[Any]) -> str:
    return ", ".join(f"{_short(p)}={v}" for p, v in zip(paths, combo, strict=True)) or "all runs"


def _short(path: str) -> str:
    return path if len(path) <= 40 else "..." + path[-37:]


def split_constant(summary: pd.DataFrame, metrics: Sequence[str] = SWEEP_METRICS
                   ) -> tuple[list[str], dict[str, float]]:
    """The metrics (of ``metrics`` the sweep has) whose grid-point means vary, and those that are the
    same at every point (metric -> that value): a flat line says less than one sentence."""
    varying: list[str] = []
    constant: dict[str, float] = {}
    for metric in metrics:
        means = summary.loc[summary["metric"] == metric, "mean"].dropna().to_numpy(dtype=float)
        if len(means) == 0:
            continue
        if np.allclose(means, means[0], rtol=1e-9, atol=1e-12):
            constant[metric] = float(means[0])
        else:
            varying.append(metric)
    return varying, constant


def sweep_metric_figure(summary: pd.DataFrame, runs: pd.DataFrame, parameter: str, parameters: Sequence[str],
                        metrics: Sequence[str] = SWEEP_METRICS) -> Figure | None:
    """Each metric against one swept parameter: grid-point means with 95% confidence bands, one line
    per combination of the other parameters (or, past MAX_LINES, averaged over them)."""
    from scheduler.results.stats import confidence_interval
    from scheduler.results.tables import OK

    present, _constant = split_constant(summary, metrics)
    if not present:
        return None
    others = [p for p in parameters if p != parameter]
    x_values = _ordered(summary[parameter].tolist())
    numeric = _numeric(x_values)
    combos = _ordered(map(tuple, summary[others].itertuples(index=False, name=None))) if others else [()]
    averaged = len(combos) > MAX_LINES
    cols = 3 if len(present) > 4 else 2 if len(present) > 1 else 1
    rows = math.ceil(len(present) / cols)
    figure = Figure(figsize=(WIDTH, 3.0 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False)).ravel()
    colors = _colors([_combo_label(others, c) for c in combos]) if not averaged else {}
    position = {v: i for i, v in enumerate(x_values)}
    for ax, metric in zip(axes, present, strict=False):
        table = summary[summary["metric"] == metric]
        scale, title = metric_scale(metric), metric_label(metric)
        if metric.startswith("wait_") and title.endswith("(s)"):  # waits in a unit that fits their size
            unit, per = wait_unit(float(table["mean"].max()))
            scale, title = 1.0 / per, title.removesuffix("(s)") + f"({unit})"
        if averaged:
            ok = runs[runs["status"] == OK]
            points = []
            for x in x_values:
                values = ok.loc[ok[parameter] == x, metric].to_numpy(float)
                mean, _std, low, high = confidence_interval(values)
                points.append((x, mean, low, high))
            series = [("averaged over the other parameters", points)]
        else:
            series = []
            for combo in combos:
                mine = table
                for path, value in zip(others, combo, strict=True):
                    mine = mine[mine[path] == value]
                points = [(r[parameter], r["mean"], r["ci_low"], r["ci_high"])
                          for r in mine.to_dict("records")]
                series.append((_combo_label(others, combo), points))
        for label, points in series:
            points = sorted(points, key=lambda p: position.get(p[0], 0))
            xs = np.array([p[0] if numeric else position[p[0]] for p in points], dtype=float)
            mean = np.array([p[1] for p in points], dtype=float) * scale
            low = np.array([p[2] for p in points], dtype=float) * scale
            high = np.array([p[3] for p in points], dtype=float) * scale
            color = colors.get(label, "tab:blue")
            if numeric:
                ax.plot(xs, mean, marker="o", color=color, label=label, linewidth=1.5, markersize=4)
                ax.fill_between(xs, low, high, color=color, alpha=0.18, linewidth=0)
            else:
                err = np.vstack([mean - low, high - mean])
                err = np.where(np.isfinite(err), err, 0)
                ax.errorbar(xs, mean, yerr=err, marker="o", color=color, label=label, capsize=3,
                            linewidth=1.5, markersize=4)
        if not numeric:
            ax.set_xticks(range(len(x_values)), [str(v) for v in x_values],
                          rotation=20 if len(x_values) > 4 else 0)
        elif len(x_values) <= 12:
            ax.set_xticks([float(v) for v in x_values], [str(v) for v in x_values])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(parameter, fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(present):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if len(labels) > 1 or others:
        figure.legend(handles, labels, loc="outside lower center", ncols=min(4, max(1, len(labels))),
                      fontsize=8)
    band = ("shaded" if numeric else "bars") + ": 95% confidence interval of the mean"
    figure.suptitle(f"Metrics against {parameter} (mean over replications; {band})")
    return figure


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (lower is better), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best = math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def frontier_figure(summary: pd.DataFrame, parameters: Sequence[str], *, wait: str | Sequence[str] = "wait_p99_s",
                    cost: str = "cost_usd", labels: Mapping[int, str] | None = None,
                    meets: Mapping[int, bool] | None = None, cheapest: int | None = None,
                    shortfall: str = "service_shortfall_task_hours") -> Figure | None:
    """Cost against wait per grid point, the Pareto frontier joined (lower left is better). ``wait`` is one
    wait column, or several (each workload's p99): then a point stands at the slowest of them. ``labels``
    name the points (their fleets); a point short of service task-hours says how many; with a target, the
    points that meet it are ringed green and the cheapest of them starred."""
    from scheduler.results.stats import wide_summary

    waits = [wait] if isinstance(wait, str) else list(wait)
    known = set(summary["metric"])
    waits = [w for w in waits if w in known]
    if not waits or cost not in known:
        return None
    extra = [shortfall] if shortfall in known else []
    wide = wide_summary(summary, parameters, [*waits, cost, *extra])
    slowest = wide[[f"{w}_mean" for w in waits]].fillna(-np.inf).to_numpy(dtype=float).argmax(axis=1)
    for stat in ("mean", "ci_low", "ci_high"):
        columns = wide[[f"{w}_{stat}" for w in waits]].to_numpy(dtype=float)
        wide[f"slowest_{stat}"] = columns[np.arange(len(wide)), slowest]
    title_wait = metric_label(waits[0]).split(" (")[0] if len(waits) == 1 else "p99 wait of the slowest workload"
    wait = "slowest"
    wide = wide[wide[f"{wait}_mean"].notna() & wide[f"{cost}_mean"].notna()].reset_index(drop=True)
    if wide.empty:
        return None
    unit, scale = wait_unit(float(wide[f"{wait}_mean"].max()))
    x = wide[f"{wait}_mean"].to_numpy(dtype=float) / scale
    y = wide[f"{cost}_mean"].to_numpy(dtype=float)

    def err(metric: str, center: np.ndarray, div: float) -> np.ndarray:
        low = wide[f"{metric}_ci_low"].to_numpy(dtype=float) / div
        high = wide[f"{metric}_ci_high"].to_numpy(dtype=float) / div
        spread = np.vstack([center - low, high - center])
        return np.where(np.isfinite(spread), np.maximum(spread, 0), 0)

    figure = Figure(figsize=(WIDTH, 6.5), layout="constrained")
    ax = figure.subplots()
    ax.errorbar(x, y, xerr=err(wait, x, scale), yerr=err(cost, y, 1.0), fmt="o", color="0.55", ecolor="0.8",
                capsize=2, markersize=5, label="grid point (95% CI bars)")
    front = pareto_front(list(zip(x.tolist(), y.tolist(), strict=True)))
    ax.step(x[front], y[front], where="post", color="tab:red", linewidth=1.8, label="frontier: nothing is "
            "cheaper and faster")
    ax.plot(x[front], y[front], "o", color="tab:red", markersize=7)
    points = [int(p) for p in wide["point"]]
    if meets is not None:
        ok = np.array([bool(meets.get(p)) for p in points])
        if ok.any():
            ax.plot(x[ok], y[ok], "o", markersize=12, markerfacecolor="none", markeredgecolor="tab:green",
                    markeredgewidth=2, label="meets the target")
        if cheapest is not None and cheapest in points:
            i = points.index(cheapest)
            ax.plot([x[i]], [y[i]], "*", color="tab:green", markersize=18, label="cheapest that meets the target")
    short = wide[f"{shortfall}_mean"].to_numpy(dtype=float) if extra else np.zeros(len(wide))
    label_all = len(wide) <= 16
    spots: dict[tuple[float, float], list[int]] = {}
    for i in range(len(wide)):  # grid points at the same spot share one label
        spots.setdefault((round(x[i], 9), round(y[i], 9)), []).append(i)
    for members in spots.values():
        if not (label_all or any(i in front for i in members)):
            continue
        names = [(labels.get(points[i]) if labels else None)
                 or ", ".join(f"{_short(p).split('.')[-1]}={wide.loc[i, p]}" for p in parameters) or "as is"
                 for i in members[:4]]
        names = [name + (f" (short {short[i]:,.3g} task-h)" if short[i] > 0 else "")
                 for name, i in zip(names, members[:4], strict=False)]
        text = " | ".join(names) + (f" (+{len(members) - 4})" if len(members) > 4 else "")
        i = members[0]
        below = len(ax.texts) % 2  # alternate above and below so neighbours overlap less
        ax.annotate(text, (x[i], y[i]), textcoords="offset points", xytext=(6, -11 if below else 4),
                    fontsize=7,
                    color="tab:red" if any(m in front for m in members) else "0.3")
    ax.set_xlim(left=min(0.0, float(np.nanmin(x))) - 0.02 * max(float(np.nanmax(x)), 1.0),
                right=max(float(np.nanmax(x)) * 1.15, 1.0))
    ax.set_xlabel(f"{title_wait} ({unit}), mean over replications")
    ax.set_ylabel(f"{metric_label(cost)}, mean over replications")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    figure.suptitle("Cost against wait per grid point (lower left is better)")
    return figure


def service_load_figure(load: pd.DataFrame | None, timeline: pd.DataFrame | None, service: str,
                        sim_seconds: float | None = None) -> Figure | None:
    """One service with requests: request latency (p50, p99, p99 time to first token) per metric period,
    requests per period, and its desired and RUNNING tasks with the cluster's container instances."""
    if load is None or load.empty or "service" not in load.columns:
        return None
    rows = load[load["service"] == service].sort_values("time")
    if rows.empty or "latency_p99_s" not in rows.columns:
        return None
    unit, scale = time_unit(float(sim_seconds or rows["time"].max() or 1.0))
    t = rows["time"].to_numpy(dtype=float) / scale
    figure = Figure(figsize=(WIDTH, 6.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.plot(t, rows["latency_p50_s"], color="tab:blue", label="latency p50 (end to end)")
    top.plot(t, rows["latency_p99_s"], color="tab:red", label="latency p99 (end to end)")
    top.plot(t, rows["ttft_p99_s"], color="tab:orange", linestyle="--", label="time to first token p99")
    top.set_ylabel("latency (s)")
    top.set_ylim(bottom=0)
    load_axis = top.twinx()
    load_axis.plot(t, rows["requests"], color="tab:gray", alpha=0.5, linewidth=0.8, label="requests per minute")
    load_axis.set_ylabel("requests per period (count)")
    load_axis.set_ylim(bottom=0)
    lines = top.get_lines() + load_axis.get_lines()
    top.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize="small")
    top.set_title(f"Request latency of {service}, by arrival minute")
    bottom.step(t, rows["desired_after"], where="post", color="tab:purple", label="desired tasks")
    bottom.step(t, rows["running"], where="post", color="tab:blue", label="RUNNING tasks")
    bottom.set_ylabel("tasks (count)")
    bottom.set_ylim(bottom=0)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    lines = bottom.get_lines()
    if timeline is not None and not timeline.empty:
        cluster = timeline[timeline["instance_type"] == CLUSTER_ROW].sort_values("time")
        if not cluster.empty and "instances" in cluster.columns:
            fleet = bottom.twinx()
            fleet.step(cluster["time"].to_numpy(dtype=float) / scale, cluster["instances"], where="post",
                       color="tab:gray", linestyle="--", label="container instances")
            fleet.set_ylabel("container instances (count)")
            fleet.set_ylim(bottom=0)
            fleet.yaxis.set_major_locator(MaxNLocator(integer=True))
            lines = lines + fleet.get_lines()
    bottom.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize="small")
    bottom.set_title("Service Auto Scaling: desired and RUNNING tasks, and container instances")
    bottom.set_xlabel(f"simulated time ({unit})")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    figure.suptitle(f"Requests to {service} over time")
    return figure
