"""A plan's folder and its words: plan.parquet, plan.json, the chosen scenario, the report, the terminal text.

Everything is written into the staging folder of a :class:`~scheduler.results_folder.ResultsFolder` of
kind ``plan`` and swapped in whole; only the cache of runs (``plan_cache.jsonl``) is also kept in the
folder as the plan goes, so that an interrupted plan resumes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from scheduler.plan.api import PlanPoint, PlanResult
from scheduler.plan.cache import CACHE_FILE, RunCache

SCENARIO_FILE = "plan_scenario.yaml"
PLAN_FILES = ("plan.parquet", SCENARIO_FILE, CACHE_FILE, "report.md", "report.html", "plan.json")


def money(value: float) -> str:
    return f"${value:,.0f}" if math.isfinite(value) else "n/a"


def cost_text(p: PlanPoint) -> str:
    mean, low, high = p.cost_per_month
    if math.isfinite(low) and math.isfinite(high) and high > low:
        return f"{money(mean)}/month (95% CI {money(low)} to {money(high)})"
    return f"{money(mean)}/month"


def figures_text(p: PlanPoint) -> str:
    parts = []
    for column, (mean, _low, high) in p.figures.items():
        bound = f" (bound {high:,.4g})" if math.isfinite(high) and high != mean else ""
        parts.append(f"{column} {mean:,.4g}{bound}")
    return ", ".join(parts)


def summary_lines(result: PlanResult) -> list[str]:
    """What ``neuron-sim plan`` prints: the answer, alternatives, the effort, warnings."""
    lines: list[str] = []
    best = result.best
    if best is None:
        lines.append(f"no configuration in the ranges meets {result.target}")
        if result.closest_miss:
            lines.append(result.closest_miss)
    else:
        lines.append(f"cheapest meeting {result.target}: {best.label}")
        lines.append(f"  cost {cost_text(best)}; {best.replications} replications")
        lines.append(f"  {figures_text(best)}")
        for alt in result.alternatives:
            lines.append(f"  next: {alt.label}: {cost_text(alt)}")
    share = result.simulations / result.grid_simulations if result.grid_simulations else math.nan
    lines.append(f"simulations: {result.simulations} ({result.simulated} new, the rest from the cache) against "
                 f"{result.grid_simulations:,} for the full grid of {result.grid_points:,} points x "
                 f"{result.replications} replications ({share:.1%}); {len(result.points)} points evaluated")
    lines += result.violations
    return lines


def chosen_scenario(source: Path, overrides: Mapping[str, Any], out: Path, *, until: float | None = None) -> str:
    """The scenario file with the chosen values, runnable from ``out``: the files it names (task definitions,
    traces, a snapshot) made relative to ``out``, and its ``duration`` the one the plan judged (``--until``)."""
    from scheduler.scenario.overrides import apply_overrides

    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    chosen = dict(overrides)
    if until is not None:
        chosen["duration"] = f"{until:g}s"
    data = apply_overrides(data, chosen, file=str(source))
    _relocate_files(data, source.parent.resolve(), out.resolve())
    head = "".join(f"# {k} = {v}\n" for k, v in chosen.items())
    return f"# neuron-sim plan's answer for {source.name}:\n{head}" + yaml.safe_dump(data, sort_keys=False)


FILE_KEYS = ("file", "snapshot")  # scenario fields that name a file or folder relative to the scenario


def _relocate_files(node: Any, base: Path, out: Path, *, refs: bool = False) -> None:
    """Rewrite, in place, every relative file the scenario names (``task_definitions`` values and ``file`` /
    ``snapshot`` fields at any depth) so that it resolves from ``out`` as it did from ``base``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (refs or key in FILE_KEYS) and not os.path.isabs(value) \
                    and (base / value).exists():
                node[key] = os.path.relpath(base / value, out)
            else:
                _relocate_files(value, base, out, refs=key == "task_definitions")
    elif isinstance(node, list):
        for item in node:
            _relocate_files(item, base, out)


def write_plan_files(result: PlanResult, folder: Path, *, source: Path | None, cache: RunCache,
                     out: Path) -> list[Path]:
    """plan.parquet, the chosen scenario, the cache, the report, plan.json (last) into a staging folder."""
    from scheduler.output import write_json, write_parquet
    from scheduler.report.render import to_html, to_markdown

    folder = Path(folder)
    written = []
    write_parquet(folder / "plan.parquet", result.runs)
    written.append(folder / "plan.parquet")
    if source is not None and result.best is not None:
        text = chosen_scenario(source, result.overrides, out, until=result.until)
        (folder / SCENARIO_FILE).write_text(text, encoding="utf-8")
        written.append(folder / SCENARIO_FILE)
    (folder / CACHE_FILE).write_bytes(cache.data())
    written.append(folder / CACHE_FILE)
    report = plan_report(result)
    charts = report.charts
    if charts:
        (folder / "figures").mkdir(exist_ok=True)
        for chart in charts:
            (folder / "figures" / f"{chart.name}.png").write_bytes(chart.png)
    (folder / "report.md").write_text(to_markdown(report), encoding="utf-8")
    (folder / "report.html").write_text(to_html(report), encoding="utf-8")
    write_json(folder / "plan.json", result.describe())
    return [*written, folder / "report.md", folder / "report.html", folder / "plan.json"]


def plan_report(result: PlanResult) -> Any:
    """The report: the answer, the alternatives, the effort and the cost-vs-SLO frontier (points labelled
    by fleet, those meeting the target ringed, the answer starred)."""
    from scheduler.report.document import Chart, Report, Section, TableBlock
    from scheduler.report.figures import frontier_figure, png_bytes
    from scheduler.sweep import summarize

    answer = Section("The answer", paragraphs=summary_lines(result))
    rows = tuple((str(p.point), p.label, "yes" if p.meets else "no", str(p.replications), cost_text(p),
                  ", ".join(p.missed) or "-") for p in sorted(result.points, key=lambda p: p.point))
    points = Section("Points evaluated", tables=[TableBlock(("point", "fleet", "meets", "replications",
                                                             "cost", "misses"), rows)])
    sections = [answer, points]
    runs = result.runs
    waits = [c for c in runs.columns if c.startswith("wait_p99_s")] if len(runs) else []
    if waits and "cost_usd" in runs.columns:
        paths = [c.path for c in result.choices] + [d.path for d in result.dimensions]
        summary = summarize(runs[runs["replication"] >= 0], paths)
        labels = {p.point: p.label for p in result.points}
        meets = {p.point: p.meets for p in result.points}
        wait = [c for c in waits if "[" in c] or waits
        figure = frontier_figure(summary, paths, wait=wait, labels=labels, meets=meets,
                                 cheapest=None if result.best is None else result.best.point)
        if figure is not None:
            sections.append(Section("Cost against service level", charts=[Chart(
                "plan_frontier", "Cost against the slowest workload's p99 wait",
                "Each evaluated point (mean over its replications, confidence bars), labelled by fleet.",
                png_bytes(figure))]))
    return Report(f"Plan: {result.scenario}", f"target {result.target}", sections)


def write_plan(result: PlanResult, out: str | Path, *, source: Path | None = None, cache: RunCache | None = None,
               force: bool = False) -> Path:
    """Write a plan's folder from Python (a notebook): staged and swapped in whole; the folder's path."""
    from scheduler.output import ResultsFolder

    with ResultsFolder(out, "plan", force=force) as folder:
        write_plan_files(result, folder.staging, source=source, cache=cache or RunCache(), out=Path(out))
        return folder.commit()
