"""Scenario files: YAML -> validated models -> a :class:`LoadedScenario` the simulation can run.

A scenario names a cluster (static fleets and capacity providers), the real ECS task definitions the
workloads run, and the workloads themselves (RunTask arrival processes and services). This module owns
the boundary: it reads the YAML defensively (size, alias expansion, depth and duplicate-key limits),
applies dotted-path overrides (for sweeps), validates the shape with pydantic models, checks every
cross-reference (instance types against the catalog, task definitions, capacity providers, trace files)
and turns every problem into one :class:`~scheduler.errors.ScenarioError` naming the file and the field
path, such as ``workloads[1].arrivals.rate``. Nothing else (no pydantic or YAML error) escapes.

The models are data only; how arrivals, durations and scaling play out over time is ``scheduler.sim``'s
business. ECS defaults that depend on the kind of request (the default placement strategy, the default
task group, launch type versus capacity provider strategy) are resolved here, in one place.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from scheduler.catalog import (
    LAUNCH_EC2,
    LAUNCH_MANAGED,
    NEURON_ACCELERATORS,
    Catalog,
    default_catalog,
    load_catalog,
)
from scheduler.catalog.catalog import _build as _build_instance_type
from scheduler.ecs import botocore_model, cql
from scheduler.ecs.taskdef import load_task_definition
from scheduler.ecs.taskspec import Constraint, Strategy, TaskSpec
from scheduler.errors import CatalogError, QueryError, ScenarioError, TaskDefinitionError, show_value
from scheduler.nesting import MAX_DEPTH, first_problem
from scheduler.units import DURATION_EXAMPLE, DURATION_PATTERN, RATE_PATTERN, parse_duration, parse_rate

# --- limits -----------------------------------------------------------------------------------------

MAX_FILE_BYTES = 10 * 1024 * 1024  # a scenario is a few KiB; anything this big is a mistake or an attack
MAX_NODES = 100_000                # YAML nodes after alias expansion (refuses "billion laughs")
MAX_INSTANCES = 100_000            # the simulator's cap; ECS's default quota is 5,000 per cluster
MAX_SAMPLES = 1_000_000            # duration / sample_interval
MAX_CALLS = 1_000_000              # `once` arrivals in one burst
MAX_TASKS_PER_CALL = 10            # RunTask count
MAX_STRATEGIES = 5                 # placement strategy rules per task or service
MAX_CONSTRAINTS = 10               # task definition and run time together
MAX_PROVIDERS_PER_STRATEGY = 20
MAX_NAME = 255

DEFAULT_AVAILABILITY_ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
AZ_ATTRIBUTE = "attribute:ecs.availability-zone"
LaunchType = Literal["EC2", "MANAGED_INSTANCES"]

# --- field types ------------------------------------------------------------------------------------

_DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}],
    "description": "seconds, or a string such as 90s, 15m, 2h, 1h30m, 7d, 500ms",
}
_RATE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": RATE_PATTERN}],
    "description": "per second, or a string such as 10/h, 2/m, 0.5/s, 1200/d, '10 per hour', '3 per 15m'",
}


def _not_bool(value: object) -> object:
    # pydantic reads True as 1; in a scenario `count: yes` is a slip, not a number.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Number = Annotated[float, BeforeValidator(_not_bool)]
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
Rate = Annotated[float, BeforeValidator(parse_rate), WithJsonSchema(_RATE_SCHEMA)]
RateOrZero = Annotated[float, BeforeValidator(partial(parse_rate, allow_zero=True)),
                       WithJsonSchema(_RATE_SCHEMA)]

_ECS_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
_ECS_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_./\\-]{1,128}")
_ATTRIBUTE_VALUE = re.compile(r"[A-Za-z0-9_./\\@: -]{1,128}")


def _ecs_name(value: str) -> str:
    if not _ECS_NAME.fullmatch(value):
        raise ValueError(f"use 1-255 letters, digits, hyphens and underscores, got {show_value(value)}")
    return value


def _provider_name(value: str) -> str:
    _ecs_name(value)
    if value.lower().startswith(("aws", "ecs", "fargate")):
        raise ValueError(f"capacity provider names may not start with aws, ecs or fargate, got {value!r}")
    return value


def _attribute_name(value: str) -> str:
    if not _ATTRIBUTE_NAME.fullmatch(value):
        raise ValueError(f"an attribute name is 1-128 letters, digits or - _ / \\ . ; got {show_value(value)}")
    return value


def _attribute_value(value: object) -> str:
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, int | float):
        if isinstance(value, int) and abs(value) >= 10**128:  # too long anyway, and str() may refuse it
            raise ValueError(f"an attribute value is 1-128 characters, got {show_value(value)}")
        value = str(value)  # `rack: 3` in YAML is a number; ECS attribute values are strings
    if not isinstance(value, str):
        raise ValueError(f"an attribute value is text, got {show_value(value)}")
    if not _ATTRIBUTE_VALUE.fullmatch(value) or value != value.strip():
        raise ValueError("an attribute value is 1-128 letters, digits, spaces or - _ / \\ . @ : "
                         f"without leading or trailing spaces; got {show_value(value)}")
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value


def _unique(what: str) -> Callable[[list[Any]], list[Any]]:
    def check(items: list[Any]) -> list[Any]:
        seen: set[Any] = set()
        for item in items:
            if item in seen:
                raise ValueError(f"{what} {item!r} is listed twice")
            seen.add(item)
        return items
    return check


def _taskdef_source(value: object) -> str | dict[str, Any]:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return dict(value)
    raise ValueError("must be the path of an ECS task-definition JSON file or an inline task-definition "
                     f"object, got {show_value(value)}")


def _scale_in_after(value: object) -> float | None:
    if value is None:
        return None
    if value == "disabled" or (type(value) in (int, float) and value == -1):
        return -1.0
    seconds = parse_duration(value)
    if seconds > 3600:
        raise ValueError(f"must be at most 1h (3600 s) as in ECS, or 'disabled'; got {show_value(value)}")
    return seconds


_NAME_SCHEMA = {"type": "string", "pattern": _ECS_NAME_PATTERN}
EcsName = Annotated[str, AfterValidator(_ecs_name), WithJsonSchema(_NAME_SCHEMA)]
ProviderName = Annotated[str, AfterValidator(_provider_name), WithJsonSchema(_NAME_SCHEMA)]
AttributeName = Annotated[str, AfterValidator(_attribute_name)]
AttributeValue = Annotated[str, PlainValidator(_attribute_value),
                           WithJsonSchema({"type": ["string", "number"]})]
AvailabilityZones = Annotated[list[Annotated[str, AfterValidator(_attribute_value)]], Field(min_length=1),
                              AfterValidator(_unique("availability zone"))]
TaskDefinitionSource = Annotated[str | dict[str, Any], PlainValidator(_taskdef_source), WithJsonSchema({
    "anyOf": [{"type": "string", "description": "path of a task-definition JSON file"},
              {"type": "object", "description": "an inline RegisterTaskDefinition object"}]})]
ScaleInAfter = Annotated[float | None, PlainValidator(_scale_in_after), WithJsonSchema({
    "anyOf": [{"type": "null"}, {"const": "disabled"}, {"const": -1}, *_DURATION_SCHEMA["anyOf"]],
    "description": "ECS infrastructureOptimization.scaleInAfter: null = ECS default, "
                   "'disabled' (-1), or 0-1h"})]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --- placement: strategies, constraints, capacity provider strategies -------------------------------

_SPREAD_FIELD = re.compile(r"instanceId|host|attribute:[A-Za-z0-9_./\\-]{1,128}")


class PlacementStrategyItem(_Model):
    """One ECS ``PlacementStrategy`` rule: ``binpack`` (cpu|memory), ``spread`` (a field), ``random``.

    ``binpack`` on ``neuronDevices`` (fewest free chips) or ``gpu`` is a simulator extension beyond ECS;
    a run that uses one lists it under ``extensions`` in summary.json."""

    type: Literal["random", "spread", "binpack"]
    field: str | None = None

    @field_validator("field")
    @classmethod
    def _field_fits_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == "binpack" and value not in ("cpu", "memory", "neuronDevices", "gpu"):
            raise ValueError("binpack needs field cpu or memory (or, beyond ECS, neuronDevices or gpu), got "
                             f"{show_value(value)}")
        if kind == "spread" and (value is None or not _SPREAD_FIELD.fullmatch(value)):
            raise ValueError("spread needs field instanceId, host or attribute:<name> (such as "
                             f"{AZ_ATTRIBUTE}), got {show_value(value)}")
        if kind == "random" and value is not None:
            raise ValueError(f"random takes no field, got {show_value(value)}")
        return value

    def to_strategy(self) -> Strategy:
        return Strategy(self.type, self.field)


class PlacementConstraintItem(_Model):
    """One ECS ``PlacementConstraint``: ``distinctInstance``, or ``memberOf`` with a query expression."""

    type: Literal["distinctInstance", "memberOf"]
    expression: str | None = None

    @field_validator("expression")
    @classmethod
    def _expression_fits_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == "distinctInstance" and value is not None:
            raise ValueError("distinctInstance takes no expression")
        if kind == "memberOf":
            if value is None:
                raise ValueError("memberOf needs an expression, such as "
                                 "attribute:ecs.instance-type =~ inf2.*")
            try:
                cql.parse(value)
            except QueryError as exc:
                raise ValueError(exc.message) from None
        return value

    def to_constraint(self) -> Constraint:
        return Constraint(self.type, self.expression)


class CapacityProviderStrategyItem(_Model):
    """One ECS ``CapacityProviderStrategyItem``.

    ``weight`` defaults to 1, not to the API's 0: a provider listed without a weight is meant to get
    tasks, and in ECS a strategy whose weights are all 0 makes RunTask and CreateService fail. The ECS
    console uses 1 for the same reason. Write ``weight: 0`` explicitly for a base-only provider.
    """

    capacity_provider: str
    weight: Int = Field(1, ge=0, le=1000)
    base: Int = Field(0, ge=0, le=100_000)


def _strategy_rules(items: list[CapacityProviderStrategyItem]) -> list[CapacityProviderStrategyItem]:
    if not items:
        return items
    _unique("capacity provider")([item.capacity_provider for item in items])
    with_base = [item.capacity_provider for item in items if item.base > 0]
    if len(with_base) > 1:
        raise ValueError(f"at most one capacity provider may have a base, got {', '.join(with_base)}")
    if all(item.weight == 0 for item in items):
        raise ValueError("at least one capacity provider needs a weight above 0 "
                         "(ECS rejects all-zero weights)")
    return items


CapacityProviderStrategy = Annotated[list[CapacityProviderStrategyItem],
                                     Field(max_length=MAX_PROVIDERS_PER_STRATEGY),
                                     AfterValidator(_strategy_rules)]
PlacementStrategies = Annotated[list[PlacementStrategyItem], Field(max_length=MAX_STRATEGIES)]
PlacementConstraints = Annotated[list[PlacementConstraintItem], Field(max_length=MAX_CONSTRAINTS)]


# --- the cluster ------------------------------------------------------------------------------------

def _enabled_flag(value: object) -> object:
    # Accept the ECS spelling (ENABLED | DISABLED) as well as a YAML boolean.
    return {"ENABLED": True, "DISABLED": False}.get(value, value) if isinstance(value, str) else value


class Fleet(_Model):
    """Container instances that exist from the start: ``count`` of one instance type, spread round-robin
    over ``availability_zones``."""

    instance_type: str
    count: Int = Field(ge=0, le=MAX_INSTANCES)
    launch_type: LaunchType = "EC2"
    availability_zones: AvailabilityZones = list(DEFAULT_AVAILABILITY_ZONES)
    capacity_provider: str | None = None
    attributes: dict[AttributeName, AttributeValue] = {}
    spot: bool = False


class ManagedScaling(_Model):
    """ECS ``ManagedScaling`` of an Auto Scaling group capacity provider (ranges and defaults as in ECS)."""

    status: Literal["ENABLED", "DISABLED"] = "ENABLED"
    target_capacity: Int = Field(100, ge=1, le=100)
    minimum_scaling_step_size: Int = Field(1, ge=1, le=10_000)
    maximum_scaling_step_size: Int = Field(10_000, ge=1, le=10_000)
    instance_warmup_period: Duration = Field(300, ge=0, le=10_000)

    @field_validator("maximum_scaling_step_size")
    @classmethod
    def _max_step_at_least_min(cls, value: int, info: ValidationInfo) -> int:
        least = info.data.get("minimum_scaling_step_size")
        if least is not None and value < least:
            raise ValueError(f"must be at least minimum_scaling_step_size ({least}), got {value}")
        return value


class AutoScalingCapacityProvider(_Model):
    """An ``EC2_AUTOSCALING`` capacity provider: an Auto Scaling group ECS scales to fit its tasks."""

    name: ProviderName
    type: Literal["EC2_AUTOSCALING"]
    instance_types: Annotated[list[str], Field(min_length=1), AfterValidator(_unique("instance type"))]
    min_size: Int = Field(0, ge=0, le=MAX_INSTANCES)
    max_size: Int = Field(ge=0, le=MAX_INSTANCES)
    desired_capacity: Int | None = Field(None, ge=0, le=MAX_INSTANCES, description="defaults to min_size")
    availability_zones: AvailabilityZones = list(DEFAULT_AVAILABILITY_ZONES)
    launch_time: Duration = "90s"
    managed_scaling: ManagedScaling = ManagedScaling()
    managed_termination_protection: Annotated[bool, BeforeValidator(_enabled_flag)] = False
    spot: bool = False

    @field_validator("max_size")
    @classmethod
    def _max_at_least_min(cls, value: int, info: ValidationInfo) -> int:
        least = info.data.get("min_size")
        if least is not None and value < least:
            raise ValueError(f"must be at least min_size ({least}), got {value}")
        return value

    @field_validator("desired_capacity")
    @classmethod
    def _desired_within_bounds(cls, value: int | None, info: ValidationInfo) -> int | None:
        low, high = info.data.get("min_size"), info.data.get("max_size")
        if value is None:
            return low
        if low is not None and high is not None and not low <= value <= high:
            raise ValueError(f"must be between min_size ({low}) and max_size ({high}), got {value}")
        return value

    @field_validator("managed_termination_protection")
    @classmethod
    def _protection_needs_scaling(cls, value: bool, info: ValidationInfo) -> bool:
        scaling = info.data.get("managed_scaling")
        if value and scaling is not None and scaling.status != "ENABLED":
            raise ValueError("managed termination protection needs managed_scaling.status ENABLED")
        return value


def _instance_requirements(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    shape = botocore_model.ecs_service_model().shape_for("InstanceRequirementsRequest")
    issues = [
        issue for issue in botocore_model.check_shape(value, shape, root="$")
        # The Neuron guide names inferentia2, trainium and trainium2, which botocore's enum lacks;
        # botocore does not check enums client-side, so ECS itself decides. Let them through.
        if not (issue.rule == botocore_model.BAD_ENUM and ".acceleratorNames[" in issue.path
                and _value_at(value, issue.path) in NEURON_ACCELERATORS)
    ]
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        where = issues[0].path.removeprefix("$").removeprefix(".")
        raise ValueError(f"{where + ': ' if where else ''}{issues[0].message}{more}")
    return value


def _value_at(document: Mapping[str, Any], path: str) -> object:
    match = re.fullmatch(r"\$\.acceleratorNames\[(\d+)\]", path)
    names = document.get("acceleratorNames")
    if match is None or not isinstance(names, list) or int(match[1]) >= len(names):
        return None
    return names[int(match[1])]


class ManagedInstancesCapacityProvider(_Model):
    """A ``MANAGED_INSTANCES`` capacity provider: ECS launches instances that match ``instance_requirements``
    (the ECS ``InstanceRequirementsRequest`` JSON, e.g. ``{vCpuCount: {min: 4}, memoryMiB: {min: 16384},
    allowedInstanceTypes: ["inf2.*"]}``); without them ECS picks cost-optimised general-purpose types."""

    name: ProviderName
    type: Literal["MANAGED_INSTANCES"]
    instance_requirements: Annotated[dict[str, Any] | None, AfterValidator(_instance_requirements)] = None
    scale_in_after: ScaleInAfter = None
    launch_time: Duration = "90s"
    max_instances: Int | None = Field(None, ge=1, le=MAX_INSTANCES)
    availability_zones: AvailabilityZones = list(DEFAULT_AVAILABILITY_ZONES)
    spot: bool = False


CapacityProvider = Annotated[AutoScalingCapacityProvider | ManagedInstancesCapacityProvider,
                             Field(discriminator="type")]


class ClusterModel(_Model):
    """The ECS cluster: static fleets, capacity providers and the cluster's default strategy."""

    name: EcsName = "default"
    fleets: list[Fleet] = []
    capacity_providers: list[CapacityProvider] = []
    default_capacity_provider_strategy: CapacityProviderStrategy = []
    provisioning_timeout: Duration = Field("15m", gt=0)
    spot_discount: Number = Field(0.65, ge=0, lt=1, description="Spot price = on-demand x (1 - spot_discount)")


# --- arrivals ---------------------------------------------------------------------------------------

class PoissonArrivals(_Model):
    """RunTask calls at exponentially distributed gaps with mean 1/rate."""

    type: Literal["poisson"]
    rate: Rate


class IntervalArrivals(_Model):
    """A call every ``every``, each delayed by a uniform random amount in [0, jitter]."""

    type: Literal["interval"]
    every: Duration = Field(gt=0)
    jitter: Duration = 0


class DiurnalArrivals(_Model):
    """A Poisson process whose rate follows a sinusoid between ``trough_rate`` and ``peak_rate``,
    peaking at ``peak_at`` (an offset into each period; the run starts at offset 0)."""

    type: Literal["diurnal"]
    peak_rate: Rate
    trough_rate: RateOrZero
    peak_at: Duration = "14h"
    period: Duration = Field("1d", gt=0)

    @field_validator("trough_rate")
    @classmethod
    def _trough_below_peak(cls, value: float, info: ValidationInfo) -> float:
        peak = info.data.get("peak_rate")
        if peak is not None and value > peak:
            raise ValueError(f"must not exceed peak_rate ({peak:g}/s), got {value:g}/s")
        return value

    def rate_at(self, t: float) -> float:
        """The rate (per second) at ``t`` seconds into the run."""
        phase = 2 * math.pi * (t - self.peak_at) / self.period
        return self.trough_rate + (self.peak_rate - self.trough_rate) * (1 + math.cos(phase)) / 2


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


Arrivals = Annotated[PoissonArrivals | IntervalArrivals | DiurnalArrivals | OnceArrivals | TraceArrivals,
                     Field(discriminator="type")]


# --- task durations ---------------------------------------------------------------------------------

class FixedDuration(_Model):
    type: Literal["fixed"]
    value: Duration = Field(gt=0)


class ExponentialDuration(_Model):
    type: Literal["exponential"]
    mean: Duration = Field(gt=0)


class LognormalDuration(_Model):
    """exp(N(ln median, sigma^2)) seconds."""

    type: Literal["lognormal"]
    median: Duration = Field(gt=0)
    sigma: Number = Field(ge=0, le=10)


class EmpiricalDuration(_Model):
    """One of ``values``, drawn with probabilities proportional to ``weights`` (equal when omitted)."""

    type: Literal["empirical"]
    values: Annotated[list[Duration], Field(min_length=1, max_length=100_000)]
    weights: list[Annotated[Number, Field(ge=0, allow_inf_nan=False)]] | None = None

    @field_validator("weights")
    @classmethod
    def _weights_match_values(cls, value: list[float] | None, info: ValidationInfo) -> list[float] | None:
        values = info.data.get("values")
        if value is None or values is None:
            return value
        if len(value) != len(values):
            raise ValueError(f"needs one weight per value: {len(values)} values, {len(value)} weights")
        if sum(value) <= 0:
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


class ServiceWorkload(_Placement):
    """An ECS service: keeps ``desired_count`` tasks running (REPLICA) or one per instance (DAEMON)."""

    kind: Literal["service"]
    name: EcsName
    task_definition: str
    scheduling_strategy: Literal["REPLICA", "DAEMON"] = "REPLICA"
    desired_count: Int | None = Field(None, ge=0, le=MAX_INSTANCES,
                                      description="default 1 for REPLICA without a schedule; DAEMON has none")
    schedule: Annotated[list[ScheduleStep], Field(min_length=1)] | None = None
    task_duration: TaskDuration | None = None
    placement_strategy: PlacementStrategies | None = None
    placement_constraints: PlacementConstraints = []
    launch_type: LaunchType | None = None
    capacity_provider_strategy: CapacityProviderStrategy = []
    start: Duration = 0

    @model_validator(mode="before")
    @classmethod
    def _default_desired_count(cls, data: object) -> object:
        if (isinstance(data, dict) and data.get("desired_count") is None and data.get("schedule") is None
                and data.get("scheduling_strategy", "REPLICA") == "REPLICA"):
            return {**data, "desired_count": 1}
        return data

    @field_validator("desired_count")
    @classmethod
    def _daemon_has_no_count(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("scheduling_strategy") == "DAEMON":
            raise ValueError("a DAEMON service runs one task per instance and takes no desired_count")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule_rules(cls, value: list[ScheduleStep] | None,
                        info: ValidationInfo) -> list[ScheduleStep] | None:
        if value is None:
            return value
        if info.data.get("scheduling_strategy") == "DAEMON":
            raise ValueError("a DAEMON service runs one task per instance and takes no schedule")
        if info.data.get("desired_count") is not None:
            raise ValueError("give desired_count or schedule, not both")
        for i in range(1, len(value)):
            if value[i].at <= value[i - 1].at:
                raise ValueError(f"entries must be in time order: entry {i} (at {value[i].at:g} s) is not "
                                 f"after entry {i - 1} (at {value[i - 1].at:g} s)")
        return value

    @field_validator("placement_strategy")
    @classmethod
    def _daemon_has_no_strategy(cls, value: list[PlacementStrategyItem] | None,
                                info: ValidationInfo) -> list[PlacementStrategyItem] | None:
        if value is not None and info.data.get("scheduling_strategy") == "DAEMON":
            raise ValueError("a DAEMON service takes no placement strategy (one task goes on every instance)")
        return value

    def effective_strategy(self) -> tuple[Strategy, ...]:
        """The strategy chain ECS applies: the one given, else a REPLICA service's default (spread over
        availability zones, then over instances); DAEMON services have none."""
        if self.scheduling_strategy == "DAEMON":
            return ()
        if self.placement_strategy is None:
            return (Strategy("spread", AZ_ATTRIBUTE), Strategy("spread", "instanceId"))
        return tuple(item.to_strategy() for item in self.placement_strategy)


Workload = Annotated[RunTaskWorkload | ServiceWorkload, Field(discriminator="kind")]


# --- faults -----------------------------------------------------------------------------------------

class _FaultTarget(_Model):
    """Which instances a fault strikes: every instance, or those of one type; at given times, or at random
    with a mean time between failures per instance."""

    instance_type: str | None = None
    mtbf: Duration | None = Field(None, gt=0, description="mean time between failures of one instance")
    at: list[Duration] = []

    @model_validator(mode="after")
    def _when(self) -> _FaultTarget:
        if self.mtbf is None and not self.at:
            raise ValueError("give mtbf (a mean time between failures) or at (a list of times)")
        return self


class InstanceFailure(_FaultTarget):
    """The instance dies: its tasks stop (InfrastructureHealth) and it leaves the cluster."""


class ChipFailure(_FaultTarget):
    """One Neuron chip fails: it leaves the instance's NEURON_DEVICES and the task holding it stops."""


class AgentDisconnect(_FaultTarget):
    """The ECS agent loses its connection for ``duration``: no new placements there; tasks run on."""

    duration: Duration = Field("5m", gt=0)


class InstanceRetirement(_FaultTarget):
    """EC2 schedules the instance for retirement: it is drained at once (service tasks move) and terminated
    after ``notice``; tasks still there stop with TerminationNotice."""

    notice: Duration = Field("1h", ge=0)


class SpotInterruptions(_Model):
    """EC2 reclaims Spot instances at ``rate`` per instance; a two-minute notice drains the instance first."""

    rate: Rate
    notice: Duration = Field("2m", ge=0)


class Faults(_Model):
    """Faults injected into the run (all optional)."""

    instance_failures: list[InstanceFailure] = []
    chip_failures: list[ChipFailure] = []
    agent_disconnects: list[AgentDisconnect] = []
    instance_retirements: list[InstanceRetirement] = []
    spot_interruptions: SpotInterruptions | None = None


# --- the scenario -----------------------------------------------------------------------------------

class Scenario(_Model):
    """A whole scenario file."""

    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_one_line)]
    description: str = ""
    seed: Int = Field(0, ge=0, le=2**63 - 1)
    duration: Duration = Field(gt=0)
    sample_interval: Duration = Field("1m", gt=0)
    device_mode: Literal["device-aware", "ecs-blind", "topology-aware"] = "device-aware"
    catalog: Annotated[str, Field(min_length=1)] | None = None
    catalog_additions: list[dict[str, Any]] = []
    task_definitions: Annotated[dict[Annotated[str, Field(min_length=1, max_length=MAX_NAME)],
                                     TaskDefinitionSource], Field(min_length=1)]
    cluster: ClusterModel
    workloads: Annotated[list[Workload], Field(min_length=1)]
    faults: Faults = Faults()

    @field_validator("sample_interval")
    @classmethod
    def _few_enough_samples(cls, value: float, info: ValidationInfo) -> float:
        duration = info.data.get("duration")
        if duration is not None and value > 0 and duration / value > MAX_SAMPLES:
            raise ValueError(f"gives {duration / value:,.0f} samples over the run; "
                             f"the limit is {MAX_SAMPLES:,} "
                             "(use a longer sample_interval)")
        return value


_TAGGED: dict[str, type[BaseModel]] = {
    "run_task": RunTaskWorkload, "service": ServiceWorkload,
    "poisson": PoissonArrivals, "interval": IntervalArrivals, "diurnal": DiurnalArrivals,
    "once": OnceArrivals, "trace": TraceArrivals,
    "fixed": FixedDuration, "exponential": ExponentialDuration, "lognormal": LognormalDuration,
    "empirical": EmpiricalDuration,
    "EC2_AUTOSCALING": AutoScalingCapacityProvider, "MANAGED_INSTANCES": ManagedInstancesCapacityProvider,
}


# --- the result of loading --------------------------------------------------------------------------

@dataclass(frozen=True)
class Launch:
    """How a workload's tasks reach capacity: a launch type, or a capacity provider strategy."""

    launch_type: str | None
    strategy: tuple[CapacityProviderStrategyItem, ...] = ()


def resolve_launch(workload: RunTaskWorkload | ServiceWorkload, cluster: ClusterModel) -> Launch:
    """ECS's rule: the workload's launch type, else its strategy, else the cluster's default strategy,
    else the EC2 launch type."""
    if workload.launch_type is not None:
        return Launch(workload.launch_type)
    if workload.capacity_provider_strategy:
        return Launch(None, tuple(workload.capacity_provider_strategy))
    if cluster.default_capacity_provider_strategy:
        return Launch(None, tuple(cluster.default_capacity_provider_strategy))
    return Launch(LAUNCH_EC2)


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with everything it refers to loaded: the catalog (with the scenario's own
    additions), a TaskSpec per task definition and a table per trace workload.

    Each trace table has float columns ``submit`` and ``duration`` (seconds; ``duration`` is NaN where
    the workload's own ``duration`` applies) and a ``task_definition`` column of task_definitions keys,
    sorted by ``submit``.
    """

    model: Scenario
    path: Path
    catalog: Catalog
    task_specs: dict[str, TaskSpec]
    traces: dict[str, pd.DataFrame] = field(default_factory=dict)

    def launch_of(self, workload: RunTaskWorkload | ServiceWorkload) -> Launch:
        return resolve_launch(workload, self.model.cluster)

    def group_of(self, workload: RunTaskWorkload | ServiceWorkload) -> str:
        """The ECS task group: ``service:<name>`` for services; the RunTask ``group`` or
        ``family:<task-definition family>`` for standalone tasks."""
        if isinstance(workload, ServiceWorkload):
            return f"service:{workload.name}"
        if workload.group is not None:
            return workload.group
        return f"family:{self.task_specs[workload.task_definition].family}"


# --- loading ----------------------------------------------------------------------------------------

def load_scenario(path: str | Path, *, overrides: Mapping[str, object] | None = None) -> LoadedScenario:
    """Read, override, validate and resolve a scenario file; every problem is a ScenarioError."""
    label = str(path)
    text = _read_text(Path(path), label)
    data = parse_yaml(text, label)
    if data is None:
        raise ScenarioError("the file is empty; a scenario needs at least name, duration, task_definitions, "
                            "cluster and workloads", file=label)
    return scenario_from_mapping(data, path=path, overrides=overrides)


def scenario_from_mapping(data: object, *, path: str | Path,
                          overrides: Mapping[str, object] | None = None) -> LoadedScenario:
    """Validate and resolve already-parsed scenario data; ``path`` names it in errors and is where
    relative file references (task definitions, catalog, traces) are resolved from."""
    label = str(path)
    if not isinstance(data, Mapping):
        raise ScenarioError(f"the top level must be a mapping of scenario fields (name, duration, ...), "
                            f"not {_kind(data)}", file=label)
    _check_tree(data, label)
    try:
        if overrides:
            data = apply_overrides(data, overrides, file=label)
            _check_tree(data, label)
        model = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc, label) from None
    except RecursionError:
        raise ScenarioError("the document is nested too deeply", file=label) from None
    base = Path(path).parent
    context = _Context(label, base)
    catalog = _scenario_catalog(model, context)
    _check_cluster(model.cluster, catalog, context)
    _check_faults(model.faults, catalog, context)
    _check_workload_references(model, context)
    specs = _load_task_definitions(model, context)
    _check_workloads_against_specs(model, specs, context)
    traces = _load_traces(model, context)
    return LoadedScenario(model, Path(path).resolve(), catalog, specs, traces)


def _check_tree(data: object, label: str) -> None:
    # Before pydantic: it cannot report these without tracebacks of its own on stderr.
    found = first_problem(data)
    if found is not None:
        keys, problem = found
        path = "".join(_path_part(key if isinstance(key, int | str) else show_value(key), first=not i)
                       for i, key in enumerate(keys))
        raise ScenarioError(problem, file=label, path=path or None)


@dataclass(frozen=True)
class _Context:
    file: str
    base: Path

    def error(self, path: str | None, message: str) -> ScenarioError:
        return ScenarioError(message, file=self.file, path=path)


# --- reading YAML safely ----------------------------------------------------------------------------

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_text(path: Path, label: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(f"the file is {size:,} bytes; a scenario may be at most {MAX_FILE_BYTES:,}",
                                file=label)
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError("scenario file not found", file=label) from None
    except IsADirectoryError:
        raise ScenarioError("is a directory, not a scenario file", file=label) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read the file: {exc.strerror or exc}", file=label) from None
    except ValueError as exc:  # a NUL byte in the path
        raise ScenarioError(f"cannot read the file: {exc}", file=_path_text(path)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"the file is larger than {MAX_FILE_BYTES:,} bytes", file=label)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ScenarioError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded",
                            file=label, path=f"line {line}, column {column}") from None


def parse_yaml(text: str, label: str) -> object:
    """``yaml.safe_load`` with limits: one document, at most MAX_NODES nodes after expanding aliases,
    at most MAX_DEPTH levels, no recursive aliases and no duplicate keys. Raises ScenarioError."""
    try:
        _check_yaml_structure(text, label)
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        raise _from_yaml_error(exc, label) from None
    except (ValueError, OverflowError, LookupError, AttributeError, TypeError) as exc:
        # raised inside PyYAML's constructors, which report bad values this way (int("x"), !!bool x, ...)
        raise ScenarioError(f"not valid YAML: {_first_line(exc)}", file=label) from None
    except RecursionError:
        raise ScenarioError("not valid YAML: nested too deeply", file=label) from None


@dataclass
class _Open:
    """A collection being read: whether it is a mapping, its children so far, its keys, its anchor."""

    mapping: bool
    start: int
    anchor: str | None
    children: int = 0
    keys: set[tuple[str, bool]] = field(default_factory=set)


def _check_yaml_structure(text: str, label: str) -> None:
    nodes = 0
    sizes: dict[str, int] = {}   # anchor -> nodes it stands for
    stack: list[_Open] = []
    documents = 0

    def refuse(event: yaml.Event, message: str) -> ScenarioError:
        mark = event.start_mark
        return ScenarioError(message, file=label, path=f"line {mark.line + 1}, column {mark.column + 1}")

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise refuse(event, "the file holds more than one YAML document; a scenario is one document")
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            if done.anchor is not None:
                sizes[done.anchor] = nodes - done.start
            if stack:
                stack[-1].children += 1
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        parent = stack[-1] if stack else None
        if isinstance(event, yaml.AliasEvent):
            if any(frame.anchor == event.anchor for frame in stack):
                raise refuse(event, f"the alias *{event.anchor} refers to a collection that contains it")
            if event.anchor not in sizes:
                raise refuse(event, f"the alias *{event.anchor} has no anchor &{event.anchor} before it")
            nodes += sizes[event.anchor]
        else:
            nodes += 1
        if nodes > MAX_NODES:
            raise refuse(event, f"the document has more than {MAX_NODES:,} values once aliases are expanded; "
                         "refusing to load it")
        if (parent is not None and parent.mapping and parent.children % 2 == 0
                and isinstance(event, yaml.ScalarEvent) and event.value != "<<"):
            key = (event.value, bool(event.implicit[0]))
            if key in parent.keys:
                raise refuse(event, f"duplicate key {show_value(event.value)} (YAML would keep only the last one)")
            parent.keys.add(key)
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise refuse(event, f"nested more than {MAX_DEPTH} levels deep")
            stack.append(_Open(isinstance(event, yaml.MappingStartEvent), nodes - 1, event.anchor))
        else:
            if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
                sizes[event.anchor] = 1
            if isinstance(event, yaml.ScalarEvent) and (problem := _scalar_problem(event)) is not None:
                raise refuse(event, problem)
            if parent is not None:
                parent.children += 1


_YAML_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9_]*)")
_INT_TAG = "tag:yaml.org,2002:int"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_SCALAR_KINDS = {"tag:yaml.org,2002:int": "integer", "tag:yaml.org,2002:float": "number",
                 "tag:yaml.org,2002:bool": "boolean", _TIMESTAMP_TAG: "date"}
MAX_DIGITS = 1000  # no scenario value comes close; int() refuses more than 4,300 digits


def _scalar_problem(event: yaml.ScalarEvent) -> str | None:
    """What the YAML constructor would fail on without saying where: huge numbers, impossible dates,
    and explicitly tagged scalars such as ``!!bool x`` or ``!!timestamp`` (on which PyYAML's constructors
    raise KeyError, IndexError or AttributeError rather than a YAML error)."""
    plain = bool(event.implicit[0]) and event.tag in (None, "!")
    value = event.value
    if (plain or event.tag == _INT_TAG) and _YAML_DECIMAL.fullmatch(value):
        digits = len(value.replace("_", "").lstrip("+-"))
        if digits > MAX_DIGITS:
            return f"not valid YAML: a number with {digits:,} digits is far beyond anything a scenario takes"
    if plain:  # resolved by pattern: only a date can match its pattern and still be impossible
        tag = _TIMESTAMP_TAG if yaml.constructor.SafeConstructor.timestamp_regexp.match(value) else None
    else:
        tag = event.tag
    kind = _SCALAR_KINDS.get(tag or "")
    if kind is None:
        return None
    try:
        yaml.constructor.SafeConstructor.yaml_constructors[tag](yaml.constructor.SafeConstructor(),
                                                                 yaml.ScalarNode(tag, value))
    except yaml.YAMLError:
        return None  # the loader reports it, with its line
    except Exception as exc:  # whatever the constructor raises, the value is not a valid <kind>
        detail = f": {exc}" if isinstance(exc, ValueError) and kind == "date" else ""
        return f"not valid YAML: {show_value(value)} is not a valid {kind}{detail}"
    return None


def _from_yaml_error(exc: yaml.YAMLError, label: str) -> ScenarioError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem is None and isinstance(exc, yaml.reader.ReaderError):
        problem = f"unacceptable character {exc.character!r}: {exc.reason}"
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
    return ScenarioError(f"not valid YAML: {problem or _first_line(exc)}", file=label, path=where)


# --- overrides --------------------------------------------------------------------------------------

_OVERRIDE_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, object], *, file: str = "<overrides>"
                    ) -> dict[str, Any]:
    """A copy of ``data`` with each dotted path (``cluster.fleets.0.count`` or ``cluster.fleets[0].count``)
    set to its value; string values are read as YAML ("4" -> 4, "20/h" stays a string)."""
    result = _tree_copy(data)
    for key, raw in overrides.items():
        parts = _override_parts(key, file)
        value = _override_value(key, raw, file)
        target: Any = result
        for depth, part in enumerate(parts[:-1]):
            target = _step_into(target, part, parts[: depth + 1], key, file)
        _assign(target, parts[-1], value, parts, key, file)
    return result


def _override_parts(key: object, file: str) -> list[str]:
    if not isinstance(key, str) or not key.strip():
        raise ScenarioError(f"an override needs a dotted field path such as cluster.fleets.0.count, "
                            f"got {show_value(key)}", file=file)
    parts: list[str] = []
    position = 0
    text = key.strip()
    while position < len(text):
        match = _OVERRIDE_PART.match(text, position)
        if match is None:
            raise ScenarioError(f"cannot read the override path {key!r}", file=file, path=key)
        parts.append(match.group(1) if match.group(1) is not None else match.group(2))
        position = match.end()
        if position < len(text) and text[position] == ".":
            position += 1
            if position == len(text):
                raise ScenarioError(f"the override path {key!r} ends with a dot", file=file, path=key)
    return parts


def _override_value(key: str, raw: object, file: str) -> object:
    if not isinstance(raw, str) or not raw.strip():
        return raw
    try:
        return parse_yaml(raw, file)
    except ScenarioError as exc:
        problem = exc.message.removeprefix("not valid YAML: ")
        raise ScenarioError(f"the override value {show_value(raw)} is not valid YAML: {problem}",
                            file=file, path=key) from None


def _step_into(target: Any, part: str, so_far: list[str], key: str, file: str) -> Any:
    if isinstance(target, list):
        index = _list_index(target, part, so_far, key, file)
        return target[index]
    if isinstance(target, dict):
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        elif not isinstance(child, dict | list):
            raise ScenarioError(f"cannot set {key}: {_dotted(so_far)} is {_kind(child)}, "
                                "not a mapping or list", file=file, path=key)
        return child
    raise ScenarioError(f"cannot set {key}: {_dotted(so_far[:-1])} is {_kind(target)}", file=file, path=key)


def _assign(target: Any, part: str, value: object, parts: list[str], key: str, file: str) -> None:
    if isinstance(target, list):
        target[_list_index(target, part, parts, key, file)] = value
    elif isinstance(target, dict):
        target[part] = value
    else:
        raise ScenarioError(f"cannot set {key}: {_dotted(parts[:-1])} is {_kind(target)}",
                            file=file, path=key)


def _list_index(items: list[Any], part: str, so_far: list[str], key: str, file: str) -> int:
    where = _dotted(so_far[:-1])
    if not (part.isascii() and part.isdigit()):
        raise ScenarioError(f"cannot set {key}: {where} is a list, so the next part must be an index, "
                            f"not {part!r}", file=file, path=key)
    index = int(part)
    if index >= len(items):
        entries = "1 entry" if len(items) == 1 else f"{len(items)} entries"
        raise ScenarioError(f"cannot set {key}: {where} has {entries} (indices from 0)", file=file, path=key)
    return index


def _tree_copy(value: Any) -> Any:
    # Unlike deepcopy, this does not keep YAML aliases shared, so an override changes one place only.
    if isinstance(value, Mapping):
        return {k: _tree_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tree_copy(v) for v in value]
    return value


def _dotted(parts: Sequence[str]) -> str:
    return ".".join(parts) or "the top level"


# --- pydantic errors -> one line --------------------------------------------------------------------

def _from_validation_error(exc: ValidationError, label: str) -> ScenarioError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    path, fields = _describe_location(first["loc"])
    message = _error_message(first, fields)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ScenarioError(message, file=label, path=path or None)


def _describe_location(loc: tuple[int | str, ...]) -> tuple[str, tuple[str, ...]]:
    """The field path as users write it (union tags dropped) and the fields of the model holding the
    last part (for "did you mean" hints)."""
    text = ""
    current: Any = Scenario
    parent_fields: tuple[str, ...] = ()
    for part in loc:
        current = _unwrap(current)
        if _is_union(current) and isinstance(part, str) and part in _TAGGED:
            current = _TAGGED[part]
            continue
        if part == "[key]":  # pydantic's marker for "the key itself is wrong", after the key
            continue
        parent_fields = _fields_of(current)
        text += _path_part(part, first=not text)
        current = _child_type(current, part)
    return text, parent_fields


def _unwrap(tp: Any) -> Any:
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
        elif _is_union(tp):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _fields_of(tp: Any) -> tuple[str, ...]:
    return tuple(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else ()


def _child_type(tp: Any, part: int | str) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = tp.model_fields.get(part) if isinstance(part, str) else None
        return None if info is None else info.annotation
    origin = typing.get_origin(tp)
    if origin is list and isinstance(part, int):
        return typing.get_args(tp)[0]
    if origin is dict:
        return typing.get_args(tp)[1]
    return None


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _path_part(part: int | str, *, first: bool = False) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    if _IDENTIFIER.fullmatch(part):
        return part if first else f".{part}"
    escaped = part.replace("\\", "\\\\").replace('"', '\\"')
    return f'["{escaped}"]'


def _error_message(error: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = error["loc"][-1]
        close = difflib.get_close_matches(str(key), fields, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else (f"; expected one of {', '.join(fields)}"
                                                               if fields else "")
        return f"unknown key {show_value(key)}{hint}"
    if kind == "union_tag_invalid":
        expected = ctx.get("expected_tags", "")
        close = difflib.get_close_matches(str(ctx.get("tag")), re.findall(r"'([^']*)'", expected), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        tag = show_value(ctx.get("tag"))
        return f"unknown {ctx.get('discriminator', 'kind')} {tag}: expected one of {expected}{hint}"
    if kind == "union_tag_not_found":
        return f"needs a {ctx.get('discriminator', 'type')} key saying which kind it is"
    if kind in ("value_error", "assertion_error"):
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("model_type", "model_attributes_type"):
        return f"must be a mapping of fields, not {_kind(value)}"
    if kind == "dict_type":
        return f"must be a mapping, not {_kind(value)}"
    if kind == "list_type":
        return f"must be a list, not {_kind(value)}"
    if kind in ("too_short", "too_long") and isinstance(value, Sized) and not isinstance(value, str):
        limit = ctx.get("min_length" if kind == "too_short" else "max_length")
        entries = "entry" if limit == 1 else "entries"
        bound = "needs at least" if kind == "too_short" else "may have at most"
        return f"{bound} {limit} {entries}, got {len(value)}"
    message = str(error["msg"]).replace("Input should be", "must be").replace("Value should", "must")
    if isinstance(value, Mapping | list):
        return f"{message}, not {_kind(value)}"
    if "got " in message:  # pydantic already says what it got, in words
        return f"{message} ({show_value(value)})"
    return f"{message}, got {show_value(value)}"


# --- cross-checks -----------------------------------------------------------------------------------

def _scenario_catalog(model: Scenario, context: _Context) -> Catalog:
    catalog = default_catalog()
    if model.catalog is not None:
        file = context.base / model.catalog
        if not _is_file(file):
            raise context.error("catalog", f"catalog file not found: {_path_text(file)}")
        try:
            catalog = load_catalog(file)
        except CatalogError as exc:
            raise context.error("catalog", str(exc)) from None
    if not model.catalog_additions:
        return catalog
    known = dict(catalog.items())
    added = []
    first_seen: dict[str, str] = {}
    for index, record in enumerate(model.catalog_additions):
        where = f"catalog_additions[{index}]"
        try:
            itype = _build_instance_type(dict(record), known, context.file, where,
                                         user_file=Path(context.file).name)
        except CatalogError as exc:
            raise context.error(where, exc.message) from None
        if itype.name in first_seen:
            raise context.error(where, f"instance type {itype.name!r} is also added at "
                                f"{first_seen[itype.name]}")
        first_seen[itype.name] = where
        known[itype.name] = itype
        added.append(itype)
    return catalog.with_types(added)


def _known_type(catalog: Catalog, name: str, launch_type: str, path: str, context: _Context) -> None:
    try:
        itype = catalog.get(name)
    except CatalogError as exc:
        raise context.error(path, exc.message) from None
    if launch_type not in itype.launch_types:
        allowed = " and ".join(sorted(itype.launch_types))
        raise context.error(path, f"{itype.name} does not support {launch_type} (it runs on {allowed} only)")


def _provider_kind(provider: AutoScalingCapacityProvider | ManagedInstancesCapacityProvider) -> str:
    return LAUNCH_EC2 if provider.type == "EC2_AUTOSCALING" else LAUNCH_MANAGED


def _check_cluster(cluster: ClusterModel, catalog: Catalog, context: _Context) -> None:
    if not cluster.fleets and not cluster.capacity_providers:
        raise context.error("cluster", "needs at least one fleet or capacity provider")
    providers: dict[str, AutoScalingCapacityProvider | ManagedInstancesCapacityProvider] = {}
    for i, provider in enumerate(cluster.capacity_providers):
        where = f"cluster.capacity_providers[{i}]"
        if provider.name in providers:
            raise context.error(f"{where}.name", f"capacity provider name {provider.name!r} is used twice")
        providers[provider.name] = provider
        if isinstance(provider, AutoScalingCapacityProvider):
            for j, name in enumerate(provider.instance_types):
                _known_type(catalog, name, LAUNCH_EC2, f"{where}.instance_types[{j}]", context)
        else:
            _check_allowed_types(provider, catalog, f"{where}.instance_requirements.allowedInstanceTypes",
                                 context)
    initial = 0
    for i, fleet in enumerate(cluster.fleets):
        where = f"cluster.fleets[{i}]"
        _known_type(catalog, fleet.instance_type, fleet.launch_type, f"{where}.instance_type", context)
        initial += fleet.count
        if fleet.capacity_provider is None:
            continue
        provider = _provider(providers, fleet.capacity_provider, f"{where}.capacity_provider", context)
        if _provider_kind(provider) != fleet.launch_type:
            raise context.error(f"{where}.capacity_provider", f"{provider.name} is a {provider.type} "
                                f"provider; "
                                f"its instances use launch type {_provider_kind(provider)}, not "
                                f"{fleet.launch_type}")
        if isinstance(provider, AutoScalingCapacityProvider):
            names = {catalog.get(n).name for n in provider.instance_types}
            if catalog.get(fleet.instance_type).name not in names:
                raise context.error(f"{where}.instance_type", f"{fleet.instance_type} is not one of the "
                                    f"instance types of capacity provider {provider.name} "
                                    f"({', '.join(sorted(names))})")
    initial += sum(p.desired_capacity or 0 for p in providers.values()
                   if isinstance(p, AutoScalingCapacityProvider))
    if initial > MAX_INSTANCES:
        raise context.error("cluster.fleets", f"{initial:,} instances at the start; the simulator's limit is "
                            f"{MAX_INSTANCES:,}")
    _check_strategy(cluster.default_capacity_provider_strategy, providers,
                    "cluster.default_capacity_provider_strategy", context)


def _check_faults(faults: Faults, catalog: Catalog, context: _Context) -> None:
    for kind in ("instance_failures", "chip_failures", "agent_disconnects", "instance_retirements"):
        for i, fault in enumerate(getattr(faults, kind)):
            if fault.instance_type is None:
                continue
            where = f"faults.{kind}[{i}].instance_type"
            try:
                itype = catalog.get(fault.instance_type)
            except CatalogError as exc:
                raise context.error(where, exc.message) from None
            if kind == "chip_failures" and not itype.chips:
                raise context.error(where, f"{itype.name} has no Neuron chips to fail")


def _check_allowed_types(provider: ManagedInstancesCapacityProvider, catalog: Catalog, path: str,
                         context: _Context) -> None:
    patterns = (provider.instance_requirements or {}).get("allowedInstanceTypes")
    if not patterns:
        return
    if not any(LAUNCH_MANAGED in itype.launch_types for p in patterns for itype in catalog.match(p)):
        raise context.error(path, f"no instance type in the catalog that supports Managed Instances matches "
                            f"{', '.join(patterns)}")


def _provider(providers: Mapping[str, Any], name: str, path: str, context: _Context) -> Any:
    if name in providers:
        return providers[name]
    close = difflib.get_close_matches(name, list(providers), n=1)
    hint = (f"; did you mean {close[0]!r}?" if close else
            f"; the cluster has {', '.join(providers)}" if providers else "; the cluster has none")
    raise context.error(path, f"unknown capacity provider {name!r}{hint}")


def _check_strategy(items: Sequence[CapacityProviderStrategyItem], providers: Mapping[str, Any], path: str,
                    context: _Context) -> None:
    kinds: dict[str, str] = {}
    for j, item in enumerate(items):
        provider = _provider(providers, item.capacity_provider, f"{path}[{j}].capacity_provider", context)
        kinds.setdefault(provider.type, provider.name)
    if len(kinds) > 1:
        raise context.error(path, "a strategy may use one kind of capacity provider only, not both "
                            f"{' and '.join(f'{kind} ({name})' for kind, name in kinds.items())}")


def _check_workload_references(model: Scenario, context: _Context) -> None:
    providers = {p.name: p for p in model.cluster.capacity_providers}
    names: dict[str, int] = {}
    for i, workload in enumerate(model.workloads):
        where = f"workloads[{i}]"
        if workload.name in names:
            raise context.error(f"{where}.name", f"workload name {workload.name!r} is already used by "
                                f"workloads[{names[workload.name]}]")
        names[workload.name] = i
        _known_task_definition(model, workload.task_definition, f"{where}.task_definition", context)
        _check_strategy(workload.capacity_provider_strategy, providers, f"{where}.capacity_provider_strategy",
                        context)


def _known_task_definition(model: Scenario, name: str, path: str, context: _Context) -> None:
    if name in model.task_definitions:
        return
    close = difflib.get_close_matches(name, list(model.task_definitions), n=1)
    hint = (f"; did you mean {close[0]!r}?" if close
            else f"; task_definitions has {', '.join(model.task_definitions)}")
    raise context.error(path, f"unknown task definition {name!r}{hint}")


def _load_task_definitions(model: Scenario, context: _Context) -> dict[str, TaskSpec]:
    specs: dict[str, TaskSpec] = {}
    for name, source in model.task_definitions.items():
        where = "task_definitions" + _path_part(name)
        if isinstance(source, str):
            file = context.base / source
            if not _is_file(file):
                raise context.error(where, f"task-definition file not found: {_path_text(file)}")
            described = str(file)
        else:
            described, file = "the inline task definition", None
        try:
            specs[name] = load_task_definition(file if file is not None else source)
        except TaskDefinitionError as exc:
            issue = exc.issues[0]
            more = f" (and {len(exc.issues) - 1} more)" if len(exc.issues) > 1 else ""
            raise context.error(where, f"task definition {name!r} is invalid: {described}: {issue.path}: "
                                f"{issue.message}{more}") from None
    return specs


def _check_workloads_against_specs(model: Scenario, specs: Mapping[str, TaskSpec], context: _Context) -> None:
    providers = {p.name: p for p in model.cluster.capacity_providers}
    for i, workload in enumerate(model.workloads):
        where = f"workloads[{i}]"
        spec = specs[workload.task_definition]
        total = len(spec.constraints) + len(workload.placement_constraints)
        if total > MAX_CONSTRAINTS:
            raise context.error(f"{where}.placement_constraints", f"a task may have at most "
                                f"{MAX_CONSTRAINTS} "
                                f"placement constraints, task definition and request together; here "
                                f"{len(spec.constraints)} + {len(workload.placement_constraints)}")
        launch = resolve_launch(workload, model.cluster)
        if launch.launch_type is not None:
            needed = {launch.launch_type}
            if workload.launch_type is not None:
                field_name, how = "launch_type", f"launch type {launch.launch_type}"
            else:
                field_name = "task_definition"
                how = ("launch type EC2, which ECS uses when no launch_type, capacity_provider_strategy "
                       "or cluster default is given")
        else:
            needed = {_provider_kind(providers[item.capacity_provider]) for item in launch.strategy}
            names = ", ".join(item.capacity_provider for item in launch.strategy)
            if workload.capacity_provider_strategy:
                field_name, how = "capacity_provider_strategy", f"capacity provider {names}"
            else:
                field_name, how = "task_definition", f"the cluster's default capacity provider {names}"
        missing = needed - spec.compatibilities
        if missing:
            raise context.error(f"{where}.{field_name}", f"task definition {workload.task_definition!r} "
                                f"does not "
                                f"support {', '.join(sorted(missing))} (its requiresCompatibilities: "
                                f"{', '.join(sorted(spec.compatibilities))}), needed by {how}")


# --- traces -----------------------------------------------------------------------------------------

def _load_traces(model: Scenario, context: _Context) -> dict[str, pd.DataFrame]:
    traces = {}
    for i, workload in enumerate(model.workloads):
        if isinstance(workload, RunTaskWorkload) and isinstance(workload.arrivals, TraceArrivals):
            traces[workload.name] = _load_trace(workload, f"workloads[{i}].arrivals", model, context)
    return traces


def _load_trace(workload: RunTaskWorkload, where: str, model: Scenario, context: _Context) -> pd.DataFrame:
    arrivals = workload.arrivals
    assert isinstance(arrivals, TraceArrivals)
    file = context.base / arrivals.file
    if not _is_file(file):
        raise context.error(f"{where}.file", f"trace file not found: {_path_text(file)}")
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8")
    except UnicodeDecodeError:
        raise context.error(f"{where}.file", f"{file}: not UTF-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise context.error(f"{where}.file", f"{file}: cannot read the CSV: {_first_line(exc)}") from None
    frame.columns = [str(c).strip() for c in frame.columns]

    def column(name: str, option: str) -> pd.Series:
        if name not in frame.columns:
            raise context.error(f"{where}.{option}", f"{file} has no column {name!r} (columns: "
                                f"{', '.join(frame.columns)})")
        return frame[name]

    submit = _seconds(column(arrivals.time_column, "time_column"), file, arrivals.time_column, where, context)
    if workload.duration is None:
        durations = _seconds(column(arrivals.duration_column, "duration_column"), file,
                             arrivals.duration_column, where, context)
    else:
        durations = np.full(len(frame), np.nan)
    if len(frame) == 0:
        raise context.error(f"{where}.file", f"{file} has no rows")
    if arrivals.task_definition_column in frame.columns:
        names = frame[arrivals.task_definition_column].str.strip()
        names = names.mask(names == "", workload.task_definition)
        unknown = ~names.isin(list(model.task_definitions))
        if unknown.any():
            row = int(np.argmax(unknown.to_numpy()))
            raise context.error(f"{where}.file", f"{file}: line {row + 2}: column "
                                f"{arrivals.task_definition_column!r}: unknown task definition "
                                f"{show_value(names.iloc[row])}; task_definitions has "
                                f"{', '.join(model.task_definitions)}")
        task_definitions = names.to_numpy(dtype=object)
    else:
        task_definitions = np.full(len(frame), workload.task_definition, dtype=object)
    table = pd.DataFrame({"submit": submit, "duration": durations, "task_definition": task_definitions})
    return table.sort_values("submit", kind="stable").reset_index(drop=True)


def _seconds(cells: pd.Series, file: Path, name: str, where: str, context: _Context) -> np.ndarray:
    """Seconds from a column of numbers or durations ("90s"); refuses blanks and negatives."""
    numbers = np.array(pd.to_numeric(cells, errors="coerce"), dtype=float)
    for row in np.flatnonzero(~np.isfinite(numbers) | (numbers < 0)):
        text = str(cells.iloc[row]).strip()
        try:
            if not text:
                raise ValueError("is empty")
            numbers[row] = parse_duration(text)
        except ValueError as exc:
            raise context.error(f"{where}.file", f"{file}: line {row + 2}: column {name!r}: {exc}") from None
    return numbers


# --- the JSON Schema --------------------------------------------------------------------------------

def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, for editors and ``neuron-sim schema``."""
    schema = Scenario.model_json_schema(mode="validation")
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "neuron-sim scenario",
        "description": "A neuron-sim scenario: cluster, task definitions and workloads. "
                       f"Durations: {DURATION_EXAMPLE.removeprefix('expected ')}.",
        **schema,
    }


# --- small words ------------------------------------------------------------------------------------

def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return f"the text {show_value(value)}"
    if isinstance(value, int | float):
        return f"the number {show_value(value)}"
    return f"a {type(value).__name__}"


def _is_file(path: Path) -> bool:
    """Path.is_file, but False (not OSError) for a name too long for the file system."""
    try:
        return path.is_file()
    except OSError:
        return False


def _path_text(path: Path) -> str:
    text = str(path)
    return text if text.isprintable() else repr(text)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
