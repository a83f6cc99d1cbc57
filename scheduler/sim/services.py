"""The service scheduler: keeps each REPLICA service at its desired count and a DAEMON service's task on
every ACTIVE instance that meets its constraints.

A change (desired count, a task stopped, an instance registered) asks for a reconcile; reconciles are
coalesced per service and held back by ECS's start back-off while starts keep failing. Rolling
deployments and AZ rebalancing, within each service's bounds, are :mod:`scheduler.sim.deployments`'.
Requests and Service Auto Scaling tick once a metric period (:mod:`scheduler.sim.service_load`).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from scheduler.placement.placer import Placer
from scheduler.sim import deployments, service_load
from scheduler.sim.ports import EnginePort
from scheduler.sim.tasks import RUNNING, Request, Service, SimTask

SERVICE_BACKOFF_BASE_S = 10.0
SERVICE_BACKOFF_MAX_S = 900.0  # ECS: retry delay grows up to 15 minutes for tasks that never start


def service_backoff(failed_starts: int) -> float:
    """The service scheduler's delay before its next start after ``failed_starts`` starts in a row failed:
    doubling from SERVICE_BACKOFF_BASE_S and capped at SERVICE_BACKOFF_MAX_S (ECS's throttle logic). The
    exponent is capped too, so that a service failing for weeks never computes 2 ** (thousands)."""
    if failed_starts <= 0:
        return 0.0
    doublings = math.ceil(math.log2(SERVICE_BACKOFF_MAX_S / SERVICE_BACKOFF_BASE_S))
    return min(SERVICE_BACKOFF_MAX_S, SERVICE_BACKOFF_BASE_S * 2.0 ** min(failed_starts - 1, doublings))


class ServicePort(EnginePort, Protocol):
    """What the service scheduler asks of the simulation (the engine implements it)."""

    placer: Placer

    def submit(self, request: Request) -> SimTask: ...


class ServiceScheduler:
    """Every service of the run, and the loads (requests, auto scaling) of those that have one."""

    def __init__(self, sim: ServicePort) -> None:
        self.sim = sim
        self.services: list[Service] = []
        self.loads: dict[str, service_load.ServiceLoad] = {}  # services with requests or auto scaling

    def set_desired(self, svc: Service, desired: int) -> None:
        svc.account(self.sim.now)
        svc.desired = desired
        self.reconcile(svc)

    def schedule_reconcile(self, svc: Service) -> None:
        if not svc.reconcile_scheduled:
            svc.reconcile_scheduled = True
            self.sim.at(max(self.sim.now, svc.backoff_until), self._reconcile_cb, svc)

    def _reconcile_cb(self, svc: Service) -> None:
        svc.reconcile_scheduled = False
        self.reconcile(svc)

    def reconcile(self, svc: Service) -> None:
        """Start or stop tasks so the service has its desired count."""
        if svc.daemon:
            for index in list(svc.daemon_requests):
                self.daemon_on(svc, index)
            return
        if self.sim.now < svc.backoff_until:
            self.schedule_reconcile(svc)
            return
        deployments.reconcile(self.sim, svc)

    def start_daemon(self, svc: Service) -> None:
        for index in range(len(self.sim.state)):
            self.daemon_on(svc, index)

    def instance_added(self, index: int) -> None:
        """A container instance registered: every DAEMON service places its task there first."""
        for svc in self.services:
            if svc.daemon:
                self.daemon_on(svc, index)

    def daemon_on(self, svc: Service, index: int) -> None:
        """Keep one daemon task on instance ``index`` if it meets the service's constraints."""
        base = svc.request
        assert base is not None
        sim = self.sim
        if sim.state.instances[index].status != "ACTIVE":
            return
        req = svc.daemon_requests.get(index)
        if req is None:
            only = np.array([index])
            fits_here = sim.placer.satisfies(base.spec, group=base.group,
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
        svc.daemon_tasks[index] = sim.submit(req).task_id

    def tick(self, svc: Service, load: service_load.ServiceLoad) -> None:
        """One metric period of a service's load: requests served, and auto scaling's decision."""
        sim = self.sim
        new = load.tick(sim.now, svc.running, svc.desired)
        if new is not None:
            decision = load.scaler.decisions[-1] if load.scaler is not None else None
            reason = decision.reason if decision is not None else ""
            sim.recorder.scaling.append({"time": sim.now, "capacity_provider": None, "service": svc.name,
                                         "action": "set_desired_count", "count": new, "old": svc.desired,
                                         "policy": None if decision is None else decision.policy, "reason": reason})
            sim.recorder.event(sim.now, "service", f"service {svc.name}: desired count {svc.desired} -> {new} "
                               f"({reason})", service=svc.name)
            self.set_desired(svc, new)
        if sim.now + service_load.PERIOD_S <= sim.duration:
            sim.at(sim.now + service_load.PERIOD_S, self.tick, svc, load)

    # --- what the task lifecycle tells a service ---------------------------------------------------

    def task_running(self, svc: Service, task: SimTask) -> None:
        """Its task is RUNNING: the start back-off resets and the task counts (and serves requests)."""
        now = self.sim.now
        svc.failed_starts = 0
        svc.account(now)
        svc.running += 1
        deployments.task_running(self.sim, svc, task)
        load = self.loads.get(svc.name)
        if load is not None and load.requests is not None:
            load.requests.add_task(now, task.task_id)

    def task_stopped(self, svc: Service, task: SimTask, was: str, code: str) -> None:
        """Its task stopped (from state ``was``, with stop code ``code``): replace it, after the back-off
        when it failed to start; a task the scheduler stopped itself is not replaced here."""
        now = self.sim.now
        svc.live.discard(task.task_id)
        if was == RUNNING:
            svc.account(now)
            svc.running -= 1
            load = self.loads.get(svc.name)
            if load is not None and load.requests is not None:
                load.requests.remove_task(now, task.task_id)
        if code == "TaskFailedToStart":
            svc.failed_starts += 1
            svc.backoff_until = now + service_backoff(svc.failed_starts)
            self.sim.recorder.event(now, "service", f"service {svc.name} is unable to consistently "
                                    f"start tasks successfully.", service=svc.name)
        if code != "ServiceSchedulerInitiated":
            self.schedule_reconcile(svc)
