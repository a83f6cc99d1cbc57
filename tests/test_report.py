"""Reports: every figure of a bundled scenario's report.html is an embedded PNG that decodes and is not
blank; report.md links the same figures; sweeps get a figure per parameter and a cost/wait frontier."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from scheduler.cli import main
from scheduler.output import write_results
from scheduler.report import ReportError, build_report
from scheduler.report import figures as fg
from scheduler.results.summary import RunSummary, TaskCounts
from scheduler.scenario import load_scenario
from scheduler.sim.engine import Simulation
from scheduler.sweep import Parameter, run_sweep, write_sweep

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


class _Images(HTMLParser):
    """Every <img src>, every other src/href, and the figure ids of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, str]] = []
        self.references: list[str] = []
        self.figures: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "img":
            self.images.append((attributes.get("src") or "", attributes.get("alt") or ""))
        elif tag == "figure":
            self.figures.append(attributes.get("id") or "")
        elif tag in ("script", "link") or (tag != "a" and ("src" in attributes or "href" in attributes)):
            self.references.append(f"{tag}: {attributes}")


def decode_png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return np.asarray(image.convert("RGB"))


def assert_drawn(pixels: np.ndarray) -> None:
    """A real figure: big enough, and more than a blank canvas."""
    height, width, _ = pixels.shape
    assert width >= 600 and height >= 200
    assert pixels.std() > 10
    assert (pixels.reshape(-1, 3) < 128).all(axis=1).mean() > 0.001  # some dark ink: text, lines


def run_folder(tmp_path: Path, scenario: str, until: float | None = None, **overrides: object) -> Path:
    loaded = load_scenario(SCENARIOS / f"{scenario}.yaml", overrides=overrides or None)
    out = tmp_path / scenario
    write_results(Simulation(loaded, until=until).run(), out)
    return out


def check_report(folder: Path, written: list[Path]) -> dict[str, np.ndarray]:
    """The HTML stands alone and every image in it decodes; report.md links the same PNG files."""
    html = (folder / "report.html").read_text(encoding="utf-8")
    page = _Images()
    page.feed(html)
    assert page.references == []  # nothing loaded from elsewhere: the file is self-contained
    assert len(page.images) == len(page.figures) > 0
    decoded: dict[str, np.ndarray] = {}
    for (src, alt), figure_id in zip(page.images, page.figures, strict=True):
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix) and alt
        pixels = decode_png(base64.b64decode(src[len(prefix):], validate=True))
        assert_drawn(pixels)
        decoded[figure_id.removeprefix("fig-")] = pixels
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]+\]\(figures/([^)]+)\.png\)", markdown)
    assert linked == list(decoded)
    for name in linked:
        png = folder / "figures" / f"{name}.png"
        assert png in written
        assert decode_png(png.read_bytes()).shape == decoded[name].shape
    assert {p.name for p in (folder / "figures").iterdir()} == {f"{n}.png" for n in linked}
    assert folder / "report.html" in written and folder / "report.md" in written
    return decoded


# --- run reports ------------------------------------------------------------------------------------

def test_a_bundled_scenario_report_shows_every_figure(tmp_path: Path) -> None:
    folder = run_folder(tmp_path, "static-paths-blind")  # ECS-blind: three tasks fail at container start
    figures = check_report(folder, build_report(folder))
    assert list(figures) == ["utilization", "queue", "wait_cdf", "failures", "cost"]
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "static-paths-blind" in html and "tasks submitted" in html and "$" in html
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "| tasks failed | 3 |" in markdown


def test_a_run_without_failures_says_so_instead_of_an_empty_chart(tmp_path: Path) -> None:
    folder = run_folder(tmp_path, "trn1-per-chip-services", until=1800.0)
    build_report(folder)
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "No task failed to be placed or to start." in markdown
    assert not (folder / "figures" / "failures.png").exists()


def test_a_run_with_faults_reports_what_they_cost_and_a_run_without_does_not(tmp_path: Path) -> None:
    folder = run_folder(tmp_path, "faults-inf2-spot", duration="3d")
    build_report(folder)
    summary = RunSummary.read(folder / "summary.json")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "## Faults and service shortfall" in markdown
    stopped = summary.faults.tasks_stopped
    assert f"| tasks stopped by faults | {stopped} |" in markdown
    assert "| inference |" in markdown
    calm = run_folder(tmp_path, "static-paths-blind")
    build_report(calm)
    assert "Faults and service shortfall" not in (calm / "report.md").read_text(encoding="utf-8")


def test_a_later_report_removes_figures_that_no_longer_apply(tmp_path: Path) -> None:
    folder = run_folder(tmp_path, "static-paths-blind")
    build_report(folder)
    assert (folder / "figures" / "failures.png").exists()
    write_results(Simulation(load_scenario(SCENARIOS / "static-paths-blind.yaml",
                                           overrides={"device_mode": "device-aware"})).run(), folder)
    build_report(folder)
    assert not (folder / "figures" / "failures.png").exists()


def test_the_utilization_figure_has_one_line_per_instance_type_and_units() -> None:
    loaded = load_scenario(SCENARIOS / "mixed-cluster.yaml")
    results = Simulation(loaded, until=3 * 3600).run()
    figure = fg.utilization_figure(results.timeline, 3 * 3600)
    assert figure is not None
    legend = figure.legends[0]
    types = sorted(t for t in results.timeline["instance_type"].unique() if t != "*")
    assert [t.get_text() for t in legend.get_texts()] == types
    chip_axis, cpu_axis, memory_axis = figure.axes
    assert chip_axis.get_ylabel().endswith("(%)") and memory_axis.get_xlabel() == "simulated time (minutes)"
    # only the Neuron types have a line in the chips panel
    assert sorted(line.get_label() for line in chip_axis.get_lines()) == ["inf2.xlarge", "trn1.32xlarge"]
    assert len(cpu_axis.get_lines()) == len(types)


def test_the_wait_cdf_marks_the_percentiles_of_the_started_tasks() -> None:
    tasks = pd.DataFrame({"workload": ["a"] * 4 + ["b"] * 2, "wait_s": [0.0, 10.0, 20.0, 30.0, np.nan, 5.0],
                          "start": [1.0, 2, 3, 4, np.nan, 6],
                          "final_state": ["STOPPED"] * 4 + ["PROVISIONING", "RUNNING"]})
    figure = fg.wait_cdf_figure(tasks)
    assert figure is not None
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert "all tasks (5)" in labels and "p50 = 10 s" in labels
    assert "1 task(s) still waiting" in figure.axes[0].get_title()
    assert fg.wait_cdf_figure(tasks.assign(wait_s=np.nan)) is None


def test_failure_and_cost_figures_are_none_when_there_is_nothing_to_show() -> None:
    empty = RunSummary("s", 1, "device-aware", 3600.0)
    assert fg.failures_figure(empty) is None
    assert fg.cost_figure(empty) is None
    figure = fg.failures_figure(replace(empty, tasks=TaskCounts(submitted=20, failed={"RESOURCE:CPU": 3,
                                                                                       "RESOURCE:MEMORY": 5})))
    assert figure is not None and figure.get_suptitle() == "Failures by reason: 8 task(s) of 20 submitted"
    ticks = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert ticks == ["RESOURCE:MEMORY", "RESOURCE:CPU"]


def test_report_of_a_folder_without_results_is_one_clear_error(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ReportError, match="no neuron-sim results"):
        build_report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such results folder" in capsys.readouterr().err


def test_run_writes_the_report_unless_told_not_to(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = str(SCENARIOS / "static-paths-blind.yaml")
    assert main(["run", scenario, "--out", str(tmp_path / "a")]) == 0
    assert f"report: {tmp_path / 'a' / 'report.html'}" in capsys.readouterr().out
    assert (tmp_path / "a" / "report.html").is_file() and (tmp_path / "a" / "figures").is_dir()
    assert main(["run", scenario, "--out", str(tmp_path / "b"), "--no-report"]) == 0
    assert not (tmp_path / "b" / "report.html").exists()
    assert main(["report", str(tmp_path / "b")]) == 0
    assert str(tmp_path / "b" / "report.html") in capsys.readouterr().out


# --- sweep reports ----------------------------------------------------------------------------------

def test_a_sweep_report_has_a_figure_per_parameter_and_the_frontier(tmp_path: Path) -> None:
    parameters = [Parameter("cluster.fleets.0.count", (3, 5, 8)),
                  Parameter("workloads.0.arrivals.peak_rate", ("30/h", "40/h"))]
    sweep = run_sweep(SCENARIOS / "diurnal-inf2.yaml", parameters, replications=2, workers=1, until=86400.0)
    folder = tmp_path / "sweep"
    write_sweep(sweep, folder)
    figures = check_report(folder, build_report(folder))
    assert list(figures) == ["sweep_0_cluster_fleets_0_count", "sweep_1_workloads_0_arrivals_peak_rate",
                             "frontier"]
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    # each point named by its fleet, with the swept values the fleet does not say
    table_rows = [line for line in markdown.splitlines()
                  if re.match(r"\| inf2\.xlarge x(3|5|8), peak_rate=(30|40)/h \|", line)]
    assert len(table_rows) == 6 and all("| 2/2 |" in row for row in table_rows)


def test_sweep_metric_figure_draws_a_band_per_line_and_leaves_constant_metrics_out() -> None:
    summary = pd.DataFrame({
        "point": [0, 0, 1, 1], "a": [1, 1, 2, 2], "metric": ["cost_usd", "tasks_failed"] * 2,
        "runs": 3, "failed": 0, "n": 3, "mean": [10.0, 0.0, 20.0, 0.0], "std": 1.0,
        "ci_low": [9.0, 0.0, 18.0, 0.0], "ci_high": [11.0, 0.0, 22.0, 0.0]})
    varying, constant = fg.split_constant(summary)
    assert varying == ["cost_usd"] and constant == {"tasks_failed": 0.0}
    figure = fg.sweep_metric_figure(summary, pd.DataFrame(), "a", ["a"])
    assert figure is not None and len([ax for ax in figure.axes if ax.get_visible()]) == 1
    ax = figure.axes[0]
    assert ax.get_title() == "cost (USD)" and ax.get_xlabel() == "a"
    assert list(ax.get_lines()[0].get_ydata()) == [10.0, 20.0]
    assert len(ax.collections) == 1  # the confidence band


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_the_frontier_is_exactly_the_points_nothing_beats(points: list[tuple[int, int]]) -> None:
    front = set(fg.pareto_front(points))

    def beaten(i: int) -> bool:
        return any(q[0] <= points[i][0] and q[1] <= points[i][1] and q != points[i] for q in points)

    for i, point in enumerate(points):
        if i in front:
            assert not beaten(i)
        elif not beaten(i):
            assert point in [points[j] for j in front]  # a duplicate of a frontier point
