"""ECS-shaped views of the placement core's state: DescribeTasks, DescribeContainerInstances, RunTask failures.

These render what the core knows in the shapes of botocore's ECS output model, so tools that read
``aws ecs describe-tasks`` output read ours. Containers carry ``neuronDeviceIds`` (device indices, "0" for
/dev/neuron0) and ``gpuIds``; container instances carry CPU, MEMORY, PORTS, PORTS_UDP, GPU and
NEURON_DEVICES in ``registeredResources`` / ``remainingResources``.

The real EC2 agent does not register NEURON_DEVICES (only Managed Instances do); the simulator tracks
chips everywhere, and shows them on EC2 instances too unless ``ec2_neuron_devices=False``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scheduler.ecs.taskspec import NeuronMode, TaskSpec
from scheduler.placement.results import Failure
from scheduler.placement.state import AGENT_RESERVED_TCP_PORTS, ClusterState, ContainerInstance, chips_of
from scheduler.views import identity

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # simulated time 0


@dataclass(slots=True)
class TaskRecord:
    """What the views need to know of one task (the simulation and the Cluster facade keep these)."""

    task_id: str
    spec: TaskSpec
    group: str
    instance: int | None = None
    chips: tuple[int, ...] = ()
    gpu_ids: tuple[str, ...] = ()
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    launch_type: str | None = "EC2"
    capacity_provider: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_by: str | None = None
    pull_started_at: float | None = None  # the agent began pulling the task's images
    pull_stopped_at: float | None = None  # ... and finished


def timestamp(seconds: float | None, epoch: datetime = EPOCH) -> str | None:
    """Simulated seconds as the ISO-8601 timestamp the AWS CLI prints."""
    if seconds is None:
        return None
    return (epoch + timedelta(seconds=float(seconds))).isoformat()


def _container_devices(spec: TaskSpec, chips: tuple[int, ...], gpu_ids: tuple[str, ...]
                       ) -> list[tuple[list[str], list[str]]]:
    """Per container: (neuronDeviceIds, gpuIds) it was given."""
    held = set(chips)
    containers = spec.containers
    out: list[tuple[list[str], list[str]]] = []
    gpus_left = list(gpu_ids)
    first_essential = next((k for k, c in enumerate(containers) if c.essential), 0)
    for k, c in enumerate(containers):
        if spec.neuron_mode is NeuronMode.MANAGED:
            neuron = sorted(held) if c.neuron_all else []
        elif spec.neuron_mode is NeuronMode.MANUAL:
            neuron = sorted(held & set(c.chips))
        elif spec.neuron_mode is NeuronMode.TOPOLOGY:
            neuron = sorted(held) if k == first_essential else []
        else:
            neuron = []
        take = len(gpus_left) if getattr(spec, "gpus_all", False) and c.gpus else c.gpus
        mine, gpus_left = gpus_left[:take], gpus_left[take:]
        out.append(([str(i) for i in neuron], mine))
    return out


def describe_task(record: TaskRecord, state: ClusterState, *, epoch: datetime = EPOCH,
                  names: identity.InstanceNames | None = None) -> dict:
    """One ``Task`` object as DescribeTasks returns it (``names``: the cluster's container-instance ARNs)."""
    spec = record.spec
    t_arn = identity.task_arn(state.cluster, record.task_id)
    inst = state.instances[record.instance] if record.instance is not None else None
    task: dict = {
        "taskArn": t_arn,
        "clusterArn": identity.cluster_arn(state.cluster),
        "taskDefinitionArn": identity.task_definition_arn(spec),
        "lastStatus": record.last_status,
        "desiredStatus": record.desired_status,
        "group": record.group,
        "cpu": str(spec.cpu),
        "memory": str(spec.memory),
        "createdAt": timestamp(record.created_at, epoch),
        "version": 1,
        "containers": [],
        "attributes": [{"name": "ecs.cpu-architecture",
                        "value": inst.instance_type.cpu_architecture if inst else "x86_64"}],
    }
    if record.launch_type:
        task["launchType"] = record.launch_type
    if record.capacity_provider:
        task["capacityProviderName"] = record.capacity_provider
    if record.started_by:
        task["startedBy"] = record.started_by
    if inst is not None:
        task["containerInstanceArn"] = identity.names_of(state, names).arn(inst.index)
        task["availabilityZone"] = inst.availability_zone
    for key, value in (("pullStartedAt", record.pull_started_at), ("pullStoppedAt", record.pull_stopped_at),
                       ("startedAt", record.started_at), ("stoppedAt", record.stopped_at)):
        if value is not None:
            task[key] = timestamp(value, epoch)
    if record.stop_code:
        task["stopCode"] = record.stop_code
    if record.stopped_reason:
        task["stoppedReason"] = record.stopped_reason
    for c, (neuron, gpus) in zip(spec.containers, _container_devices(spec, record.chips, record.gpu_ids),
                                 strict=True):
        container: dict = {
            "containerArn": identity.container_arn(state.cluster, record.task_id, c.name),
            "taskArn": t_arn,
            "name": c.name,
            "image": c.image,
            "lastStatus": record.last_status,
            "cpu": str(c.cpu),
        }
        if c.memory is not None:
            container["memory"] = str(c.memory)
        if c.memory_reservation is not None:
            container["memoryReservation"] = str(c.memory_reservation)
        if gpus:
            container["gpuIds"] = list(gpus)
        if neuron:
            container["neuronDeviceIds"] = neuron
        task["containers"].append(container)
    return task


def describe_tasks(records: Iterable[TaskRecord], state: ClusterState, *, epoch: datetime = EPOCH,
                   names: identity.InstanceNames | None = None) -> dict:
    """A DescribeTasks response for these tasks."""
    names = identity.names_of(state, names)
    return {"tasks": [describe_task(r, state, epoch=epoch, names=names) for r in records], "failures": []}


def _resources(state: ClusterState, inst: ContainerInstance, *, remaining: bool,
               ec2_neuron_devices: bool) -> list[dict]:
    i = inst.index
    if remaining:
        cpu, mem = int(state.cpu_free[i]), int(state.mem_free[i])
        tcp, udp, gpus = inst.reserved_tcp, inst.reserved_udp, inst.free_gpu_ids
        chips = chips_of(int(state.chips_free[i]))
    else:
        cpu, mem = int(state.cpu_registered[i]), int(state.mem_registered[i])
        tcp, udp, gpus = set(AGENT_RESERVED_TCP_PORTS), set(), list(inst.gpu_ids)
        chips = chips_of(int(state.chips_all[i]))
    out = [
        {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": mem},
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": [str(p) for p in sorted(tcp)]},
        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": [str(p) for p in sorted(udp)]},
    ]
    if inst.gpu_ids:
        out.append({"name": "GPU", "type": "STRINGSET", "stringSetValue": list(gpus)})
    if inst.instance_type.chips and (ec2_neuron_devices or inst.launch_type == "MANAGED_INSTANCES"):
        out.append({"name": "NEURON_DEVICES", "type": "STRINGSET", "stringSetValue": [str(c) for c in chips]})
    return out


def describe_container_instance(state: ClusterState, inst: ContainerInstance, *, epoch: datetime = EPOCH,
                                ec2_neuron_devices: bool = True, names: identity.InstanceNames | None = None) -> dict:
    """One ``ContainerInstance`` object as DescribeContainerInstances returns it."""
    out: dict = {"containerInstanceArn": identity.names_of(state, names).arn(inst.index)}
    if inst.ec2_instance_id is not None:  # an instance registered without one (external) has none
        out["ec2InstanceId"] = inst.ec2_instance_id
    out.update({
        "version": 1,
        "versionInfo": {"agentVersion": inst.agent_version},
        "remainingResources": _resources(state, inst, remaining=True, ec2_neuron_devices=ec2_neuron_devices),
        "registeredResources": _resources(state, inst, remaining=False,
                                          ec2_neuron_devices=ec2_neuron_devices),
        "status": inst.status,
        "agentConnected": inst.agent_connected,
        "runningTasksCount": int(state.running[inst.index]),
        "pendingTasksCount": 0,
        "attributes": [{"name": k, "value": v} for k, v in sorted(inst.attributes.items())],
        "registeredAt": timestamp(inst.registered_at, epoch),
    })
    if inst.capacity_provider:
        out["capacityProviderName"] = inst.capacity_provider
    return out


def describe_container_instances(state: ClusterState, indices: Iterable[int] | None = None, *,
                                 epoch: datetime = EPOCH, ec2_neuron_devices: bool = True,
                                 names: identity.InstanceNames | None = None) -> dict:
    """A DescribeContainerInstances response (all instances unless ``indices`` is given)."""
    rows = state.instances if indices is None else [state.instances[i] for i in indices]
    names = identity.names_of(state, names)
    return {"containerInstances": [describe_container_instance(state, inst, epoch=epoch,
                                                               ec2_neuron_devices=ec2_neuron_devices, names=names)
                                   for inst in rows],
            "failures": []}


def run_task_failure(failure: Failure, state: ClusterState, *, names: identity.InstanceNames | None = None) -> dict:
    """One ``Failure`` object as RunTask returns it: ``arn`` names the closest container instance, if any."""
    out = {"reason": failure.reason}
    if failure.instance is not None:
        out["arn"] = identity.names_of(state, names).arn(failure.instance)
    if failure.detail:
        out["detail"] = failure.detail
    return out
