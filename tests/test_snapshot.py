"""Cluster snapshots: AWS CLI describe outputs as a scenario's starting cluster, their checks, the what-if
run on top, and a run's end state written back as a snapshot (round trip)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.catalog import default_catalog
from scheduler.cli import main
from scheduler.ecs import botocore_model
from scheduler.errors import ScenarioError
from scheduler.scenario import load_scenario
from scheduler.scenario.snapshot import read_snapshot
from scheduler.sim.engine import Simulation

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "scenarios" / "snapshots" / "mixed-trn1-inf2"
WHAT_IF = ROOT / "scenarios" / "what-if-on-snapshot.yaml"
TASKDEFS = ROOT / "scenarios" / "taskdefs"
WHAT_IF_WORKLOADS = {"embed-more", "trn1-probe"}


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _command(file: Path) -> str:
    name = file.name.replace("_", "-")
    return next(c for c in botocore_model.CLI_OUTPUTS if name.startswith(c))


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "snap"
    shutil.copytree(EXAMPLE, folder)
    return folder


def _edit(folder: Path, name: str, change: Callable[[dict], None]) -> None:
    doc = _json(folder / name)
    change(doc)
    (folder / name).write_text(json.dumps(doc), encoding="utf-8")


def _scenario(tmp_path: Path, folder: Path, workloads: str | None = None) -> Path:
    """A scenario on the snapshot; by default a what-if that does nothing before 1h."""
    workloads = workloads or ("  - {name: later, kind: run_task, task_definition: probe, duration: 1m,\n"
                              "     arrivals: {type: once, at: 1h}}\n")
    path = tmp_path / "on-snapshot.yaml"
    path.write_text(f"name: on-snapshot\nduration: 2h\nsnapshot: {folder.name}\n"
                    f"task_definitions:\n  probe: {TASKDEFS / 'trn1-chip-08.json'}\n"
                    f"  embed: {TASKDEFS / 'inf2-chip-0.json'}\ncluster: {{}}\nworkloads:\n{workloads}",
                    encoding="utf-8")
    return path


def _holdings(folder: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """task id -> (EC2 instance id, chips), read straight from the JSON: neuronDeviceIds, else the devices
    its task definition names."""
    instances = [ci for f in folder.glob("describe-container-instances*.json")
                 for ci in _json(f)["containerInstances"]]
    ec2 = {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in instances}
    devices: dict[str, list[int]] = {}
    for f in folder.glob("describe-task-definition*.json"):
        td = _json(f)["taskDefinition"]
        devices[td["taskDefinitionArn"].split("task-definition/")[1]] = [
            int(d["hostPath"].removeprefix("/dev/neuron")) for c in td["containerDefinitions"]
            for d in (c.get("linuxParameters") or {}).get("devices", [])]
    out = {}
    for f in folder.glob("describe-tasks*.json"):
        for t in _json(f)["tasks"]:
            ids = [int(i) for c in t["containers"] for i in c.get("neuronDeviceIds", [])]
            chips = ids or devices[t["taskDefinitionArn"].split("task-definition/")[1]]
            out[t["taskArn"].rsplit("/", 1)[1]] = (ec2[t["containerInstanceArn"]], tuple(sorted(chips)))
    return out


def _held_at_end(describe_tasks: dict, describe_instances: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    ec2 = {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in describe_instances["containerInstances"]}
    return {t["taskArn"].rsplit("/", 1)[1]: (ec2[t["containerInstanceArn"]],
                                             tuple(sorted(int(i) for c in t["containers"]
                                                          for i in c.get("neuronDeviceIds", []))))
            for t in describe_tasks["tasks"] if t["lastStatus"] == "RUNNING"}


# --- the bundled example ----------------------------------------------------------------------------------

def test_bundled_snapshot_files_are_valid_aws_cli_outputs() -> None:
    files = sorted(EXAMPLE.glob("*.json"))
    assert {_command(f) for f in files} == set(botocore_model.CLI_OUTPUTS)  # all five commands
    for file in files:
        assert botocore_model.validate_cli_output(_command(file), _json(file)) == [], file.name


def test_output_shape_check_finds_a_wrong_field() -> None:
    doc = _json(EXAMPLE / "describe-tasks.json")
    doc["tasks"][0]["lastStatus"] = 5
    issues = botocore_model.validate_cli_output("describe-tasks", doc)
    assert [(i.rule, i.path) for i in issues] == [("wrong-type", "$.tasks[0].lastStatus")]


def test_bundled_snapshot_reads_instances_tasks_chips_services_and_providers() -> None:
    snap = read_snapshot(EXAMPLE, default_catalog())
    assert sorted(i.instance_type for i in snap.instances) == [
        "inf2.24xlarge", "inf2.24xlarge", "inf2.8xlarge", "inf2.xlarge", "inf2.xlarge", "trn1.32xlarge"]
    ec2 = {i.arn: i.ec2_instance_id for i in snap.instances}
    assert {t.task_id: (ec2[t.instance_arn], t.chips) for t in snap.tasks} == _holdings(EXAMPLE)
    assert snap.chips_held == 14
    assert sorted(s.name for s in snap.services) == ["chat", "embed", "summarize"]
    assert {p.name: p.type for p in snap.providers} == {
        "trn1-asg": "EC2_AUTOSCALING", "inf2-asg": "EC2_AUTOSCALING", "neuron-mi": "MANAGED_INSTANCES"}
    mi = next(i for i in snap.instances if i.capacity_provider == "neuron-mi")
    assert mi.launch_type == "MANAGED_INSTANCES"
    assert snap.skipped == {"FARGATE capacity providers": 2}


def test_what_if_service_runs_on_the_free_chips_only() -> None:
    loaded = load_scenario(WHAT_IF)
    sim = Simulation(loaded)
    res = sim.run()
    snapshot_chips = _holdings(EXAMPLE)
    at_end = _held_at_end(res.describe_tasks, res.describe_container_instances)
    # the snapshot's tasks still run and still hold exactly their chips
    assert {k: at_end[k] for k in snapshot_chips} == snapshot_chips
    # no chip is held twice
    pairs = [(inst, chip) for inst, chips in at_end.values() for chip in chips]
    assert len(pairs) == len(set(pairs))
    # the what-if tasks hold only chips that were free in the snapshot
    held_before = {(inst, chip) for inst, chips in snapshot_chips.values() for chip in chips}
    tasks = res.tasks
    what_if = tasks[tasks["workload"].isin(WHAT_IF_WORKLOADS)]
    started = what_if[what_if["start"].notna()]
    assert len(started) == 2
    for row in started.itertuples():
        assert {(row.instance_id, int(c)) for c in row.chips.split(",")}.isdisjoint(held_before)
    # one embedding replica found the one inf2.xlarge whose chip 0 is free; the other waits
    assert sorted(what_if["final_state"]) == ["PROVISIONING", "RUNNING", "RUNNING"]
    summary = res.summary
    assert summary.snapshot.tasks_seeded == 5 and summary.snapshot.chips_held == 14
    assert summary.tasks.submitted == 3 and summary.tasks.placed == 2
    assert sim.conservation_ok()
    seeded = tasks[tasks["task_id"].isin(snapshot_chips)]
    assert seeded["submit"].isna().all() and (seeded["start"] == 0).all() and seeded["wait_s"].isna().all()
    assert botocore_model.validate_output("DescribeTasks", res.describe_tasks) == []
    assert botocore_model.validate_output("DescribeContainerInstances", res.describe_container_instances) == []


def test_snapshot_instances_keep_what_their_agents_registered() -> None:
    res = Simulation(load_scenario(WHAT_IF), until=60).run()
    source = {ci["ec2InstanceId"]: ci for ci in _json(EXAMPLE / "describe-container-instances.json")[
        "containerInstances"]}
    for ci in res.describe_container_instances["containerInstances"]:
        original = source[ci["ec2InstanceId"]]
        assert ci["containerInstanceArn"] == original["containerInstanceArn"]
        reg = {r["name"]: r.get("integerValue") for r in ci["registeredResources"]}
        was = {r["name"]: r.get("integerValue") for r in original["registeredResources"]}
        assert (reg["CPU"], reg["MEMORY"]) == (was["CPU"], was["MEMORY"])
        attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
        assert attrs["team"] == "ml-platform"
    assert res.describe_tasks["tasks"][0]["clusterArn"].endswith(":cluster/prod-inference")


def test_snapshot_services_go_on_being_reconciled(tmp_path: Path) -> None:
    folder = _copy(tmp_path)

    def desired(doc: dict) -> None:
        for svc in doc["services"]:
            svc["desiredCount"] = {"chat": 0, "embed": 2}.get(svc["serviceName"], svc["desiredCount"])
    _edit(folder, "describe-services.json", desired)
    res = Simulation(load_scenario(_scenario(tmp_path, folder)), until=600).run()
    tasks = res.tasks
    chat = tasks[tasks["workload"] == "chat"]
    assert len(chat) == 2 and (chat["final_state"] == "STOPPED").all()
    assert (chat["stop_code"] == "ServiceSchedulerInitiated").all() and (chat["end"] == 0).all()
    embed = tasks[(tasks["workload"] == "embed") & (tasks["final_state"] == "RUNNING")]
    assert sorted(embed["instance_id"]) == ["i-0d7a4f5b6e8a9da04", "i-0e8b5a6c7f9bae105"]
    assert res.summary.service_shortfall_task_hours["embed"] == 0


# --- inconsistent snapshots: one line naming the file and the JSON path, exit code 2 ----------------------

def _unknown_instance(doc: dict) -> None:
    doc["tasks"][3]["containerInstanceArn"] = doc["tasks"][3]["containerInstanceArn"][:-4] + "ffff"


def _remaining_over_registered(doc: dict) -> None:
    doc["containerInstances"][1]["remainingResources"][0]["integerValue"] = 99000


def _chip_twice(doc: dict) -> None:  # the second chat replica on the first one's instance
    doc["tasks"][2]["containerInstanceArn"] = doc["tasks"][1]["containerInstanceArn"]


def _unknown_type(doc: dict) -> None:
    attrs = doc["containerInstances"][3]["attributes"]
    next(a for a in attrs if a["name"] == "ecs.instance-type")["value"] = "inf2.xlarg"


def _held_but_remaining(doc: dict) -> None:
    doc["containerInstances"][5]["remainingResources"][-1]["stringSetValue"] = ["0"]


def _task_missing(doc: dict) -> None:
    del doc["tasks"][3]


def _not_json_shape(doc: dict) -> None:
    doc["tasks"][0]["containers"][0]["cpu"] = 0


def _device_not_on_instance(doc: dict) -> None:
    doc["tasks"][4]["containers"][0]["neuronDeviceIds"] = ["3"]


def _names_a_missing_chip(doc: dict) -> None:
    doc["taskDefinition"]["containerDefinitions"][0]["linuxParameters"]["devices"][0]["hostPath"] = "/dev/neuron1"


TASKS, INSTANCES = "describe-tasks.json", "describe-container-instances.json"
BAD = [  # (change, file it changes, file the error names, JSON path, words)
    (_unknown_instance, TASKS, "describe-tasks.json", "$.tasks[3].containerInstanceArn",
     "the task's container instance is not in describe-container-instances"),
    (_remaining_over_registered, INSTANCES, "describe-container-instances.json",
     "$.containerInstances[1].remainingResources[0]", "remaining CPU 99000 is more than the 98304 registered"),
    (_chip_twice, TASKS, "describe-tasks.json", "$.tasks[2]", "/dev/neuron0 on i-0b5e2d3f4c6e7b802 is held twice"),
    (_unknown_type, INSTANCES, "describe-container-instances.json", "$.containerInstances[3].attributes[6].value",
     "unknown instance type 'inf2.xlarg'; did you mean inf2.xlarge"),
    (_held_but_remaining, INSTANCES, "describe-container-instances.json",
     "$.containerInstances[5].remainingResources[4].stringSetValue",
     "/dev/neuron0 is held by a task but listed as remaining NEURON_DEVICES"),
    (_task_missing, TASKS, "describe-container-instances.json", "$.containerInstances[3].remainingResources[0]",
     "remaining CPU is 1024, but registered 4096 less the 0 its tasks in describe-tasks hold leaves 4096"),
    (_not_json_shape, TASKS, "describe-tasks.json", "$.tasks[0].containers[0].cpu",
     "expected string, got integer 0; not what `aws ecs describe-tasks --output json` prints"),
    (_device_not_on_instance, TASKS, "describe-tasks.json", "$.tasks[4].containers[0].neuronDeviceIds",
     "/dev/neuron3 is not a Neuron device of i-0f9c6b7d8a0cbf206"),
    (_names_a_missing_chip, "describe-task-definition-inf2-embed.json", "describe-tasks.json",
     "$.tasks[3].taskDefinitionArn", "the task definition names /dev/neuron1, which i-0d7a4f5b6e8a9da04"),
]


@pytest.mark.parametrize(("change", "target", "file", "path", "words"), BAD,
                         ids=[b[0].__name__.strip("_") for b in BAD])
def test_inconsistent_snapshot_names_file_and_json_path(tmp_path: Path, change: Callable[[dict], None], target: str,
                                                        file: str, path: str, words: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy(tmp_path)
    _edit(folder, target, change)
    with pytest.raises(ScenarioError) as caught:
        read_snapshot(folder, default_catalog())
    assert caught.value.file == str(folder / file)
    assert caught.value.path == path
    assert words in caught.value.message
    assert main(["run", str(_scenario(tmp_path, folder)), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{folder / file}: {path}: " in err and "Traceback" not in err


def test_a_task_whose_task_definition_is_missing(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "describe-task-definition-inf2-embed.json").unlink()
    with pytest.raises(ScenarioError) as caught:
        read_snapshot(folder, default_catalog())
    assert caught.value.file == str(folder / "describe-tasks.json")
    assert caught.value.path == "$.tasks[3].taskDefinitionArn"
    assert "task definition inf2-embed:2 is not in any describe-task-definition file" in caught.value.message


def test_a_what_if_workload_may_not_take_a_snapshot_service_name(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    scenario = _scenario(tmp_path, folder, "  - {name: chat, kind: service, task_definition: probe}\n")
    with pytest.raises(ScenarioError, match="workload name 'chat' is also a service of the snapshot"):
        load_scenario(scenario)


def test_snapshot_folder_must_exist(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, tmp_path / "nowhere")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    assert caught.value.path == "snapshot" and "not a folder" in caught.value.message


# --- a snapshot of a run: round trip ------------------------------------------------------------------------

@pytest.mark.parametrize("with_scenario", [True, False])
def test_run_snapshot_load_gives_the_same_held_chips_and_resources(tmp_path: Path, with_scenario: bool) -> None:
    first = tmp_path / "first"
    assert main(["run", str(WHAT_IF), "--out", str(first), "--no-report"]) == 0
    snap = tmp_path / "snap"
    extra = ["--scenario", str(WHAT_IF)] if with_scenario else []
    assert main(["snapshot", "--from-results", str(first), "--out", str(snap), *extra]) == 0
    for file in snap.glob("*.json"):
        assert botocore_model.validate_cli_output(_command(file), _json(file)) == [], file.name
    second = Simulation(load_scenario(_scenario(tmp_path, snap)), until=600).run()
    before_tasks, before_instances = _json(first / "describe_tasks.json"), _json(
        first / "describe_container_instances.json")
    assert _held_at_end(second.describe_tasks, second.describe_container_instances) == _held_at_end(
        before_tasks, before_instances)

    def remaining(view: dict) -> dict[str, list]:
        return {ci["ec2InstanceId"]: ci["remainingResources"] for ci in view["containerInstances"]}
    assert remaining(second.describe_container_instances) == remaining(before_instances)
    assert second.summary.snapshot.services == ("chat", "embed", "embed-more", "summarize", "trn1-probe")


# --- property: any consistent subset of the snapshot's tasks loads to exactly what it describes -----------

def _drop_tasks(folder: Path, keep: set[int]) -> None:
    """Keep only these tasks, and make remaining resources agree (as a real cluster's would)."""
    tasks = _json(EXAMPLE / "describe-tasks.json")
    dropped = [t for k, t in enumerate(tasks["tasks"]) if k not in keep]
    tasks["tasks"] = [t for k, t in enumerate(tasks["tasks"]) if k in keep]
    (folder / "describe-tasks.json").write_text(json.dumps(tasks), encoding="utf-8")
    chips = _holdings(EXAMPLE)
    instances = _json(EXAMPLE / "describe-container-instances.json")
    for ci in instances["containerInstances"]:
        for t in dropped:
            if t["containerInstanceArn"] != ci["containerInstanceArn"]:
                continue
            for res in ci["remainingResources"]:
                if res["name"] in ("CPU", "MEMORY"):
                    res["integerValue"] += int(t["cpu" if res["name"] == "CPU" else "memory"])
                if res["name"] == "NEURON_DEVICES":
                    res["stringSetValue"] = sorted({*res["stringSetValue"],
                                                    *map(str, chips[t["taskArn"].rsplit("/", 1)[1]][1])}, key=int)
        ci["runningTasksCount"] = sum(t["containerInstanceArn"] == ci["containerInstanceArn"] for t in tasks["tasks"])
    (folder / "describe-container-instances.json").write_text(json.dumps(instances), encoding="utf-8")
    services = _json(EXAMPLE / "describe-services.json")
    services["services"] = []  # no service may replace what was dropped
    (folder / "describe-services.json").write_text(json.dumps(services), encoding="utf-8")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keep=st.sets(st.integers(0, 4)))
def test_seeded_state_is_what_the_snapshot_says(tmp_path_factory: pytest.TempPathFactory, keep: set[int]) -> None:
    tmp_path = tmp_path_factory.mktemp("prop")
    folder = _copy(tmp_path)
    _drop_tasks(folder, keep)
    expected = _holdings(folder)
    res = Simulation(load_scenario(_scenario(tmp_path, folder)), until=60).run()
    assert _held_at_end(res.describe_tasks, res.describe_container_instances) == expected
    cpu = {ci["ec2InstanceId"]: next(r["integerValue"] for r in ci["remainingResources"] if r["name"] == "CPU")
           for ci in _json(folder / "describe-container-instances.json")["containerInstances"]}
    assert {ci["ec2InstanceId"]: next(r["integerValue"] for r in ci["remainingResources"] if r["name"] == "CPU")
            for ci in res.describe_container_instances["containerInstances"]} == cpu
    assert res.summary.snapshot.tasks_seeded == len(keep)


def test_snapshot_command_refuses_a_folder_that_is_not_a_run(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["snapshot", "--from-results", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no describe_container_instances.json" in err
    assert not (tmp_path / "s").exists()  # nothing written for a folder that is not a run


def test_a_new_snapshot_replaces_an_earlier_one_in_the_same_folder_and_keeps_a_users_file(tmp_path: Path) -> None:
    first = tmp_path / "first"
    assert main(["run", str(WHAT_IF), "--out", str(first), "--no-report", "--until", "10m"]) == 0
    snap = tmp_path / "snap"
    assert main(["snapshot", "--from-results", str(first), "--out", str(snap)]) == 0
    stale = snap / "describe-task-definition-old-1.json"
    shutil.copy(EXAMPLE / "describe-task-definition-inf2-chat.json", stale)
    assert main(["snapshot", "--from-results", str(first), "--out", str(snap)]) == 0
    # a file the tool did not write is never deleted (the results-folder rule); the tool's files are replaced
    assert stale.exists() and not list(snap.glob(".partial-*")) and not list(snap.glob(".neuron-sim-*"))
    with pytest.raises(ScenarioError, match=r"describe-task-definition-old-1\.json"):  # it clashes, and says where
        read_snapshot(snap, default_catalog())
    stale.unlink()
    assert read_snapshot(snap, default_catalog()).chips_held == 16


def test_a_snapshot_name_too_long_for_the_file_system_is_one_clear_error(tmp_path: Path) -> None:
    # found by the long fuzz run: the file system's ENAMETOOLONG escaped as an OSError
    shutil.copytree(WHAT_IF.parent / "taskdefs", tmp_path / "taskdefs")  # the task definitions it names
    scenario = tmp_path / WHAT_IF.name
    lines = [f"snapshot: {'x' * 5000}" if line.startswith("snapshot:") else line
             for line in WHAT_IF.read_text().splitlines()]
    scenario.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    assert caught.value.path == "snapshot" and "\n" not in str(caught.value) and len(str(caught.value)) < 1000
