"""The notebooks run end to end (small parameters injected after their ``parameters`` cell, as papermill
does) in a fresh python3 kernel whose working folder is notebooks/; each asserts the answer it prints."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))

SMALL = {
    "capacity_planning.ipynb": """
RATE_PER_HOUR = 30
JOB_MINUTES = 20
HOURS = 4
REPLICATIONS = 2
COUNTS = {"inf2.48xlarge": range(1, 6), "inf2.24xlarge": range(1, 9), "trn1.32xlarge": range(1, 6)}
""",
    "managed_vs_manual.ipynb": """
HOURS = 4
REPLICATIONS = 2
""",
    "benchmarks.ipynb": "RESULTS = {results!r}",
    "spot_vs_on_demand.ipynb": """
DAYS = 2
REPLICATIONS = 2
SPOT_COUNTS = (0, 6, 12)
SPARES = (0, 1)
INTERRUPTIONS_PER_WEEK = 7.0
""",
}


def execute(name: str, parameters: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell(parameters.strip())
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, injected)
    client = NotebookClient(notebook, kernel_name="python3", timeout=180,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    # the kernel imports the checkout's package whether or not it is installed
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    client.execute(env={**os.environ, "PYTHONPATH": path, "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    return notebook


def printed(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []) if out.get("output_type") == "stream")


def images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


@pytest.mark.parametrize("name", ALL)
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1
    assert notebook.metadata["kernelspec"]["name"] == "python3"


def test_there_are_the_four_notebooks() -> None:
    assert ALL == ["benchmarks.ipynb", "capacity_planning.ipynb", "managed_vs_manual.ipynb",
                   "spot_vs_on_demand.ipynb"]


def test_capacity_planning_answers_how_many_inf2_48xlarge() -> None:
    notebook = execute("capacity_planning.ipynb", SMALL["capacity_planning.ipynb"])
    text = printed(notebook)
    assert "Answer: " in text and "x inf2.48xlarge serve 30 jobs/h with p99 wait under 60 s" in text
    assert "if a job could take any chip" in text
    assert images(notebook) == 1


def test_managed_vs_manual_compares_the_four_ways() -> None:
    notebook = execute("managed_vs_manual.ipynb", SMALL["managed_vs_manual.ipynb"])
    text = printed(notebook)
    for way in ("managed (whole instance)", "manual per-chip paths", "ECS-blind static paths",
                "topology-aware"):
        assert way in text
    assert "Answer:" in text
    assert images(notebook) >= 1


def test_spot_vs_on_demand_finds_the_cheapest_mix_within_the_shortfall_budget() -> None:
    notebook = execute("spot_vs_on_demand.ipynb", SMALL["spot_vs_on_demand.ipynb"])
    text = printed(notebook)
    answer = re.search(r"Answer: (\d+) of 12 instances on Spot with (\d+) spare on-demand instance\(s\) costs "
                       r"\$([\d,.]+)/day, saving \$([\d,.]+)/day", text)
    assert answer is not None, text
    spot, spare = int(answer[1]), int(answer[2])
    assert spot in (0, 6, 12) and spare in (0, 1)
    # 7 interruptions per Spot instance-week: the all-Spot fleet without a spare falls short
    assert "12 Spot and no spare: 0.0000" not in text
    assert images(notebook) == 1


def test_benchmarks_notebook_plots_the_results(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "results.json").write_text(json.dumps(BENCHMARK_RESULTS))
    notebook = execute("benchmarks.ipynb", SMALL["benchmarks.ipynb"].format(results=str(results)))
    text = printed(notebook)
    assert "Fastest core: 41,000 decisions/s at 500 instances" in text
    assert "device-aware: best strategy chip-aware" in text
    assert images(notebook) == 3


# The shape benchmarks/__main__.py writes (python -m benchmarks), with made-up numbers.
BENCHMARK_RESULTS = {
    "mode": "quick",
    "machine": {"cpu_model": "test CPU", "usable_cpus": 2, "memory_gib": 8, "python": "3.11"},
    "placement": [
        {"instances": 500, "core_per_s": 41_000.0, "core_p50_us": 20.0, "core_p99_us": 60.0,
         "row_path_per_s": 9_000.0, "reference_per_s": 300.0, "moto_per_s": 90.0},
        {"instances": 5_000, "core_per_s": 30_000.0, "core_p50_us": 28.0, "core_p99_us": 95.0,
         "row_path_per_s": 1_500.0, "reference_per_s": 30.0, "moto_per_s": None},
    ],
    "simulation": {"tasks": 20_000, "sim_tasks_per_s": 15_000.0, "bare_simpy_tasks_per_s": 120_000.0,
                   "peak_rss_mib": 180.0},
    "utilization": [
        {"strategy": "binpack(memory)", "device_mode": "device-aware", "allocation_ratio": 0.81,
         "optimum_ratio": 0.95},
        {"strategy": "chip-aware: binpack(neuronDevices), binpack(memory)", "device_mode": "device-aware",
         "allocation_ratio": 0.9, "optimum_ratio": 0.95},
        {"strategy": "binpack(memory)", "device_mode": "topology-aware", "allocation_ratio": 0.93,
         "optimum_ratio": 0.97},
    ],
    "targets": [{"target": "core >= 500,000 decisions/s at 5,000 instances", "measured": "30,000/s",
                 "reached": False, "gap": "17x short", "note": ""}],
}
