"""Faults, interrupted runs, streamed tables, output safety and determinism across processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from scheduler.scenario import load_scenario
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
    assert len(tasks) == res.summary["tasks_submitted"] == tasks["task_id"].nunique()
    assert set(tasks["final_state"]) <= {"PROVISIONING", "RUNNING", "STOPPED"}
    stopped = tasks[tasks["final_state"] == "STOPPED"]
    assert stopped["stop_code"].notna().all() and stopped["stop_reason"].notna().all()
    faults = res.summary["faults"]
    assert faults["instance_failures"] >= 1  # the one at 2h at least
    codes = set(stopped["stop_code"])
    assert "InfrastructureHealth" in codes
    if faults["spot_interruptions"]:
        assert faults["tasks_stopped"] >= 0
    # services keep their tasks: after the faults, replacements run
    web = tasks[(tasks["workload"] == "web") & (tasks["final_state"] == "RUNNING")]
    assert len(web) == 6


def test_spot_interruption_drains_then_stops_with_spot_code(tmp_path: Path) -> None:
    text = FAULTY.replace("rate: 0.05/h", "rate: 2/h").replace("mtbf: 4d", "mtbf: 400d")
    res = Simulation(load_scenario(write(tmp_path, text))).run()
    assert res.summary["faults"]["spot_interruptions"] >= 6
    assert any("Spot interruption notice" in e["message"] for e in res.events)
    codes = set(res.tasks["stop_code"].dropna())
    assert "SpotInterruption" in codes or "ServiceSchedulerInitiated" in codes


def test_chip_failure_leaves_neuron_devices_and_stops_its_task(tmp_path: Path) -> None:
    text = FAULTY.replace("chip_failures: [{instance_type: trn1.32xlarge, mtbf: 2d}]",
                          "chip_failures: [{instance_type: trn1.32xlarge, at: [1h, 1h, 1h, 1h, 1h, 1h, 1h, 1h]}]")
    res = Simulation(load_scenario(write(tmp_path, text), overrides={"faults.instance_failures": []})).run()
    assert res.summary["faults"]["chip_failures"] == 8
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
        if (out / ".tasks.parquet.partial").exists():
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
