"""Capacity providers in the simulation: Auto Scaling groups with ECS managed scaling, and Managed Instances.

Both are driven by a one-minute tick, as ECS publishes CapacityProviderReservation each minute.

Auto Scaling group (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-auto-scaling.html):
CPR = M / N x 100, where N is the group's instances (running or launching) and M the instances it needs:
those running at least one non-daemon task, plus, for the tasks waiting in PROVISIONING, each group of
identical tasks bin-packed onto the largest instance type (tasks that fit not even once on the smallest
type are left out). With N = 0 and tasks waiting CPR is 200, so the group first launches two instances.
Above the target, the group scales out by ``ceil(100 M / target) - N`` clamped to [minimum, maximum]
scaling step and max_size, but not while any instance is still inside its warm-up period. Below the
target for 15 consecutive minutes it scales in, removing only empty instances, at most half the group a
minute.

Managed Instances (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ManagedInstances.html): ECS
launches instances for the waiting tasks from the types that match
``instanceRequirements``, by a pluggable policy (default: ``cheapest_fit``); idle instances are removed
after ``scale_in_after``; instances are drained after 14 days.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from scheduler.catalog.model import LAUNCH_EC2, LAUNCH_MANAGED, InstanceType
from scheduler.ecs.taskspec import TaskSpec
from scheduler.placement.fits import copies_on_empty
from scheduler.sim import plan
from scheduler.sim.ports import EnginePort

TICK_S = 60.0
SCALE_IN_MINUTES = 15
MI_DRAIN_AFTER_S = 14 * 24 * 3600.0
MI_DEFAULT_SCALE_IN_AFTER_S = 300.0


@dataclass
class Launch:
    """Instances a policy decided to launch for one group of waiting tasks."""

    instance_type: InstanceType
    count: int
    group: tuple
    slots: int


class WaitingTask(Protocol):
    """A task waiting in PROVISIONING, as a provider sees it (the engine's SimTask)."""

    spec: TaskSpec
    request: Any  # the engine's Request: spec, group and constraints are read


class ClusterPort(EnginePort, Protocol):
    """The narrow port through which capacity providers act on the cluster (the engine implements it): add
    an instance now, drain one, deregister one, and place waiting tasks once a launched instance is in;
    they read the cluster state, the clock, the tasks waiting for them and who runs where, and record their
    scaling in the recorder. Nothing else of the simulation is theirs to call."""

    def add_instance(self, itype: InstanceType, *, launch_type: str, availability_zone: str,
                     capacity_provider: str | None, attributes: dict[str, str], spot: bool = False) -> int: ...

    def drain(self, row: int, reason: str) -> None: ...

    def deregister(self, row: int, reason: str) -> None: ...

    def place_waiting(self) -> None: ...

    def provisioning_tasks(self, provider: str) -> Sequence[WaitingTask]: ...

    def non_daemon_tasks(self, row: int) -> int: ...


PlacementPolicy = Callable[[list[tuple[tuple, TaskSpec, int]], Sequence[InstanceType]], list[Launch]]


def cheapest_fit(groups: list[tuple[tuple, TaskSpec, int]], candidates: Sequence[InstanceType]) -> list[Launch]:
    """For each group of ``n`` identical waiting tasks, the matching type with the lowest total price for
    all ``n`` (so a larger type wins when several small tasks share it for less); ties go to fewer
    instances, then the cheaper instance, then the name."""
    out = []
    for key, spec, n in groups:
        best: tuple | None = None
        for itype in candidates:
            per = copies_on_empty(spec, itype, LAUNCH_MANAGED)
            if per == 0:
                continue
            count = math.ceil(n / per)
            price = itype.price_per_hour if itype.price_per_hour is not None else math.inf
            rank = (count * price, count, price, itype.name)
            if best is None or rank < best[0]:
                best = (rank, itype, count, min(n, per * count))
        if best is not None:
            out.append(Launch(best[1], best[2], key, best[3]))
    return out


def group_key(task: WaitingTask) -> tuple:
    req = task.request
    assert req is not None
    return (id(req.spec), req.constraints, req.group if any(c.type == "distinctInstance"
                                                             for c in req.constraints) else None)


@dataclass
class Provider:
    """What both kinds share: a name, the instances they own, the tasks waiting on them."""

    name: str
    sim: ClusterPort
    launch_type: str
    launch_time: float
    zones: list[str]
    scaling: bool
    spot: bool = False  # its instances are Spot instances
    instances: set[int] = field(default_factory=set)
    launching: int = 0
    launched_at: dict[int, float] = field(default_factory=dict)
    _zone_turn: int = 0

    def next_zone(self) -> str:
        zone = self.zones[self._zone_turn % len(self.zones)]
        self._zone_turn += 1
        return zone

    def waiting(self) -> list[WaitingTask]:
        return [t for t in self.sim.provisioning_tasks(self.name)]

    def launch(self, itype: InstanceType, count: int, reason: str, **extra: object) -> None:
        for _ in range(count):
            self.launching += 1
            self.launch_one(itype, self.next_zone())
        if count:
            self.scaling_event("launch", count, reason, instance_type=itype.name, **extra)

    def launch_one(self, itype: InstanceType, zone: str, **registration: Any) -> None:
        """Ask EC2 for an instance; it registers with the cluster after the provider's launch time."""
        def register() -> None:
            row = self.sim.add_instance(itype, launch_type=self.launch_type, availability_zone=zone,
                                        capacity_provider=self.name, attributes={}, spot=self.spot)
            self.registered(row, **registration)
            self.sim.place_waiting()  # place waiting tasks before any provider looks at them again

        self.sim.at(self.sim.now + self.launch_time, register)

    def scaling_event(self, action: str, count: int, reason: str, **extra: Any) -> None:
        self.sim.recorder.scaling.append({"time": self.sim.now, "capacity_provider": self.name, "action": action,
                                          "count": count, "reason": reason, **extra})

    def scaling_metric(self, cpr: float, instances: int, needed: int) -> None:
        self.sim.recorder.reservations.append({"time": self.sim.now, "capacity_provider": self.name, "cpr": cpr,
                                               "instances": instances, "instances_needed": needed})

    def start(self) -> None:
        return None

    def registered(self, row: int, **registration: Any) -> None:
        self.launching -= 1
        self.instances.add(row)
        self.launched_at[row] = self.sim.now

    def lost(self, row: int) -> None:
        """An instance died (failure, Spot): forget it; groups replace it."""
        self.instances.discard(row)
        self.launched_at.pop(row, None)

    def tick(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class AutoScalingGroup(Provider):
    """An EC2_AUTOSCALING capacity provider with (or without) ECS managed scaling."""

    def __init__(self, model: plan.AutoScalingGroup, sim: ClusterPort) -> None:
        super().__init__(model.name, sim, LAUNCH_EC2, model.launch_time, list(model.availability_zones),
                         model.managed_scaling, model.spot)
        self.model = model
        self.types = list(model.instance_types)
        self.by_size = sorted(self.types, key=lambda t: (t.vcpus, t.memory_mib, t.gpus, t.chips))
        self.target = model.target_capacity
        self.min_step, self.max_step = model.minimum_scaling_step_size, model.maximum_scaling_step_size
        self.warmup = model.instance_warmup_period
        self.below = 0
        self._type_turn = 0
        self._fits: dict[tuple, tuple[int, int]] = {}

    def start(self) -> None:
        for _ in range(self.model.desired_capacity):
            itype = self._next_type()
            row = self.sim.add_instance(itype, launch_type=LAUNCH_EC2, availability_zone=self.next_zone(),
                                        capacity_provider=self.name, attributes={},
                                        spot=self.spot)
            self.instances.add(row)
            self.launched_at[row] = -math.inf  # in service before the run: no warm-up

    def lost(self, row: int) -> None:
        """The Auto Scaling group replaces an instance that failed its health checks or was reclaimed."""
        super().lost(row)
        itype = self.sim.state.instances[row].instance_type
        self.launch(itype, 1, "replacing an instance that failed or was interrupted")

    def _next_type(self) -> InstanceType:
        itype = self.types[self._type_turn % len(self.types)]
        self._type_turn += 1
        return itype

    @property
    def size(self) -> int:
        return len(self.instances) + self.launching

    def needed(self) -> tuple[int, int]:
        """(M, waiting tasks counted): instances needed by running and waiting tasks."""
        busy = sum(1 for row in self.instances if self.sim.non_daemon_tasks(row) > 0)
        groups: dict[tuple, list[WaitingTask]] = defaultdict(list)
        for task in self.waiting():
            groups[group_key(task)].append(task)
        extra = 0
        counted = 0
        for key, tasks in groups.items():
            spec = tasks[0].spec
            if key not in self._fits:
                self._fits[key] = (copies_on_empty(spec, self.by_size[0], LAUNCH_EC2),
                                   copies_on_empty(spec, self.by_size[-1], LAUNCH_EC2))
            smallest, largest = self._fits[key]
            if smallest == 0 or largest == 0:
                continue  # ECS leaves out tasks that do not fit the smallest type
            extra += math.ceil(len(tasks) / largest)
            counted += len(tasks)
        return busy + extra, counted

    def reservation(self) -> tuple[float, int]:
        m, counted = self.needed()
        n = self.size
        if n == 0:
            return (200.0 if counted else 100.0), m
        return 100.0 * m / n, m

    def tick(self) -> None:
        if not self.scaling:
            return
        cpr, m = self.reservation()
        now = self.sim.now
        n = self.size
        self.scaling_metric(cpr, n, m)
        if cpr > self.target:
            self.below = 0
            if self.launching or any(now < t + self.warmup for t in self.launched_at.values()):
                return  # a new scale-out waits until every launched instance is past its warm-up
            desired = 2 if n == 0 else math.ceil(m * 100.0 / self.target)
            step = max(self.min_step, min(self.max_step, desired - n))
            step = min(step, self.model.max_size - n)
            if step > 0:
                self.launch(self._next_type(), 1, f"CapacityProviderReservation {cpr:.0f} > target "
                            f"{self.target:.0f}", cpr=cpr)
                for _ in range(step - 1):
                    self.launch(self._next_type(), 1, "", cpr=cpr)
            return
        if cpr < self.target:
            self.below += 1
            if self.below < SCALE_IN_MINUTES:
                return
            desired = max(self.model.min_size, math.ceil(m * 100.0 / self.target))
            limit = max(1, (n - 1) // 2)  # more than one, less than half the group a minute
            empty = sorted(row for row in self.instances if self.sim.non_daemon_tasks(row) == 0)
            remove = empty[: max(0, min(n - desired, limit))]
            for row in remove:
                self.instances.discard(row)
                self.launched_at.pop(row, None)
                self.sim.deregister(row, "scale-in")
            if remove:
                self.scaling_event("terminate", len(remove),
                                       f"CapacityProviderReservation {cpr:.0f} < target {self.target:.0f} "
                                       f"for {self.below} minutes", cpr=cpr)
            return
        self.below = 0


class ManagedInstances(Provider):
    """A MANAGED_INSTANCES capacity provider: ECS picks instance types from instanceRequirements."""

    def __init__(self, model: plan.ManagedInstances, sim: ClusterPort,
                 policy: PlacementPolicy = cheapest_fit) -> None:
        super().__init__(model.name, sim, LAUNCH_MANAGED, model.launch_time, list(model.availability_zones), True,
                         model.spot)
        self.model = model
        self.policy = policy
        self.candidates = list(model.candidates)
        self.scale_in_after = model.scale_in_after
        self.inflight: dict[tuple, int] = defaultdict(int)
        self.idle_since: dict[int, float] = {}

    def can_launch(self, spec: TaskSpec) -> bool:
        return any(copies_on_empty(spec, t, LAUNCH_MANAGED) for t in self.candidates)

    def registered(self, row: int, group: tuple | None = None, slots: int = 0) -> None:
        super().registered(row)
        if group is not None:
            self.inflight[group] = max(0, self.inflight[group] - slots)

    def tick(self) -> None:
        now = self.sim.now
        groups: dict[tuple, list[WaitingTask]] = defaultdict(list)
        for task in self.waiting():
            groups[group_key(task)].append(task)
        wanted = []
        for key, tasks in groups.items():
            short = len(tasks) - self.inflight.get(key, 0)
            if short > 0:
                wanted.append((key, tasks[0].spec, short))
        limit = self.model.max_instances
        for launch in self.policy(wanted, self.candidates):
            count = launch.count
            if limit is not None:
                count = min(count, limit - len(self.instances) - self.launching)
            if count <= 0:
                continue
            per = max(1, launch.slots // launch.count)
            for _ in range(count):
                self.launching += 1
                self.launch_one(launch.instance_type, self.next_zone(), group=launch.group, slots=per)
            self.inflight[launch.group] += per * count
            self.scaling_event("launch", count, f"{launch.slots} task(s) waiting",
                                   instance_type=launch.instance_type.name)
        # consolidation of idle instances, and the 14-day drain
        for row in sorted(self.instances):
            busy = self.sim.non_daemon_tasks(row) > 0
            if busy:
                self.idle_since.pop(row, None)
            else:
                self.idle_since.setdefault(row, now)
            age = now - self.launched_at.get(row, now)
            if age >= MI_DRAIN_AFTER_S and self.sim.state.instances[row].status == "ACTIVE":
                self.sim.drain(row, "instance reached 14 days")
            idle_for = now - self.idle_since.get(row, now)
            draining = self.sim.state.instances[row].status == "DRAINING"
            if not busy and (draining or (self.scale_in_after >= 0 and idle_for >= self.scale_in_after)):
                self.instances.discard(row)
                self.idle_since.pop(row, None)
                self.sim.deregister(row, "idle" if not draining else "drained")
                self.scaling_event("terminate", 1,
                                       "drained after 14 days" if draining else f"idle for {idle_for:.0f} s")


class CapacityProviders:
    """The run's capacity providers, driven by the engine: built from the plan, given the fleets that name
    them, started, ticked every minute, and told when one of their instances is lost."""

    def __init__(self, models: Sequence[plan.CapacityProvider], sim: ClusterPort) -> None:
        self.sim = sim
        self.by_name: dict[str, Provider] = {}
        for model in models:
            self.by_name[model.name] = (AutoScalingGroup(model, sim) if isinstance(model, plan.AutoScalingGroup)
                                        else ManagedInstances(model, sim))

    def get(self, name: str | None) -> Provider | None:
        return self.by_name.get(name or "")

    def start(self) -> None:
        """Claim the instances already registered under each provider's name, start each provider (an Auto
        Scaling group's desired capacity) and the one-minute tick."""
        for row, inst in enumerate(self.sim.state.instances):  # fleets that name a provider belong to it
            if inst.capacity_provider in self.by_name:
                self.by_name[inst.capacity_provider].instances.add(row)
        for provider in self.by_name.values():
            provider.start()
        if self.by_name:
            self.sim.at(TICK_S, self.tick)

    def tick(self) -> None:
        for provider in self.by_name.values():
            provider.tick()
        if self.sim.now + TICK_S < self.sim.duration:
            self.sim.at(self.sim.now + TICK_S, self.tick)

    def lost(self, row: int, name: str | None) -> None:
        """An instance of provider ``name`` died (failure, Spot, retirement)."""
        provider = self.get(name)
        if provider is not None:
            provider.lost(row)
