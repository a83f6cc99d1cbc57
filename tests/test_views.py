"""The views above the core: ids from cluster name and row, ECS words built from the core's structured outcomes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scheduler import Cluster
from scheduler.catalog import default_catalog
from scheduler.ecs.botocore_model import validate_output
from scheduler.ecs.taskspec import Constraint, ContainerSpec, NeuronMode, TaskSpec
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure, StartFailure
from scheduler.placement.state import ClusterState
from scheduler.views import describe, events, identity

TASKDEFS = Path(__file__).resolve().parents[1] / "scenarios" / "taskdefs"
CAT = default_catalog()


def test_ids_are_deterministic_per_cluster_and_row_and_shaped_as_aws_prints_them() -> None:
    arn = identity.container_instance_arn("demo", 3)
    assert re.fullmatch(r"arn:aws:ecs:us-east-1:\d{12}:container-instance/demo/[0-9a-f]{32}", arn)
    assert arn.rsplit("/", 1)[1] == identity.container_instance_id("demo", 3)
    assert re.fullmatch(r"i-[0-9a-f]{17}", identity.ec2_instance_id("demo", 3))
    assert identity.ec2_instance_id("demo", 3) == identity.ec2_instance_id("demo", 3)
    ids = {identity.ec2_instance_id(cluster, row) for cluster in ("a", "b") for row in range(50)}
    assert len(ids) == 100
    assert identity.task_id(255) == "0" * 30 + "ff"
    assert identity.task_arn("demo", "ab") == f"arn:aws:ecs:{identity.REGION}:{identity.ACCOUNT}:task/demo/ab"


def test_core_rows_carry_no_arn_and_only_the_ids_the_caller_gave() -> None:
    state = ClusterState("core")
    row = state.add_instance(CAT.get("g5.12xlarge"))
    inst = state.instances[row]
    assert not hasattr(inst, "arn")
    assert inst.ec2_instance_id is None and inst.gpu_ids == ("0", "1", "2", "3")
    assert not any(v.startswith(("ami-", "vpc-", "subnet-")) for v in inst.attributes.values())
    named = identity.register_instance(state, CAT.get("g5.12xlarge"), availability_zone="us-east-1b")
    inst = state.instances[named]
    assert inst.ec2_instance_id == identity.ec2_instance_id("core", named)
    assert inst.gpu_ids == identity.gpu_ids(inst.ec2_instance_id, 4)
    assert inst.attributes["ecs.subnet-id"] == identity.id_attributes("core", CAT.get("g5.12xlarge"),
                                                                      "us-east-1b")["ecs.subnet-id"]
    view = describe.describe_container_instances(state)["containerInstances"]
    assert "ec2InstanceId" not in view[0] and view[1]["ec2InstanceId"] == inst.ec2_instance_id
    assert [ci["containerInstanceArn"] for ci in view] == [identity.container_instance_arn("core", r) for r in (0, 1)]


def test_caller_attributes_win_over_id_attributes() -> None:
    state = ClusterState("c")
    row = identity.register_instance(state, CAT.get("m6i.xlarge"), availability_zone="us-east-1a",
                                     attributes={"ecs.vpc-id": "vpc-mine", "stack": "prod"})
    assert state.instances[row].attributes["ecs.vpc-id"] == "vpc-mine"
    assert state.instances[row].attributes["stack"] == "prod"


def test_memberof_ec2_instance_id_reads_the_id_the_views_gave_the_core() -> None:
    c = Cluster("q")
    c.add_instances("m6i.xlarge", 3)
    target = c.describe_container_instances()["containerInstances"][2]["ec2InstanceId"]
    result = c.run_task(cpu_spec(),
                        constraints=[Constraint("memberOf", f"ec2InstanceId == {target}")])
    assert [t.instance for t in result.tasks] == [2]


def cpu_spec(cpu: int = 1024, memory: int = 2048) -> TaskSpec:
    return TaskSpec(family="web", cpu=cpu, memory=memory, containers=(ContainerSpec("c"),))


def test_runtask_failure_names_the_closest_instance_by_its_arn() -> None:
    c = Cluster("f")
    c.add_instances("c6i.large", 1)
    c.add_instances("c6i.2xlarge", 1)
    result = c.run_task(cpu_spec(cpu=8192, memory=20_000))
    (failure,) = result.failures
    assert failure.instance == 1 and failure.reason == "RESOURCE:MEMORY"
    (shown,) = result.as_response(c)["failures"]
    assert shown == {"reason": "RESOURCE:MEMORY", "arn": identity.container_instance_arn("f", 1),
                     "detail": failure.detail}
    arns = [ci["containerInstanceArn"] for ci in c.describe_container_instances()["containerInstances"]]
    assert shown["arn"] == arns[1]
    assert validate_output("RunTask", result.as_response(c)) == []


def test_unplaced_event_quotes_the_container_instance_id_and_the_core_phrase() -> None:
    state = ClusterState("ev")
    for name in ("c6i.large", "c6i.2xlarge"):
        identity.register_instance(state, CAT.get(name), availability_zone="us-east-1a")
    out = Placer(state).place(cpu_spec(cpu=8192, memory=20_000))
    assert isinstance(out, Failure)
    assert events.unplaced_event(out, state) == (
        "unable to place a task because no container instance met all of its requirements. The closest matching "
        f"container-instance {identity.container_instance_id('ev', 1)} has insufficient memory available.")
    bare = Failure("NO ACTIVE INSTANCES", "No Container Instances were found in your cluster")
    assert events.unplaced_event(bare, state) == ("unable to place a task. Reason: NO ACTIVE INSTANCES: "
                                                  "No Container Instances were found in your cluster.")


def manual(chip: int) -> TaskSpec:
    return TaskSpec(family="n", cpu=1024, memory=2048, neuron_mode=NeuronMode.MANUAL, chips=(chip,), chip_count=1,
                    containers=(ContainerSpec("c", chips=(chip,)),))


def test_start_failures_are_worded_and_keyed_from_fields() -> None:
    c = Cluster("blind", device_mode="ecs-blind")
    c.add_instances("inf2.xlarge", 1)
    first = c.run_task(manual(0)).tasks[0]
    busy = c.run_task(manual(0)).tasks[0]
    ec2_id = identity.ec2_instance_id("blind", 0)
    assert busy.stopped_reason == (f"TaskFailedToStart: /dev/neuron0 is already in use by task {first.task_id} on "
                                   f"{ec2_id}; the Neuron runtime cannot open it")
    missing = c.run_task(manual(3)).tasks[0]
    assert missing.stopped_reason.startswith('TaskFailedToStart: CannotStartContainerError: error gathering device '
                                             'information while adding custom device "/dev/neuron3"')
    assert missing.stopped_reason.endswith("(inf2.xlarge has 1 Neuron device(s))")
    in_use, gone = StartFailure(StartFailure.IN_USE, 0, "x"), StartFailure(StartFailure.MISSING, 3)
    assert events.start_failure_key(in_use) == "TaskFailedToStart: /dev/neuron0 in use"
    assert events.start_failure_key(gone) == "TaskFailedToStart: /dev/neuron3 missing"


def test_readme_python_example_runs_as_written(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    block = text.split("From Python:\n\n```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(root)
    names: dict = {}
    exec(compile(block, "README.md", "exec"), names)  # the project's own README, as a user runs it
    assert names["result"].tasks[0].chips == (0,)
    (failure,) = names["failed"].failures
    assert failure.reason == "RESOURCE:NEURON_DEVICES" and failure.instance == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "(0,)" and printed[-1] == identity.container_instance_arn("demo", 0)


def test_an_instance_registered_with_its_real_names_shows_them_everywhere() -> None:
    """A snapshot of a real cluster brings real ARNs and ids; the views show them, the core keeps only the ids."""
    c = Cluster("prod")
    real_arn = "arn:aws:ecs:eu-west-1:111122223333:container-instance/prod/5f0c0e6a1b2d4c3e8f9a0b1c2d3e4f50"
    row = identity.register_instance(c.state, CAT.get("g5.xlarge"), availability_zone="eu-west-1a", names=c.names,
                                     arn=real_arn, ec2_id="i-0123456789abcdef0", gpus=("GPU-real-0",))
    c.add_instances("g5.xlarge", 1)
    assert not hasattr(c.state.instances[row], "arn")
    (ci, other) = c.describe_container_instances()["containerInstances"]
    assert ci["containerInstanceArn"] == real_arn and ci["ec2InstanceId"] == "i-0123456789abcdef0"
    assert other["containerInstanceArn"] == identity.container_instance_arn("prod", 1)
    gpu = next(r for r in ci["registeredResources"] if r["name"] == "GPU")
    assert gpu["stringSetValue"] == ["GPU-real-0"]
    placed = c.run_task(cpu_spec(), constraints=[Constraint("memberOf", "ec2InstanceId == i-0123456789abcdef0")])
    assert placed.tasks[0].instance == row
    assert c.describe_tasks()["tasks"][0]["containerInstanceArn"] == real_arn
    failed = c.run_task(cpu_spec(cpu=4096, memory=20_000), constraints=[
        Constraint("memberOf", "ec2InstanceId == i-0123456789abcdef0")])
    assert failed.as_response(c)["failures"][0]["arn"] == real_arn
    assert events.unplaced_event(failed.failures[0], c.state, c.names).endswith(
        "container-instance 5f0c0e6a1b2d4c3e8f9a0b1c2d3e4f50 has insufficient CPU units available.")
