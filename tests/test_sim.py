"""The simulation end to end: bundled scenarios, lifecycles, conservation, determinism, bad input."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from scheduler.ecs.botocore_model import validate_output
from scheduler.output import write_results
from scheduler.results import codec
from scheduler.results.summary import RequestFigures, SnapshotSummary
from scheduler.results.tables import RUN_TABLES
from scheduler.scenario import load_scenario
from scheduler.sim.engine import Simulation

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
BUNDLED = sorted(SCENARIOS.glob("*.yaml"))


def simulate(name: str, **overrides: object):
    loaded = load_scenario(SCENARIOS / name, overrides=overrides or None)
    sim = Simulation(loaded)
    return sim, sim.run()


def conservation_holds(timeline: pd.DataFrame) -> bool:
    rows = timeline[timeline["instance_type"] == "*"]
    total = rows["provisioning"] + rows["pending"] + rows["running"] + rows["stopped"]
    return bool((total == rows["submitted"]).all()) and len(rows) > 0


class CheckedLevels:
    """Stands in for the recorder's reading of the core's totals: at every change it checks them against
    a recount from the columns, and integrates the price-weighted free chips of live instances by brute
    force (the idle-chip cost the summary derives another way)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.idle_cost = 0.0  # USD per hour x seconds
        self._rate = 0.0
        self._t = 0.0

    def __call__(self) -> list[int]:
        st, t = self.sim.state, self.sim.recorder.last_t
        totals = st.totals_values()
        assert totals == list(st.recount_totals()), (t, totals)
        self.idle_cost += self._rate * (t - self._t)
        self._t = t
        live = [inst.index for inst in st.instances if inst.status != "INACTIVE"]
        self._rate = sum(self.sim._chip_price(r) * int(st.chips_free[r]).bit_count() for r in live)
        return totals


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_every_bundled_scenario_runs_conserves_tasks_and_renders_ecs_shapes(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# Question:"), "each bundled scenario is headed by the question it answers"
    # the plain path: the checker sees each change through the recorder, which the stream lane integrates itself
    # (the lane's results equal the plain path's: tests/test_lane.py)
    sim = Simulation(load_scenario(path), path="plain")
    sim.recorder.levels = checked = CheckedLevels(sim)
    res = sim.run()
    # the core's totals equalled a recount at every change; the derived idle-chip cost, the brute force's
    assert res.summary.costs.idle_chip_usd == pytest.approx(checked.idle_cost / 3600, rel=1e-9, abs=1e-6)
    assert conservation_holds(res.timeline)
    assert sim.conservation_ok()
    s = res.summary
    assert s.tasks.submitted + (s.snapshot.tasks_seeded if s.snapshot else 0) == len(res.tasks) > 0
    assert 0.0 <= s.utilization.chips <= 1.0
    assert validate_output("DescribeTasks", res.describe_tasks) == []
    assert validate_output("DescribeContainerInstances", res.describe_container_instances) == []
    # every task ends in exactly one state, with a reason when it did not run
    assert set(res.tasks["final_state"]) <= {"PROVISIONING", "PENDING", "RUNNING", "STOPPED"}
    never_ran = res.tasks[res.tasks["start"].isna()]
    assert never_ran["stop_reason"].notna().all()


def test_16_per_chip_services_fill_a_trn1_and_the_17th_waits_with_a_reason() -> None:
    _, res = simulate("trn1-per-chip-services.yaml")
    tasks = res.tasks
    running = tasks[tasks["final_state"] == "RUNNING"]
    assert len(running) == 16
    assert sorted(int(c) for c in running["chips"]) == list(range(16))
    assert res.summary.utilization.chips == 1.0
    waiting = tasks[tasks["final_state"] == "PROVISIONING"]
    assert list(waiting["workload"]) == ["svc-chip-03-extra"]
    assert "/dev/neuron3" in waiting["stop_reason"].iloc[0]
    assert any("svc-chip-03-extra" in e["message"] for e in res.events)
    # the 17th service is one task short from its start at 1 minute to the end at 2 hours
    short = res.summary.service_shortfall_task_hours
    assert short["svc-chip-03-extra"] == pytest.approx(119 / 60)
    assert sum(short.values()) == pytest.approx(119 / 60)


def test_ecs_blind_static_path_one_runs_three_fail_to_start() -> None:
    _, res = simulate("static-paths-blind.yaml")
    tasks = res.tasks
    assert (tasks["start"].notna()).sum() == 1
    failed = tasks[tasks["stop_code"] == "TaskFailedToStart"]
    assert len(failed) == 3
    assert failed["stop_reason"].str.contains("/dev/neuron0").all()
    assert res.summary.tasks.failed == {"TaskFailedToStart: /dev/neuron0 in use": 3}


def test_device_aware_static_path_one_runs_three_wait() -> None:
    _, res = simulate("static-paths-blind.yaml", device_mode="device-aware", duration="20m")
    tasks = res.tasks
    assert (tasks["final_state"] == "RUNNING").sum() == 1
    assert (tasks["final_state"] == "PROVISIONING").sum() == 3
    assert not res.summary.tasks.failed


def test_waiting_tasks_start_when_the_chip_frees() -> None:
    _, res = simulate("static-paths-blind.yaml", device_mode="device-aware", duration="3h")
    starts = sorted(res.tasks["start"].dropna())
    assert starts == [0.0, 1800.0, 3600.0, 5400.0]  # each waits for the previous 30-minute task


def test_docs_inf1_task_runs_only_on_inf1_xlarge_one_per_instance() -> None:
    _, res = simulate("inf1-docs-ec2.yaml")
    placed = res.tasks[res.tasks["instance_type"].notna()]
    assert set(placed["instance_type"]) == {"inf1.xlarge"}
    # static host ports 8500/8501: never two copies on one instance at once
    for _, rows in placed.groupby("instance_id"):
        spans = sorted(zip(rows["start"], rows["end"].fillna(float("inf")), strict=True))
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert set(res.summary.tasks.failed) <= {"RESOURCE:PORTS"}


def test_managed_tasks_hold_every_chip_of_one_instance() -> None:
    _, res = simulate("managed-neuron-mi.yaml")
    managed = res.tasks[(res.tasks["family"] == "ecs-neuron") & res.tasks["start"].notna()]
    chips = {"trn1.32xlarge": 16, "inf2.24xlarge": 6}
    assert len(managed) > 10
    for itype, held in zip(managed["instance_type"], managed["chips"], strict=True):
        assert held == ",".join(str(i) for i in range(chips[itype]))
    # one Neuron task per instance at any time
    for _, rows in managed.groupby("instance_id"):
        spans = sorted(zip(rows["start"], rows["end"].fillna(float("inf")), strict=True))
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    daemons = res.tasks[res.tasks["workload"] == "metrics-sidecar"]
    assert daemons["instance_id"].nunique() == 4 and len(daemons) == 4


def test_daemon_runs_once_on_every_instance_in_the_mixed_cluster() -> None:
    _, res = simulate("mixed-cluster.yaml", duration="2h")
    daemons = res.tasks[res.tasks["workload"] == "log-router"]
    assert len(daemons) == 17 == daemons["instance_id"].nunique()
    web = res.tasks[(res.tasks["workload"] == "web") & res.tasks["start"].notna()]
    assert set(web["instance_type"]) <= {"c6i.2xlarge", "m6i.4xlarge"}


def test_cost_equals_instance_seconds_times_catalog_prices() -> None:
    sim, res = simulate("mixed-cluster.yaml", duration="3h")
    expected = sum(inst.instance_type.price_per_hour * 3 for inst in sim.state.instances)
    assert res.summary.costs.usd == pytest.approx(expected, rel=1e-9)
    assert res.summary.costs.instance_hours == pytest.approx(3 * len(sim.state.instances))


def test_same_seed_identical_results_other_seed_differs(tmp_path: Path) -> None:
    def run(seed: int, out: Path) -> tuple[bytes, bytes]:
        loaded = load_scenario(SCENARIOS / "diurnal-inf2.yaml", overrides={"duration": "1d"})
        res = Simulation(loaded, seed=seed).run()
        res.summary = replace(res.summary, wall_seconds=0.0)  # the one field that measures the machine, not the model
        write_results(res, out)
        return (out / "summary.json").read_bytes(), (out / "tasks.parquet").read_bytes()

    a = run(11, tmp_path / "a")
    b = run(11, tmp_path / "b")
    c = run(12, tmp_path / "c")
    assert a == b
    assert a[0] != c[0] and a[1] != c[1]


def test_service_replaces_tasks_that_exit() -> None:
    loaded = load_scenario(SCENARIOS / "trn1-per-chip-services.yaml",
                           overrides={"workloads.0.task_duration": "10m", "duration": "1h"})
    res = Simulation(loaded).run()
    svc = res.tasks[res.tasks["workload"] == "svc-chip-00"]
    assert len(svc) == 6  # 0, 10, 20, ... 50 minutes
    assert (svc["stop_code"].dropna() == "EssentialContainerExited").all()


def test_blind_service_backs_off_after_failed_starts() -> None:
    loaded = load_scenario(SCENARIOS / "trn1-per-chip-services.yaml",
                           overrides={"device_mode": "ecs-blind", "duration": "2h"})
    res = Simulation(loaded).run()
    extra = res.tasks[res.tasks["workload"] == "svc-chip-03-extra"]
    assert (extra["stop_code"] == "TaskFailedToStart").all()
    gaps = extra["submit"].diff().dropna().tolist()
    assert gaps[:4] == [10.0, 20.0, 40.0, 80.0]  # the retry delay doubles ...
    assert max(gaps) == 900.0  # ... up to 15 minutes
    assert any("unable to consistently start tasks" in e["message"] for e in res.events)


def test_run_command_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-m", "scheduler", "run", str(SCENARIOS / "trn1-per-chip-services.yaml"),
                           "--out", str(out), "--until", "30m"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    for name in ("summary.json", "tasks.parquet", "timeline.parquet", "describe_tasks.json",
                 "describe_container_instances.json"):
        assert (out / name).is_file()
    summary = json.loads((out / "summary.json").read_text())
    keys = {"scenario", "seed", "sim_seconds", "tasks_submitted", "tasks_placed", "tasks_failed", "wait_p50_s",
            "wait_p99_s", "chip_utilization", "stranded_chip_hours", "instance_hours", "cost_usd", "wall_seconds"}
    assert keys <= set(summary) and summary["sim_seconds"] == 1800
    assert "Neuron chips held" in proc.stdout and "chip_utilization" not in proc.stdout  # the report's labels
    assert not list(out.glob("*.tmp"))


BAD = {
    "unknown instance type": ("cluster:\n  fleets:\n    - {instance_type: trn9.huge, count: 1}\n",
                              "cluster.fleets[0].instance_type"),
    "missing task definition": ("task_definitions: {t: nowhere.json}\n", "task_definitions.t"),
    "negative rate": ("workloads:\n  - {name: w, kind: run_task, task_definition: t, duration: 1m,\n"
                      "     arrivals: {type: poisson, rate: -3/h}}\n", "workloads[0].arrivals"),
    "parsecs": ("duration: 5 parsecs\n", "duration"),
    "unknown key": ("colour: blue\n", "colour"),
    "yaml syntax": ("workloads: [\n", "line"),
}
GOOD = {
    "name": "name: bad\n",
    "duration": "duration: 1h\n",
    "task_definitions": "task_definitions: {t: " + str(SCENARIOS / "taskdefs" / "cpu-sidecar.json") + "}\n",
    "cluster": "cluster:\n  fleets:\n    - {instance_type: c6i.large, count: 1}\n",
    "workloads": ("workloads:\n  - {name: w, kind: run_task, task_definition: t, duration: 1m,\n"
                  "     arrivals: {type: poisson, rate: 3/h}}\n"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_scenarios_give_one_line_with_file_and_field(case: str, tmp_path: Path) -> None:
    text, field_path = BAD[case]
    key = text.split(":")[0]
    doc = "".join(text if k == key else v for k, v in GOOD.items())
    if key not in GOOD:
        doc = "".join(GOOD.values()) + text
    path = tmp_path / "bad.yaml"
    path.write_text(doc)
    proc = subprocess.run([sys.executable, "-m", "scheduler", "run", str(path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "bad.yaml" in lines[0] and field_path in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_topology_aware_gives_static_path_tasks_any_free_chip() -> None:
    _, res = simulate("static-paths-blind.yaml", device_mode="topology-aware")
    tasks = res.tasks
    assert (tasks["start"] == 0).sum() == 4
    assert sorted(int(c) for c in tasks["chips"]) == [0, 1, 2, 3]
    assert res.summary.device_mode == "topology-aware"


def test_extensions_beyond_ecs_are_named_in_the_summary() -> None:
    _, res = simulate("diurnal-inf2.yaml", duration="2h",
                      **{"workloads.0.placement_strategy": [{"type": "binpack", "field": "neuronDevices"}]})
    ext = res.summary.extensions
    assert any("binpack on neuronDevices" in e for e in ext)
    assert any("on_no_capacity wait" in e for e in ext)
    _, plain = simulate("static-paths-blind.yaml")
    assert plain.summary.extensions == ()  # ECS-blind with RunTask defaults is plain ECS


def test_every_output_field_and_column_is_documented() -> None:
    doc = (ROOT / "docs" / "outputs.md").read_text()
    _, res = simulate("faults-inf2-spot.yaml", duration="1h")
    per_workload = next(iter(res.summary.workloads.values()))
    names = [*res.summary.to_json(), *res.summary.fault_metrics(), *codec.to_json(per_workload),
             *codec.keys(RequestFigures), *codec.keys(SnapshotSummary),
             *(c for columns in RUN_TABLES.values() for c in columns)]
    missing = [name for name in names if f"`{name}`" not in doc]
    assert missing == []


def test_faults_scenario_counts_what_faults_cost_and_the_service_recovers() -> None:
    _, res = simulate("faults-inf2-spot.yaml")
    faults = res.summary.faults
    assert min(getattr(faults, k) for k in ("instance_failures", "chip_failures", "spot_interruptions",
                                   "agent_disconnects")) >= 1
    assert faults.instance_retirements == 1
    tasks = res.tasks
    by_fault = tasks[tasks["stop_code"].isin(["InfrastructureHealth", "SpotInterruption", "TerminationNotice"])]
    assert faults.tasks_stopped == len(by_fault) > 0
    assert faults.service_tasks_stopped == int((by_fault["workload"] == "inference").sum())
    # the service is back to its 12 tasks at the end, and was short for less than an hour in all
    assert ((tasks["workload"] == "inference") & (tasks["final_state"] == "RUNNING")).sum() == 12
    # the first 12 tasks start up (image pull and model load) while the service counts them short; after
    # that the faults cost the service less than an hour in all
    first = tasks[tasks["workload"] == "inference"].nsmallest(12, "submit")
    assert (first["submit"] == 0).all() and (first["wait_s"] > 60).all()
    after_start = res.summary.service_shortfall_task_hours["inference"] - first["wait_s"].sum() / 3600
    assert 0 < after_start < 1.0


def test_a_task_timed_out_in_provisioning_counts_under_its_ecs_reason_alone(tmp_path: Path) -> None:
    taskdef = SCENARIOS / "taskdefs" / "inf2-chip-0.json"
    scenario = tmp_path / "timeout.yaml"
    scenario.write_text(f"""\
name: timeout
seed: 1
duration: 1h
task_definitions:
  inf2-chip: {taskdef.as_posix()}
cluster:
  name: c
  provisioning_timeout: 5m
  capacity_providers:
    - name: asg
      type: EC2_AUTOSCALING
      instance_types: [inf2.xlarge]
      min_size: 0
      max_size: 1
      desired_capacity: 1
  default_capacity_provider_strategy:
    - {{capacity_provider: asg, weight: 1}}
workloads:
  - name: pinned
    kind: run_task
    task_definition: inf2-chip
    arrivals: {{type: interval, every: 30m}}
    duration: {{type: fixed, value: 1m}}
    placement_constraints:
      - {{type: memberOf, expression: "attribute:stack == prod"}}
""")
    res = Simulation(load_scenario(scenario)).run()
    failed = res.summary.tasks.failed
    assert failed and set(failed) == {"TaskFailedToStart: MemberOf placement constraint unsatisfied "
                                      "(timed out waiting for capacity after 300 s)"}
