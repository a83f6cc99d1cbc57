"""The Python API (Cluster) and the ECS-shaped views, checked against botocore's output shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler import Cluster
from scheduler.ecs.botocore_model import validate_output
from scheduler.errors import PlacementError

TASKDEFS = Path(__file__).resolve().parents[1] / "scenarios" / "taskdefs"


def resources(ci: dict, which: str) -> dict[str, dict]:
    return {r["name"]: r for r in ci[which]}


def test_trn1_takes_the_16_per_chip_variants_and_refuses_a_17th() -> None:
    c = Cluster("demo")
    (row,) = c.add_instances("trn1.32xlarge", 1)
    for chip in range(16):
        result = c.run_task(TASKDEFS / f"trn1-chip-{chip:02d}.json")
        assert len(result.tasks) == 1 and not result.failures
        assert result.tasks[0].chips == (chip,)
    extra = c.run_task(TASKDEFS / "trn1-chip-03.json")
    assert not extra.tasks and len(extra.failures) == 1
    assert "/dev/neuron3" in str(extra.failures[0])
    view = c.describe_container_instances()
    (ci,) = view["containerInstances"]
    assert resources(ci, "remainingResources")["NEURON_DEVICES"]["stringSetValue"] == []
    assert resources(ci, "registeredResources")["NEURON_DEVICES"]["stringSetValue"] == [str(i) for i in range(16)]
    assert ci["runningTasksCount"] == 16
    assert validate_output("DescribeContainerInstances", view) == []
    tasks = c.describe_tasks()
    assert validate_output("DescribeTasks", tasks) == []
    ids = sorted(int(t["containers"][0]["neuronDeviceIds"][0]) for t in tasks["tasks"])
    assert ids == list(range(16))
    assert c.holder_of(row, "/dev/neuron7") is not None


def test_managed_task_gets_every_chip_as_neuron_device_ids() -> None:
    c = Cluster("mi")
    c.add_instances("inf2.48xlarge", 1, launch_type="MANAGED_INSTANCES")
    result = c.run_task(TASKDEFS / "neuron-managed.json")
    (task,) = result.tasks
    view = c.describe_tasks()
    assert validate_output("DescribeTasks", view) == []
    assert view["tasks"][0]["containers"][0]["neuronDeviceIds"] == [str(i) for i in range(12)]
    second = c.run_task(TASKDEFS / "neuron-managed.json")
    assert second.failures and second.failures[0].reason == "RESOURCE:NEURON_DEVICES"
    c.stop_task(task.task_id)
    (ci,) = c.describe_container_instances()["containerInstances"]
    assert resources(ci, "remainingResources")["NEURON_DEVICES"]["stringSetValue"] == [str(i) for i in range(12)]


def test_gpu_ids_show_in_both_views() -> None:
    c = Cluster("g")
    c.add_instances("g5.12xlarge", 1)
    spec_path = TASKDEFS / "g5-gpu.json"
    got = [c.run_task(spec_path).tasks[0] for _ in range(4)]
    assert len({t.gpu_ids[0] for t in got}) == 4
    (ci,) = c.describe_container_instances()["containerInstances"]
    assert resources(ci, "remainingResources")["GPU"]["stringSetValue"] == []
    view = c.describe_tasks()
    assert validate_output("DescribeTasks", view) == []
    assert all(len(t["containers"][0]["gpuIds"]) == 1 for t in view["tasks"])


def test_run_task_response_shape_and_failures() -> None:
    c = Cluster("f")
    c.add_instances("c6i.large", 1)
    result = c.run_task(TASKDEFS / "inf2-chip-0.json", count=2)
    response = result.as_response(c)
    assert validate_output("RunTask", response) == []
    assert [f["reason"] for f in response["failures"]] == ["MemberOf placement constraint unsatisfied"] * 2


def test_run_task_count_limit() -> None:
    c = Cluster("x")
    c.add_instances("c6i.large", 1)
    with pytest.raises(PlacementError, match="1-10"):
        c.run_task(TASKDEFS / "cpu-sidecar.json", count=11)


def test_release_restores_remaining_resources_exactly() -> None:
    c = Cluster("r")
    c.add_instances("inf2.24xlarge", 2, availability_zones=("us-east-1a", "us-east-1b"))
    before = c.describe_container_instances()
    ids = [t.task_id for _ in range(3) for t in c.run_task(TASKDEFS / "cpu-sidecar.json", count=4).tasks]
    for task_id in ids:
        c.stop_task(task_id)
    assert c.describe_container_instances() == before
    assert c.state.is_empty()
