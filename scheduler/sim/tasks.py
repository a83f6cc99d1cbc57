"""The records the simulation keeps: a task (:class:`SimTask`, ECS's task with what the simulation needs
to move it through its lifecycle), the request its tasks are placed by (:class:`Request`) and a service
(:class:`Service`). Values only; what happens to them is the engine's, the waiting room's and the service
scheduler's.

Task lifecycle (ECS's, shortened): PROVISIONING (created, waiting for a place) -> PENDING (placed) ->
RUNNING -> STOPPED, with ECS stop codes and reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scheduler.ecs.capacity import StrategySplitter
from scheduler.ecs.taskspec import Constraint, Strategy, TaskSpec
from scheduler.sim import deployments
from scheduler.sim.startup import StartupSampler
from scheduler.sim.workloads import DurationSampler
from scheduler.views.describe import TaskRecord

PROVISIONING, PENDING, RUNNING, STOPPED = "PROVISIONING", "PENDING", "RUNNING", "STOPPED"


@dataclass(eq=False)
class Request:
    """How the tasks of one workload (or one daemon on one instance) are placed."""

    workload: str
    spec: TaskSpec
    group: str
    constraints: tuple[Constraint, ...] = ()
    strategies: tuple[Strategy, ...] = ()
    launch_type: str | None = None
    capacity_providers: tuple[str, ...] | None = None
    on_no_capacity: str = "fail"
    duration: DurationSampler = field(default=lambda: math.inf)
    service: Service | None = None
    only: np.ndarray | None = None
    provider: str | None = None                   # the capacity provider this variant targets
    splitter: StrategySplitter | None = None      # a capacity provider strategy: pick a variant per task
    variants: dict[str, Request] = field(default_factory=dict)
    startup: StartupSampler | None = None         # image pull and container start; None: RUNNING at placement

    @property
    def shown_launch_type(self) -> str:
        if self.launch_type:
            return self.launch_type
        return "MANAGED_INSTANCES" if self.spec.compatibilities == {"MANAGED_INSTANCES"} else "EC2"


@dataclass(slots=True)
class SimTask(TaskRecord):
    """A task as the simulation tracks it."""

    workload: str = ""
    request: Request | None = None
    run_for: float = math.inf
    waiting_reason: str | None = None  # the last placement failure, as shown (reason: detail)
    waiting_code: str | None = None    # its ECS reason alone (RESOURCE:CPU, ...), what counters key on
    ever_ran: bool = False
    seeded: bool = False  # RUNNING from a cluster snapshot at t=0: never submitted, no wait
    held: bool = False    # holds what it reserved on its instance (from placement until it stops)
    placed_at: float | None = None  # when the scheduler gave it an instance (start-up begins here)


@dataclass(eq=False)
class Service:
    """A REPLICA or DAEMON service: keeps its desired count of tasks alive."""

    name: str
    request: Request | None
    daemon: bool = False
    desired: int = 0
    live: set[str] = field(default_factory=set)
    failed_starts: int = 0
    backoff_until: float = 0.0
    reconcile_scheduled: bool = False
    daemon_requests: dict[int, Request] = field(default_factory=dict)
    daemon_tasks: dict[int, str] = field(default_factory=dict)  # instance row -> its daemon task's id
    running: int = 0
    short_seconds: float = 0.0  # integral of max(0, desired - running) over time
    counted_to: float = 0.0
    rollout: deployments.Rollout = field(default_factory=deployments.Rollout)  # deployment bounds and state
    workload: str = ""  # the scenario workload it runs for (several services with device sets); "" = name

    def account(self, now: float) -> None:
        """Add the shortfall since the last change; call before ``desired`` or ``running`` changes."""
        self.short_seconds += max(0, self.desired - self.running) * (now - self.counted_to)
        self.counted_to = now
