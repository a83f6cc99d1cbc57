"""The run summary of a finished simulation: the engine's counters and integrals as a :class:`RunSummary`,
then the figures declared one module each (:mod:`scheduler.results.figures`), computed from that summary and
the run's tables.

Called once, at the end of :meth:`Simulation.run` (after every task still alive has its row): it reads
the simulation and builds the typed summary; nothing here changes the simulation.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from scheduler.results.record import RunRecord, with_figures
from scheduler.results.summary import (
    Costs,
    Faults,
    InstanceCounts,
    RunSummary,
    TaskCounts,
    Utilization,
)
from scheduler.sim.faults.mechanism import TASK_COUNTERS
from scheduler.sim.metrics import ratio
from scheduler.sim.tasks import PENDING, PROVISIONING, RUNNING, STOPPED


def summarize(sim: Any, wall_seconds: float, timeline: pd.DataFrame) -> RunSummary:
    """The figures of ``sim`` (a :class:`~scheduler.sim.engine.Simulation`, which imports this module: hence
    ``Any``) when its run ended; ``timeline`` is its timeline table, for the peak instance count."""
    services = [svc for svc in sim.services if not svc.daemon]
    acc = sim.recorder.integrals
    completed = sim.completed_count
    hours_by_type: dict[str, float] = {}
    cost_by_type: dict[str, float] = {}
    for inst, t0, t1 in zip(sim.state.instances, sim.instance_start, sim.instance_end, strict=True):
        seconds = (sim.duration if t1 is None else t1) - t0
        name = inst.instance_type.name
        hours_by_type[name] = hours_by_type.get(name, 0.0) + seconds / 3600
        cost_by_type[name] = cost_by_type.get(name, 0.0) + seconds / 3600 * sim.instance_price[inst.index]
    instance_hours = round(sum(hours_by_type.values()), 6)
    cost_usd = round(sum(cost_by_type.values()), 6)
    workloads = sim.slo.section(workload_shortfall(services))
    for name, load in sim.service_loads.items():
        if load.requests is not None:
            load.requests.advance(sim.duration)
        workloads[name] = load.summary(workloads[name], instance_hours=instance_hours, cost_usd=cost_usd,
                                       sim_seconds=sim.duration)
    snapshot = sim.plan.snapshot
    scaling = sim.recorder.scaling
    cluster = timeline["instance_type"] == "*"
    at_end = sum(1 for end in sim.instance_end if end is None)
    summary = RunSummary(
        scenario=sim.plan.name,
        seed=sim.seed,
        device_mode=sim.mode_name,
        sim_seconds=sim.duration,
        tasks=TaskCounts(
            submitted=sim.submitted,
            placed=sim.slo.placed,
            started=sim.slo.started,
            failed=dict(sorted(sim.recorder.failures.items())),
            completed=completed,
            running_at_end=sim.counts[RUNNING],
            starting_at_end=sim.counts[PENDING],
            waiting_at_end=sim.counts[PROVISIONING],
            stopped_before_start=sim.slo.stopped_before_start,
            waiting_by_reason=dict(sorted(Counter(t.waiting_reason or "waiting" for t in sim.tasks.values()
                                                  if t.last_status == PROVISIONING).items())),
            stopped=sim.counts[STOPPED],
        ),
        waits=sim.slo.overall_waits(),
        startups=sim.slo.overall_startups(),
        utilization=Utilization(
            chips=round(ratio(acc.chips_held, acc.chips), 6),
            cpu=round(ratio(acc.cpu_used, acc.cpu), 6),
            memory=round(ratio(acc.memory_used, acc.memory), 6),
            stranded_chip_hours=round(sim.recorder.stranded_chip_seconds / 3600, 6),
        ),
        costs=Costs(
            instance_hours=instance_hours,
            usd=cost_usd,
            instance_hours_by_type={k: round(v, 6) for k, v in sorted(hours_by_type.items())},
            usd_by_type={k: round(v, 6) for k, v in sorted(cost_by_type.items())},
            per_completed_task_usd=(round(sum(cost_by_type.values()) / completed, 6) if completed else None),
            idle_chip_usd=round(idle_chip_cost(sim) / 3600, 6),
        ),
        instances=InstanceCounts(
            launched=int(sum(e["count"] for e in scaling if e["action"] == "launch")),
            terminated=int(sum(e["count"] for e in scaling if e["action"] == "terminate")),
            # sampled; a run stopped before its first sample (Ctrl-C at once) has only its instances at the end
            peak=int(timeline.loc[cluster, "instances"].max()) if cluster.any() else at_end,
            at_end=at_end,
        ),
        extensions=tuple(sim._extensions()),
        service_shortfall_task_hours={svc.name: round(svc.short_seconds / 3600, 6) for svc in services},
        workloads=workloads,
        faults=_faults(sim.fault_counts, sim.task_seconds_lost),
        wall_seconds=round(wall_seconds, 3),
        snapshot=None if snapshot is None else snapshot.summary(tasks_seeded=sim.seeded),
        partial=sim.partial,
    )
    return with_figures(RunRecord(summary, timeline, events=sim.recorder.events))


def idle_chip_cost(sim: Any) -> float:
    """USD per hour x seconds of chips no task held, each chip priced at its instance's price shared among
    the instance's chips: what the chips present cost (an instance with chips: its whole price, for as long
    as it was registered, less each failed chip from its failure on), less what tasks held (the recorder's
    ``held_chip_cost`` for chips given back, plus the chips still held at the end)."""
    end = [sim.duration if t1 is None else t1 for t1 in sim.instance_end]
    present = 0.0
    for inst, t0 in zip(sim.state.instances, sim.instance_start, strict=True):
        if inst.instance_type.chips:
            present += sim.instance_price[inst.index] * (end[inst.index] - t0)
    for row, t in sim.recorder.chip_removals:
        present -= sim._chip_price(row) * (end[row] - t)
    return present - sim.recorder.held_chip_cost - sim.lifecycle.held_chip_cost(sim.duration)


def workload_shortfall(services: Any) -> dict[str, float]:
    """Each workload's shortfall task-hours: the sum over its services (one per device block with device
    sets), so that ``shortfall[llama]`` reads the llama workload's whole shortfall."""
    out: dict[str, float] = {}
    for svc in services:
        name = svc.workload or svc.name
        out[name] = out.get(name, 0.0) + svc.short_seconds / 3600
    return out


def _faults(counts: dict[str, int], seconds_lost: float) -> Faults:
    """The fault counters as the contract's: each kind's under its name, then the tasks they stopped."""
    task_counts = {k: counts[k] for k in TASK_COUNTERS}
    return Faults(struck={k: v for k, v in counts.items() if k not in task_counts}, **task_counts,
                  run_task_hours_lost=round(seconds_lost / 3600, 6))
