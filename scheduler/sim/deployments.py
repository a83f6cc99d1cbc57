"""How a REPLICA service replaces its tasks: draining, rolling deployments and Availability Zone rebalancing.

ECS replaces a service's RUNNING tasks within its deployment configuration (botocore's
``DeploymentConfiguration``): at most ``maximumPercent`` of the desired count (rounded down) may be live
at once, and at least ``minimumHealthyPercent`` of it (rounded up) must stay RUNNING and healthy. A task
without a container health check counts toward that minimum 40 s after it is RUNNING. Defaults: 100/200
for REPLICA, 0/100 for DAEMON.

- **Draining** (a Spot interruption notice, a scheduled retirement, the 14-day Managed Instances drain,
  a capacity provider's drain): service tasks not yet RUNNING on the instance stop at once; RUNNING ones
  are *retiring*: replacements start first within ``maximumPercent``, and a retiring task stops only
  while the service keeps its minimum healthy count, so with the default 100 % it runs until its
  replacement is RUNNING (or until the instance goes).
- **Rolling deployment** to a new task-definition revision: every task of the old revision is retiring;
  new tasks start in batches bounded by ``maximumPercent`` and old ones stop as the minimum allows.
- **Availability Zone rebalancing** (``availabilityZoneRebalancing``, ENABLED by default for services
  created since June 2025, DISABLED for binpack): once the service is at its desired count with nothing
  to replace, if its RUNNING tasks differ by more than one between the zones where it can place, one task
  in the fullest zone retires and its replacement is placed in the emptiest, again within the bounds.

Events in ``events.json`` use ECS's service-event words (tasks started, or stopped, within a minute of
the last such event share the next one, so a service that replaces tasks all day writes at most one a
minute): ``(service X) has started 2 tasks: (task a)
(task b).``, ``(service X) has stopped 1 running tasks: (task a).``, ``(service X) has reached a steady
state.``, ``(service X) (deployment ecs-svc/N) deployment completed.``, and the documented AZ
rebalancing messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scheduler.ecs.taskspec import Constraint
from scheduler.sim.plan import ServiceWorkload

# The engine's types, named for readers: the engine imports this module, so this one cannot import them.
Simulation = Any  # scheduler.sim.engine.Simulation
Service = Any     # scheduler.sim.engine.Service
SimTask = Any     # scheduler.sim.engine.SimTask
Request = Any     # scheduler.sim.engine.Request

RUNNING = "RUNNING"
AZ_ATTRIBUTE = "attribute:ecs.availability-zone"
MAX_CONSTRAINTS = 10  # per task, task definition and request together (ECS)
STEADY_REPEAT_S = 6 * 3600.0  # ECS suppresses an identical service event for 6 hours
EVENT_BATCH_S = 60.0          # tasks started (or stopped) within a minute share one event (our choice)
HEALTHY_AFTER_S = 40.0  # no container health check: healthy 40 s after RUNNING (DeploymentConfiguration)


@dataclass
class Rollout:
    """A service's deployment configuration and what it is replacing now."""

    min_healthy: int = 100
    max_percent: int = 200
    rebalance: bool = False
    retiring: dict[str, str] = field(default_factory=dict)  # task id -> the stop reason when it goes
    deployment: str | None = None       # the deployment in progress (ecs-svc/...), until it completes
    deployments_made: int = 0
    steady: bool = False
    steady_reported_at: float = -math.inf
    pinned: set[int] = field(default_factory=set)     # ids of the zone-pinned requests of AZ rebalancing
    rebalancing: bool = False
    started: list[str] = field(default_factory=list)   # placed since the last event, one event per instant
    stopped: list[str] = field(default_factory=list)
    flush_scheduled: bool = False
    flushed_at: float = -math.inf
    reconciling: bool = False  # inside reconcile: it settles once at its end


def configure(svc: Service, workload: ServiceWorkload) -> None:
    """Read a service workload's deployment configuration and AZ rebalancing setting."""
    svc.rollout = Rollout(min_healthy=workload.minimum_healthy_percent, max_percent=workload.maximum_percent,
                          rebalance=workload.rebalance)


def deployment_id(svc: Service, number: int) -> str:
    """A deployment id in ECS's shape (ecs-svc/ and 19 digits), the same in every run."""
    return f"ecs-svc/{hash_name(svc.name) * 1000 + number:019d}"


def hash_name(name: str) -> int:
    """A stable small number from a name (Python's hash() changes between runs)."""
    return sum((k + 1) * ord(c) for k, c in enumerate(name)) % 1_000_000


def _healthy(task: SimTask, now: float) -> bool:
    return task.last_status == RUNNING and (
        task.seeded or task.started_at is None or task.started_at + HEALTHY_AFTER_S <= now)


def reconcile(sim: Simulation, svc: Service) -> None:
    """Bring a REPLICA service to its desired count, replacing retiring tasks within the bounds."""
    r = svc.rollout
    assert svc.request is not None
    if not r.retiring and len(svc.live) <= svc.desired:  # the common case: start what is missing, no sort
        for _ in range(svc.desired - len(svc.live)):
            if sim.now < svc.backoff_until:
                sim.service_scheduler.schedule_reconcile(svc)
                break
            r.reconciling = True
            try:
                sim.submit(svc.request)
            finally:
                r.reconciling = False
        _settle(sim, svc)
        return
    r.reconciling = True
    try:
        _replace(sim, svc)
    finally:
        r.reconciling = False
    _settle(sim, svc)


def _replace(sim: Simulation, svc: Service) -> None:
    """Scale in, or replace retiring tasks: start replacements within maximumPercent, stop retiring tasks
    while the minimum healthy count holds, until nothing changes."""
    r = svc.rollout
    assert svc.request is not None
    while True:
        live = sorted((sim.tasks[t] for t in svc.live), key=lambda t: (t.created_at, t.task_id))
        for task_id in [t for t in r.retiring if t not in svc.live]:
            del r.retiring[task_id]
        old = [t for t in live if t.task_id in r.retiring]
        new = [t for t in live if t.task_id not in r.retiring]
        stopped = False
        excess = len(new) - svc.desired
        if excess > 0:  # scale in: tasks still waiting first, then the newest running ones
            new.sort(key=lambda t: (t.last_status == RUNNING, t.created_at, t.task_id))
            for task in new[:excess]:
                _stop(sim, svc, task, f"Scaling activity initiated by (deployment {current_deployment(svc)})")
            continue
        for task in old:
            if task.last_status != RUNNING:  # not serving yet: nothing to keep it for
                _stop(sim, svc, task, r.retiring[task.task_id])
                stopped = True
        if stopped:
            continue
        ceiling = svc.desired * r.max_percent // 100
        missing = svc.desired - len(new)
        room = min(missing, max(0, ceiling - len(live))) if old else missing
        for _ in range(room):
            if sim.now < svc.backoff_until:
                sim.service_scheduler.schedule_reconcile(svc)
                break
            sim.submit(svc.request)
        floor = math.ceil(svc.desired * r.min_healthy / 100)
        healthy = sum(_healthy(t, sim.now) for t in sim_live(sim, svc))
        for task in old:
            if task.task_id not in svc.live:
                continue
            if healthy - _healthy(task, sim.now) >= floor:
                healthy -= _healthy(task, sim.now)
                _stop(sim, svc, task, r.retiring[task.task_id])
                stopped = True
        if not stopped:
            break


def sim_live(sim: Simulation, svc: Service) -> list[SimTask]:
    return [sim.tasks[t] for t in sorted(svc.live)]


def current_deployment(svc: Service) -> str:
    r = svc.rollout
    return r.deployment or deployment_id(svc, r.deployments_made)


def _stop(sim: Simulation, svc: Service, task: SimTask, reason: str) -> None:
    svc.rollout.retiring.pop(task.task_id, None)
    if task.last_status == RUNNING:
        _note(sim, svc, stopped=task.task_id)
    sim.lifecycle.stop(task, "ServiceSchedulerInitiated", reason, placed=task.ever_ran)


def drain(sim: Simulation, row: int, reason: str) -> None:
    """Instance ``row`` is DRAINING: its service tasks not yet RUNNING stop; RUNNING ones retire."""
    inst = sim.state.instances[row]
    touched: dict[int, Service] = {}
    for task_id in sorted(inst.tasks):
        task = sim.tasks[task_id]
        svc = task.request.service if task.request else None
        if svc is None or svc.daemon:
            continue
        svc.rollout.retiring[task_id] = f"Container instance draining ({reason})"
        touched[id(svc)] = svc
    for svc in touched.values():
        svc.rollout.steady = False
        sim.service_scheduler.schedule_reconcile(svc)


def deploy(sim: Simulation, svc: Service, request: Request, family_revision: str) -> None:
    """UpdateService to a new task definition: every current task retires, replaced in batches (a DAEMON
    service, minimum 0 %, replaces its task on each instance at once)."""
    r = svc.rollout
    r.deployments_made += 1
    r.deployment = deployment_id(svc, r.deployments_made)
    svc.request = request
    svc.failed_starts, svc.backoff_until = 0, 0.0  # a new task definition resets the throttle (ECS)
    for task_id in sorted(svc.live):
        r.retiring[task_id] = f"Scaling activity initiated by (deployment {r.deployment})"
    r.steady = False
    sim.recorder.event(sim.now, "service", f"(service {svc.name}) (deployment {r.deployment}) deployment in "
                       f"progress: task definition {family_revision}.", service=svc.name,
                       event_name="SERVICE_DEPLOYMENT_IN_PROGRESS")
    if svc.daemon:
        svc.daemon_requests.clear()
        for task_id in sorted(svc.live):
            _stop(sim, svc, sim.tasks[task_id], r.retiring[task_id])
        sim.service_scheduler.start_daemon(svc)
        return
    sim.service_scheduler.schedule_reconcile(svc)


def task_running(sim: Simulation, svc: Service, task: SimTask) -> None:
    """A service task reached RUNNING: once healthy it may let a retiring task go."""
    if svc.daemon:
        return
    if svc.rollout.retiring:
        sim.at(sim.now + HEALTHY_AFTER_S, _reconcile_now, sim, svc)
    elif not svc.rollout.reconciling:
        _settle(sim, svc)


def _reconcile_now(sim: Simulation, svc: Service) -> None:
    sim.service_scheduler.reconcile(svc)


def capacity_changed(sim: Simulation) -> None:
    """An instance registered: a steady service that rebalances looks at its zones again."""
    for svc in sim.services:
        if svc.rollout.rebalance and svc.rollout.steady and not svc.daemon:
            svc.rollout.steady = False
            _settle(sim, svc)


def task_placed(sim: Simulation, svc: Service, task: SimTask) -> None:
    """A service task was placed: it is among the tasks the next "has started" event names."""
    if not svc.daemon and id(task.request) not in svc.rollout.pinned:
        _note(sim, svc, started=task.task_id)


def _note(sim: Simulation, svc: Service, *, started: str | None = None, stopped: str | None = None) -> None:
    r = svc.rollout
    if started:
        r.started.append(started)
    if stopped:
        r.stopped.append(stopped)
    if not r.flush_scheduled:
        r.flush_scheduled = True
        sim.at(max(sim.now, r.flushed_at + EVENT_BATCH_S), _flush, sim, svc)


def _flush(sim: Simulation, svc: Service) -> None:
    r = svc.rollout
    r.flush_scheduled = False
    r.flushed_at = sim.now
    for verb, ids in (("started", r.started), ("stopped", r.stopped)):
        if ids:
            what = "tasks" if verb == "started" else "running tasks"
            sim.recorder.event(sim.now, "service", f"(service {svc.name}) has {verb} {len(ids)} {what}: "
                               + " ".join(f"(task {t})" for t in ids) + ".", service=svc.name,
                               event_name=f"TASKS_{verb.upper()}")
    r.started, r.stopped = [], []


def _settle(sim: Simulation, svc: Service) -> None:
    """After a change: report a steady state (and a completed deployment), or start AZ rebalancing."""
    r = svc.rollout
    # every live task RUNNING: ``running`` counts exactly the live tasks that are
    steady = not r.retiring and len(svc.live) == svc.desired == svc.running
    if not steady:
        r.steady = False
        return
    if r.steady:
        return
    live = sim_live(sim, svc)
    if r.rebalance and _rebalance(sim, svc, live):
        return
    r.steady = True
    if r.rebalancing:
        r.rebalancing = False
        sim.recorder.event(sim.now, "service", f"service ({svc.name}) is AZ balanced with "
                           f"{_zone_counts_text(_zone_counts(sim, svc, live))}.", service=svc.name,
                           event_name="SERVICE_REBALANCING_COMPLETED")
    if r.deployment is not None:
        sim.recorder.event(sim.now, "service", f"(service {svc.name}) (deployment {r.deployment}) deployment "
                           "completed.", service=svc.name, event_name="SERVICE_DEPLOYMENT_COMPLETED")
        r.deployment = None
    if sim.now - r.steady_reported_at >= STEADY_REPEAT_S:
        r.steady_reported_at = sim.now
        sim.recorder.event(sim.now, "service", f"(service {svc.name}) has reached a steady state.",
                           service=svc.name, event_name="SERVICE_STEADY_STATE")


def _service_zones(sim: Simulation, svc: Service) -> list[str]:
    """The zones of the ACTIVE instances the service's tasks may use (launch type, capacity providers)."""
    request = svc.request
    assert request is not None
    providers: set[str] | None = None
    if request.variants:
        providers = set(request.variants)
    zones = set()
    for inst in sim.state.instances:
        if inst.status != "ACTIVE":
            continue
        if providers is not None and inst.capacity_provider not in providers:
            continue
        if providers is None and request.launch_type and inst.launch_type != request.launch_type:
            continue
        zones.add(inst.availability_zone)
    return sorted(zones)


def _zone_counts(sim: Simulation, svc: Service, live: list[SimTask]) -> dict[str, int]:
    counts = dict.fromkeys(_service_zones(sim, svc), 0)
    for task in live:
        if task.instance is not None:
            zone = sim.state.instances[task.instance].availability_zone
            counts[zone] = counts.get(zone, 0) + 1
    return counts


def _zone_counts_text(counts: dict[str, int]) -> str:
    parts = [f"{n} tasks in {zone}" for zone, n in sorted(counts.items())]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" and {parts[-1]}"


def _rebalance(sim: Simulation, svc: Service, live: list[SimTask]) -> bool:
    """One step of AZ rebalancing: retire a task of the fullest zone for one placed in the emptiest, if
    the emptiest zone can take one now. True when a step started."""
    counts = _zone_counts(sim, svc, live)
    if len(counts) < 2:
        return False
    low_zone = min(counts, key=lambda z: (counts[z], z))
    high_zone = max(counts, key=lambda z: (counts[z], z))
    if counts[high_zone] - counts[low_zone] <= 1:
        return False
    request = svc.request
    assert request is not None
    pinned = _pinned(sim, request, low_zone)
    if pinned is None:
        return False
    r = svc.rollout
    if not r.rebalancing:
        r.rebalancing = True
        sim.recorder.event(sim.now, "service", f"service ({svc.name}) is not AZ balanced with "
                           f"{_zone_counts_text(counts)}. AZ Rebalancing in progress.", service=svc.name,
                           event_name="SERVICE_REBALANCING_STARTED")
    victims = [t for t in live if t.instance is not None
               and sim.state.instances[t.instance].availability_zone == high_zone]
    victim = max(victims, key=lambda t: (t.created_at, t.task_id))
    reason = "AZ Rebalancing initiated by the service scheduler"
    if len(live) + 1 > svc.desired * r.max_percent // 100:
        # no room to start first: stop first, if the minimum healthy count allows it
        if len(live) - 1 < math.ceil(svc.desired * r.min_healthy / 100):
            return False
        _stop(sim, svc, victim, reason)
    else:
        r.retiring[victim.task_id] = reason
    r.pinned.add(id(pinned))
    task = sim.submit(pinned)
    if task.last_status == "PROVISIONING":  # not placed after all: give up this step
        sim.lifecycle.stop(task, "ServiceSchedulerInitiated", "AZ Rebalancing could not place the task", placed=False)
        r.retiring.pop(victim.task_id, None)
        sim.service_scheduler.schedule_reconcile(svc)
        return False
    sim.recorder.event(sim.now, "service", f"{svc.name} has started 1 tasks in {low_zone} to AZ Rebalance: "
                       f"{task.task_id}.", service=svc.name, event_name="TASKS_STARTED")
    return True


def _pinned(sim: Simulation, request: Request, zone: str) -> Request | None:
    """The service's request (or, with a capacity provider strategy, the first of its providers' requests)
    restricted to one availability zone by a memberOf constraint, if a task can be placed there now."""
    extra = Constraint("memberOf", f"{AZ_ATTRIBUTE} == {zone}")
    rows = np.array([i.index for i in sim.state.instances
                     if i.status == "ACTIVE" and i.availability_zone == zone], dtype=np.int64)
    if not len(rows):
        return None
    for base in (list(request.variants.values()) or [request]):
        if len(base.spec.constraints) + len(base.constraints) >= MAX_CONSTRAINTS:
            continue  # no room for the zone's memberOf
        pinned = replace(base, constraints=(*base.constraints, extra), splitter=None, variants={})
        fits = sim.placer.feasible(pinned.spec, group=pinned.group,
                                   constraints=pinned.spec.constraints + pinned.constraints,
                                   launch_type=pinned.launch_type, capacity_providers=pinned.capacity_providers,
                                   only=rows)
        if fits.any():
            return pinned
    return None
