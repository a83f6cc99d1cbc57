"""ECS and EC2 identity, deterministic from the cluster name and a row or serial number.

The placement core knows a container instance only as a row and a task by the id it was given; this module
names them as AWS does: account and region, ARNs of the cluster, its container instances, tasks, task
definitions and containers, EC2 instance ids, GPU ids, and the registration attributes (AMI, VPC, subnet)
that carry ids. The same cluster name and row always give the same names, so runs are reproducible.

``register_instance`` is the one place an instance enters a cluster with its identity: it gives the core
the EC2 instance id (a plain value the query language's ``ec2InstanceId`` compares), the GPU ids and the
id-bearing attributes, as data. An instance that already has real names (one read from a snapshot of a
real cluster) is registered with them instead; its container-instance ARN is kept in the cluster's
``InstanceNames``, which the views read, never in the core.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scheduler.catalog.model import InstanceType
from scheduler.ecs.taskspec import TaskSpec
from scheduler.placement.state import ClusterState

ACCOUNT = "123456789012"
REGION = "us-east-1"
_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}"


def hex_id(*parts: object, length: int) -> str:
    """A stable hexadecimal id of ``length`` digits made from ``parts``."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:length]


def task_id(serial: int) -> str:
    """The id of the ``serial``-th task started in a cluster (32 hex digits, as ECS prints task ids)."""
    return f"{serial:032x}"


def ec2_instance_id(cluster: str, row: int) -> str:
    return "i-" + hex_id(cluster, "ec2", row, length=17)


def container_instance_id(cluster: str, row: int) -> str:
    """The last part of a container instance's ARN (what ECS's service events quote)."""
    return hex_id(cluster, "ci", row, length=32)


def container_instance_arn(cluster: str, row: int) -> str:
    return f"{_ARN}:container-instance/{cluster}/{container_instance_id(cluster, row)}"


def cluster_arn(cluster: str) -> str:
    return f"{_ARN}:cluster/{cluster}"


def task_arn(cluster: str, task: str) -> str:
    return f"{_ARN}:task/{cluster}/{task}"


def container_arn(cluster: str, task: str, container: str) -> str:
    return f"{_ARN}:container/{cluster}/{task}/{container}"


def task_definition_arn(spec: TaskSpec) -> str:
    return f"{_ARN}:task-definition/{spec.family}:{spec.revision or 1}"


def gpu_ids(ec2_id: str, count: int) -> tuple[str, ...]:
    """The GPU ids an instance registers (GPU resource STRINGSET, container ``gpuIds``)."""
    return tuple(f"GPU-{hex_id(ec2_id, 'gpu', g, length=8)}-{g}" for g in range(count))


def id_attributes(cluster: str, instance_type: InstanceType, availability_zone: str) -> dict[str, str]:
    """The registration attributes that carry AWS ids: AMI, VPC and subnet."""
    return {
        "ecs.ami-id": "ami-" + hex_id(instance_type.family, "ami", length=17),
        "ecs.vpc-id": "vpc-" + hex_id(cluster, "vpc", length=17),
        "ecs.subnet-id": "subnet-" + hex_id(cluster, availability_zone, length=17),
    }


@dataclass
class InstanceNames:
    """The container-instance ARNs of one cluster: made from the cluster name and row, except for the
    instances registered with their real ARN (``arns``, by row)."""

    cluster: str
    arns: dict[int, str] = field(default_factory=dict)

    def arn(self, row: int) -> str:
        return self.arns.get(row) or container_instance_arn(self.cluster, row)

    def id(self, row: int) -> str:
        """The last part of the ARN, as ECS's service events quote it."""
        return self.arn(row).rsplit("/", 1)[-1]


def names_of(state: ClusterState, names: InstanceNames | None) -> InstanceNames:
    """``names``, or the made-up names of the state's cluster when none are kept."""
    return names if names is not None else InstanceNames(state.cluster)


def register_instance(state: ClusterState, instance_type: InstanceType, *, availability_zone: str,
                      attributes: dict[str, str] | None = None, names: InstanceNames | None = None,
                      arn: str | None = None, ec2_id: str | None = None, gpus: Sequence[str] | None = None,
                      **registration: Any) -> int:
    """Register a container instance with its ids; returns its row.

    The ids are made from the cluster name and the row unless given: ``arn`` (kept in ``names``, which is
    then required), ``ec2_id`` and ``gpus``. ``attributes`` given by the caller win over the id attributes;
    ``registration`` goes to ``ClusterState.add_instance`` as is."""
    if arn is not None and names is None:
        raise ValueError("an instance registered with its own ARN needs the cluster's InstanceNames to keep it")
    row = len(state)
    ec2_id = ec2_id or ec2_instance_id(state.cluster, row)
    out = state.add_instance(
        instance_type, availability_zone=availability_zone,
        attributes={**id_attributes(state.cluster, instance_type, availability_zone), **(attributes or {})},
        ec2_instance_id=ec2_id, gpu_ids=gpu_ids(ec2_id, instance_type.gpus) if gpus is None else tuple(gpus),
        **registration)
    if arn is not None and names is not None:
        names.arns[out] = arn
    return out
