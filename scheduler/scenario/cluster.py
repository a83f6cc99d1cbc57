"""The cluster a scenario runs on: static fleets, Auto Scaling group and Managed Instances capacity
providers (with ECS's ranges and defaults), and the cluster's default capacity provider strategy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from scheduler.catalog import NEURON_ACCELERATORS
from scheduler.ecs import botocore_model
from scheduler.scenario.fields import (
    AttributeName,
    AttributeValue,
    AvailabilityZones,
    Duration,
    EcsName,
    Int,
    Number,
    ProviderName,
    ScaleInAfter,
    _Model,
    _unique,
)
from scheduler.scenario.limits import DEFAULT_AVAILABILITY_ZONES, MAX_INSTANCES, LaunchType
from scheduler.scenario.placement import CapacityProviderStrategy


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
    awsvpc_trunking: bool = Field(False, description="The awsvpcTrunking account setting: more awsvpc tasks per "
                                  "instance on types with a published trunk limit (docs/modelling.md)")


def fleet_label(cluster: ClusterModel) -> str:
    """The cluster's capacity in a planner's words: ``inf2.24xlarge x12, trn1.32xlarge x4`` (fixed fleets,
    counts summed per instance type and Spot apart), then each capacity provider with its size bounds
    (``asg: inf2.xlarge 0-10``). Sweep and plan figures label grid points with it."""
    counts: dict[str, int] = {}
    for fleet in cluster.fleets:
        name = fleet.instance_type + (" Spot" if fleet.spot else "")
        counts[name] = counts.get(name, 0) + fleet.count
    parts = [f"{name} x{n}" for name, n in counts.items()]
    for cp in cluster.capacity_providers:
        if isinstance(cp, AutoScalingCapacityProvider):
            parts.append(f"{cp.name}: {'/'.join(cp.instance_types)} {cp.min_size}-{cp.max_size}")
        else:
            parts.append(f"{cp.name}: Managed Instances" + (f" up to {cp.max_instances}" if cp.max_instances else ""))
    return ", ".join(parts) or "no instances"
