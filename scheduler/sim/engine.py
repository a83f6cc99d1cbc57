"""The simpy world: fleets, workloads, task lifecycles, retries, and the metrics recorder.

Task lifecycle (ECS's, shortened): PROVISIONING (created, waiting for a place) -> PENDING (placed) ->
RUNNING -> STOPPED, with ECS stop codes and reasons. Every timed thing is a scheduled callback on the
simpy event heap; there is no generator per task. Tasks that wait are retried when capacity frees,
driven by events: a release or a new instance schedules one retry pass over the waiting queue, which
is grouped by identical request so that one failed head stands for the rest of its class.

The engine talks to the placement core only through ``Placer.place`` and ``Placer.release``.
"""

from __future__ import annotations

import math
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import simpy

from scheduler.ecs.capacity import StrategySplitter
from scheduler.ecs.taskspec import Constraint, NeuronMode, Strategy, TaskSpec
from scheduler.placement.devices import DeviceMode
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure
from scheduler.placement.state import ClusterState
from scheduler.results.summary import RunSummary
from scheduler.sim import deployments, service_load
from scheduler.sim.autoscaling import clamp
from scheduler.sim.capacity import TICK_S, AutoScalingGroup, ManagedInstances, Provider
from scheduler.sim.metrics import RESOURCE_COLUMNS, Recorder, TaskTableWriter
from scheduler.sim.runtime import start_refusal
from scheduler.sim.slo import SLOTally, workload_kinds
from scheduler.sim.snapshot import seed_instances, seed_tasks
from scheduler.sim.startup import ImageCache, StartupSampler, startup_sampler, task_images
from scheduler.sim.summarize import summarize
from scheduler.sim.workloads import (
    DurationSampler,
    arrival_times,
    desired_count_steps,
    duration_sampler,
    split_steps,
)
from scheduler.units import parse_duration
from scheduler.views import describe, events, identity
from scheduler.views.describe import TaskRecord

PROVISIONING, PENDING, RUNNING, STOPPED = "PROVISIONING", "PENDING", "RUNNING", "STOPPED"
SERVICE_BACKOFF_BASE_S = 10.0
SERVICE_BACKOFF_MAX_S = 900.0  # ECS: retry delay grows up to 15 minutes for tasks that never start
RECENT_STOPPED = 100           # stopped tasks kept for the DescribeTasks view
PROVISIONING_QUOTA = 500       # "Tasks in PROVISIONING state per cluster"
SPOT_DISCOUNT = 0.65           # default Spot price discount off on-demand (scenario: cluster.spot_discount)
QUOTA_REASON = ("ClientException: capacity error because the quota of tasks in the PROVISIONING per cluster "
                "has been reached")


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else parse_duration(value)


def service_backoff(failed_starts: int) -> float:
    """The service scheduler's delay before its next start after ``failed_starts`` starts in a row failed:
    doubling from SERVICE_BACKOFF_BASE_S and capped at SERVICE_BACKOFF_MAX_S (ECS's throttle logic). The
    exponent is capped too, so that a service failing for weeks never computes 2 ** (thousands)."""
    if failed_starts <= 0:
        return 0.0
    doublings = math.ceil(math.log2(SERVICE_BACKOFF_MAX_S / SERVICE_BACKOFF_BASE_S))
    return min(SERVICE_BACKOFF_MAX_S, SERVICE_BACKOFF_BASE_S * 2.0 ** min(failed_starts - 1, doublings))


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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # both end a run early with partial results


class _Interrupted(Exception):
    """Raised between two events when the user pressed Ctrl-C (or the run got SIGTERM)."""


class _Call(simpy.events.Event):
    """A scheduled function call: one event on simpy's heap, cheaper than a Timeout plus a closure."""

    __slots__ = ("args", "fn", "sim")

    def __init__(self, sim: Simulation, delay: float, fn: Callable[..., None], args: tuple) -> None:
        self.env = sim.env
        self.callbacks = [_dispatch]
        self._value = None
        self._ok = True
        self.sim, self.fn, self.args = sim, fn, args
        sim.env.schedule(self, simpy.events.NORMAL, delay)


def _dispatch(event: _Call) -> None:
    if event.sim.interrupted:  # stop between two events, never inside one
        raise _Interrupted
    event.fn(*event.args)


class Simulation:
    """One run of a loaded scenario."""

    def __init__(self, loaded: Any, *, seed: int | None = None, until: float | None = None,
                 progress: Callable[[float, float], None] | None = None, task_sink: Any = None) -> None:
        self.loaded = loaded
        model = loaded.model
        self.model = model
        self.seed = int(model.seed if seed is None else seed)
        self.duration = _seconds(model.duration) if until is None else float(until)
        self.sample_interval = _seconds(model.sample_interval)
        # topology-aware is a what-if beyond ECS: manual tasks ask for k chips, placed contiguous anywhere
        self.mode_name = str(model.device_mode)
        self.device_mode = DeviceMode.BLIND if self.mode_name == "ecs-blind" else DeviceMode.AWARE
        self.progress = progress
        self.env = simpy.Environment()
        self.state = ClusterState(model.cluster.name, awsvpc_trunking=model.cluster.awsvpc_trunking)
        self.placer = Placer(self.state, device_mode=self.device_mode)
        self.recorder = Recorder()
        self.names = identity.InstanceNames(model.cluster.name)  # container-instance ARNs (the core knows rows)
        self.task_sink = task_sink
        if task_sink is not None:
            self.recorder.sink = TaskTableWriter(task_sink)
        self.interrupted = False
        self.stopped_by: int | None = None  # the signal that stopped a run early
        self.partial = False
        self.completed_count = 0
        self.slo = SLOTally(workload_kinds(model.workloads))  # per-workload waits, start-up, failures
        self.fault_counts = {"instance_failures": 0, "spot_interruptions": 0, "chip_failures": 0,
                             "agent_disconnects": 0, "instance_retirements": 0, "tasks_stopped": 0,
                             "service_tasks_stopped": 0}
        self.task_seconds_lost = 0.0
        self._mtbf_faults: list[tuple[str, Any]] = []  # (kind, entry) with an mtbf: a clock per instance
        self.fault_rng = np.random.default_rng([self.seed, 2])
        self.placement_rng = np.random.default_rng([self.seed, 0])
        self.tasks: dict[str, SimTask] = {}
        self.recent_stopped: deque[SimTask] = deque(maxlen=RECENT_STOPPED)
        self.queue: OrderedDict[int, deque[SimTask]] = OrderedDict()
        # Daemon tasks wait apart, by instance row: each can only ever start on its own instance, so it is
        # retried when that instance frees something or reconnects, not on every change in the cluster.
        self.daemon_waiting: dict[int, list[SimTask]] = {}
        self._freed_rows: set[int] = set()
        self._retry_scheduled = False
        self.counts = {PROVISIONING: 0, PENDING: 0, RUNNING: 0, STOPPED: 0}
        self.submitted = 0
        self.seeded = 0  # tasks RUNNING from a cluster snapshot at time 0 (not submitted)
        self._snapshot_rows: dict[str, int] = {}
        self.services: list[Service] = []
        self.instance_start: list[float] = []
        self.instance_end: list[float | None] = []
        self._next_id = 0
        self.specs = {name: self._as_mode(spec) for name, spec in loaded.task_specs.items()}
        self._neuron_specs = [s for s in self.specs.values() if s.uses_neuron]
        self.providers: dict[str, Provider] = {}
        self.cp_waiting: dict[str, dict[str, SimTask]] = {}
        self.provisioning_timeout = _seconds(getattr(model.cluster, "provisioning_timeout", "15m"))
        self.spot_discount = float(getattr(model.cluster, "spot_discount", SPOT_DISCOUNT))
        self.daemon_rows: list[int] = []
        self.instance_price: list[float] = []
        self.images = ImageCache()
        self.service_loads: dict[str, service_load.ServiceLoad] = {}  # services with requests or auto scaling

    def _as_mode(self, spec: TaskSpec) -> TaskSpec:
        if self.mode_name == "topology-aware" and spec.neuron_mode is NeuronMode.MANUAL:
            return replace(spec, neuron_mode=NeuronMode.TOPOLOGY, chips=(), chip_count=len(spec.chips))
        return spec

    # ------------------------------------------------------------------ scheduling helpers
    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` at simulated time ``t`` (a callback on the event heap, no generator)."""
        _Call(self, max(0.0, t - self.env._now), fn, args)

    @property
    def now(self) -> float:
        return self.env._now

    # ------------------------------------------------------------------ building
    def _build_fleets(self) -> None:
        catalog = self.loaded.catalog
        snapshot = getattr(self.loaded, "snapshot", None)
        if snapshot is not None:  # the real cluster first: its instances are the lowest rows
            self._snapshot_rows = seed_instances(self, snapshot)
        for fleet in self.model.cluster.fleets:
            itype = catalog.get(fleet.instance_type)
            zones = list(fleet.availability_zones)
            for k in range(fleet.count):
                self.add_instance(itype, launch_type=fleet.launch_type,
                                  availability_zone=zones[k % len(zones)],
                                  capacity_provider=fleet.capacity_provider,
                                  attributes=dict(fleet.attributes), spot=fleet.spot)
        for cp in self.model.cluster.capacity_providers:
            provider: Provider = (AutoScalingGroup(cp, self) if cp.type == "EC2_AUTOSCALING"
                                  else ManagedInstances(cp, self))
            self.providers[cp.name] = provider
            self.cp_waiting[cp.name] = {}
        for row, inst in enumerate(self.state.instances):  # fleets that name a provider belong to it
            if inst.capacity_provider in self.providers:
                self.providers[inst.capacity_provider].instances.add(row)
        for provider in self.providers.values():
            provider.start()
        if self.providers:
            self.at(TICK_S, self._tick)

    def add_instance(self, itype: Any, *, launch_type: str, availability_zone: str,
                     capacity_provider: str | None, attributes: dict[str, str], spot: bool = False,
                     **names: Any) -> int:
        """Register a container instance now; daemons are placed on it before anything else. ``names``
        (``arn``, ``ec2_id``, ``gpus``) are the instance's real ids, when it has them (a snapshot)."""
        self.recorder.advance(self.now)
        index = identity.register_instance(self.state, itype, names=self.names, launch_type=launch_type,
                                           availability_zone=availability_zone, capacity_provider=capacity_provider,
                                           attributes=attributes, registered_at=self.now, **names)
        self.instance_start.append(self.now)
        self.instance_end.append(None)
        self.images.register(index, self.now)
        self.daemon_rows.append(0)
        price = (itype.price_per_hour or 0.0) * ((1 - self.spot_discount) if spot else 1.0)
        self.instance_price.append(price)
        lv = self.recorder.levels
        lv.chips_total += itype.chips
        lv.idle_chip_cost += price if itype.chips else 0.0
        lv.cpu_total += float(self.state.cpu_registered[index])
        lv.mem_total += float(self.state.mem_registered[index])
        for svc in self.services:
            if svc.daemon:
                self._daemon_on(svc, index)
        if spot:
            self._schedule_spot(index)
        self._arm_faults(index)
        self._kick()
        deployments.capacity_changed(self)
        return index

    def _request(self, workload: Any, spec: TaskSpec, rng: np.random.Generator, *,
                 service: Service | None = None, device_set: bool = False) -> Request:
        constraints = workload.runtime_constraints()
        if device_set and Constraint("distinctInstance") not in constraints:
            # one block's tasks (one group) never share an instance: each instance has the block's chips once
            constraints = (*constraints, Constraint("distinctInstance"))
        if service is not None:
            duration_model = getattr(workload, "task_duration", None)
        else:
            duration_model = getattr(workload, "duration", None)
        launch = self.loaded.launch_of(workload)
        request = Request(workload=workload.name, spec=spec, group=self._group(workload, spec, service),
                          constraints=constraints, strategies=workload.effective_strategy(),
                          launch_type=launch.launch_type, on_no_capacity=getattr(workload, "on_no_capacity", "fail"),
                          duration=duration_sampler(duration_model, rng), service=service,
                          startup=startup_sampler(getattr(workload, "startup", None), rng))
        if launch.launch_type is None and launch.strategy:
            request.splitter = StrategySplitter(list(launch.strategy))
            for item in launch.strategy:
                provider = self.providers[item.capacity_provider]
                request.variants[provider.name] = Request(
                    workload=request.workload, spec=spec, group=request.group, constraints=request.constraints,
                    strategies=request.strategies, launch_type=provider.launch_type,
                    capacity_providers=(provider.name,), on_no_capacity=request.on_no_capacity,
                    duration=request.duration, service=service, provider=provider.name,
                    startup=request.startup)
        return request

    def _group(self, workload: Any, spec: TaskSpec, service: Service | None = None) -> str:
        if service is not None:
            return f"service:{service.name}"
        if workload.kind == "service":
            return f"service:{workload.name}"
        return getattr(workload, "group", None) or f"family:{spec.family}"

    def _build_workloads(self) -> None:
        specs = self.specs
        device_sets = getattr(self.loaded, "device_sets", None) or {}
        for k, w in enumerate(self.model.workloads):
            rng = np.random.default_rng([self.seed, 1, k])
            # device sets: one task definition per device block (one ECS service per block for a service)
            blocks = device_sets.get(w.name) or ((None, w.task_definition),)
            start = _seconds(getattr(w, "start", 0) or 0)
            if w.kind == "service":
                self._build_service(w, blocks, rng, start)
                continue
            requests = [self._request(w, specs[name], rng, device_set=label is not None) for label, name in blocks]
            stop = min(self.duration, _seconds(w.stop)) if getattr(w, "stop", None) is not None else self.duration
            max_calls = getattr(w, "max_calls", None)
            if w.arrivals.type == "trace":
                self._schedule_trace(w, requests[0], rng)
                continue
            times = arrival_times(w.arrivals, rng, start=start, stop=stop)
            self._schedule_next_call(times, requests, int(w.count), max_calls, 0)

    def _build_service(self, w: Any, blocks: Any, rng: np.random.Generator, start: float) -> None:
        """One Service per device block (one in all without device sets), the desired count split over them."""
        steps = [] if w.scheduling_strategy == "DAEMON" else desired_count_steps(w, start=start, stop=self.duration)
        for index, (label, name) in enumerate(blocks):
            svc = Service(w.name if label is None else f"{w.name}-{label}", None,
                          daemon=w.scheduling_strategy == "DAEMON", workload=w.name)
            svc.request = self._request(w, self.specs[name], rng, service=svc, device_set=label is not None)
            deployments.configure(svc, w)
            self.services.append(svc)
            if label is None:  # validation refuses deployments with device sets
                for j, step in enumerate(getattr(w, "deployments", None) or ()):
                    self.at(start + _seconds(step.at), self._deploy, svc, w, step.task_definition, j)
            if svc.daemon:
                self.at(start, self._start_daemon, svc)
                continue
            if len(blocks) == 1 and (w.requests is not None or w.auto_scaling is not None):
                steps = self._build_service_load(w, svc, steps, start)
            for t, count in split_steps(steps, len(blocks), index):
                self.at(t, self._set_desired, svc, count)

    def _build_service_load(self, w: Any, svc: Service, steps: list[tuple[float, int]],
                            start: float) -> list[tuple[float, int]]:
        """Requests and Service Auto Scaling for ``svc`` (scheduler.sim.service_load): a tick every metric
        period from ``start``; returns the desired-count steps, brought into the scalable target's range."""
        load = service_load.build(w, self.loaded, np.random.default_rng([self.seed, 4, self.model.workloads.index(w)]),
                                  start=start, stop=self.duration)
        self.service_loads[svc.name] = load
        if load.scaler is not None:
            steps = [(t, clamp(n, load.scaler.config)) for t, n in steps]
        self.at(start + service_load.PERIOD_S, self._service_tick, svc, load)
        return steps

    def _service_tick(self, svc: Service, load: service_load.ServiceLoad) -> None:
        new = load.tick(self.now, svc.running, svc.desired)
        if new is not None:
            decision = load.scaler.decisions[-1] if load.scaler is not None else None
            reason = decision.reason if decision is not None else ""
            self.recorder.scaling.append({"time": self.now, "capacity_provider": None, "service": svc.name,
                                          "action": "set_desired_count", "count": new, "old": svc.desired,
                                          "policy": getattr(decision, "policy", None), "reason": reason})
            self.recorder.event(self.now, "service", f"service {svc.name}: desired count {svc.desired} -> {new} "
                                f"({reason})", service=svc.name)
            self._set_desired(svc, new)
        if self.now + service_load.PERIOD_S <= self.duration:
            self.at(self.now + service_load.PERIOD_S, self._service_tick, svc, load)

    def _schedule_next_call(self, times: Any, requests: list[Request], count: int, max_calls: int | None,
                            made: int) -> None:
        """The next RunTask call; with device sets, calls go to the blocks' task definitions in turn."""
        if max_calls is not None and made >= max_calls:
            return
        t = next(times, None)
        if t is None:
            return

        def call() -> None:
            self.run_task(requests[made % len(requests)], count)
            self._schedule_next_call(times, requests, count, max_calls, made + 1)

        self.at(t, call)

    def _schedule_trace(self, workload: Any, request: Request, rng: np.random.Generator) -> None:
        frame = self.loaded.traces[workload.name]
        per_def: dict[str, Request] = {}
        for row in frame.itertuples(index=False):
            req = request
            name = getattr(row, "task_definition", None)
            if isinstance(name, str) and name:
                req = per_def.get(name) or per_def.setdefault(
                    name, self._request(workload, self.specs[name], rng))
            dur = getattr(row, "duration", None)
            fixed = float(dur) if dur is not None and not (isinstance(dur, float) and math.isnan(dur)) else None
            self.at(float(row.submit), self._submit_one, req, fixed)

    def _deploy(self, svc: Service, workload: Any, name: str, number: int) -> None:
        """UpdateService to the task definition ``name``: a rolling deployment (scheduler.sim.deployments)."""
        spec = self.specs[name]
        rng = np.random.default_rng([self.seed, 3, self.model.workloads.index(workload), number])
        request = self._request(workload, spec, rng, service=svc)
        deployments.deploy(self, svc, request, f"{spec.family}:{spec.revision or 1}")

    def _submit_one(self, request: Request, run_for: float | None) -> None:
        self.submit(request, run_for=run_for)

    # ------------------------------------------------------------------ RunTask and lifecycle
    def run_task(self, request: Request, count: int) -> None:
        """One RunTask call: ``count`` tasks placed one after another."""
        for _ in range(count):
            self.submit(request)

    def submit(self, request: Request, *, run_for: float | None = None) -> SimTask:
        """Create a task now and try to place it."""
        if request.splitter is not None:
            request = request.variants[request.splitter.next()]
        self._next_id += 1
        task_id = identity.task_id(self._next_id)
        spec = request.spec
        task = SimTask(task_id=task_id, spec=spec, group=request.group, last_status=PROVISIONING,
                       launch_type=request.shown_launch_type, created_at=self.env._now,
                       workload=request.workload, request=request,
                       run_for=request.duration() if run_for is None else run_for,
                       started_by=f"ecs-svc/{request.service.name}" if request.service else None,
                       capacity_provider=request.provider)
        self.tasks[task_id] = task
        self.submitted += 1
        self.counts[PROVISIONING] += 1
        if request.service is not None:
            request.service.live.add(task_id)
        outcome = self._try_start(task)
        if isinstance(outcome, Failure):
            self._unplaced(task, outcome)
        return task

    def _waits(self, task: SimTask, failure: Failure) -> bool:
        request = task.request
        assert request is not None
        if request.service is not None or request.on_no_capacity == "wait":
            return True
        # Device-aware runs treat chips as a schedulable resource: a task short only of a chip waits for
        # it, as a task short of a resource waits in PENDING, instead of failing at container start.
        return failure.reason == "RESOURCE:NEURON_DEVICES" and self.device_mode is DeviceMode.AWARE

    @staticmethod
    def _note_waiting(task: SimTask, failure: Failure) -> None:
        task.waiting_reason = str(failure)
        task.waiting_code = failure.reason

    def _unplaced(self, task: SimTask, failure: Failure) -> None:
        self._note_waiting(task, failure)
        svc = task.request.service if task.request else None
        if svc is not None:
            words = events.unplaced_event(failure, self.state, self.names)
            self.recorder.event(self.now, "service", f"service {svc.name} was {words}", service=svc.name,
                                reason=failure.reason)
        provider = self.providers.get(task.request.provider) if task.request and task.request.provider else None
        if provider is not None and provider.scaling:
            # PROVISIONING: wait for the capacity provider to bring capacity, up to the timeout
            if sum(len(w) for w in self.cp_waiting.values()) >= PROVISIONING_QUOTA:
                self._stop(task, "TaskFailedToStart", QUOTA_REASON, placed=False)
                return
            self.cp_waiting[provider.name][task.task_id] = task
            self.queue.setdefault(id(task.request), deque()).append(task)
            self.at(self.now + self.provisioning_timeout, self._provisioning_timeout, task)
            return
        if self._waits(task, failure):
            if task.request is not None and task.request.only is not None:
                self.daemon_waiting.setdefault(int(task.request.only[0]), []).append(task)
                return
            key = id(task.request)
            self.queue.setdefault(key, deque()).append(task)
            return
        self._stop(task, "TaskFailedToStart", failure.reason, placed=False)

    def _provisioning_timeout(self, task: SimTask) -> None:
        if task.last_status == PROVISIONING and task.task_id in self.tasks:
            self._stop(task, "TaskFailedToStart", f"TaskFailedToStart: {task.waiting_code or 'RESOURCE:*'} (timed "
                       f"out waiting for capacity after {self.provisioning_timeout:g} s)", placed=False)

    def _try_start(self, task: SimTask) -> Failure | None:
        request = task.request
        assert request is not None
        out = self.placer.place(request.spec, task_id=task.task_id, group=request.group,
                                constraints=request.constraints, strategies=request.strategies,
                                launch_type=request.launch_type, capacity_providers=request.capacity_providers,
                                rng=self.placement_rng, only=request.only)
        if isinstance(out, Failure):
            return out
        task.placed_at = self.now
        inst = self.state.instances[out.instance]
        task.instance = out.instance
        task.launch_type = inst.launch_type
        task.capacity_provider = inst.capacity_provider
        if request.provider is not None:
            self.cp_waiting[request.provider].pop(task.task_id, None)
        self.counts[PROVISIONING] -= 1
        refusal = None if out.start_failure is not None else start_refusal(request.spec)
        if out.start_failure is not None or refusal is not None:
            # ECS-blind: placed on CPU/memory, the container cannot open its device; in any mode: the
            # Neuron runtime refuses devices that are not contiguous.
            self.counts[PENDING] += 1
            task.last_status = PENDING
            if refusal is not None:
                self.placer.release(task.task_id)
                reason, key = refusal
            else:
                reason = events.start_failure_reason(out.start_failure, self.state, out.instance)
                key = events.start_failure_key(out.start_failure)
            self._stop(task, "TaskFailedToStart", reason, placed=True, failure_key=key)
            return None
        self.recorder.advance(self.now)
        lv = self.recorder.levels
        lv.chips_held += len(out.chips)
        lv.cpu_used += task.spec.cpu
        lv.mem_used += task.spec.memory
        lv.idle_chip_cost -= self._chip_price(out.instance) * len(out.chips)
        if request.only is not None:
            self.daemon_rows[out.instance] += 1
        task.chips = out.chips
        task.gpu_ids = out.gpu_ids
        task.held = task.ever_ran = True
        task.waiting_reason = task.waiting_code = None
        if request.service is not None:
            deployments.task_placed(self, request.service, task)
        if request.startup is None:
            self.counts[PENDING] += 1
            self._running(task)
            return None
        # PENDING: the agent pulls the images (fast when this instance has them), then starts the containers
        images = task_images(task.spec)
        pull, start = request.startup.draw(self.images.has(out.instance, images, self.now))
        self.images.acquire(out.instance, images, self.now)
        self.counts[PENDING] += 1
        task.last_status = PENDING
        task.pull_started_at, task.pull_stopped_at = self.now, self.now + pull
        self.at(self.now + pull + start, self._running, task)
        return None

    def _running(self, task: SimTask) -> None:
        """PENDING -> RUNNING: the task's containers are up. Its wait ends here, and only now does its
        service count it as running."""
        if task.last_status not in (PENDING, PROVISIONING) or task.task_id not in self.tasks:
            return  # stopped while it was starting
        self.counts[PENDING] -= 1
        self.counts[RUNNING] += 1
        task.last_status = RUNNING
        task.started_at = self.now
        svc = task.request.service if task.request else None
        if svc is not None:
            svc.failed_starts = 0
            svc.account(self.now)
            svc.running += 1
            deployments.task_running(self, svc, task)
            load = self.service_loads.get(svc.name)
            if load is not None and load.requests is not None:
                load.requests.add_task(self.now, task.task_id)
        if math.isfinite(task.run_for):
            self.at(self.now + task.run_for, self._exit, task)

    def _exit(self, task: SimTask) -> None:
        if task.last_status == RUNNING:
            self._stop(task, "EssentialContainerExited", "Essential container in task exited", placed=True)

    def _stop(self, task: SimTask, code: str, reason: str, *, placed: bool, failure_key: str | None = None) -> None:
        """Move a task to STOPPED now, give back what it holds, and tell its service. A TaskFailedToStart
        counts under ``failure_key`` (default: ``reason``)."""
        was = task.last_status
        held = task.held
        self.counts[was] -= 1
        self.counts[STOPPED] += 1
        if held:
            task.held = False
            if task.request is not None and task.request.startup is not None and task.instance is not None:
                self.images.release(task.instance, task_images(task.spec), self.now)
            self.recorder.advance(self.now)
            self.placer.release(task.task_id)
            lv = self.recorder.levels
            lv.chips_held -= len(task.chips)
            lv.cpu_used -= task.spec.cpu
            lv.mem_used -= task.spec.memory
            lv.idle_chip_cost += self._chip_price(task.instance) * len(task.chips)
            if task.request is not None and task.request.only is not None:
                self.daemon_rows[task.instance] -= 1
            if task.instance in self.daemon_waiting:
                self._freed_rows.add(task.instance)
        if task.request is not None and task.request.provider is not None:
            self.cp_waiting[task.request.provider].pop(task.task_id, None)
        task.last_status = task.desired_status = STOPPED
        task.stopped_at = self.now
        task.stop_code = code
        task.stopped_reason = reason
        if code == "EssentialContainerExited":
            self.completed_count += 1
        if code == "TaskFailedToStart":
            self.recorder.failures[failure_key or reason] += 1
            self.slo.failed(task.workload, failure_key or reason)
        self._row(task, placed)
        del self.tasks[task.task_id]
        self.recent_stopped.append(task)
        svc = task.request.service if task.request else None
        if svc is not None:
            svc.live.discard(task.task_id)
            if was == RUNNING:
                svc.account(self.now)
                svc.running -= 1
                load = self.service_loads.get(svc.name)
                if load is not None and load.requests is not None:
                    load.requests.remove_task(self.now, task.task_id)
            if code == "TaskFailedToStart":
                svc.failed_starts += 1
                svc.backoff_until = self.now + service_backoff(svc.failed_starts)
                self.recorder.event(self.now, "service", f"service {svc.name} is unable to consistently "
                                    f"start tasks successfully.", service=svc.name)
            if code != "ServiceSchedulerInitiated":
                self._schedule_reconcile(svc)
        if held:
            self._kick()

    def _row(self, task: SimTask, placed: bool) -> None:
        self.slo.record(task, self.now)
        inst = self.state.instances[task.instance] if task.instance is not None else None
        start = task.started_at
        stopped = task.last_status == STOPPED
        self.recorder.task_row(
            task.task_id, task.spec.family, task.workload, task.group, task.launch_type, task.capacity_provider,
            None if task.seeded else task.created_at, start, task.stopped_at, task.last_status, task.stop_code,
            task.stopped_reason if stopped else self._starting(task) or task.waiting_reason,
            inst.ec2_instance_id if inst else None, inst.instance_type.name if inst else None,
            inst.availability_zone if inst else None, ",".join(map(str, task.chips)),
            None if start is None or task.seeded else start - task.created_at,
            placed or task.placed_at is not None,  # placed: given an instance, whether or not it then started
            None if start is None or task.placed_at is None else start - task.placed_at,
            None if task.pull_stopped_at is None else task.pull_stopped_at - (task.pull_started_at or 0.0))

    def _starting(self, task: SimTask) -> str | None:
        """What a PENDING task is doing (its row's reason while it starts), None for any other task."""
        if task.last_status != PENDING or task.pull_stopped_at is None:
            return None
        return "PENDING: pulling images" if self.now < task.pull_stopped_at else "PENDING: starting containers"

    # ------------------------------------------------------------------ waiting and retries
    def _kick(self) -> None:
        """Schedule one retry pass now (coalesced): capacity changed."""
        if (self.queue or self._freed_rows) and not self._retry_scheduled:
            self._retry_scheduled = True
            self.at(self.now, self._retry_pass)

    def _retry_pass(self) -> None:
        self._retry_scheduled = False
        self._retry_daemons()
        for key in list(self.queue):
            waiting = self.queue[key]
            while waiting:
                task = waiting[0]
                if task.last_status != PROVISIONING:
                    waiting.popleft()
                    continue
                failure = self._try_start(task)
                if failure is not None:
                    self._note_waiting(task, failure)
                    break  # the rest of this class asks for the same and fails the same way
                waiting.popleft()
            if not waiting:
                del self.queue[key]

    def _retry_daemons(self) -> None:
        """Retry the daemon tasks waiting on instances that freed something since the last pass: the cost
        follows the changes, not the number of instances."""
        rows, self._freed_rows = sorted(self._freed_rows), set()
        for row in rows:
            waiting = self.daemon_waiting.pop(row, None)
            if not waiting:
                continue
            still = []
            for task in waiting:
                if task.last_status != PROVISIONING:
                    continue
                failure = self._try_start(task)
                if failure is not None:
                    task.waiting_reason = str(failure)
                    still.append(task)
            if still:
                self.daemon_waiting[row] = still

    # ------------------------------------------------------------------ services
    def _set_desired(self, svc: Service, desired: int) -> None:
        svc.account(self.now)
        svc.desired = desired
        self._reconcile(svc)

    def _schedule_reconcile(self, svc: Service) -> None:
        if not svc.reconcile_scheduled:
            svc.reconcile_scheduled = True
            self.at(max(self.now, svc.backoff_until), self._reconcile_cb, svc)

    def _reconcile_cb(self, svc: Service) -> None:
        svc.reconcile_scheduled = False
        self._reconcile(svc)

    def _reconcile(self, svc: Service) -> None:
        """Start or stop tasks so the service has its desired count."""
        if svc.daemon:
            for index in list(svc.daemon_requests):
                self._daemon_on(svc, index)
            return
        if self.now < svc.backoff_until:
            self._schedule_reconcile(svc)
            return
        deployments.reconcile(self, svc)

    def _start_daemon(self, svc: Service) -> None:
        for index in range(len(self.state)):
            self._daemon_on(svc, index)

    def _daemon_on(self, svc: Service, index: int) -> None:
        """Keep one daemon task on instance ``index`` if it meets the service's constraints."""
        base = svc.request
        assert base is not None
        if self.state.instances[index].status != "ACTIVE":
            return
        req = svc.daemon_requests.get(index)
        if req is None:
            only = np.array([index])
            fits_here = self.placer.satisfies(base.spec, group=base.group,
                                              constraints=base.spec.constraints + base.constraints,
                                              launch_type=base.launch_type, only=only)
            if not fits_here[index]:
                return
            req = Request(workload=base.workload, spec=base.spec, group=base.group,
                          constraints=base.constraints, strategies=(), launch_type=base.launch_type,
                          duration=base.duration, service=svc, only=only, startup=base.startup)
            svc.daemon_requests[index] = req
        if svc.daemon_tasks.get(index) in svc.live:  # one lookup, not a scan: daemons start on every instance
            return
        svc.daemon_tasks[index] = self.submit(req).task_id

    # ------------------------------------------------------------------ capacity providers
    def _chip_price(self, row: int) -> float:
        chips = self.state.instances[row].instance_type.chips
        return self.instance_price[row] / chips if chips else 0.0

    def _tick(self) -> None:
        for provider in self.providers.values():
            provider.tick()
        if self.now + TICK_S < self.duration:
            self.at(self.now + TICK_S, self._tick)

    def provisioning_tasks(self, provider: str) -> list[SimTask]:
        """Tasks waiting in PROVISIONING for this capacity provider, oldest first."""
        return list(self.cp_waiting.get(provider, {}).values())

    def non_daemon_tasks(self, row: int) -> int:
        return int(self.state.running[row]) - self.daemon_rows[row]

    def launch_instance(self, provider: Provider, itype: Any, zone: str, **registration: Any) -> None:
        """Ask EC2 for an instance; it registers with the cluster after the provider's launch time."""
        def register() -> None:
            row = self.add_instance(itype, launch_type=provider.launch_type, availability_zone=zone,
                                    capacity_provider=provider.name, attributes={},
                                    spot=bool(getattr(provider.model, "spot", False)))
            provider.registered(row, **registration)
            self._retry_pass()  # place waiting tasks before any provider looks at them again

        self.at(self.now + provider.launch_time, register)

    def deregister(self, row: int, reason: str, *, stop_code: str = "ServiceSchedulerInitiated") -> None:
        """Terminate an instance: stop what still runs there, then take it out of the cluster."""
        inst = self.state.instances[row]
        if inst.status == "INACTIVE":
            return
        for task_id in sorted(inst.tasks):
            task = self.tasks[task_id]
            if stop_code != "ServiceSchedulerInitiated":
                self._count_fault_stop(task)
            self._stop(task, stop_code, f"Container instance deregistered ({reason})" if stop_code ==
                       "ServiceSchedulerInitiated" else reason, placed=True)
            svc = task.request.service if task.request else None
            if svc is not None and not svc.daemon:
                self._schedule_reconcile(svc)
        self.recorder.advance(self.now)
        lv = self.recorder.levels
        lv.chips_total -= int(np.bitwise_count(self.state.chips_all[row]))  # failed chips already left
        lv.cpu_total -= float(self.state.cpu_registered[row])
        lv.mem_total -= float(self.state.mem_registered[row])
        lv.idle_chip_cost -= self._chip_price(row) * int(np.bitwise_count(self.state.chips_free[row]))
        self.state.set_status(row, "INACTIVE")
        self.instance_end[row] = self.now
        self.images.forget(row)

    # ------------------------------------------------------------------ faults
    def _build_faults(self) -> None:
        faults = getattr(self.model, "faults", None)
        if faults is None:
            return
        for kind, entries in (("instance", faults.instance_failures), ("chip", faults.chip_failures),
                              ("agent", faults.agent_disconnects), ("retirement", faults.instance_retirements)):
            for entry in entries:
                for t in entry.at:
                    self.at(float(t), self._strike, kind, entry)
                if entry.mtbf:
                    self._mtbf_faults.append((kind, entry))
        for inst in self.state.instances:
            self._arm_faults(inst.index)

    def _arm_faults(self, row: int) -> None:
        """Start the failure clocks of a new instance: one exponential clock per MTBF entry that matches it."""
        name = self.state.instances[row].instance_type.name
        for kind, entry in self._mtbf_faults:
            if entry.instance_type is None or entry.instance_type == name:
                self._arm(kind, entry, row)

    def _arm(self, kind: str, entry: Any, row: int) -> None:
        t = self.now + float(self.fault_rng.exponential(float(entry.mtbf)))
        if t < self.duration:
            self.at(t, self._clock_strike, kind, entry, row)

    def _clock_strike(self, kind: str, entry: Any, row: int) -> None:
        if self.state.instances[row].status == "INACTIVE":
            return  # the clock dies with its instance
        if self._strikable(entry, self.state.instances[row]) and (kind != "chip" or int(self.state.chips_all[row])):
            self._hit(kind, entry, row)
        if self.state.instances[row].status != "INACTIVE":
            self._arm(kind, entry, row)

    def _fault_candidates(self, entry: Any) -> list[int]:
        return [i.index for i in self.state.instances if self._strikable(entry, i)]

    @staticmethod
    def _strikable(entry: Any, inst: Any) -> bool:
        """An ACTIVE instance of the entry's type (and, for an agent disconnect, still connected)."""
        return (inst.status == "ACTIVE"
                and (entry.instance_type is None or inst.instance_type.name == entry.instance_type)
                and (not hasattr(entry, "duration") or inst.agent_connected))

    def _strike(self, kind: str, entry: Any) -> None:
        """A fault at a fixed time: it strikes one matching instance, chosen at random."""
        rows = self._fault_candidates(entry)
        if kind == "chip":
            rows = [r for r in rows if int(self.state.chips_all[r])]
        if rows:
            self._hit(kind, entry, rows[int(self.fault_rng.integers(len(rows)))])

    def _hit(self, kind: str, entry: Any, row: int) -> None:
        inst = self.state.instances[row]
        if kind == "instance":
            self.fault_counts["instance_failures"] += 1
            self.recorder.event(self.now, "fault", f"{inst.ec2_instance_id} failed its EC2 health checks")
            self._lose_instance(row, "InfrastructureHealth", "Task stopped: the container instance failed "
                                "(EC2 instance health check)")
        elif kind == "agent":
            self.fault_counts["agent_disconnects"] += 1
            self.state.set_agent_connected(row, False)
            self.recorder.event(self.now, "fault", f"agent on {inst.ec2_instance_id} disconnected")
            self.at(self.now + float(entry.duration), self._reconnect, row)
        elif kind == "retirement":
            self.fault_counts["instance_retirements"] += 1
            self.recorder.event(self.now, "fault", f"{inst.ec2_instance_id} is scheduled for retirement in "
                                f"{float(entry.notice):g} s")
            self.drain(row, "EC2 scheduled instance retirement")
            self.at(self.now + float(entry.notice), self._lose_instance, row, "TerminationNotice",
                    "Task stopped: the container instance was terminated after its retirement notice")
        else:
            self._fail_chip(row)

    def _reconnect(self, row: int) -> None:
        if self.state.instances[row].status != "INACTIVE":
            self.state.set_agent_connected(row, True)
            if row in self.daemon_waiting:
                self._freed_rows.add(row)
            self._kick()

    def _fail_chip(self, row: int) -> None:
        present = int(self.state.chips_all[row])
        chips = [c for c in range(64) if present >> c & 1]
        chip = chips[int(self.fault_rng.integers(len(chips)))]
        inst = self.state.instances[row]
        self.fault_counts["chip_failures"] += 1
        holder = inst.chip_holders.get(chip)
        if holder is not None:
            task = self.tasks[holder]
            self._count_fault_stop(task)
            self._stop(task, "InfrastructureHealth", f"Task stopped: Neuron device /dev/neuron{chip} failed on "
                       f"{inst.ec2_instance_id}", placed=True)
        self.recorder.advance(self.now)
        lv = self.recorder.levels
        lv.chips_total -= 1
        lv.idle_chip_cost -= self._chip_price(row)
        self.state.remove_chip(row, chip)
        self.recorder.event(self.now, "fault", f"/dev/neuron{chip} on {inst.ec2_instance_id} failed and left "
                            "NEURON_DEVICES")

    def _count_fault_stop(self, task: SimTask) -> None:
        # A service replaces its task (the cost shows as service shortfall); a RunTask task's work is lost.
        self.fault_counts["tasks_stopped"] += 1
        if task.request is not None and task.request.service is not None:
            self.fault_counts["service_tasks_stopped"] += 1
        else:
            self.task_seconds_lost += self.now - (task.started_at or self.now)

    def _lose_instance(self, row: int, stop_code: str, reason: str) -> None:
        inst = self.state.instances[row]
        if inst.status == "INACTIVE":  # already gone (scaled in, or lost to an earlier fault): no replacement
            return
        provider = self.providers.get(inst.capacity_provider or "")
        self.deregister(row, reason, stop_code=stop_code)
        if provider is not None:
            provider.lost(row)

    def _schedule_spot(self, row: int) -> None:
        spot = getattr(self.model.faults, "spot_interruptions", None) if hasattr(self.model, "faults") else None
        if spot is None:
            return
        t = self.now + float(self.fault_rng.exponential(1.0 / float(spot.rate)))
        if t < self.duration:
            self.at(t, self._spot_notice, row, float(spot.notice))

    def _spot_notice(self, row: int, notice: float) -> None:
        inst = self.state.instances[row]
        if inst.status == "INACTIVE":
            return
        self.fault_counts["spot_interruptions"] += 1
        self.drain(row, "EC2 Spot interruption notice")
        self.at(self.now + notice, self._lose_instance, row, "SpotInterruption",
                "Your Spot Task was interrupted.")

    def drain(self, row: int, reason: str) -> None:
        """DRAINING: no new tasks; service tasks move elsewhere, standalone tasks run on."""
        self.state.set_status(row, "DRAINING")
        inst = self.state.instances[row]
        deployments.drain(self, row, reason)  # replacements first, within each service's bounds
        self.recorder.event(self.now, "instance", f"{inst.ec2_instance_id} set to DRAINING: {reason}")

    def scaling_event(self, provider: str, action: str, count: int, reason: str, **extra: Any) -> None:
        self.recorder.scaling.append({"time": self.now, "capacity_provider": provider, "action": action,
                                      "count": count, "reason": reason, **extra})

    def scaling_metric(self, provider: str, cpr: float, instances: int, needed: int) -> None:
        self.recorder.reservations.append({"time": self.now, "capacity_provider": provider, "cpr": cpr,
                                           "instances": instances, "instances_needed": needed})

    # ------------------------------------------------------------------ sampling
    def _sample(self) -> None:
        """One timeline sample: a row per (instance type, capacity provider) and a "*" row for the cluster."""
        t = self.now
        st = self.state
        n = len(st)
        rows: list[dict] = []
        if n:
            providers = [i.capacity_provider or "" for i in st.instances]
            cp_names = sorted(set(providers))
            cp_code = np.fromiter((cp_names.index(p) for p in providers), np.int64, n)
            codes = st.type_code.astype(np.int64) * len(cp_names) + cp_code
            k = len(st.type_names) * len(cp_names)
            live = st.launch_code >= 0
            live &= np.fromiter((i.status != "INACTIVE" for i in st.instances), bool, n)
            chips_all = np.where(live, np.bitwise_count(st.chips_all), 0).astype(np.int64)
            chips_free = np.where(live, np.bitwise_count(st.chips_free), 0).astype(np.int64)
            stranded = self._stranded_per_instance(chips_free)

            def per_key(values: np.ndarray) -> np.ndarray:
                return np.bincount(codes, weights=np.where(live, values, 0), minlength=k)

            per = {
                "instances": per_key(np.ones(n)),
                "chips_total": per_key(chips_all),
                "chips_held": per_key(chips_all - chips_free),
                "chips_stranded": per_key(stranded),
                "cpu_total": per_key(st.cpu_registered),
                "cpu_used": per_key(st.cpu_registered - st.cpu_free),
                "memory_total": per_key(st.mem_registered),
                "memory_used": per_key(st.mem_registered - st.mem_free),
                "gpus_total": per_key(st.gpu_registered),
                "gpus_used": per_key(st.gpu_registered - st.gpu_free),
                "running": per_key(st.running),
            }
            seen = np.bincount(codes, weights=live, minlength=k)
            for code in np.flatnonzero(seen).tolist():
                name = st.type_names[code // len(cp_names)]
                row = {"time": t, "instance_type": name, "capacity_provider": cp_names[code % len(cp_names)] or None}
                row.update({key: int(col[code]) for key, col in per.items()})
                rows.append(row)
            self.recorder.stranded_chip_seconds += float(stranded.sum()) * self.sample_interval
        active = int(sum(1 for i in st.instances if i.status != "INACTIVE"))
        totals = {key: sum(r[key] for r in rows) for key in RESOURCE_COLUMNS}
        rows.append({"time": t, "instance_type": "*", "capacity_provider": None, "instances": active, **totals,
                     "running": self.counts[RUNNING],
                     "pending": self.counts[PENDING], "provisioning": self.counts[PROVISIONING],
                     "submitted": self.submitted + self.seeded, "stopped": self.counts[STOPPED]})
        self.recorder.sample(rows)
        if self.progress is not None:
            self.progress(t, self.duration)
        if t + self.sample_interval <= self.duration:
            self.at(t + self.sample_interval, self._sample)

    def _stranded_per_instance(self, chips_free: np.ndarray) -> np.ndarray:
        """Free chips on instances that can take none of the scenario's Neuron tasks now."""
        st = self.state
        has_free = (chips_free > 0) & st.schedulable
        if not has_free.any():
            return np.zeros(len(st), np.int64)
        usable = np.zeros(len(st), bool)
        for spec in self._neuron_specs:
            usable |= self.placer.feasible(spec, only=np.flatnonzero(has_free))
        return np.where(has_free & ~usable, chips_free, 0)

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
            self._build_faults()
            self._build_workloads()
            if getattr(self.loaded, "snapshot", None) is not None:
                seed_tasks(self, self.loaded.snapshot, self._snapshot_rows, task_type=SimTask, request_type=Request)
            self.at(0.0, self._sample)
            try:
                self.env.run(until=self.duration)
            except _Interrupted:
                self.partial = True
                self.duration = self.now
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.recorder.advance(self.duration)
        return self._results(time.perf_counter() - wall)

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.interrupted = True
        self.stopped_by = signum

    def _results(self, wall_seconds: float) -> Results:
        services = [svc for svc in self.services if not svc.daemon]
        for svc in services:
            svc.account(self.duration)
        for task in list(self.tasks.values()):  # still alive at the end: rows with their current state
            self._row(task, placed=task.ever_ran)
        tasks = None
        if self.recorder.sink is not None:
            self.recorder.flush()
            self.recorder.sink.close()
        else:
            tasks = self.recorder.tasks_frame()
        timeline = self.recorder.timeline_frame()
        summary = summarize(self, wall_seconds, timeline)
        records = list(self.recent_stopped) + list(self.tasks.values())
        return Results(
            summary=summary, tasks=tasks, timeline=timeline,
            describe_tasks=describe.describe_tasks(records, self.state, names=self.names),
            describe_container_instances=describe.describe_container_instances(self.state, names=self.names),
            events=self.recorder.events,
            extra_tables={"scaling_events": self.recorder.scaling_frame(),
                          "capacity_reservation": self.recorder.reservation_frame(),
                          **service_load.tables(self.service_loads.values())},
            tasks_path=self.task_sink,
        )

    def _extensions(self) -> list[str]:
        """What this run used that ECS does not offer, so a reader never mistakes it for ECS behaviour."""
        used: set[str] = set()
        if self.mode_name == "topology-aware":
            used.add("device_mode topology-aware: k contiguous chips chosen on the device graph")
        if self.mode_name == "device-aware" and self._neuron_specs:
            used.add("device_mode device-aware: Neuron device paths treated as a schedulable resource")
        for w in self.model.workloads:
            for item in getattr(w, "placement_strategy", None) or ():
                if item.type == "binpack" and item.field in ("neuronDevices", "gpu"):
                    used.add(f"binpack on {item.field} (workload {w.name})")
            if getattr(w, "on_no_capacity", "fail") == "wait":
                used.add(f"on_no_capacity wait: a client-side retry queue (workload {w.name})")
        return sorted(used)

    def conservation_ok(self) -> bool:
        """submitted + seeded from a snapshot = provisioning + pending + running + stopped."""
        return self.submitted + self.seeded == sum(self.counts.values())

