"""Seeding a simulation from a cluster snapshot: the snapshot's container instances join the cluster before
anything else, and its tasks are RUNNING at time 0, holding exactly the CPU, memory, GPUs, ports and chips
the snapshot says, until their service scales them in or a fault stops them.

The snapshot is the plain values ``scheduler.scenario.snapshot`` reads (read here by attribute only, as
the engine reads the scenario): instances with ``arn``, ``instance_type``, registered ``cpu``/``memory``/
``chips``/``gpu_ids``; tasks with ``task_id``, ``instance_arn``, ``task_definition`` and what they hold.
Snapshot tasks are not submissions: they count in ``Simulation.seeded``, not in ``submitted`` or
``tasks_placed``, and they add no wait.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from scheduler.placement.state import DRAINING
from scheduler.sim.startup import task_images

RUNNING = "RUNNING"
SNAPSHOT_WORKLOAD = "snapshot"  # the workload name of snapshot tasks that belong to no service
_HEX_ID_LIMIT = 1 << 64         # task ids the engine itself could give (32 hex digits of a counter)


def seed_instances(sim: Any, snapshot: Any) -> dict[str, int]:
    """Register the snapshot's container instances, as their agents reported them; arn -> row."""
    rows: dict[str, int] = {}
    state = sim.state
    for inst in snapshot.instances:
        itype = sim.plan.catalog.get(inst.instance_type)
        row = sim.add_instance(itype, launch_type=inst.launch_type, availability_zone=inst.availability_zone,
                               capacity_provider=inst.capacity_provider, attributes=dict(inst.attributes),
                               arn=inst.arn, ec2_id=inst.ec2_instance_id, gpus=tuple(inst.gpu_ids) or None)
        state.instances[row].agent_version = inst.agent_version
        state.set_registered(row, cpu=inst.cpu, memory=inst.memory)
        for chip in range(itype.chips):
            if chip not in inst.chips:  # a chip that failed before the snapshot: not registered
                state.remove_chip(row, chip)
                sim.recorder.chip_removed(row, sim.now)
        sim.recorder.advance(sim.now)
        if inst.status == DRAINING:
            state.set_status(row, DRAINING)
        if not inst.agent_connected:
            state.set_agent_connected(row, False)
        rows[inst.arn] = row
    return rows


def seed_tasks(sim: Any, snapshot: Any, rows: dict[str, int], *, task_type: type,
               request_type: type) -> None:
    """Start the snapshot's tasks now, holding what they hold; service tasks count toward their service.

    The engine passes its task and request classes (this module is below it: no import back)."""
    services = {svc.name: svc for svc in sim.services}
    standalone: dict[tuple[str, str], Any] = {}
    for t in snapshot.tasks:
        row = rows[t.instance_arn]
        inst = sim.state.instances[row]
        base = sim.specs[t.task_definition]
        spec = base if (base.cpu, base.memory) == (t.cpu, t.memory) else replace(base, cpu=t.cpu, memory=t.memory)
        svc = services.get(t.service or "")
        if svc is not None and svc.request is not None:
            request = svc.request.variants.get(t.capacity_provider or "", svc.request)
        else:
            key = (t.task_definition, t.group)
            request = standalone.get(key) or standalone.setdefault(key, request_type(
                workload=SNAPSHOT_WORKLOAD, spec=base, group=t.group, launch_type=inst.launch_type))
        named = [g for g in t.gpu_ids if g]
        if named:  # hold exactly the GPUs the snapshot names
            inst.free_gpu_ids[:] = named + [g for g in inst.free_gpu_ids if g not in named]
        mask = 0
        for chip in t.chips:
            mask |= 1 << chip
        alloc = sim.state.reserve(t.task_id, row, cpu=t.cpu, memory=t.memory, gpus=len(t.gpu_ids), chips=mask,
                                  tcp_ports=t.tcp_ports, udp_ports=t.udp_ports, group=t.group)
        task = task_type(task_id=t.task_id, spec=spec, group=t.group, instance=row, chips=tuple(t.chips),
                         gpu_ids=alloc.gpu_ids, last_status=RUNNING, launch_type=inst.launch_type,
                         capacity_provider=inst.capacity_provider, created_at=sim.now, started_at=sim.now,
                         started_by=t.started_by, workload=svc.name if svc else SNAPSHOT_WORKLOAD,
                         request=request, run_for=math.inf, ever_ran=True, seeded=True, held=True)
        sim.images.acquire(row, task_images(spec), sim.now)  # a running task's images are on its instance
        sim.lifecycle.tasks[t.task_id] = task
        sim.lifecycle.counts[RUNNING] += 1
        sim.lifecycle.seeded += 1
        if svc is not None:
            svc.live.add(t.task_id)
            svc.account(sim.now)
            svc.running += 1
            if svc.daemon:
                svc.daemon_tasks[row] = t.task_id
        if len(t.task_id) == 32 and all(c in "0123456789abcdef" for c in t.task_id):
            number = int(t.task_id, 16)
            if number < _HEX_ID_LIMIT:  # a snapshot of a simulated run: new ids must not repeat these
                sim.lifecycle._next_id = max(sim.lifecycle._next_id, number)
    sim.recorder.advance(sim.now)  # the totals now count what the snapshot's tasks hold
