"""Faults, interrupted runs, streamed tables, output safety and determinism across processes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.scenario import load_scenario
from scheduler.sim.deployments import HEALTHY_AFTER_S
from scheduler.sim.engine import Simulation

ROOT = Path(__file__).resolve().parents[1]
TASKDEFS = ROOT / "scenarios" / "taskdefs"

FAULTY = f"""
name: faulty
seed: 3
duration: 1d
sample_interval: 5m
task_definitions:
  chip: {TASKDEFS / "trn1-chip-00.json"}
  sidecar: {TASKDEFS / "cpu-sidecar.json"}
cluster:
  fleets:
    - {{instance_type: trn1.32xlarge, count: 4}}
    - {{instance_type: c6i.2xlarge, count: 6, spot: true}}
  capacity_providers:
    - name: spot-asg
      type: EC2_AUTOSCALING
      instance_types: [m6i.xlarge]
      min_size: 2
      max_size: 6
      desired_capacity: 2
workloads:
  - {{name: chip-svc, kind: service, task_definition: chip, desired_count: 3}}
  - name: jobs
    kind: run_task
    task_definition: sidecar
    arrivals: {{type: poisson, rate: 40/h}}
    duration: {{type: exponential, mean: 30m}}
    on_no_capacity: wait
  - {{name: web, kind: service, task_definition: sidecar, desired_count: 6}}
faults:
  instance_failures: [{{instance_type: trn1.32xlarge, at: [2h]}}, {{mtbf: 4d}}]
  chip_failures: [{{instance_type: trn1.32xlarge, mtbf: 2d}}]
  agent_disconnects: [{{mtbf: 3d, duration: 10m}}]
  instance_retirements: [{{mtbf: 5d, notice: 30m}}]
  spot_interruptions: {{rate: 0.05/h}}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("seed", range(8))
def test_faults_lose_no_task(tmp_path: Path, seed: int) -> None:
    loaded = load_scenario(write(tmp_path, FAULTY), overrides={"seed": seed})
    sim = Simulation(loaded)
    res = sim.run()
    tasks = res.tasks
    assert sim.conservation_ok()
    star = res.timeline[res.timeline["instance_type"] == "*"]
    assert ((star["provisioning"] + star["pending"] + star["running"] + star["stopped"]) == star["submitted"]).all()
    # chips that failed, and instances that left, leave the totals once: nothing is held beyond what exists
    assert (res.timeline["chips_held"] <= res.timeline["chips_total"]).all()
    assert 0.0 <= res.summary.utilization.chips <= 1.0
    assert len(tasks) == res.summary.tasks.submitted == tasks["task_id"].nunique()
    assert set(tasks["final_state"]) <= {"PROVISIONING", "RUNNING", "STOPPED"}
    stopped = tasks[tasks["final_state"] == "STOPPED"]
    assert stopped["stop_code"].notna().all() and stopped["stop_reason"].notna().all()
    waiting = tasks[tasks["final_state"] == "PROVISIONING"]
    assert waiting["stop_reason"].notna().all()  # the reason it cannot be placed yet
    faults = res.summary.faults
    assert faults.instance_failures >= 1  # the one at 2h at least
    codes = set(stopped["stop_code"])
    assert "InfrastructureHealth" in codes
    # the fault counts add up: each task a fault stopped is in the table with a fault's stop code
    by_fault = stopped[stopped["stop_code"].isin(["InfrastructureHealth", "SpotInterruption", "TerminationNotice"])]
    assert faults.tasks_stopped == len(by_fault)
    from_services = by_fault["workload"].isin(["chip-svc", "web"])
    assert faults.service_tasks_stopped == int(from_services.sum())
    lost = (by_fault.loc[~from_services, "end"] - by_fault.loc[~from_services, "start"]).sum() / 3600
    assert faults.run_task_hours_lost == pytest.approx(lost, abs=1e-5)
    # services keep their tasks: after the faults, replacements run
    web = tasks[(tasks["workload"] == "web") & (tasks["final_state"] == "RUNNING")]
    assert len(web) == 6


PROPERTY = f"""
name: fault-mix
duration: 12h
sample_interval: 30m
task_definitions:
  chip: {TASKDEFS / "inf2-chip-0.json"}
  sidecar: {TASKDEFS / "cpu-sidecar.json"}
cluster:
  fleets: [{{instance_type: inf2.xlarge, count: 2}}]
  capacity_providers:
    - {{name: asg, type: EC2_AUTOSCALING, instance_types: [inf2.xlarge], min_size: 2, max_size: 5,
        desired_capacity: 2, spot: true}}
  default_capacity_provider_strategy: [{{capacity_provider: asg, weight: 1}}]
workloads:
  - {{name: svc, kind: service, task_definition: chip, desired_count: 3}}
  - {{name: jobs, kind: run_task, task_definition: chip, arrivals: {{type: poisson, rate: 3/h}},
      duration: {{type: exponential, mean: 40m}}}}
  - {{name: side, kind: service, task_definition: sidecar, desired_count: 2, launch_type: EC2}}
"""

FAULT_MTBF = st.sampled_from(["2h", "6h", "1d"])


@st.composite
def fault_mixes(draw: st.DrawFn) -> dict:
    faults: dict = {}
    for kind in ("instance_failures", "chip_failures", "agent_disconnects", "instance_retirements"):
        entries = []
        if draw(st.booleans()):
            entries.append({"mtbf": draw(FAULT_MTBF)})
        if draw(st.booleans()):
            entries.append({"at": draw(st.lists(st.sampled_from(["30m", "1h", "3h", "6h"]), min_size=1, max_size=3))})
        if kind == "instance_retirements":
            for entry in entries:
                entry["notice"] = draw(st.sampled_from(["0s", "2m", "1h"]))
        faults[kind] = entries
    if draw(st.booleans()):
        faults["spot_interruptions"] = {"rate": draw(st.sampled_from(["1/h", "1/6h"]))}
    return faults


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(faults=fault_mixes(), seed=st.integers(0, 2**32))
def test_any_mix_of_faults_keeps_the_books(tmp_path_factory: pytest.TempPathFactory, faults: dict,
                                           seed: int) -> None:
    path = write(tmp_path_factory.mktemp("mix"), PROPERTY)
    sim = Simulation(load_scenario(path, overrides={"faults": faults, "seed": seed}))
    res = sim.run()
    tasks = res.tasks
    # tasks conserved at every sample and at the end; each task is in the table once, in one final state
    assert sim.conservation_ok()
    star = res.timeline[res.timeline["instance_type"] == "*"]
    assert ((star["provisioning"] + star["pending"] + star["running"] + star["stopped"]) == star["submitted"]).all()
    assert len(tasks) == tasks["task_id"].nunique() == res.summary.tasks.submitted
    stopped = tasks[tasks["final_state"] == "STOPPED"]
    assert stopped["stop_code"].notna().all()
    # no chip is ever held by two tasks at once, and none beyond what exists
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    ran = tasks[tasks["start"].notna()]
    for inst_id, chips, start, end in ran[["instance_id", "chips", "start", "end"]].itertuples(index=False):
        for chip in filter(None, chips.split(",")):
            spans.setdefault((inst_id, chip), []).append((start, float("inf") if pd.isna(end) else end))
    for held in spans.values():
        held.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(held))
    assert (res.timeline["chips_held"] <= res.timeline["chips_total"]).all()
    assert 0.0 <= res.summary.utilization.chips <= 1.0
    # the fault accounting agrees with the task table
    by_fault = stopped[stopped["stop_code"].isin(["InfrastructureHealth", "SpotInterruption", "TerminationNotice"])]
    assert res.summary.faults.tasks_stopped == len(by_fault)
    # the same seed gives the same run
    again = Simulation(load_scenario(path, overrides={"faults": faults, "seed": seed})).run()
    assert replace(again.summary, wall_seconds=0.0) == replace(res.summary, wall_seconds=0.0)


def test_spot_interruption_drains_then_stops_with_spot_code(tmp_path: Path) -> None:
    text = FAULTY.replace("rate: 0.05/h", "rate: 2/h").replace("mtbf: 4d", "mtbf: 400d")
    res = Simulation(load_scenario(write(tmp_path, text))).run()
    assert res.summary.faults.spot_interruptions >= 6
    assert any("Spot interruption notice" in e["message"] for e in res.events)
    codes = set(res.tasks["stop_code"].dropna())
    assert "SpotInterruption" in codes or "ServiceSchedulerInitiated" in codes


RETIRING = f"""
name: retiring
duration: 6h
task_definitions:
  sidecar: {TASKDEFS / "cpu-sidecar.json"}
cluster:
  fleets: [{{instance_type: m6i.4xlarge, count: 1}}]
  capacity_providers:
    - name: asg
      type: EC2_AUTOSCALING
      instance_types: [m6i.xlarge]
      min_size: 1
      max_size: 1
      desired_capacity: 1
      managed_scaling: {{status: DISABLED}}
workloads:
  - name: web
    kind: service
    task_definition: sidecar
    desired_count: 2
    placement_strategy: [{{type: binpack, field: memory}}]
  - name: batch
    kind: run_task
    task_definition: sidecar
    arrivals: {{type: once, at: 1m}}
    duration: {{type: fixed, value: 5h}}
    placement_constraints: [{{type: memberOf, expression: "attribute:ecs.instance-type == m6i.xlarge"}}]
faults:
  instance_retirements: [{{instance_type: m6i.xlarge, at: [1h], notice: 30m}}]
"""


def test_retirement_drains_moves_services_and_stops_the_rest_with_termination_notice(tmp_path: Path) -> None:
    res = Simulation(load_scenario(write(tmp_path, RETIRING))).run()
    assert res.summary.faults.instance_retirements == 1
    tasks = res.tasks
    first_web = tasks[tasks["workload"] == "web"].sort_values("task_id").head(2)
    assert set(first_web["instance_type"]) == {"m6i.xlarge"}  # binpack chose the smaller instance
    # at the notice (1 h) replacements start on the other instance; the old tasks (minimum healthy 100 %)
    # stop once the replacements count as healthy, 40 s after RUNNING
    assert (first_web["stop_code"] == "ServiceSchedulerInitiated").all()
    assert (first_web["end"] == 3600 + HEALTHY_AFTER_S).all()
    running_web = tasks[(tasks["workload"] == "web") & (tasks["final_state"] == "RUNNING")]
    assert len(running_web) == 2
    assert (running_web["start"] == 3600).all()
    # the standalone task ran on until the instance was terminated, 30 minutes later
    batch = tasks[tasks["workload"] == "batch"].iloc[0]
    assert (batch["instance_type"], batch["stop_code"]) == ("m6i.xlarge", "TerminationNotice")
    assert batch["end"] == pytest.approx(90 * 60)
    assert res.summary.faults.tasks_stopped == 1
    # the group replaced the retired instance
    launches = res.extra_tables["scaling_events"]
    replacing = launches[(launches["action"] == "launch") & launches["reason"].str.contains("replacing")]
    assert list(replacing["time"]) == [90 * 60]


def test_a_failed_chip_leaves_the_totals_once_when_its_instance_fails_later(tmp_path: Path) -> None:
    text = f"""
name: chip-then-instance
duration: 3h
sample_interval: 10m
task_definitions: {{chip: {TASKDEFS / "trn1-chip-00.json"}}}
cluster: {{fleets: [{{instance_type: trn1.32xlarge, count: 1}}, {{instance_type: c6i.2xlarge, count: 1}}]}}
workloads: [{{name: svc, kind: service, task_definition: chip, desired_count: 1}}]
faults:
  chip_failures: [{{instance_type: trn1.32xlarge, at: [1h]}}]
  instance_failures: [{{instance_type: trn1.32xlarge, at: [2h]}}]
"""
    res = Simulation(load_scenario(write(tmp_path, text))).run()
    star = res.timeline[res.timeline["instance_type"] == "*"].set_index("time")
    assert list(star.loc[[1800.0, 5400.0, 9000.0], "chips_total"]) == [16, 15, 0]
    # one chip held for 2 h, of 16 + 15 + 0 chip-hours
    assert res.summary.utilization.chips == pytest.approx(2 / 31, abs=1e-6)


def test_a_spot_auto_scaling_group_prices_and_interrupts_its_instances_and_replaces_them(tmp_path: Path) -> None:
    text = f"""
name: spot-asg
duration: 2d
task_definitions: {{chip: {TASKDEFS / "inf2-chip-0.json"}}}
cluster:
  capacity_providers:
    - {{name: spot, type: EC2_AUTOSCALING, instance_types: [inf2.xlarge], min_size: 4, max_size: 4,
        desired_capacity: 4, spot: true, managed_scaling: {{status: DISABLED}}}}
workloads: [{{name: svc, kind: service, task_definition: chip, desired_count: 4, launch_type: EC2}}]
faults: {{spot_interruptions: {{rate: 1/d, notice: 2m}}}}
"""
    sim = Simulation(load_scenario(write(tmp_path, text)))
    res = sim.run()
    price = sim.plan.catalog.get("inf2.xlarge").price_per_hour * (1 - 0.65)
    assert sim.instance_price == pytest.approx([price] * len(sim.instance_price))  # the first four too
    interruptions = res.summary.faults.spot_interruptions
    assert interruptions >= 2
    launches = res.extra_tables["scaling_events"]
    assert int(launches["reason"].str.contains("replacing").sum()) == interruptions
    # no instance has room for a replacement, so the drained task runs through the 2-minute notice
    # (minimum healthy 100 %): the service is one task short only from the termination until the
    # replacement instance registers (3.5 min after the notice), 1.5 minutes per interruption
    assert res.summary.service_shortfall_task_hours["svc"] == pytest.approx(interruptions * 1.5 / 60)


def test_an_instance_lost_twice_is_replaced_once(tmp_path: Path) -> None:
    # A Spot or retirement notice can run out after the instance already left (scaled in, or failed).
    sim = Simulation(load_scenario(write(tmp_path, RETIRING), overrides={"faults": {}}))

    def lose_twice() -> None:
        row = next(i.index for i in sim.state.instances if i.instance_type.name == "m6i.xlarge")
        sim.lose_instance(row, "InfrastructureHealth", "failed")
        sim.lose_instance(row, "SpotInterruption", "notice ran out")

    sim.at(7200, lose_twice)
    res = sim.run()
    launches = res.extra_tables["scaling_events"]
    assert (launches["reason"].str.contains("replacing")).sum() == 1
    batch = res.tasks[res.tasks["workload"] == "batch"].iloc[0]
    assert (batch["stop_code"], batch["end"]) == ("InfrastructureHealth", 7200)


def test_chip_failure_leaves_neuron_devices_and_stops_its_task(tmp_path: Path) -> None:
    text = FAULTY.replace("chip_failures: [{instance_type: trn1.32xlarge, mtbf: 2d}]",
                          "chip_failures: [{instance_type: trn1.32xlarge, at: [1h, 1h, 1h, 1h, 1h, 1h, 1h, 1h]}]")
    res = Simulation(load_scenario(write(tmp_path, text), overrides={"faults.instance_failures": []})).run()
    assert res.summary.faults.chip_failures == 8
    registered = 0
    for ci in res.describe_container_instances["containerInstances"]:
        for r in ci["registeredResources"]:
            if r["name"] == "NEURON_DEVICES":
                registered += len(r["stringSetValue"])
    assert registered == 4 * 16 - 8
    held_by_failed = res.tasks[res.tasks["stop_reason"].fillna("").str.contains("Neuron device /dev/neuron")]
    assert (held_by_failed["stop_code"] == "InfrastructureHealth").all()


def test_sigint_writes_partial_results_and_exits_130(tmp_path: Path) -> None:
    scenario = write(tmp_path, f"""
name: long
duration: 60d
sample_interval: 10m
task_definitions: {{sidecar: {TASKDEFS / "cpu-sidecar.json"}}}
cluster: {{fleets: [{{instance_type: m6i.4xlarge, count: 100}}]}}
workloads:
  - {{name: jobs, kind: run_task, task_definition: sidecar, arrivals: {{type: poisson, rate: 20/s}},
      duration: {{type: exponential, mean: 2m}}}}
""")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "scheduler", "run", str(scenario), "--out", str(out),
                             "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(300):  # wait (at most about a minute) until the run has started writing
        if list(tmp_path.glob(".out.neuron-sim-*/.tasks.parquet.partial")):  # the run's staging folder
            break
        time.sleep(0.2)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "partial" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["partial"] is True and 0 < summary["sim_seconds"] < 60 * 86400
    tasks = pd.read_parquet(out / "tasks.parquet")
    assert len(tasks) == summary["tasks_submitted"]
    assert not (out / ".tasks.parquet.partial").exists()


def test_streamed_task_table_equals_the_in_memory_one(tmp_path: Path) -> None:
    loaded = load_scenario(ROOT / "scenarios" / "diurnal-inf2.yaml", overrides={"duration": "2d"})
    in_memory = Simulation(loaded).run().tasks
    sink = tmp_path / "tasks.parquet"
    res = Simulation(loaded, task_sink=sink).run()
    assert res.tasks is None
    streamed = pd.read_parquet(sink)
    pd.testing.assert_frame_equal(streamed, in_memory, check_dtype=False)


def test_refuses_a_foreign_folder_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    cmd = [sys.executable, "-m", "scheduler", "run", str(ROOT / "scenarios" / "trn1-per-chip-services.yaml"),
           "--out", str(target), "--until", "10m", "--no-report"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "--force" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    proc = subprocess.run([*cmd, "--force"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert (target / "notes.txt").read_text() == "keep me" and (target / "summary.json").exists()
    # a folder holding earlier results of the tool is reused without --force
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0


def test_same_seed_byte_identical_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    outputs = []
    for hash_seed in ("0", "12345"):
        out = tmp_path / f"o{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run([sys.executable, "-m", "scheduler", "run", str(ROOT / "scenarios" / "mixed-cluster.yaml"),
                               "--out", str(out), "--until", "6h", "--no-report"], capture_output=True, text=True,
                              env=env, check=False)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads((out / "summary.json").read_text())
        summary.pop("wall_seconds")
        files = {name: (out / name).read_bytes() for name in ("tasks.parquet", "timeline.parquet",
                                                              "describe_tasks.json",
                                                              "describe_container_instances.json")}
        outputs.append((summary, files))
    assert outputs[0] == outputs[1]
