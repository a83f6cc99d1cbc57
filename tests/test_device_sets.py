"""Device sets (one manual Neuron task definition over an instance type's aligned chip blocks), repeating
service schedules and diurnal desired counts, the `device-sets` command and the planner's llama example."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.catalog import default_catalog
from scheduler.ecs import botocore_model
from scheduler.ecs.device_sets import DeviceSetError, device_blocks, expand, split_count, uncovered_chips
from scheduler.ecs.taskdef import read_task_definition, validate_task_definition
from scheduler.errors import ScenarioError
from scheduler.scenario import load_scenario, scenario_from_mapping
from scheduler.scenario.compile import desired_count
from scheduler.scenario.workloads import DiurnalCount
from scheduler.sim import plan
from scheduler.sim.engine import Simulation
from scheduler.sim.workloads import desired_count_steps, diurnal_count_steps, split_steps

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
TASKDEFS = SCENARIOS / "taskdefs"
CATALOG = default_catalog()


def _taskdef(name: str):
    validation = read_task_definition(TASKDEFS / name)
    assert validation.spec is not None
    return validation


def _count_at(steps: list[tuple[float, int]], t: float) -> int:
    """The desired count a list of steps gives at time t (0 before the first step)."""
    count = 0
    for at, n in steps:
        if at <= t:
            count = n
    return count


# --- blocks and the count split ---------------------------------------------------------------------

@given(n=st.integers(1, 16), chips=st.integers(1, 40))
def test_blocks_are_aligned_contiguous_disjoint_and_cover_every_chip_when_n_divides(n: int, chips: int) -> None:
    blocks = device_blocks(n, chips)
    flat = [c for block in blocks for c in block]
    assert len(flat) == len(set(flat))                          # disjoint
    assert all(block[0] % n == 0 for block in blocks)           # aligned
    assert all(list(block) == list(range(block[0], block[0] + n)) for block in blocks)  # contiguous
    assert len(blocks) == chips // n
    assert set(flat) | set(range(chips - chips % n, chips)) == set(range(chips))
    if chips % n == 0:
        assert sorted(flat) == list(range(chips))


@given(total=st.integers(0, 100_000), blocks=st.integers(1, 40))
def test_split_count_sums_to_the_total_evenly_with_the_remainder_first(total: int, blocks: int) -> None:
    shares = split_count(total, blocks)
    assert sum(shares) == total and len(shares) == blocks
    assert max(shares) - min(shares) <= 1
    assert list(shares) == sorted(shares, reverse=True)


def test_inf2_24xlarge_two_chip_task_becomes_three_task_definitions() -> None:
    v = _taskdef("inf2-24xlarge-2chip.json")
    sets = expand(v.document, v.spec, CATALOG.get("inf2.24xlarge"))
    assert [s.label for s in sets] == ["neuron0-1", "neuron2-3", "neuron4-5"]
    assert [s.spec.chips for s in sets] == [(0, 1), (2, 3), (4, 5)]
    assert [s.family for s in sets] == [f"inf2-24xlarge-2chip-{s.label}" for s in sets]
    devices = sets[2].document["containerDefinitions"][0]["linuxParameters"]["devices"]
    assert [(d["hostPath"], d["containerPath"]) for d in devices] == [("/dev/neuron4", "/dev/neuron4"),
                                                                       ("/dev/neuron5", "/dev/neuron5")]
    assert v.document["containerDefinitions"][0]["linuxParameters"]["devices"][0]["hostPath"] == "/dev/neuron0"


@pytest.mark.parametrize("taskdef", ["inf2-24xlarge-2chip.json", "neuron-1chip-any.json", "inf1-6xlarge-4chip.json",
                                     "llama-inf2-2chip.json", "trn1-batch-1chip.json", "trn1-chip-07.json"])
def test_generated_task_definitions_pass_botocores_register_shape_and_ecs_rules(taskdef: str) -> None:
    v = _taskdef(taskdef)
    n = len(v.spec.chips)
    types = [t for t in CATALOG.values() if t.chips >= n and t.launch_types & v.spec.compatibilities]
    checked = 0
    for itype in types:
        try:
            sets = expand(v.document, v.spec, itype)
        except DeviceSetError:
            continue  # constrained to another type
        for block in sets:
            assert botocore_model.validate_input("RegisterTaskDefinition", block.document) == []
            again = validate_task_definition(json.loads(json.dumps(block.document)))
            assert again.valid and again.warnings == ()
            assert again.spec.chips == block.chips
            assert any(c.expression == f"attribute:ecs.instance-type == {itype.name}" for c in again.spec.constraints)
        checked += 1
    assert checked >= 1


def test_uncovered_chips_are_named_when_the_block_size_does_not_divide() -> None:
    assert uncovered_chips(4, CATALOG.get("inf2.24xlarge")) == (4, 5)
    assert uncovered_chips(2, CATALOG.get("inf2.24xlarge")) == ()


@pytest.mark.parametrize(("taskdef", "itype", "words"), [
    ("neuron-managed.json", "inf2.24xlarge", "manual-mode"),
    ("cpu-sidecar.json", "inf2.24xlarge", "names none"),
    ("warning/non-contiguous-chips.json", "trn1.32xlarge", "not contiguous"),
    ("inf2-24xlarge-2chip.json", "inf2.xlarge", "has 1"),
    ("inf2-24xlarge-2chip.json", "inf2.48xlarge", "constrained to inf2.24xlarge"),
])
def test_what_cannot_work_is_refused_with_one_reason(taskdef: str, itype: str, words: str) -> None:
    v = _taskdef(taskdef)
    with pytest.raises(DeviceSetError, match=words):
        expand(v.document, v.spec, CATALOG.get(itype))


# --- repeating schedules and diurnal desired counts -------------------------------------------------

def _service(**fields: object):
    data = {"name": "x", "duration": "30d", "task_definitions": {"t": "taskdefs/inf2-chip-0.json"},
            "cluster": {"fleets": [{"instance_type": "inf2.xlarge", "count": 1}]},
            "workloads": [{"kind": "service", "name": "s", "task_definition": "t", **fields}]}
    return scenario_from_mapping(data, path=SCENARIOS / "x.yaml").model.workloads[0]


@settings(max_examples=50, deadline=None)
@given(t=st.floats(0, 20 * 86400), start=st.sampled_from([0.0, 3600.0]))
def test_repeating_schedule_gives_the_same_count_at_t_and_t_plus_the_period(t: float, start: float) -> None:
    w = _service(start=start, schedule={"repeat": "1d", "steps": [{"at": 0, "count": 2}, {"at": "9h", "count": 7},
                                                                   {"at": "18h", "count": 3}]})
    steps = desired_count_steps(desired_count(w), start=start, stop=30 * 86400)
    assert _count_at(steps, start + t) == _count_at(steps, start + t + 86400)
    offset = t % 86400
    assert _count_at(steps, start + t) == (2 if offset < 9 * 3600 else 7 if offset < 18 * 3600 else 3)


@settings(max_examples=200, deadline=None)
@given(peak=st.integers(0, 60), trough=st.integers(0, 60), t=st.floats(0, 5 * 86400),
       peak_at=st.floats(0, 86400))
def test_diurnal_count_steps_agree_with_the_curve_and_repeat_each_period(peak: int, trough: int, t: float,
                                                                        peak_at: float) -> None:
    peak, trough = max(peak, trough), min(peak, trough)
    curve = DiurnalCount(peak=peak, trough=trough, peak_at=peak_at, period="1d")  # the scenario's own curve
    steps = diurnal_count_steps(plan.DiurnalCount(peak, trough, peak_at, 86400.0), start=0.0, stop=6 * 86400)
    value = trough + (peak - trough) * (1 + math.cos(2 * math.pi * (t - peak_at) / 86400)) / 2
    if abs(value - math.floor(value) - 0.5) > 1e-6:  # not on a rounding boundary
        assert _count_at(steps, t) == curve.count_at(t)
        assert _count_at(steps, t) == _count_at(steps, t + 86400)
    assert all(trough <= n <= peak for _, n in steps)
    assert all(a[1] != b[1] for a, b in itertools.pairwise(steps))


@given(total=st.lists(st.integers(0, 200), min_size=1, max_size=20), blocks=st.integers(1, 16))
def test_split_steps_sum_to_the_desired_count_at_every_step(total: list[int], blocks: int) -> None:
    steps = [(float(i), n) for i, n in enumerate(total)]
    shares = [split_steps(steps, blocks, k) for k in range(blocks)]
    for i, n in enumerate(total):
        assert sum(_count_at(s, float(i)) for s in shares) == n


def test_a_diurnal_service_runs_its_peak_and_its_trough() -> None:
    data = {"name": "x", "duration": "1d", "sample_interval": "5m",
            "task_definitions": {"t": "taskdefs/inf2-chip-0.json"},
            "cluster": {"fleets": [{"instance_type": "inf2.xlarge", "count": 6}]},
            "workloads": [{"kind": "service", "name": "s", "task_definition": "t",
                           "desired_count": {"diurnal": {"peak": 5, "trough": 1, "peak_at": "12h"}}}]}
    loaded = scenario_from_mapping(data, path=SCENARIOS / "x.yaml")
    at_peak = Simulation(loaded, until=12 * 3600 + 1).run()
    assert (at_peak.tasks["final_state"] == "RUNNING").sum() == 5
    at_night = Simulation(loaded, until=23.9 * 3600).run()
    assert (at_night.tasks["final_state"] == "RUNNING").sum() == 1


# --- device sets in a scenario ----------------------------------------------------------------------

def _device_set_scenario(workload: dict, count: int = 3) -> dict:
    return {"name": "x", "duration": "2h", "task_definitions": {"t": "taskdefs/inf2-24xlarge-2chip.json",
                                                                "one": "taskdefs/trn1-batch-1chip.json"},
            "cluster": {"fleets": [{"instance_type": "inf2.24xlarge", "count": count},
                                   {"instance_type": "trn1.32xlarge", "count": 1}]},
            "workloads": [workload]}


def test_a_service_with_device_sets_runs_one_service_per_block_and_splits_its_count() -> None:
    data = _device_set_scenario({"kind": "service", "name": "vllm", "task_definition": "t", "desired_count": 5,
                                 "device_sets": "auto"})
    loaded = scenario_from_mapping(data, path=SCENARIOS / "x.yaml")
    res = Simulation(loaded).run()
    running = res.tasks[res.tasks["final_state"] == "RUNNING"]
    by_group = running.groupby("group")
    assert by_group.size().to_dict() == {"service:vllm-neuron0-1": 2, "service:vllm-neuron2-3": 2,
                                         "service:vllm-neuron4-5": 1}
    for group, tasks in by_group:
        label = group.removeprefix("service:vllm-neuron")
        first, last = (int(c) for c in label.split("-"))
        assert set(tasks["chips"]) == {f"{first},{last}"}
        assert set(tasks["workload"]) == {"vllm"}
    assert set(res.summary.service_shortfall_task_hours) == {"vllm-neuron0-1", "vllm-neuron2-3", "vllm-neuron4-5"}


def test_run_task_calls_with_device_sets_go_to_the_blocks_in_turn() -> None:
    data = _device_set_scenario({"kind": "run_task", "name": "batch", "task_definition": "one", "duration": "1h",
                                 "arrivals": {"type": "interval", "every": "1m"}, "max_calls": 20,
                                 "device_sets": "auto"})
    res = Simulation(scenario_from_mapping(data, path=SCENARIOS / "x.yaml")).run()
    tasks = res.tasks.sort_values("submit")
    assert list(tasks["family"]) == [f"trn1-batch-1chip-neuron{k % 16}" for k in range(20)]
    started = tasks[tasks["start"].notna()]
    assert list(started["chips"]) == [str(k % 16) for k in range(len(started))]


def test_each_blocks_tasks_keep_to_distinct_instances_so_ecs_blind_placement_never_fails_at_start() -> None:
    data = _device_set_scenario({"kind": "run_task", "name": "batch", "task_definition": "one", "duration": "1h",
                                 "arrivals": {"type": "interval", "every": "1m"}, "max_calls": 48,
                                 "on_no_capacity": "wait", "device_sets": "auto"})
    data["device_mode"] = "ecs-blind"
    res = Simulation(scenario_from_mapping(data, path=SCENARIOS / "x.yaml")).run()
    assert res.summary.tasks.failed == {}
    started = res.tasks[res.tasks["start"].notna()]
    assert len(started) > 16  # later calls waited for their block and ran after the first hour
    for _, tasks in started.groupby("family"):  # one trn1 instance: a block's tasks never overlap in time
        spans = sorted(zip(tasks["start"], tasks["end"].fillna(math.inf), strict=True))
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


@pytest.mark.parametrize(("change", "path", "words"), [
    ({"device_sets": {"instance_type": "inf2.48xlarge"}}, "workloads[0].device_sets", "constrained to"),
    ({"device_sets": {"instance_type": "inf2.24xlarg"}}, "workloads[0].device_sets.instance_type", "did you mean"),
    ({"device_sets": "any"}, "workloads[0].device_sets", "must be 'auto'"),
    ({"task_definition": "m", "device_sets": {"instance_type": "inf2.24xlarge"}}, "workloads[0].device_sets",
     "names none"),
    ({"desired_count": {"diurnal": {"peak": 4, "trough": 9}}}, "workloads[0].desired_count.diurnal.trough",
     "must not exceed peak"),
    ({"schedule": {"repeat": "1h", "steps": [{"at": "2h", "count": 1}]}, "desired_count": None},
     "workloads[0].schedule.steps", "before repeat"),
])
def test_bad_device_sets_and_counts_exit_2_with_the_field_path(change: dict, path: str, words: str,
                                                                tmp_path: Path) -> None:
    workload = {"kind": "service", "name": "s", "task_definition": "t", "desired_count": 2, **change}
    workload = {k: v for k, v in workload.items() if v is not None}
    data = _device_set_scenario(workload)
    data["task_definitions"] = {k: str(TASKDEFS / Path(v).name) for k, v in data["task_definitions"].items()}
    data["task_definitions"]["m"] = str(TASKDEFS / "cpu-sidecar.json")
    file = tmp_path / "bad.yaml"
    file.write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, "-m", "scheduler", "run", str(file), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert f"{file}: {path}: " in lines[0] and words in lines[0]
    assert not (tmp_path / "out").exists()


# --- the device-sets command ------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scheduler", *args], capture_output=True, text=True, timeout=120)


def test_device_sets_command_writes_registerable_json_into_the_folder_only(tmp_path: Path) -> None:
    out = tmp_path / "sets"
    proc = _cli("device-sets", str(TASKDEFS / "llama-inf2-2chip.json"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert files == [f"llama-inf2-2chip-neuron{a}-{a + 1}.json" for a in (0, 2, 4)]
    for name in files:
        document = json.loads((out / name).read_text())
        assert botocore_model.validate_input("RegisterTaskDefinition", document) == []
        assert read_task_definition(out / name).valid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sets"]
    again = _cli("device-sets", str(TASKDEFS / "trn1-batch-1chip.json"), "--out", str(out))  # replaces its own
    assert again.returncode == 0, again.stderr
    assert len([p for p in out.iterdir() if not p.name.startswith(".")]) == 16


@pytest.mark.parametrize(("args", "words"), [
    (["neuron-1chip-any.json"], "--instance-type: the task definition names no instance type"),
    (["neuron-managed.json", "--instance-type", "inf2.24xlarge"], "manual-mode"),
    (["inf2-24xlarge-2chip.json", "--instance-type", "trn1.32xlarge"], "constrained to inf2.24xlarge"),
    (["invalid/bad-cpu-string.json", "--instance-type", "inf2.24xlarge"], "$.cpu"),
])
def test_device_sets_command_bad_input_is_one_line_exit_2_and_writes_nothing(args: list[str], words: str,
                                                                           tmp_path: Path) -> None:
    proc = _cli("device-sets", str(TASKDEFS / args[0]), *args[1:], "--out", str(tmp_path / "sets"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr
    assert list(tmp_path.iterdir()) == []


# --- the planner's example --------------------------------------------------------------------------

def test_the_llama_example_is_short_and_shows_the_shortfall_at_12_inf2_not_at_14() -> None:
    path = SCENARIOS / "llama-inf2.yaml"
    assert len(path.read_text().splitlines()) < 60
    loaded = load_scenario(path)
    assert len(loaded.model.task_definitions) == 2
    assert [label for label, _ in loaded.device_sets["llama"]] == ["neuron0-1", "neuron2-3", "neuron4-5"]
    assert len(loaded.device_sets["batch"]) == 16
    short = {}
    for count in (12, 14):
        res = Simulation(load_scenario(path, overrides={"cluster.fleets.0.count": count}), until=86400).run()
        short[count] = sum(res.summary.service_shortfall_task_hours.values())
        # the workload's own figure totals its blocks' services: what `shortfall[llama]` targets read
        assert res.summary.workloads["llama"].shortfall_task_hours == pytest.approx(short[count], abs=1e-5)
    assert short[12] > 1.0
    assert short[14] == 0.0


def test_a_scenario_error_names_the_scenario_for_an_unresolvable_auto() -> None:
    data = _device_set_scenario({"kind": "run_task", "name": "r", "task_definition": "n", "duration": "1h",
                                 "arrivals": {"type": "once"}, "device_sets": "auto"})
    data["task_definitions"]["n"] = "taskdefs/neuron-1chip-any.json"
    with pytest.raises(ScenarioError, match=r"workloads\[0\]\.device_sets: 'auto' cannot tell"):
        scenario_from_mapping(data, path=SCENARIOS / "x.yaml")


def test_a_snapshot_of_a_device_set_run_keeps_each_blocks_task_definition_and_distinct_instance(
        tmp_path: Path) -> None:
    from scheduler.cli import main

    path = SCENARIOS / "llama-inf2.yaml"
    assert main(["run", str(path), "--until", "16h", "--out", str(tmp_path / "run"), "--no-report"]) == 0
    snap = tmp_path / "snap"
    assert main(["snapshot", "--from-results", str(tmp_path / "run"), "--scenario", str(path),
                 "--out", str(snap)]) == 0
    block = json.loads((snap / "describe-task-definition-llama-inf2-2chip-neuron2-3-1.json").read_text())
    devices = block["taskDefinition"]["containerDefinitions"][0]["linuxParameters"]["devices"]
    assert [d["hostPath"] for d in devices] == ["/dev/neuron2", "/dev/neuron3"]
    services = json.loads((snap / "describe-services.json").read_text())["services"]
    llama = [s for s in services if s["serviceName"].startswith("llama-")]
    assert [s["serviceName"] for s in llama] == ["llama-neuron0-1", "llama-neuron2-3", "llama-neuron4-5"]
    assert all({"type": "distinctInstance"} in s["placementConstraints"] for s in llama)
    assert sum(s["desiredCount"] for s in llama) == DiurnalCount(peak=40, trough=8).count_at(16 * 3600)
