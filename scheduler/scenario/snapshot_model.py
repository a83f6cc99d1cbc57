"""The values a cluster snapshot is read into (see ``scheduler.scenario.snapshot``): container instances,
tasks, services and capacity providers as plain frozen dataclasses, and the task-definition keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.results.summary import SnapshotSummary

REQUIRED = ("describe-container-instances", "describe-tasks")
TASKDEF_PREFIX = "snapshot/"
# Task states that hold resources on their container instance (PROVISIONING is not placed yet).
HOLDING = frozenset({"PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING"})
USABLE_INSTANCE = frozenset({"ACTIVE", "DRAINING"})
MAX_CHIP_INDEX = 63


@dataclass(frozen=True)
class SnapshotInstance:
    """One container instance as the snapshot shows it."""

    arn: str
    ec2_instance_id: str
    instance_type: str
    availability_zone: str
    attributes: dict[str, str]
    status: str
    agent_connected: bool
    agent_version: str
    capacity_provider: str | None
    launch_type: str
    cpu: int                      # registered CPU units
    memory: int                   # registered MiB
    gpu_ids: tuple[str, ...]      # registered GPUs, when the output names them
    gpus: int                     # GPUs of the instance
    chips: tuple[int, ...]        # registered Neuron chips (a failed chip has left)
    where: str                    # file and JSON path, for messages


@dataclass(frozen=True)
class SnapshotTask:
    """One task that holds resources on a container instance."""

    task_id: str
    arn: str
    instance_arn: str
    task_definition: str          # the task_definitions key: snapshot/<family>:<revision>
    group: str
    started_by: str | None
    service: str | None
    cpu: int
    memory: int
    chips: tuple[int, ...]
    gpu_ids: tuple[str, ...]
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...]
    capacity_provider: str | None


@dataclass(frozen=True)
class SnapshotService:
    """One ACTIVE service, as a scenario service workload (the fields of ``ServiceWorkload``)."""

    name: str
    workload: dict[str, Any]
    where: str


@dataclass(frozen=True)
class SnapshotProvider:
    """One capacity provider (FARGATE ones are left out: nothing is placed on instances there)."""

    name: str
    type: str                     # EC2_AUTOSCALING | MANAGED_INSTANCES
    managed_scaling: dict[str, Any]
    managed_termination_protection: bool
    instance_requirements: dict[str, Any] | None


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything read from a snapshot folder, consistent with itself."""

    folder: Path
    cluster: str | None
    instances: tuple[SnapshotInstance, ...]
    tasks: tuple[SnapshotTask, ...]
    services: tuple[SnapshotService, ...]
    providers: tuple[SnapshotProvider, ...]
    task_definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> describe output
    skipped: dict[str, int] = field(default_factory=dict)  # what was left out and why -> how many

    @property
    def chips_held(self) -> int:
        return sum(len(t.chips) for t in self.tasks)

    def summary(self, tasks_seeded: int = 0) -> SnapshotSummary:
        """What the snapshot brought into a run (``tasks_seeded``: how many of its tasks the run started)."""
        return SnapshotSummary(folder=self.folder.name, instances=len(self.instances), tasks=len(self.tasks),
                               chips_held=self.chips_held, services=tuple(sorted(s.name for s in self.services)),
                               skipped=dict(sorted(self.skipped.items())), tasks_seeded=tasks_seeded)


# --- keys ------------------------------------------------------------------------------------------------

def arn_tail(arn: str, marker: str) -> str | None:
    """The part of an ARN after ``marker``: ``task-definition/`` gives ``family:revision``."""
    at = arn.find(marker)
    return arn[at + len(marker):] if at >= 0 else None


def task_definition_key(arn_or_name: str) -> str | None:
    """``snapshot/<family>:<revision>`` for a task definition ARN (or a bare ``family:revision``)."""
    tail = arn_tail(arn_or_name, ":task-definition/") if arn_or_name.startswith("arn:") else arn_or_name
    if not tail or ":" not in tail:
        return None
    return TASKDEF_PREFIX + tail
