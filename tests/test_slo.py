"""Per-workload SLO figures of a run (summary.json ``workloads``), waits that count tasks still waiting, and
the fidelity fixes: one meaning of "placed" everywhere, and non-contiguous Neuron devices failing at start."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.cli import main
from scheduler.results.summary import Percentiles
from scheduler.scenario import load_scenario
from scheduler.sim.engine import Simulation
from scheduler.sim.slo import percentiles

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
NON_CONTIGUOUS = SCENARIOS / "taskdefs" / "warning" / "non-contiguous-chips.json"


def simulate(path: Path, **overrides: object):
    loaded = load_scenario(path, overrides=overrides or None)
    return Simulation(loaded).run()


def expected_waits(tasks, end: float) -> np.ndarray:
    """Waits as the tasks table tells them: started tasks' ``wait_s``; for tasks that never started and did not
    fail to start, the time to their stop or to the end of the run: a second path to the summary's figures."""
    started = tasks["wait_s"].dropna().to_numpy(float)
    unstarted = tasks[tasks["start"].isna() & (tasks["stop_code"] != "TaskFailedToStart") & tasks["submit"].notna()]
    until = unstarted["end"].fillna(end).to_numpy(float)
    return np.concatenate([started, until - unstarted["submit"].to_numpy(float)])


def test_quick_start_p99_wait_counts_the_task_that_never_started() -> None:
    res = simulate(SCENARIOS / "trn1-per-chip-services.yaml")
    s = res.summary
    assert s.tasks.waiting_at_end == 1
    extra = s.workloads["svc-chip-03-extra"]
    # started a minute in, never placed: it has waited the rest of the run
    assert extra.tasks_waiting_at_end == 1 and extra.tasks_started == 0
    assert extra.waits.max_s == extra.waits.p99_s == s.sim_seconds - 60
    assert s.waits.max_s == s.sim_seconds - 60
    assert s.waits.p99_s > 0  # 16 tasks at 0 s and one at 119 min: the p99 no longer hides it
    assert s.workloads["svc-chip-00"].waits.p99_s == 0
    assert extra.shortfall_task_hours == s.service_shortfall_task_hours["svc-chip-03-extra"] > 0


@pytest.mark.parametrize("name", ["trn1-per-chip-services.yaml", "faults-inf2-spot.yaml", "mixed-cluster.yaml",
                                  "static-paths-blind.yaml"])
def test_per_workload_figures_agree_with_the_tasks_table(name: str) -> None:
    res = simulate(SCENARIOS / name, duration="3h")
    s, tasks = res.summary, res.tasks
    end = s.sim_seconds
    assert set(s.workloads) == set(tasks["workload"])
    pooled = Percentiles.of(expected_waits(tasks, end))
    assert asdict(s.waits) == pytest.approx(asdict(pooled))
    failed_total: dict[str, int] = {}
    for workload, figures in s.workloads.items():
        mine = tasks[tasks["workload"] == workload]
        assert asdict(figures.waits) == pytest.approx(asdict(Percentiles.of(expected_waits(mine, end))))
        assert figures.tasks_placed == int(mine.loc[mine["submit"].notna(), "placed"].sum())
        assert figures.tasks_started == int(mine["start"].notna().sum() - mine["submit"].isna().sum())
        assert figures.tasks_failed == int((mine["stop_code"] == "TaskFailedToStart").sum())
        assert figures.tasks_failed == sum(figures.tasks_failed_by_reason.values())
        for reason, n in figures.tasks_failed_by_reason.items():
            failed_total[reason] = failed_total.get(reason, 0) + n
        if figures.kind == "service":
            assert figures.shortfall_task_hours == s.service_shortfall_task_hours[workload]
        else:
            assert figures.shortfall_task_hours is None
    assert failed_total == s.tasks.failed
    assert sum(f.tasks_waiting_at_end for f in s.workloads.values()) == s.tasks.waiting_at_end
    assert sum(f.tasks_placed for f in s.workloads.values()) == s.tasks.placed


@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1, max_size=50))
def test_percentiles_are_ordered_and_bounded(values: list[float]) -> None:
    p = percentiles(values, "wait")
    assert min(values) - 1e-6 <= p["wait_p50_s"] <= p["wait_p95_s"] <= p["wait_p99_s"] <= p["wait_max_s"]
    assert p["wait_max_s"] == pytest.approx(max(values), abs=1e-6)  # figures are rounded to the microsecond


def test_percentiles_of_nothing_are_none() -> None:
    assert set(percentiles([], "startup").values()) == {None}


def test_run_prints_a_per_workload_table_and_the_report_has_it(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SCENARIOS / "trn1-per-chip-services.yaml"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "per workload" in out
    row = next(line for line in out.splitlines() if "svc-chip-03-extra" in line)
    assert "119 min" in row and "1.983" in row  # its wait so far and its shortfall
    report = (tmp_path / "o" / "report.md").read_text()
    assert "| svc-chip-03-extra | 1 | 1 | 119 min | 119 min | 119 min | 119 min | - | 1.983 | 0 |" in report


def test_tasks_a_scale_in_stops_while_they_wait_count_with_the_time_they_waited(tmp_path: Path) -> None:
    # one trn1.32xlarge, a service whose task names /dev/neuron0: at 10 min it wants 3, two wait for the chip;
    # at 40 min it wants 1 again and the scale-in stops the two waiting tasks (waiting ones first)
    path = tmp_path / "scale-in.yaml"
    path.write_text(f"""\
name: scale-in
seed: 1
duration: 1h
task_definitions:
  chip: {(SCENARIOS / "taskdefs" / "trn1-chip-00.json").as_posix()}
cluster:
  fleets:
    - {{instance_type: trn1.32xlarge, count: 1, availability_zones: [us-east-1a]}}
workloads:
  - name: svc
    kind: service
    task_definition: chip
    schedule: [{{at: 0s, count: 1}}, {{at: 10m, count: 3}}, {{at: 40m, count: 1}}]
""")
    res = simulate(path)
    s, svc = res.summary, res.summary.workloads["svc"]
    assert svc.tasks_stopped_before_start == s.tasks.stopped_before_start == 2
    assert svc.tasks_waiting_at_end == 0 and svc.tasks_failed == 0
    assert svc.waits.max_s == svc.waits.p99_s == pytest.approx(30 * 60)  # waited from 10 to 40 min
    assert svc.shortfall_task_hours == pytest.approx(1.0)  # 2 tasks short for half an hour
    assert s.waits.p99_s > 0


# --- point 5: what "placed" means, and the Neuron runtime's refusal --------------------------------------

def test_ecs_blind_placed_count_is_the_same_in_summary_table_and_describe_tasks() -> None:
    res = simulate(SCENARIOS / "static-paths-blind.yaml")
    s, tasks = res.summary, res.tasks
    described = res.describe_tasks["tasks"]
    on_instance = [t for t in described if t.get("containerInstanceArn")]
    assert len(described) == len(tasks) == 4
    assert s.tasks.placed == int(tasks["placed"].sum()) == len(on_instance) == 4
    assert s.tasks.started == 1 and sum(s.tasks.failed.values()) == 3


def _non_contiguous_scenario(tmp_path: Path, mode: str) -> Path:
    path = tmp_path / f"gap-{mode}.yaml"
    path.write_text(f"""\
name: gap
seed: 1
duration: 30m
device_mode: {mode}
task_definitions:
  gap: {NON_CONTIGUOUS.as_posix()}
cluster:
  fleets:
    - {{instance_type: trn1.32xlarge, count: 1, availability_zones: [us-east-1a]}}
workloads:
  - {{name: gap, kind: run_task, task_definition: gap, arrivals: {{type: once, at: 0s}}, count: 2,
     duration: 10m}}
""")
    return path


@pytest.mark.parametrize("mode", ["device-aware", "ecs-blind"])
def test_non_contiguous_devices_fail_at_start_with_the_runtime_message(tmp_path: Path, mode: str) -> None:
    res = simulate(_non_contiguous_scenario(tmp_path, mode))
    s, tasks = res.summary, res.tasks
    assert s.tasks.started == 0 and s.tasks.placed == 2
    assert s.tasks.failed == {"TaskFailedToStart: Neuron devices not contiguous": 2}
    assert (tasks["stop_code"] == "TaskFailedToStart").all()
    assert tasks["stop_reason"].str.contains("Neuron cores are not contiguous").all()
    assert tasks["stop_reason"].str.contains("/dev/neuron0, /dev/neuron2").all()
    assert s.utilization.chips == 0  # it held its chips for no time at all
    assert s.workloads["gap"].tasks_failed_by_reason == s.tasks.failed


def test_topology_aware_asks_for_k_chips_so_the_runtime_never_refuses(tmp_path: Path) -> None:
    # topology-aware reads the two named devices as "any 2 contiguous chips"; trn1's torus takes 1, 4, 8 or 16,
    # so the tasks wait for a place instead of failing at start
    res = simulate(_non_contiguous_scenario(tmp_path, "topology-aware"))
    assert res.summary.tasks.failed == {} and res.summary.tasks.waiting_at_end == 2
    assert not res.tasks["stop_reason"].str.contains("not contiguous").any()


def test_run_warns_of_non_contiguous_devices_and_fails_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    assert main(["run", str(_non_contiguous_scenario(tmp_path, "device-aware")), "--out", str(tmp_path / "o"),
                 "--no-report"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "not contiguous" in warnings[0]
    assert "failed: TaskFailedToStart: Neuron devices not contiguous" in captured.out


def test_the_reports_wait_distribution_marks_the_summarys_percentiles() -> None:
    from scheduler.readable import duration_text
    from scheduler.report import figures as fg

    res = simulate(SCENARIOS / "trn1-per-chip-services.yaml")
    s = res.summary
    figure = fg.wait_cdf_figure(res.tasks, s.sim_seconds)
    labels = figure.axes[0].get_legend_handles_labels()[1]
    for q in (50, 95, 99):
        assert f"p{q} = {duration_text(getattr(s.waits, f'p{q}_s'))}" in labels
    assert "1 task(s) that never started" in figure.axes[0].get_title()
