"""What a scenario runs: RunTask workloads (arrival processes of RunTask calls) and ECS services, with
the task durations they draw. ECS's defaults that depend on the kind of request (the default placement
strategy) are resolved here; how arrivals and durations play out over time is ``scheduler.sim``'s."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from scheduler.ecs.taskspec import Constraint, Strategy
from scheduler.scenario.arrivals import BurstyArrivals, DiurnalArrivals, PoissonArrivals, _not_above
from scheduler.scenario.autoscaling import ServiceAutoScaling
from scheduler.scenario.fields import (
    Duration,
    EcsName,
    Int,
    Number,
    Step,
    _Model,
    _not_bool,
)
from scheduler.scenario.limits import (
    AZ_ATTRIBUTE,
    MAX_CALLS,
    MAX_INSTANCES,
    MAX_NAME,
    MAX_PERCENT,
    MAX_TASKS_PER_CALL,
    LaunchType,
)
from scheduler.scenario.placement import (
    CapacityProviderStrategy,
    CapacityProviderStrategyItem,
    PlacementConstraints,
    PlacementStrategies,
    PlacementStrategyItem,
)
from scheduler.scenario.requests import ServiceRequestsField
from scheduler.sim.workloads import diurnal_rate

# --- arrivals ---------------------------------------------------------------------------------------

class IntervalArrivals(_Model):
    """A call every ``every``, each delayed by a uniform random amount in [0, jitter]."""

    type: Literal["interval"]
    every: Step
    jitter: Duration = 0


class OnceArrivals(_Model):
    """``calls`` RunTask calls all at time ``at``."""

    type: Literal["once"]
    at: Duration = 0
    calls: Int = Field(1, ge=1, le=MAX_CALLS)


class TraceArrivals(_Model):
    """Calls replayed from a CSV file (relative to the scenario): one row per RunTask call."""

    type: Literal["trace"]
    file: Annotated[str, Field(min_length=1)]
    time_column: str = "submit"
    duration_column: str = "duration"
    task_definition_column: str = "task_definition"


Arrivals = Annotated[PoissonArrivals | IntervalArrivals | DiurnalArrivals | OnceArrivals | TraceArrivals
                     | BurstyArrivals, Field(discriminator="type")]


# --- task durations ---------------------------------------------------------------------------------

class FixedDuration(_Model):
    type: Literal["fixed"]
    value: Step


class ExponentialDuration(_Model):
    type: Literal["exponential"]
    mean: Step


class LognormalDuration(_Model):
    """exp(N(ln median, sigma^2)) seconds."""

    type: Literal["lognormal"]
    median: Step
    sigma: Number = Field(ge=0, le=10)


class EmpiricalDuration(_Model):
    """One of ``values``, drawn with probabilities proportional to ``weights`` (equal when omitted)."""

    type: Literal["empirical"]
    values: Annotated[list[Step], Field(min_length=1, max_length=100_000)]
    weights: list[Annotated[Number, Field(ge=0, allow_inf_nan=False)]] | None = None

    @field_validator("weights")
    @classmethod
    def _weights_match_values(cls, value: list[float] | None, info: ValidationInfo) -> list[float] | None:
        values = info.data.get("values")
        if value is None or values is None:
            return value
        if len(value) != len(values):
            raise ValueError(f"needs one weight per value: {len(values)} values, {len(value)} weights")
        if max(value) <= 0:  # not sum(): weights near the largest float overflow it
            raise ValueError("at least one weight must be above 0")
        return value


def _bare_fixed(value: object) -> object:
    # `duration: 90s` is shorthand for `{type: fixed, value: 90s}`.
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {"type": "fixed", "value": value}
    return value


TaskDuration = Annotated[
    FixedDuration | ExponentialDuration | LognormalDuration | EmpiricalDuration,
    Field(discriminator="type"),
    BeforeValidator(_bare_fixed, json_schema_input_type=Duration | FixedDuration | ExponentialDuration
                    | LognormalDuration | EmpiricalDuration),
]


# --- task start-up and service deployments ----------------------------------------------------------

class Startup(_Model):
    """How long a placed task takes to reach RUNNING. It is PENDING, holding what it reserved, while the
    agent pulls its images (``image_pull`` on an instance that does not have them, ``image_pull_cached``
    on one that has them: the agent still asks the registry for the tag's digest) and then while its
    containers start and load (``start``: container start, model download and load). Each is a duration
    distribution drawn per task from the workload's seeded generator; an omitted one takes no time."""

    image_pull: TaskDuration | None = None
    image_pull_cached: TaskDuration | None = None
    start: TaskDuration | None = None


class Deployment(_Model):
    """At ``at`` (from the service's ``start``), UpdateService to a new task definition (revision): a
    rolling deployment within the service's minimum_healthy_percent and maximum_percent."""

    at: Duration
    task_definition: str
# --- device sets ------------------------------------------------------------------------------------

class DeviceSetsOptions(_Model):
    """Spread a manual-mode task definition over the aligned device blocks of ``instance_type``: one
    generated task definition (and, for a service, one ECS service) per block."""

    instance_type: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]


def _device_sets_kind(value: object) -> str:
    return "device-sets-options" if isinstance(value, dict | DeviceSetsOptions) else "device-sets-auto"


DeviceSets = Annotated[Annotated[Literal["auto"], Tag("device-sets-auto")]
                       | Annotated[DeviceSetsOptions, Tag("device-sets-options")], Discriminator(_device_sets_kind)]


# --- workloads --------------------------------------------------------------------------------------

class _Placement(_Model):
    """What RunTask workloads and services share: the launch-type rule and the request's constraints."""

    @field_validator("capacity_provider_strategy", check_fields=False)
    @classmethod
    def _strategy_or_launch_type(cls, value: list[CapacityProviderStrategyItem],
                                 info: ValidationInfo) -> list[CapacityProviderStrategyItem]:
        if value and info.data.get("launch_type") is not None:
            raise ValueError("give launch_type or capacity_provider_strategy, not both (ECS rejects both)")
        return value

    def runtime_constraints(self) -> tuple[Constraint, ...]:
        """The constraints given with the request (the task definition's own come on top)."""
        return tuple(item.to_constraint() for item in getattr(self, "placement_constraints", ()))


class RunTaskWorkload(_Placement):
    """Standalone tasks: RunTask calls of ``count`` tasks each, arriving by ``arrivals``."""

    kind: Literal["run_task"]
    name: EcsName
    task_definition: str
    arrivals: Arrivals
    count: Int = Field(1, ge=1, le=MAX_TASKS_PER_CALL)
    duration: TaskDuration | None = None
    placement_strategy: PlacementStrategies | None = None
    placement_constraints: PlacementConstraints = []
    group: Annotated[str, Field(min_length=1, max_length=MAX_NAME)] | None = None
    launch_type: LaunchType | None = None
    capacity_provider_strategy: CapacityProviderStrategy = []
    start: Duration = 0
    stop: Duration | None = None
    max_calls: Int | None = Field(None, ge=1)
    on_no_capacity: Literal["fail", "wait"] = "fail"
    startup: Startup | None = None
    device_sets: DeviceSets | None = Field(None, description="one task definition per aligned device block of "
                                           "an instance type; RunTask calls go to the blocks in turn")

    @field_validator("duration")
    @classmethod
    def _duration_needed(cls, value: object, info: ValidationInfo) -> object:
        arrivals = info.data.get("arrivals")
        if value is None and arrivals is not None and not isinstance(arrivals, TraceArrivals):
            raise ValueError("is required (how long each task runs), e.g. 10m or "
                             "{type: exponential, mean: 10m}")
        return value

    @field_validator("stop")
    @classmethod
    def _stop_after_start(cls, value: float | None, info: ValidationInfo) -> float | None:
        start = info.data.get("start")
        if value is not None and start is not None and value <= start:
            raise ValueError(f"must be after start ({start:g} s), got {value:g} s")
        return value

    def effective_strategy(self) -> tuple[Strategy, ...]:
        """The strategy chain ECS applies: the one given, else RunTask's default, ``random``."""
        if self.placement_strategy is None:
            return (Strategy("random"),)
        return tuple(item.to_strategy() for item in self.placement_strategy)


class ScheduleStep(_Model):
    """From ``at`` on, the service's desired count is ``count``."""

    at: Duration
    count: Int = Field(ge=0, le=MAX_INSTANCES)


class RepeatingSchedule(_Model):
    """``steps`` (offsets from the service's start, each below ``repeat``) played again every ``repeat``."""

    repeat: Duration = Field(gt=0)
    steps: Annotated[list[ScheduleStep], Field(min_length=1)]

    @field_validator("steps")
    @classmethod
    def _steps_inside_repeat(cls, value: list[ScheduleStep], info: ValidationInfo) -> list[ScheduleStep]:
        repeat = info.data.get("repeat")
        _in_time_order(value)
        if repeat is not None and value[-1].at >= repeat:
            raise ValueError(f"every entry must be before repeat ({repeat:g} s); entry {len(value) - 1} is at "
                             f"{value[-1].at:g} s")
        return value


class DiurnalCount(_Model):
    """A desired count that follows a sinusoid between ``trough`` and ``peak`` (the curve of diurnal
    arrivals), peaking at ``peak_at`` into each ``period`` of the run; rounded to the nearest task."""

    peak: Int = Field(ge=0, le=MAX_INSTANCES)
    trough: Int = Field(0, ge=0, le=MAX_INSTANCES)
    peak_at: Duration = "14h"
    period: Duration = Field("1d", gt=0)

    @field_validator("trough")
    @classmethod
    def _trough_below_peak(cls, value: int, info: ValidationInfo) -> int:
        return _not_above(value, info, "peak", "{}")

    def count_at(self, t: float) -> int:
        """The desired count at ``t`` seconds into the run."""
        return math.floor(diurnal_rate(t, self.peak, self.trough, self.peak_at, self.period) + 0.5)


class DiurnalDesiredCount(_Model):
    """``desired_count: {diurnal: {peak: 40, trough: 8, peak_at: 14h, period: 1d}}``."""

    diurnal: DiurnalCount


def _count_kind(value: object) -> str:
    if isinstance(value, dict | DiurnalDesiredCount):
        return "diurnal-count"
    return "fixed-count"


def _schedule_kind(value: object) -> str:
    if isinstance(value, dict | RepeatingSchedule):
        return "repeating-schedule"
    return "schedule-steps"


DesiredCount = Annotated[
    # the bare int first and the bool check after, so the JSON Schema keeps minimum and maximum
    Annotated[int, Field(ge=0, le=MAX_INSTANCES), BeforeValidator(_not_bool), Tag("fixed-count")]
    | Annotated[DiurnalDesiredCount, Tag("diurnal-count")],
    Discriminator(_count_kind)]
Schedule = Annotated[
    Annotated[list[ScheduleStep], Field(min_length=1), Tag("schedule-steps")]
    | Annotated[RepeatingSchedule, Tag("repeating-schedule")],
    Discriminator(_schedule_kind)]


def _in_time_order(value: list[ScheduleStep]) -> None:
    for i in range(1, len(value)):
        if value[i].at <= value[i - 1].at:
            raise ValueError(f"entries must be in time order: entry {i} (at {value[i].at:g} s) is not "
                             f"after entry {i - 1} (at {value[i - 1].at:g} s)")


class ServiceWorkload(_Placement):
    """An ECS service: keeps ``desired_count`` tasks running (REPLICA) or one per instance (DAEMON)."""

    kind: Literal["service"]
    name: EcsName
    task_definition: str
    scheduling_strategy: Literal["REPLICA", "DAEMON"] = "REPLICA"
    desired_count: DesiredCount | None = Field(None, description="a count, or {diurnal: {peak, trough, peak_at, "
                                               "period}}; default 1 for REPLICA without a schedule; DAEMON has none")
    schedule: Schedule | None = Field(None, description="a list of {at, count}, or {repeat: 1d, steps: [...]}")
    task_duration: TaskDuration | None = None
    placement_strategy: PlacementStrategies | None = None
    placement_constraints: PlacementConstraints = []
    launch_type: LaunchType | None = None
    capacity_provider_strategy: CapacityProviderStrategy = []
    start: Duration = 0
    startup: Startup | None = None
    minimum_healthy_percent: Int | None = Field(None, ge=0, le=100, description="default 100 for REPLICA, "
                                                "0 for DAEMON (ECS's defaults)")
    maximum_percent: Int | None = Field(None, ge=100, le=MAX_PERCENT, description="default 200 for REPLICA, "
                                        "100 for DAEMON (ECS's defaults)")
    deployments: Annotated[list[Deployment], Field(min_length=1)] | None = None
    availability_zone_rebalancing: Literal["ENABLED", "DISABLED"] | None = Field(
        None, description="default ENABLED, DISABLED when the placement strategy has binpack (ECS's default "
        "for services created since June 2025)")
    device_sets: DeviceSets | None = Field(None, description="one task definition and one ECS service per aligned "
                                           "device block of an instance type; the desired count split over them")
    auto_scaling: ServiceAutoScaling = None
    requests: ServiceRequestsField = None

    @model_validator(mode="before")
    @classmethod
    def _default_desired_count(cls, data: object) -> object:
        if (isinstance(data, dict) and data.get("desired_count") is None and data.get("schedule") is None
                and data.get("scheduling_strategy", "REPLICA") == "REPLICA"):
            return {**data, "desired_count": 1}
        return data

    @field_validator("desired_count")
    @classmethod
    def _daemon_has_no_count(cls, value: int | DiurnalDesiredCount | None,
                             info: ValidationInfo) -> int | DiurnalDesiredCount | None:
        if value is not None and info.data.get("scheduling_strategy") == "DAEMON":
            raise ValueError("a DAEMON service runs one task per instance and takes no desired_count")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule_rules(cls, value: list[ScheduleStep] | RepeatingSchedule | None,
                        info: ValidationInfo) -> list[ScheduleStep] | RepeatingSchedule | None:
        if value is None:
            return value
        if info.data.get("scheduling_strategy") == "DAEMON":
            raise ValueError("a DAEMON service runs one task per instance and takes no schedule")
        if info.data.get("desired_count") is not None:
            raise ValueError("give desired_count or schedule, not both")
        if isinstance(value, list):
            _in_time_order(value)
        return value

    @field_validator("placement_strategy")
    @classmethod
    def _daemon_has_no_strategy(cls, value: list[PlacementStrategyItem] | None,
                                info: ValidationInfo) -> list[PlacementStrategyItem] | None:
        if value is not None and info.data.get("scheduling_strategy") == "DAEMON":
            raise ValueError("a DAEMON service takes no placement strategy (one task goes on every instance)")
        return value

    @field_validator("maximum_percent")
    @classmethod
    def _daemon_maximum(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value != 100 and info.data.get("scheduling_strategy") == "DAEMON":
            raise ValueError(f"a DAEMON service's maximum_percent stays at 100 (ECS), got {value}")
        return value

    @field_validator("requests")
    @classmethod
    def _requests_on_replica(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and info.data.get("scheduling_strategy") == "DAEMON":
            raise ValueError("requests go to a REPLICA service behind a load balancer, not to a DAEMON service")
        if value is not None and info.data.get("device_sets") is not None:
            raise ValueError("requests are not modelled for a service split into device sets; give one or the other")
        return value

    @field_validator("deployments")
    @classmethod
    def _deployments_in_order(cls, value: list[Deployment] | None) -> list[Deployment] | None:
        for i in range(1, len(value or ())):
            assert value is not None
            if value[i].at <= value[i - 1].at:
                raise ValueError(f"entries must be in time order: entry {i} (at {value[i].at:g} s) is not "
                                 f"after entry {i - 1} (at {value[i - 1].at:g} s)")
        return value

    @property
    def healthy_bounds(self) -> tuple[int, int]:
        """(minimumHealthyPercent, maximumPercent) with ECS's defaults: 100/200 REPLICA, 0/100 DAEMON."""
        daemon = self.scheduling_strategy == "DAEMON"
        low = self.minimum_healthy_percent if self.minimum_healthy_percent is not None else (0 if daemon else 100)
        high = self.maximum_percent if self.maximum_percent is not None else (100 if daemon else 200)
        return low, high

    @property
    def rebalances(self) -> bool:
        """Whether ECS rebalances the service's tasks over availability zones: ENABLED by default since June
        2025, but DISABLED by default for a service whose strategy binpacks (not compatible); never for
        DAEMON services (one task per instance)."""
        if self.scheduling_strategy == "DAEMON":
            return False
        if self.availability_zone_rebalancing is not None:
            return self.availability_zone_rebalancing == "ENABLED"
        return not any(item.type == "binpack" for item in self.placement_strategy or ())

    def effective_strategy(self) -> tuple[Strategy, ...]:
        """The strategy chain ECS applies: the one given, else a REPLICA service's default (spread over
        availability zones, then over instances); DAEMON services have none."""
        if self.scheduling_strategy == "DAEMON":
            return ()
        if self.placement_strategy is None:
            return (Strategy("spread", AZ_ATTRIBUTE), Strategy("spread", "instanceId"))
        return tuple(item.to_strategy() for item in self.placement_strategy)


Workload = Annotated[RunTaskWorkload | ServiceWorkload, Field(discriminator="kind")]
