"""The run summary: what one simulation's ``summary.json`` holds, as frozen dataclasses.

:class:`RunSummary` is the contract between the engine (which builds it) and everything that reads a run
(the CLI, the report, sweeps, plans, notebooks). Its parts are typed: task counts, waits and start-ups
(:class:`Percentiles`), utilization, costs, instance counts, faults, per-workload figures (with a
service's request figures), a snapshot's figures. :meth:`RunSummary.to_json` gives the document
``summary.json`` holds, key for key and in order (the field order of these classes, see
:mod:`scheduler.results.codec`); :meth:`RunSummary.from_json` reads one back and refuses, with one line
naming the file and field, a document this version does not write. The JSON keys are spelled here (and
in docs/outputs.md) only; :meth:`RunSummary.metrics` and :meth:`WorkloadSummary.metrics` give the flat
metric names sweeps, plans and targets use (``wait_p99_s``, ``wait_p99_s[llama]``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scheduler.results import codec
from scheduler.results.codec import ResultsError, flat, json_key, omitted, spread
from scheduler.results.figure import figure_types

QUANTILES = (50, 95, 99)


@dataclass(frozen=True)
class Percentiles:
    """The median, p95, p99 and largest of some durations in seconds (None when there were none); written
    flat under a prefix: ``wait_p50_s``, ``wait_p95_s``, ``wait_p99_s``, ``wait_max_s``."""

    p50_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None

    @classmethod
    def of(cls, values: Iterable[float] | np.ndarray) -> Percentiles:
        """The percentiles of ``values`` (seconds), rounded to the microsecond."""
        data = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)
        if len(data) == 0:
            return cls()
        figures = [*np.percentile(data, QUANTILES), data.max()]
        return cls(*(round(float(v), 6) for v in figures))


@dataclass(frozen=True)
class TaskCounts:
    """The run's tasks by what became of them (a snapshot's seeded tasks are not submitted)."""

    PREFIX = "tasks_"
    submitted: int = 0
    placed: int = 0                   # given a container instance, whether or not they then started
    started: int = 0                  # reached RUNNING
    failed: dict[str, int] = field(default_factory=dict)  # never ran, by reason
    completed: int = 0                # essential container exited
    running_at_end: int = 0
    starting_at_end: int = 0
    waiting_at_end: int = 0
    stopped_before_start: int = 0
    waiting_by_reason: dict[str, int] = field(default_factory=dict)
    stopped: int = 0

    @property
    def failed_total(self) -> int:
        return int(sum(self.failed.values()))


@dataclass(frozen=True)
class Utilization:
    """Held (or reserved) over registered capacity, integrated over the run; chips no task could use."""

    chips: float = field(default=0.0, metadata=json_key("chip_utilization"))
    cpu: float = field(default=0.0, metadata=json_key("cpu_utilization"))
    memory: float = field(default=0.0, metadata=json_key("memory_utilization"))
    stranded_chip_hours: float = 0.0


@dataclass(frozen=True)
class Costs:
    """Instance time and its price, in all and per instance type."""

    instance_hours: float = 0.0
    usd: float = field(default=0.0, metadata=json_key("cost_usd"))
    instance_hours_by_type: dict[str, float] = field(default_factory=dict)
    usd_by_type: dict[str, float] = field(default_factory=dict, metadata=json_key("cost_usd_by_type"))
    per_completed_task_usd: float | None = field(default=None, metadata=json_key("cost_per_completed_task_usd"))
    idle_chip_usd: float = field(default=0.0, metadata=json_key("idle_chip_cost_usd"))


@dataclass(frozen=True)
class InstanceCounts:
    """Instances capacity providers launched and terminated, and the most registered at one sample."""

    PREFIX = "instances_"
    launched: int = 0
    terminated: int = 0
    peak: int = field(default=0, metadata=json_key("peak_instances"))
    at_end: int = 0                   # registered when the run ended (where capacity providers left the fleet)


@dataclass(frozen=True)
class Faults:
    """Injected faults that struck, and what they cost. ``struck`` counts each fault kind under its counter
    name (the kinds are declared in ``scheduler.sim.faults``, one module each): written into the object
    key by key (``instance_failures``, ``spot_interruptions``, ...) and read as attributes
    (``faults.chip_failures``)."""

    struck: dict[str, int] = field(default_factory=dict, metadata=spread())
    tasks_stopped: int = field(default=0, metadata={"doc": (
        "tasks a fault stopped (stop code `InfrastructureHealth`, `SpotInterruption` or `TerminationNotice`); "
        "service tasks moved off a draining instance are not counted")})
    service_tasks_stopped: int = field(default=0, metadata={"doc": (
        "of those, service tasks; their service replaces them, and the cost shows in "
        "`service_shortfall_task_hours`")})
    run_task_hours_lost: float = field(default=0.0, metadata={"doc": (
        "run time of the RunTask tasks a fault stopped: work lost, as ECS does not restart them")})

    def __getattr__(self, name: str) -> int:
        """A kind's count by its counter name: ``faults.chip_failures``."""
        struck = self.__dict__.get("struck")  # absent while unpickling: no recursion
        if struck is not None and not name.startswith("_") and name in struck:
            return struck[name]
        raise AttributeError(f"{type(self).__name__!r} has no field or fault counter {name!r}")


@dataclass(frozen=True)
class RequestFigures:
    """A service's requests (a ``requests:`` block): counts, latencies, throughput and cost per token."""

    PREFIX = "requests_"
    arrived: int = 0
    served: int = 0
    dropped: int = 0
    dropped_queue_full: int = 0
    dropped_timeout: int = 0
    queued_at_end: int = 0
    latency: Percentiles = field(default_factory=Percentiles, metadata=flat("latency_"))
    ttft: Percentiles = field(default_factory=Percentiles, metadata=flat("ttft_"))
    queue_wait: Percentiles = field(default_factory=Percentiles, metadata=flat("queue_wait_"))
    output_tokens_per_second: float | None = field(default=None, metadata=json_key("output_tokens_per_second"))
    per_instance_hour: float | None = field(default=None, metadata=json_key("requests_per_instance_hour"))
    cost_per_million_tokens_usd: float | None = field(default=None,
                                                      metadata=json_key("cost_per_million_tokens_usd"))


@dataclass(frozen=True)
class WorkloadSummary:
    """One workload's figures: its tasks, waits, start-ups, failures, shortfall, and a service's requests."""

    kind: str                           # run_task, service, daemon or snapshot
    tasks_submitted: int = 0
    tasks_placed: int = 0
    tasks_started: int = 0
    tasks_waiting_at_end: int = 0
    tasks_starting_at_end: int = 0
    tasks_stopped_before_start: int = 0
    waits: Percentiles = field(default_factory=Percentiles, metadata=flat("wait_"))
    startups: Percentiles = field(default_factory=Percentiles, metadata=flat("startup_"))
    shortfall_task_hours: float | None = None  # a REPLICA service's; None for others
    tasks_failed: int = 0
    tasks_failed_by_reason: dict[str, int] = field(default_factory=dict)
    scaling_activities: int | None = field(default=None, metadata=omitted())  # with auto_scaling: only
    requests: RequestFigures | None = field(default=None, metadata=flat(omit=True))  # with requests: only

    def metrics(self) -> dict[str, Any]:
        """The workload's numbers by metric name (``wait_p99_s``, ``latency_p99_s``): its JSON's numbers."""
        return {k: v for k, v in codec.to_json(self).items() if _is_number(v) or v is None}


@dataclass(frozen=True)
class SnapshotSummary:
    """What a cluster snapshot brought into the run."""

    folder: str
    instances: int = 0
    tasks: int = 0
    chips_held: int = 0
    services: tuple[str, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)
    tasks_seeded: int = 0


@dataclass(frozen=True)
class RunSummary:
    """One run's figures: ``summary.json`` as a value (see docs/outputs.md for each field's meaning)."""

    scenario: str
    seed: int | None
    device_mode: str
    sim_seconds: float
    tasks: TaskCounts = field(default_factory=TaskCounts, metadata=flat())
    waits: Percentiles = field(default_factory=Percentiles, metadata=flat("wait_"))
    startups: Percentiles = field(default_factory=Percentiles, metadata=flat("startup_"))
    utilization: Utilization = field(default_factory=Utilization, metadata=flat())
    costs: Costs = field(default_factory=Costs, metadata=flat())
    instances: InstanceCounts = field(default_factory=InstanceCounts, metadata=flat())
    # the figures declared one module each (scheduler.results.figures), by name, written key by key
    figures: dict[str, int | float | None] = field(default_factory=dict, metadata=spread(figure_types))
    extensions: tuple[str, ...] = ()
    service_shortfall_task_hours: dict[str, float] = field(default_factory=dict)
    workloads: dict[str, WorkloadSummary] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    wall_seconds: float = 0.0
    snapshot: SnapshotSummary | None = field(default=None, metadata=omitted())
    partial: bool = field(default=False, metadata=omitted())  # Ctrl-C or SIGTERM stopped the run early

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """The ``summary.json`` document (plain dicts and lists, keys in the file's order)."""
        return codec.to_json(self)

    @classmethod
    def from_json(cls, data: Any, *, file: str | None = None) -> RunSummary:
        """A summary read back from its document; :class:`ResultsError` for anything this version does not
        write (an unknown or missing field, a wrong type), naming ``file`` and the field."""
        return codec.from_json(cls, data, file=file)

    @classmethod
    def read(cls, path: str | Path) -> RunSummary:
        """``summary.json`` at ``path``; unreadable JSON is a :class:`ResultsError` as well."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ResultsError(f"cannot be read as JSON ({type(exc).__name__})", file=str(path)) from None
        return cls.from_json(data, file=str(path))

    # ------------------------------------------------------------------ flat metrics
    @property
    def shortfall_task_hours(self) -> float:
        """Every service's shortfall task-hours together."""
        return round(float(sum(self.service_shortfall_task_hours.values())), 6)

    def metrics(self) -> dict[str, Any]:
        """The run's cluster-wide numbers by metric name, as sweep tables and targets name them
        (``wait_p99_s``, ``cost_usd``, ``tasks_failed`` as a total, ``service_shortfall_task_hours`` as a
        total); breakdowns and per-workload figures are in :meth:`breakdowns` and :meth:`workload_metrics`."""
        out: dict[str, Any] = {}
        for key, value in self.to_json().items():
            if key == TASKS_FAILED:
                out[key] = self.tasks.failed_total
            elif key == SHORTFALL:
                out[key] = self.shortfall_task_hours
            elif key not in ("seed",) and (_is_number(value) or value is None):
                out[key] = value
        return out

    def breakdowns(self) -> dict[str, Mapping[str, Any]]:
        """The run's breakdowns (name -> value) by key: ``tasks_failed`` by reason, shortfall by service, cost
        and instance-hours by type, waiting tasks by reason, a snapshot's figures."""
        return {k: v for k, v in self.to_json().items() if isinstance(v, Mapping) and k not in (WORKLOADS, FAULTS)}

    def fault_metrics(self) -> dict[str, Any]:
        """The fault figures by their JSON name (``spot_interruptions``, ``run_task_hours_lost``)."""
        return codec.to_json(self.faults)

    def workload_metrics(self) -> dict[str, dict[str, Any]]:
        """Each workload's numbers by metric name."""
        return {name: w.metrics() for name, w in self.workloads.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# The few keys readers name on their own (a breakdown's total, a section): spelled once, here.
TASKS_FAILED = "tasks_failed"
SHORTFALL = "service_shortfall_task_hours"
WORKLOADS, FAULTS, PARTIAL = "workloads", "faults", "partial"

__all__ = ["Costs", "Faults", "InstanceCounts", "Percentiles", "RequestFigures", "ResultsError", "RunSummary",
           "SnapshotSummary", "TaskCounts", "Utilization", "WorkloadSummary"]
