"""The engine: one run of a plan, wired from parts with one job each (simpy's shape: a tiny core
specialised by small parts).

- ``clock``: simpy's heap with one kind of event, a scheduled call (no generator per task);
- ``lifecycle``: a task from PROVISIONING through PENDING and RUNNING to STOPPED;
- ``waiting``: the waiting room, one queue per request class retried from its head on a capacity change;
- ``services``: the service scheduler (desired counts, daemons, back-off; ``deployments`` for rollouts);
- ``capacity``: capacity providers, acting on the cluster only through ``capacity.ClusterPort``;
- ``faults``: faults dispatched by type; ``sampling``: a timeline sample from the cluster state;
- ``build``: the plan's workloads put on the clock.

What stays here is the wiring, cluster membership (register, drain, deregister an instance, what a fault
does to one) and the run itself with its results. The engine talks to the placement core only through
``Placer.place``, ``Placer.release`` and the cluster state.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scheduler.catalog.model import InstanceType
from scheduler.ecs.taskspec import NeuronMode, TaskSpec
from scheduler.placement.devices import DeviceMode
from scheduler.placement.placer import Placer
from scheduler.placement.state import ClusterState
from scheduler.results.summary import RunSummary
from scheduler.sim import deployments, lane, sampling, service_load
from scheduler.sim.build import WorkloadBuilder
from scheduler.sim.capacity import CapacityProviders, Provider
from scheduler.sim.clock import STOP_SIGNALS, Clock
from scheduler.sim.faults import Faults
from scheduler.sim.lifecycle import TaskLifecycle
from scheduler.sim.metrics import Recorder, TaskTableWriter
from scheduler.sim.plan import Plan, Plannable, RunTaskWorkload
from scheduler.sim.services import ServiceScheduler
from scheduler.sim.slo import SLOTally, workload_kinds
from scheduler.sim.snapshot import seed_instances, seed_tasks
from scheduler.sim.startup import ImageCache
from scheduler.sim.summarize import summarize
from scheduler.sim.tasks import Request, Service, SimTask
from scheduler.sim.waiting import WaitingRoom
from scheduler.views import describe, identity


@dataclass
class Results:
    """Everything one run produced (tables as pandas DataFrames; ``tasks`` is None when the per-task table
    was streamed to ``tasks_path``)."""

    summary: RunSummary
    tasks: Any
    timeline: Any
    describe_tasks: dict
    describe_container_instances: dict
    events: list[dict]
    extra_tables: dict = field(default_factory=dict)
    tasks_path: Any = None
    path: str = "plain"     # the engine path that ran it: "fast" (the stream lane) or "plain"
    path_note: str = ""     # why (which feature sent the run to the plain path; which workloads the lane ran)
    plain_beside: tuple[str, ...] = ()  # RunTask workloads that ran on the plain path beside the stream lane


class Simulation:
    """One run of a scenario's plan (a loaded scenario is compiled into its plan first)."""

    def __init__(self, scenario: Plan | Plannable, *, seed: int | None = None, until: float | None = None,
                 progress: Callable[[float, float], None] | None = None, task_sink: Any = None,
                 path: str = "auto", lane_compiled: bool = True) -> None:
        """``path``: ``auto`` (the stream lane where it applies and pays), ``fast`` (the lane wherever it
        applies) or ``plain``; ``lane_compiled`` False runs the lane's loop uncompiled (tests)."""
        plan = scenario if isinstance(scenario, Plan) else scenario.plan()
        self.plan = plan
        self.seed = int(plan.seed if seed is None else seed)
        self.duration = plan.duration if until is None else float(until)
        self.sample_interval = plan.sample_interval
        # topology-aware is a what-if beyond ECS: manual tasks ask for k chips, placed contiguous anywhere
        self.mode_name = plan.device_mode
        self.device_mode = DeviceMode.BLIND if self.mode_name == "ecs-blind" else DeviceMode.AWARE
        self.progress = progress
        self.lane: lane.Lane | None = None
        self.clock = Clock()
        self.env = self.clock.env
        self.at = self.clock.at  # run fn(*args) at simulated time t: a call on the event heap, no generator
        self.state = ClusterState(plan.cluster_name, awsvpc_trunking=plan.awsvpc_trunking)
        self.placer = Placer(self.state, device_mode=self.device_mode)
        self.recorder = Recorder(levels=self.state.totals_values)  # integrates the core's totals
        self.names = identity.InstanceNames(plan.cluster_name)  # container-instance ARNs (the core knows rows)
        self.task_sink = task_sink
        self.stopped_by: int | None = None  # the signal that stopped a run early
        self.partial = False
        self.slo = SLOTally(workload_kinds(plan.workloads))  # per-workload waits, start-up, failures
        self.faults = Faults(self, plan.faults, plan.spot_interruptions, np.random.default_rng([self.seed, 2]))
        self.placement_rng = np.random.default_rng([self.seed, 0])
        self.waiting = WaitingRoom(lambda task: None, lambda fn: self.at(self.now, fn))  # try_start: below
        self._snapshot_rows: dict[str, int] = {}
        self.service_scheduler = ServiceScheduler(self)
        self.services: list[Service] = self.service_scheduler.services
        self.instance_start: list[float] = []
        self.instance_end: list[float | None] = []
        self.specs = {name: self._as_mode(spec) for name, spec in plan.task_specs.items()}
        self._neuron_specs = [s for s in self.specs.values() if s.uses_neuron]
        self.capacity = CapacityProviders(plan.capacity_providers, self)
        self.providers: dict[str, Provider] = self.capacity.by_name
        self.provisioning_timeout = plan.provisioning_timeout
        self.spot_discount = plan.spot_discount
        self.daemon_rows: list[int] = []
        self.instance_price: list[float] = []
        self.images = ImageCache()
        self.service_loads = self.service_scheduler.loads  # services with requests or auto scaling
        self.lifecycle = TaskLifecycle(self)
        self.workloads = WorkloadBuilder(self)
        self.waiting.try_start = self.lifecycle.try_start
        self.submit = self.lifecycle.submit  # create a task now and try to place it
        self._stop = self.lifecycle.stop
        self._row = self.lifecycle.row
        # the engine path, and the lane's compiled code loaded now (before the task table is opened: a signal
        # after that lands in the run, not in the lane's start-up)
        self.path, self.path_note = lane.choose(self, path)
        self._lane_functions = lane.functions(lane_compiled) if self.path == "fast" else None
        if task_sink is not None:
            self.recorder.sink = TaskTableWriter(task_sink)

    # the task lifecycle's tallies, read by the results
    @property
    def tasks(self) -> dict[str, SimTask]:
        return self.lifecycle.tasks

    @property
    def counts(self) -> dict[str, int]:
        return self.lifecycle.counts

    @property
    def submitted(self) -> int:
        return self.lifecycle.submitted

    @property
    def seeded(self) -> int:
        return self.lifecycle.seeded

    @property
    def completed_count(self) -> int:
        return self.lifecycle.completed_count

    @property
    def recent_stopped(self) -> deque[SimTask]:
        return self.lifecycle.recent_stopped

    def _as_mode(self, spec: TaskSpec) -> TaskSpec:
        if self.mode_name == "topology-aware" and spec.neuron_mode is NeuronMode.MANUAL:
            return replace(spec, neuron_mode=NeuronMode.TOPOLOGY, chips=(), chip_count=len(spec.chips))
        return spec

    @property
    def now(self) -> float:
        return self.env._now

    # ------------------------------------------------------------------ cluster membership
    def _build_fleets(self) -> None:
        snapshot = self.plan.snapshot
        if snapshot is not None:  # the real cluster first: its instances are the lowest rows
            self._snapshot_rows = seed_instances(self, snapshot)
        for fleet in self.plan.fleets:
            itype = fleet.instance_type
            zones = list(fleet.availability_zones)
            for k in range(fleet.count):
                self.add_instance(itype, launch_type=fleet.launch_type,
                                  availability_zone=zones[k % len(zones)],
                                  capacity_provider=fleet.capacity_provider,
                                  attributes=dict(fleet.attributes), spot=fleet.spot)
        for name in self.providers:
            self.waiting.add_provider(name)
        self.capacity.start()

    def add_instance(self, itype: InstanceType, *, launch_type: str, availability_zone: str,
                     capacity_provider: str | None, attributes: dict[str, str], spot: bool = False,
                     **names: Any) -> int:
        """Register a container instance now; daemons are placed on it before anything else. ``names``
        (``arn``, ``ec2_id``, ``gpus``) are the instance's real ids, when it has them (a snapshot)."""
        index = identity.register_instance(self.state, itype, names=self.names, launch_type=launch_type,
                                           availability_zone=availability_zone, capacity_provider=capacity_provider,
                                           attributes=attributes, registered_at=self.now, **names)
        self.instance_start.append(self.now)
        self.instance_end.append(None)
        self.images.register(index, self.now)
        self.daemon_rows.append(0)
        price = (itype.price_per_hour or 0.0) * ((1 - self.spot_discount) if spot else 1.0)
        self.instance_price.append(price)
        self.recorder.advance(self.now)
        self.service_scheduler.instance_added(index)
        self.faults.instance_added(index, spot=spot)
        self.waiting.kick()
        deployments.capacity_changed(self)
        return index

    # ------------------------------------------------------------------ capacity providers
    def _chip_price(self, row: int) -> float:
        """USD per hour of one chip of ``row``: its instance's price shared among its chips."""
        chips = self.state.instances[row].instance_type.chips
        return self.instance_price[row] / chips if chips else 0.0

    def provisioning_tasks(self, provider: str) -> list[SimTask]:
        """Tasks waiting in PROVISIONING for this capacity provider, oldest first."""
        return self.waiting.for_provider(provider)

    def non_daemon_tasks(self, row: int) -> int:
        return int(self.state.running[row]) - self.daemon_rows[row]

    def place_waiting(self) -> None:
        """A launched instance is in: one retry pass over the waiting tasks now."""
        self.waiting.retry()

    def deregister(self, row: int, reason: str, *, stop_code: str = "ServiceSchedulerInitiated") -> None:
        """Terminate an instance: stop what still runs there, then take it out of the cluster."""
        inst = self.state.instances[row]
        if inst.status == "INACTIVE":
            return
        if self.lane is not None:  # its tasks there are stopped by the plain lifecycle
            self.lane.adopt(row)
        for task_id in sorted(inst.tasks):
            task = self.tasks[task_id]
            if stop_code != "ServiceSchedulerInitiated":
                self._fault_stop(task)
            self._stop(task, stop_code, f"Container instance deregistered ({reason})" if stop_code ==
                       "ServiceSchedulerInitiated" else reason, placed=True)
            svc = task.request.service if task.request else None
            if svc is not None and not svc.daemon:
                self.service_scheduler.schedule_reconcile(svc)
        self.state.set_status(row, "INACTIVE")
        self.recorder.advance(self.now)
        self.instance_end[row] = self.now
        self.images.forget(row)

    # ------------------------------------------------------------------ what faults do (scheduler.sim.faults)
    @property
    def fault_counts(self) -> dict[str, int]:
        return self.faults.counts

    @property
    def task_seconds_lost(self) -> float:
        return self.faults.task_seconds_lost

    def fail_chip(self, row: int, chip: int) -> None:
        """A Neuron chip failed: the task holding it stops and it leaves the instance's NEURON_DEVICES."""
        inst = self.state.instances[row]
        if self.lane is not None:
            self.lane.adopt(row)
        holder = inst.chip_holders.get(chip)
        if holder is not None:
            task = self.tasks[holder]
            self._fault_stop(task)
            self._stop(task, "InfrastructureHealth", f"Task stopped: Neuron device /dev/neuron{chip} failed on "
                       f"{inst.ec2_instance_id}", placed=True)
        self.state.remove_chip(row, chip)
        self.recorder.advance(self.now)
        self.recorder.chip_removed(row, self.now)
        self.recorder.event(self.now, "fault", f"/dev/neuron{chip} on {inst.ec2_instance_id} failed and left "
                            "NEURON_DEVICES")

    def _fault_stop(self, task: SimTask) -> None:
        self.faults.task_stopped(task, service=task.request is not None and task.request.service is not None)

    def agent_reconnected(self, row: int) -> None:
        """The agent on ``row`` is back: its waiting daemon task and the queue may place there again."""
        self.waiting.freed(row)
        self.waiting.kick()

    def lose_instance(self, row: int, stop_code: str, reason: str) -> None:
        """An instance is gone (failure, Spot, retirement): its tasks stop; its provider may replace it."""
        inst = self.state.instances[row]
        if inst.status == "INACTIVE":  # already gone (scaled in, or lost to an earlier fault): no replacement
            return
        self.deregister(row, reason, stop_code=stop_code)
        self.capacity.lost(row, inst.capacity_provider)

    def drain(self, row: int, reason: str) -> None:
        """DRAINING: no new tasks; service tasks move elsewhere, standalone tasks run on."""
        self.state.set_status(row, "DRAINING")
        inst = self.state.instances[row]
        deployments.drain(self, row, reason)  # replacements first, within each service's bounds
        self.recorder.event(self.now, "instance", f"{inst.ec2_instance_id} set to DRAINING: {reason}")

    # ------------------------------------------------------------------ sampling
    def _sample(self) -> None:
        """One timeline sample (scheduler.sim.sampling), then the next one a sample interval later."""
        t = self.now
        rows, stranded = sampling.sample(self.state, self.placer, self._neuron_specs, t, self.counts,
                                         self.submitted + self.seeded)
        self.recorder.stranded_chip_seconds += stranded * self.sample_interval
        self.recorder.sample(rows)
        if self.progress is not None:
            self.progress(t, self.duration)
        if t + self.sample_interval <= self.duration:
            self.at(t + self.sample_interval, self._sample)

    # ------------------------------------------------------------------ run
    def run(self, *, handle_sigint: bool = False) -> Results:
        """Simulate to the end (or, with ``handle_sigint``, until Ctrl-C or SIGTERM: then the results are partial)."""
        wall = time.perf_counter()
        previous: dict[int, Any] = {}
        if handle_sigint:  # Ctrl-C, and SIGTERM (timeout, containers, batch schedulers) alike
            for signum in STOP_SIGNALS:
                previous[signum] = signal.signal(signum, self._on_sigint)
        try:
            self._build_fleets()
            self.faults.start()
            if self._lane_functions is not None:
                why = lane.why_plain(self)  # the placer may have been set up otherwise since the path was chosen
                if why is None:
                    self.lane = lane.Lane(self, self._lane_functions)
                else:
                    self.path, self.path_note = "plain", why
            self.workloads.build()
            if self.plan.snapshot is not None:
                seed_tasks(self, self.plan.snapshot, self._snapshot_rows, task_type=SimTask, request_type=Request)
            self.at(0.0, self._sample)
            if self.lane is not None:
                self.lane.arm()
            if not self.clock.run(until=self.duration):
                self.partial = True
                self.duration = self.now
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.recorder.advance(self.duration)
        return self._results(time.perf_counter() - wall)

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.clock.interrupted = True
        self.stopped_by = signum

    def _results(self, wall_seconds: float) -> Results:
        services = [svc for svc in self.services if not svc.daemon]
        for svc in services:
            svc.account(self.duration)
        alive = list(self.tasks.values()) if self.lane is None else self.lane.finish()
        for task in alive:  # still alive at the end: rows with their current state
            self._row(task, placed=task.ever_ran)
        tasks = None
        if self.recorder.sink is not None:
            self.recorder.flush()
            self.recorder.sink.close()
        else:
            tasks = self.recorder.tasks_frame()
        timeline = self.recorder.timeline_frame()
        summary = summarize(self, wall_seconds, timeline)
        records = list(self.recent_stopped) + alive
        return Results(
            summary=summary, tasks=tasks, timeline=timeline,
            describe_tasks=describe.describe_tasks(records, self.state, names=self.names),
            describe_container_instances=describe.describe_container_instances(self.state, names=self.names),
            events=self.recorder.events,
            extra_tables={"scaling_events": self.recorder.scaling_frame(),
                          "capacity_reservation": self.recorder.reservation_frame(),
                          **service_load.tables(self.service_loads.values())},
            tasks_path=self.task_sink, path=self.path, path_note=self.path_note,
            plain_beside=() if self.lane is None else self.lane.beside,
        )

    def _extensions(self) -> list[str]:
        """What this run used that ECS does not offer, so a reader never mistakes it for ECS behaviour."""
        used: set[str] = set()
        if self.mode_name == "topology-aware":
            used.add("device_mode topology-aware: k contiguous chips chosen on the device graph")
        if self.mode_name == "device-aware" and self._neuron_specs:
            used.add("device_mode device-aware: Neuron device paths treated as a schedulable resource")
        for w in self.plan.workloads:
            for item in w.strategies:  # defaults never binpack on devices: only a strategy given does
                if item.type == "binpack" and item.field in ("neuronDevices", "gpu"):
                    used.add(f"binpack on {item.field} (workload {w.name})")
            if isinstance(w, RunTaskWorkload) and w.on_no_capacity == "wait":
                used.add(f"on_no_capacity wait: a client-side retry queue (workload {w.name})")
        return sorted(used)

    def conservation_ok(self) -> bool:
        """submitted + seeded from a snapshot = provisioning + pending + running + stopped."""
        return self.submitted + self.seeded == sum(self.counts.values())

