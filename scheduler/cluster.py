"""Cluster: the Python API to build a cluster, run and stop tasks, and read ECS-shaped views.

A thin facade over the placement core (ClusterState + Placer) that keeps one TaskRecord per task, so a
notebook or a test can speak in ECS terms::

    from scheduler import Cluster
    c = Cluster("demo", seed=7)
    c.add_instances("trn1.32xlarge", 1)
    result = c.run_task("scenarios/taskdefs/trn1-chip-00.json")
    c.describe_container_instances()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scheduler.catalog import Catalog, default_catalog
from scheduler.catalog.model import LAUNCH_EC2
from scheduler.ecs import api
from scheduler.ecs.api import TaskRecord
from scheduler.ecs.taskdef import load_task_definition
from scheduler.ecs.taskspec import Constraint, Strategy, TaskSpec
from scheduler.errors import PlacementError
from scheduler.placement import strategies as strategy_defaults
from scheduler.placement.devices import DeviceMode
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure
from scheduler.placement.state import ClusterState

MAX_RUNTASK_COUNT = 10


@dataclass
class RunTaskResult:
    """What RunTask returns: the tasks it started and one failure per task it could not place."""

    tasks: list[TaskRecord] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def as_response(self, cluster: Cluster) -> dict:
        return {"tasks": [api.describe_task(t, cluster.state) for t in self.tasks],
                "failures": [api.run_task_failure(
                    f.reason, f.detail, cluster.state.instances[f.instance].arn if f.instance is not None else None)
                    for f in self.failures]}


class Cluster:
    """One ECS cluster: container instances, tasks, and the placement core behind them."""

    def __init__(self, name: str = "default", *, catalog: Catalog | None = None,
                 device_mode: DeviceMode | str = DeviceMode.AWARE, seed: int | None = 0) -> None:
        self.catalog = catalog or default_catalog()
        self.state = ClusterState(name)
        self.placer = Placer(self.state, device_mode=device_mode)
        self.rng = np.random.default_rng(seed)
        self.tasks: dict[str, TaskRecord] = {}
        self.clock = 0.0
        self._next_task = 0

    @property
    def name(self) -> str:
        return self.state.cluster

    def add_instances(self, instance_type: str, count: int = 1, *, launch_type: str = LAUNCH_EC2,
                      availability_zones: Sequence[str] = ("us-east-1a",),
                      capacity_provider: str | None = None,
                      attributes: dict[str, str] | None = None) -> list[int]:
        """Register ``count`` instances of a catalog type, round-robin over the availability zones."""
        itype = self.catalog.get(instance_type)
        return [self.state.add_instance(itype, launch_type=launch_type,
                                        availability_zone=availability_zones[k % len(availability_zones)],
                                        capacity_provider=capacity_provider, attributes=attributes,
                                        registered_at=self.clock)
                for k in range(count)]

    def run_task(self, task: TaskSpec | str | Path | dict, *, count: int = 1, group: str | None = None,
                 constraints: Sequence[Constraint] = (), strategies: Sequence[Strategy] | None = None,
                 launch_type: str | None = None, started_by: str | None = None) -> RunTaskResult:
        """Place ``count`` (1-10) copies one after another, as RunTask does; ECS's default is random."""
        if not 1 <= count <= MAX_RUNTASK_COUNT:
            raise PlacementError(f"RunTask count must be 1-{MAX_RUNTASK_COUNT}, got {count}")
        spec = task if isinstance(task, TaskSpec) else load_task_definition(task)
        chain = strategy_defaults.RUNTASK_DEFAULT if strategies is None else tuple(strategies)
        strategy_defaults.check_strategies(chain)
        group = group or f"family:{spec.family}"
        result = RunTaskResult()
        for _ in range(count):
            self._next_task += 1
            task_id = f"{self._next_task:032x}"
            outcome = self.placer.place(spec, task_id=task_id, group=group, constraints=constraints,
                                        strategies=chain, launch_type=launch_type, rng=self.rng)
            if isinstance(outcome, Failure):
                result.failures.append(outcome)
                continue
            inst = self.state.instances[outcome.instance]
            record = TaskRecord(task_id, spec, group, outcome.instance, outcome.chips, outcome.gpu_ids,
                                last_status="RUNNING", launch_type=inst.launch_type,
                                capacity_provider=inst.capacity_provider, created_at=self.clock,
                                started_at=self.clock, started_by=started_by)
            if not outcome.ok:
                record.last_status = record.desired_status = "STOPPED"
                record.started_at = None
                record.stopped_at = self.clock
                record.stop_code = "TaskFailedToStart"
                record.stopped_reason = outcome.start_failure
            self.tasks[task_id] = record
            result.tasks.append(record)
        return result

    def stop_task(self, task_id: str, reason: str = "Task stopped by user") -> TaskRecord:
        """Stop a running task and give back what it held."""
        record = self.tasks.get(task_id)
        if record is None:
            raise PlacementError(f"unknown task {task_id}")
        if record.last_status == "STOPPED":
            return record
        self.placer.release(task_id)
        record.last_status = record.desired_status = "STOPPED"
        record.stopped_at = self.clock
        record.stop_code = "UserInitiated"
        record.stopped_reason = reason
        return record

    def running_tasks(self) -> list[TaskRecord]:
        return [t for t in self.tasks.values() if t.last_status == "RUNNING"]

    def describe_tasks(self, task_ids: Iterable[str] | None = None) -> dict:
        ids = list(self.tasks) if task_ids is None else list(task_ids)
        return api.describe_tasks((self.tasks[t] for t in ids), self.state)

    def describe_container_instances(self, indices: Iterable[int] | None = None) -> dict:
        return api.describe_container_instances(self.state, indices)

    def holder_of(self, instance: int, device_path: str) -> str | None:
        """Which task holds ``/dev/neuronN`` on an instance row (None when free)."""
        chip = int(device_path.removeprefix("/dev/neuron"))
        return self.state.chip_holder(instance, chip)
