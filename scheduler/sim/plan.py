"""The plan of one run: what the simulation reads of a scenario, as plain frozen dataclasses.

``scheduler.scenario`` compiles its validated models into a :class:`Plan` once
(``scheduler.scenario.compile``); the engine and the modules it drives read only these values. Every
duration is already in seconds and every rate per second; every default has been resolved where the
scenario schema declares it, so nothing here (or downstream) repeats one. Unions of small classes stand
for the scenario's tagged unions (arrival processes, task durations, desired counts; faults: one plan
class per kind, declared in the kind's module of :mod:`scheduler.sim.faults`): code
dispatches on the class, never on a type string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from scheduler.catalog import Catalog
from scheduler.catalog.model import InstanceType
from scheduler.ecs.taskspec import Constraint, Strategy, TaskSpec
from scheduler.sim.autoscaling import AutoScalingConfig
from scheduler.sim.faults.base import FaultTarget
from scheduler.sim.faults.spot_interruptions import SpotInterruptions
from scheduler.sim.requests import RequestConfig, ServiceTime

# --- task durations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedDuration:
    value: float


@dataclass(frozen=True)
class ExponentialDuration:
    mean: float


@dataclass(frozen=True)
class LognormalDuration:
    """exp(N(ln median, sigma^2)) seconds."""

    median: float
    sigma: float


@dataclass(frozen=True)
class EmpiricalDuration:
    """One of ``values``, with probabilities proportional to ``weights`` (equal when None)."""

    values: tuple[float, ...]
    weights: tuple[float, ...] | None = None


TaskDuration = FixedDuration | ExponentialDuration | LognormalDuration | EmpiricalDuration


@dataclass(frozen=True)
class Startup:
    """How long a placed task takes to reach RUNNING: image pull (without and with the images on its
    instance), then container start; None takes no time."""

    image_pull: TaskDuration | None = None
    image_pull_cached: TaskDuration | None = None
    start: TaskDuration | None = None


# --- arrival processes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PoissonArrivals:
    rate: float


@dataclass(frozen=True)
class IntervalArrivals:
    every: float
    jitter: float


@dataclass(frozen=True)
class OnceArrivals:
    at: float
    calls: int


@dataclass(frozen=True)
class DiurnalArrivals:
    """A Poisson rate following a sinusoid from ``trough_rate`` to ``peak_rate`` (at ``peak_at`` into each
    ``period``)."""

    peak_rate: float
    trough_rate: float
    peak_at: float
    period: float


@dataclass(frozen=True)
class BurstyArrivals:
    base_rate: float
    burst_rate: float
    mean_burst: float
    mean_gap: float


@dataclass(frozen=True, eq=False)
class TraceArrivals:
    """RunTask calls replayed from a table: float ``submit`` and ``duration`` (NaN: the workload's own
    duration) columns and a ``task_definition`` column, sorted by ``submit``."""

    table: pd.DataFrame


GeneratedArrivals = PoissonArrivals | IntervalArrivals | OnceArrivals | DiurnalArrivals | BurstyArrivals
Arrivals = GeneratedArrivals | TraceArrivals


# --- a service's desired count --------------------------------------------------------------------


@dataclass(frozen=True)
class FixedCount:
    count: int


@dataclass(frozen=True)
class DiurnalCount:
    """A desired count on a sinusoid between ``trough`` and ``peak``, rounded to the nearest task."""

    peak: int
    trough: int
    peak_at: float
    period: float


@dataclass(frozen=True)
class ScheduleStep:
    at: float
    count: int


@dataclass(frozen=True)
class Schedule:
    """Desired counts at offsets from the service's start; played again every ``repeat`` when set."""

    steps: tuple[ScheduleStep, ...]
    repeat: float | None = None


DesiredCount = FixedCount | DiurnalCount | Schedule


# --- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """A diurnal envelope thinning a replayed request trace (``trough`` a fraction of the peak)."""

    trough: float
    peak_at: float
    period: float


@dataclass(frozen=True, eq=False)
class RequestTrace:
    """Requests replayed from a table: ``time`` (s from the first request), ``input_tokens``,
    ``output_tokens``; ``speed`` compresses time, ``repeat`` plays it again until the run ends."""

    table: pd.DataFrame
    speed: float
    repeat: bool
    envelope: Envelope | None


@dataclass(frozen=True)
class TokenSizes:
    input_tokens: int
    output_tokens: int
    distribution: str  # "fixed" | "exponential"


@dataclass(frozen=True, eq=False)
class ServiceRequests:
    """The requests a service receives and how its tasks serve them."""

    arrivals: PoissonArrivals | DiurnalArrivals | BurstyArrivals | RequestTrace
    sizes: TokenSizes
    service_time: ServiceTime
    config: RequestConfig
    start: float  # after the service's start


# --- workloads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderShare:
    """One item of a capacity provider strategy."""

    capacity_provider: str
    weight: int
    base: int


@dataclass(frozen=True)
class Launch:
    """How a workload's tasks reach capacity: a launch type, or a capacity provider strategy."""

    launch_type: str | None
    strategy: tuple[ProviderShare, ...] = ()


@dataclass(frozen=True)
class TaskBlock:
    """A task definition a workload runs: one, or one per aligned device block (``label``) with device sets."""

    label: str | None
    task_definition: str


@dataclass(frozen=True)
class Deployment:
    """UpdateService to ``task_definition`` at ``at`` seconds after the service's start."""

    at: float
    task_definition: str


@dataclass(frozen=True, eq=False)
class RunTaskWorkload:
    """Standalone tasks: RunTask calls of ``count`` tasks arriving by ``arrivals``."""

    name: str
    blocks: tuple[TaskBlock, ...]
    arrivals: Arrivals
    count: int
    duration: TaskDuration | None
    constraints: tuple[Constraint, ...]
    strategies: tuple[Strategy, ...]
    launch: Launch
    group: str | None  # None: family:<the task definition's family>
    start: float
    stop: float | None
    max_calls: int | None
    on_no_capacity: str  # "fail" | "wait"
    startup: Startup | None


@dataclass(frozen=True, eq=False)
class ServiceWorkload:
    """An ECS service (REPLICA, or DAEMON: one task per instance)."""

    name: str
    blocks: tuple[TaskBlock, ...]
    daemon: bool
    desired: DesiredCount | None
    task_duration: TaskDuration | None
    constraints: tuple[Constraint, ...]
    strategies: tuple[Strategy, ...]
    launch: Launch
    start: float
    startup: Startup | None
    minimum_healthy_percent: int
    maximum_percent: int
    rebalance: bool
    deployments: tuple[Deployment, ...]
    auto_scaling: AutoScalingConfig | None
    requests: ServiceRequests | None


Workload = RunTaskWorkload | ServiceWorkload


def workload_kind(workload: Workload) -> str:
    """``run_task``, ``service`` or ``daemon``: the kind per-workload figures are kept under."""
    if isinstance(workload, RunTaskWorkload):
        return "run_task"
    return "daemon" if workload.daemon else "service"


# --- the cluster ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    """``count`` container instances of one type from the start, round-robin over the zones."""

    instance_type: InstanceType
    count: int
    launch_type: str
    availability_zones: tuple[str, ...]
    capacity_provider: str | None
    attributes: Mapping[str, str]
    spot: bool


@dataclass(frozen=True)
class AutoScalingGroup:
    """An EC2_AUTOSCALING capacity provider and its ECS managed scaling."""

    name: str
    instance_types: tuple[InstanceType, ...]
    min_size: int
    max_size: int
    desired_capacity: int
    availability_zones: tuple[str, ...]
    launch_time: float
    managed_scaling: bool
    target_capacity: float
    minimum_scaling_step_size: int
    maximum_scaling_step_size: int
    instance_warmup_period: float
    spot: bool


@dataclass(frozen=True)
class ManagedInstances:
    """A MANAGED_INSTANCES capacity provider: ``candidates`` match its instanceRequirements."""

    name: str
    candidates: tuple[InstanceType, ...]
    scale_in_after: float  # seconds idle before an instance goes; negative: never
    launch_time: float
    max_instances: int | None
    availability_zones: tuple[str, ...]
    spot: bool


CapacityProvider = AutoScalingGroup | ManagedInstances


# --- faults ---------------------------------------------------------------------------------------

# Each kind's plan class is declared in its own module of scheduler.sim.faults (a targeted kind extends
# FaultTarget); the plan holds the targeted entries in ``faults`` and the Spot clock in ``spot_interruptions``.
Fault = FaultTarget


# --- the whole plan -------------------------------------------------------------------------------


class ClusterSnapshot(Protocol):
    """A cluster snapshot as the engine reads it (``scheduler.sim.snapshot`` seeds instances and tasks)."""

    instances: Sequence[Any]
    tasks: Sequence[Any]

    def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything one run reads of its scenario."""

    name: str
    seed: int
    duration: float
    sample_interval: float
    device_mode: str  # "device-aware" | "ecs-blind" | "topology-aware"
    cluster_name: str
    awsvpc_trunking: bool
    provisioning_timeout: float
    spot_discount: float
    fleets: tuple[Fleet, ...]
    capacity_providers: tuple[CapacityProvider, ...]
    workloads: tuple[Workload, ...]
    task_specs: Mapping[str, TaskSpec]
    catalog: Catalog
    faults: tuple[Fault, ...] = ()  # in the order their clocks draw from the fault generator
    spot_interruptions: SpotInterruptions | None = None
    snapshot: ClusterSnapshot | None = None


class Plannable(Protocol):
    """What compiles into a plan (a loaded scenario: ``scheduler.scenario.LoadedScenario``)."""

    def plan(self) -> Plan: ...
