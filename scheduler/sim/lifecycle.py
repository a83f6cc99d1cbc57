"""Task lifecycle: a task from RunTask (or its service) to STOPPED.

PROVISIONING (created; placed at once, or waiting in the waiting room or for a capacity provider) ->
PENDING (placed: holds what it reserved while its images are pulled and its containers start) -> RUNNING
(until its run time ends, its service stops it, or a fault does) -> STOPPED, with ECS's stop codes and
reasons. Every timed step is a call on the clock; every task that ends writes its row.

:class:`TaskLifecycle` owns the tasks alive, the counts by state, and what was submitted and completed; the
engine wires it to the cluster state, the placer, the waiting room, the service scheduler and the recorder.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from scheduler.placement.devices import DeviceMode
from scheduler.placement.results import Failure
from scheduler.sim import deployments
from scheduler.sim.runtime import start_refusal
from scheduler.sim.startup import task_images
from scheduler.sim.tasks import PENDING, PROVISIONING, RUNNING, STOPPED, Request, SimTask
from scheduler.sim.waiting import note_failure
from scheduler.views import events, identity

RECENT_STOPPED = 100           # stopped tasks kept for the DescribeTasks view
PROVISIONING_QUOTA = 500       # "Tasks in PROVISIONING state per cluster"
QUOTA_REASON = ("ClientException: capacity error because the quota of tasks in the PROVISIONING per cluster "
                "has been reached")


class TaskLifecycle:
    """The tasks of one run and their moves from state to state."""

    def __init__(self, sim: Any) -> None:
        """``sim`` is the engine (scheduler.sim.engine.Simulation), built far enough to hand over its parts."""
        self.sim = sim
        self.env = sim.env
        self.at = sim.at
        self.state, self.placer, self.recorder = sim.state, sim.placer, sim.recorder
        self.waiting, self.services, self.providers = sim.waiting, sim.service_scheduler, sim.providers
        self.images, self.slo, self.names, self.daemon_rows = sim.images, sim.slo, sim.names, sim.daemon_rows
        self.device_mode: DeviceMode = sim.device_mode
        self.provisioning_timeout: float = sim.provisioning_timeout
        self.placement_rng = sim.placement_rng
        self.tasks: dict[str, SimTask] = {}
        self.recent_stopped: deque[SimTask] = deque(maxlen=RECENT_STOPPED)
        self.counts = {PROVISIONING: 0, PENDING: 0, RUNNING: 0, STOPPED: 0}
        self.submitted = 0
        self.seeded = 0  # tasks RUNNING from a cluster snapshot at time 0 (not submitted)
        self.completed_count = 0
        self._next_id = 0

    @property
    def now(self) -> float:
        return self.env._now

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
                       launch_type=request.shown_launch_type, created_at=self.now,
                       workload=request.workload, request=request,
                       run_for=request.duration() if run_for is None else run_for,
                       started_by=f"ecs-svc/{request.service.name}" if request.service else None,
                       capacity_provider=request.provider)
        self.tasks[task_id] = task
        self.submitted += 1
        self.counts[PROVISIONING] += 1
        if request.service is not None:
            request.service.live.add(task_id)
        outcome = self.try_start(task)
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

    def _unplaced(self, task: SimTask, failure: Failure) -> None:
        note_failure(task, failure)
        svc = task.request.service if task.request else None
        if svc is not None:
            words = events.unplaced_event(failure, self.state, self.names)
            self.recorder.event(self.now, "service", f"service {svc.name} was {words}", service=svc.name,
                                reason=failure.reason)
        provider = self.providers.get(task.request.provider) if task.request and task.request.provider else None
        if provider is not None and provider.scaling:
            # PROVISIONING: wait for the capacity provider to bring capacity, up to the timeout
            if self.waiting.provisioning() >= PROVISIONING_QUOTA:
                self.stop(task, "TaskFailedToStart", QUOTA_REASON, placed=False)
                return
            self.waiting.wait_for_provider(provider.name, task)
            self.at(self.now + self.provisioning_timeout, self._provisioning_timeout, task)
            return
        if self._waits(task, failure):
            if task.request is not None and task.request.only is not None:
                self.waiting.wait_on_instance(int(task.request.only[0]), task)
                return
            self.waiting.wait(task)
            return
        self.stop(task, "TaskFailedToStart", failure.reason, placed=False)

    def _provisioning_timeout(self, task: SimTask) -> None:
        if task.last_status == PROVISIONING and task.task_id in self.tasks:
            self.stop(task, "TaskFailedToStart", f"TaskFailedToStart: {task.waiting_code or 'RESOURCE:*'} (timed "
                       f"out waiting for capacity after {self.provisioning_timeout:g} s)", placed=False)

    def try_start(self, task: SimTask) -> Failure | None:
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
        self.waiting.left(task)
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
            self.stop(task, "TaskFailedToStart", reason, placed=True, failure_key=key)
            return None
        self.recorder.advance(self.now)
        if request.only is not None:
            self.daemon_rows[out.instance] += 1
        task.chips = out.chips
        task.gpu_ids = out.gpu_ids
        task.held = task.ever_ran = True
        task.waiting_reason = task.waiting_code = None
        if request.service is not None:
            deployments.task_placed(self.sim, request.service, task)
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
            self.services.task_running(svc, task)
        if math.isfinite(task.run_for):
            self.at(self.now + task.run_for, self._exit, task)

    def _exit(self, task: SimTask) -> None:
        if task.last_status == RUNNING:
            self.stop(task, "EssentialContainerExited", "Essential container in task exited", placed=True)

    def stop(self, task: SimTask, code: str, reason: str, *, placed: bool, failure_key: str | None = None) -> None:
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
            self.placer.release(task.task_id)
            self.recorder.advance(self.now)
            if task.chips:
                self.recorder.chips_released(self.sim._chip_price(task.instance), len(task.chips),
                                             self.now - _held_since(task))
            if task.request is not None and task.request.only is not None:
                self.daemon_rows[task.instance] -= 1
            self.waiting.freed(task.instance)
        self.waiting.left(task)
        task.last_status = task.desired_status = STOPPED
        task.stopped_at = self.now
        task.stop_code = code
        task.stopped_reason = reason
        if code == "EssentialContainerExited":
            self.completed_count += 1
        if code == "TaskFailedToStart":
            self.recorder.failures[failure_key or reason] += 1
            self.slo.failed(task.workload, failure_key or reason)
        self.row(task, placed)
        del self.tasks[task.task_id]
        self.recent_stopped.append(task)
        svc = task.request.service if task.request else None
        if svc is not None:
            self.services.task_stopped(svc, task, was, code)
        if held:
            self.waiting.kick()

    def held_chip_cost(self, t: float) -> float:
        """USD per hour x seconds of the chips the tasks alive still hold, from when they took them to ``t``
        (what the recorder's ``held_chip_cost`` lacks at the end of a run)."""
        return sum(self.sim._chip_price(task.instance) * len(task.chips) * (t - _held_since(task))
                   for task in self.tasks.values() if task.held and task.chips)

    def row(self, task: SimTask, placed: bool) -> None:
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


def _held_since(task: SimTask) -> float:
    """When a task took what it holds: placed, or created holding it (a task seeded from a snapshot)."""
    return task.placed_at if task.placed_at is not None else task.created_at
