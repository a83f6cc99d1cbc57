"""Per-workload service-level figures of a run: waits, start-up times, failures and service shortfall.

A planner asks "does *this* workload start within 60 s?", so every figure is kept per workload (a scenario
workload: a RunTask stream or a service; a snapshot's tasks under their service's name) and pooled for
the cluster. The tally sees each task once, when its row is written (when it stops, or at the end of the
run), and reads what it needs from the task's timestamps:

- **wait**: submission to RUNNING (``started_at - created_at``, start-up included: what a caller waits
  for) for every task that started, plus, for a task that had not started when the run ended, its wait so
  far (``end - created_at``), and for a task stopped before it started without failing (a service scaled
  in, or replaced it, while it waited) the time it waited (``stopped_at - created_at``). Those are counted
  apart (``tasks_waiting_at_end`` for tasks still without a place, ``tasks_starting_at_end`` for tasks
  placed and still starting, ``tasks_stopped_before_start``), so a p99 never hides a task that never
  started. Tasks that failed to start (``TaskFailedToStart``) are failures, not waits.
- **start-up**: placement to RUNNING (``started_at - placed_at``): image pull, container start, model load.
- **failures**: tasks that never ran (``TaskFailedToStart``), by the key the run summary counts them under.

Only the standard library and numpy; the engine calls :meth:`SLOTally.record` and :meth:`SLOTally.failed` (the
stream lane :meth:`SLOTally.record_started`, for many tasks at once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from scheduler.results import codec
from scheduler.results.summary import Percentiles, WorkloadSummary
from scheduler.sim.plan import Workload, workload_kind
from scheduler.sim.tasks import PENDING, PROVISIONING

FAILED_TO_START = "TaskFailedToStart"  # counted as a failure, not as a wait


class TaskTimes(Protocol):
    """What the tally reads of a task (``SimTask`` has it)."""

    workload: str
    created_at: float
    placed_at: float | None
    started_at: float | None
    last_status: str
    stopped_at: float | None
    stop_code: str | None
    seeded: bool


def percentiles(values: Iterable[float], prefix: str) -> dict[str, float | None]:
    """``<prefix>_p50_s``, ``_p95_s``, ``_p99_s`` and ``_max_s`` of ``values`` in seconds (None when empty), as
    summary.json writes them (:class:`~scheduler.results.summary.Percentiles`)."""
    return codec.to_json(Percentiles.of(values), f"{prefix}_")


@dataclass
class WorkloadTally:
    """What one workload's tasks did."""

    kind: str                                     # run_task, service, daemon or snapshot
    submitted: int = 0                            # tasks recorded (seeded ones apart)
    placed: int = 0
    started: int = 0
    waiting_at_end: int = 0                       # still PROVISIONING (no place) when the run ended
    starting_at_end: int = 0                      # placed, still PENDING (starting up) when the run ended
    stopped_before_start: int = 0                 # stopped (not failed) before it started: waited, then cancelled
    waits: list[float] = field(default_factory=list)
    startups: list[float] = field(default_factory=list)
    failed: Counter = field(default_factory=Counter)


class SLOTally:
    """Per-workload waits, start-up times and failures, gathered task by task."""

    def __init__(self, kinds: Mapping[str, str] | None = None) -> None:
        self.kinds = dict(kinds or {})
        self.workloads: dict[str, WorkloadTally] = {name: WorkloadTally(kind) for name, kind in self.kinds.items()}

    def _of(self, workload: str) -> WorkloadTally:
        tally = self.workloads.get(workload)
        if tally is None:
            tally = self.workloads[workload] = WorkloadTally(self.kinds.get(workload, "snapshot"))
        return tally

    def record(self, task: TaskTimes, now: float) -> None:
        """A task's row is written (it stopped, or the run ended at ``now``): take its times."""
        tally = self._of(task.workload)
        if task.seeded:  # RUNNING from a snapshot at time 0: never submitted, no wait
            return
        tally.submitted += 1
        if task.placed_at is not None:
            tally.placed += 1
        if task.started_at is not None:
            tally.started += 1
            tally.waits.append(task.started_at - task.created_at)
            if task.placed_at is not None:
                tally.startups.append(task.started_at - task.placed_at)
        elif task.last_status in (PROVISIONING, PENDING):  # the run ended before it started
            tally.waits.append(now - task.created_at)
            if task.last_status == PROVISIONING:
                tally.waiting_at_end += 1
            else:
                tally.starting_at_end += 1
        elif task.stop_code != FAILED_TO_START:  # stopped before it started (a scale-in, a deployment)
            tally.waits.append((task.stopped_at if task.stopped_at is not None else now) - task.created_at)
            tally.stopped_before_start += 1

    def record_started(self, workload: str, waits: list[float], startups: list[float]) -> None:
        """What :meth:`record` takes of tasks of ``workload`` placed and started (stopped since, or still
        running at the end), given as columns: each one's wait and start-up, in row order (the stream lane)."""
        tally = self._of(workload)
        tally.submitted += len(waits)
        tally.placed += len(waits)
        tally.started += len(waits)
        tally.waits.extend(waits)
        tally.startups.extend(startups)

    def failed(self, workload: str, key: str) -> None:
        """A task of ``workload`` failed to start; ``key`` is what the run's ``tasks_failed`` counts it under."""
        self._of(workload).failed[key] += 1

    # ------------------------------------------------------------------ results
    @property
    def placed(self) -> int:
        return sum(t.placed for t in self.workloads.values())

    @property
    def started(self) -> int:
        return sum(t.started for t in self.workloads.values())

    @property
    def stopped_before_start(self) -> int:
        return sum(t.stopped_before_start for t in self.workloads.values())

    def overall_waits(self) -> Percentiles:
        """The cluster's wait percentiles over every workload's waits (still-waiting tasks included)."""
        return Percentiles.of(np.concatenate([np.asarray(t.waits, float) for t in self.workloads.values()] or
                                             [np.empty(0)]))

    def overall_startups(self) -> Percentiles:
        return Percentiles.of(np.concatenate([np.asarray(t.startups, float) for t in self.workloads.values()] or
                                             [np.empty(0)]))

    def section(self, shortfall: Mapping[str, float]) -> dict[str, WorkloadSummary]:
        """The summary's ``workloads``: per workload, in name order. ``shortfall`` is each service's
        task-hours short; other workloads have ``shortfall_task_hours`` None."""
        out: dict[str, WorkloadSummary] = {}
        for name in sorted(self.workloads):
            t = self.workloads[name]
            out[name] = WorkloadSummary(
                kind=t.kind, tasks_submitted=t.submitted, tasks_placed=t.placed, tasks_started=t.started,
                tasks_waiting_at_end=t.waiting_at_end, tasks_starting_at_end=t.starting_at_end,
                tasks_stopped_before_start=t.stopped_before_start,
                waits=Percentiles.of(t.waits), startups=Percentiles.of(t.startups),
                shortfall_task_hours=(round(float(shortfall[name]), 6) if name in shortfall else None),
                tasks_failed=int(sum(t.failed.values())), tasks_failed_by_reason=dict(sorted(t.failed.items())))
        return out


def workload_kinds(workloads: Iterable[Workload]) -> dict[str, str]:
    """Each workload's kind for the tally: ``run_task``, ``service`` or ``daemon``."""
    return {w.name: workload_kind(w) for w in workloads}
