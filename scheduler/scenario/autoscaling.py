"""A service's ``auto_scaling:`` block: ECS Service Auto Scaling (Application Auto Scaling on the service's
desired count) with target-tracking and step-scaling policies, validated as Application Auto Scaling
validates RegisterScalableTarget and PutScalingPolicy, and compiled to the plain frozen dataclasses of
:mod:`scheduler.sim.autoscaling` by :meth:`AutoScaling.to_config`."""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from scheduler.scenario.fields import Duration, EcsName, Int, Number, _Model
from scheduler.scenario.limits import MAX_INSTANCES
from scheduler.sim.autoscaling import (
    CLOUDWATCH_METRICS,
    DEFAULT_COOLDOWN_S,
    AutoScalingConfig,
    MetricAlarm,
    StepAdjustment,
    StepScalingPolicy,
    TargetTrackingPolicy,
)

_UTILIZATION = ("ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization")
MAX_STEPS = 20  # step adjustments per policy
MAX_POLICIES = 50  # scaling policies per scalable target (Application Auto Scaling's quota)
MAX_EVALUATION_PERIODS = 1440  # one day of one-minute periods, as CloudWatch allows for alarms of 1 minute
Cooldown = Annotated[Duration, Field(ge=0, le=365 * 86400)]
Finite = Annotated[Number, Field(allow_inf_nan=False)]


class TargetTracking(_Model):
    """A target-tracking policy on a predefined metric."""

    metric: Literal["ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization",
                    "ALBRequestCountPerTarget"]
    target: Annotated[Number, Field(gt=0, allow_inf_nan=False)]
    scale_out_cooldown: Cooldown = DEFAULT_COOLDOWN_S
    scale_in_cooldown: Cooldown = DEFAULT_COOLDOWN_S
    disable_scale_in: bool = False
    name: EcsName | None = None

    @field_validator("target")
    @classmethod
    def _percent_at_most_100(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("metric") in _UTILIZATION and value > 100:
            raise ValueError(f"a utilization target is a percentage, at most 100; got {value:g}")
        return value


class Alarm(_Model):
    """The CloudWatch alarm that runs a step-scaling policy, on one of the service's one-minute metrics."""

    metric: Literal[CLOUDWATCH_METRICS]  # type: ignore[valid-type]
    comparison: Literal["GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold",
                        "LessThanOrEqualToThreshold"]
    threshold: Finite
    evaluation_periods: Int = Field(1, ge=1, le=MAX_EVALUATION_PERIODS)
    datapoints_to_alarm: Int | None = Field(None, ge=1)

    @field_validator("datapoints_to_alarm")
    @classmethod
    def _at_most_periods(cls, value: int | None, info: ValidationInfo) -> int | None:
        periods = info.data.get("evaluation_periods")
        if value is not None and periods is not None and value > periods:
            raise ValueError(f"must not exceed evaluation_periods ({periods}), got {value}")
        return value


class Step(_Model):
    """A step adjustment: bounds relative to the alarm threshold (null = infinite) and the adjustment."""

    lower_bound: Finite | None = None
    upper_bound: Finite | None = None
    adjustment: Int

    @model_validator(mode="after")
    def _bounds(self) -> Step:
        if self.lower_bound is None and self.upper_bound is None:
            raise ValueError("give lower_bound, upper_bound or both (not both null in one step)")
        if self.lower_bound is not None and self.upper_bound is not None and self.lower_bound >= self.upper_bound:
            raise ValueError(f"lower_bound ({self.lower_bound:g}) must be below upper_bound ({self.upper_bound:g})")
        return self


class StepScaling(_Model):
    """A step-scaling policy and its alarm."""

    name: EcsName | None = None
    alarm: Alarm
    adjustment_type: Literal["ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity"]
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
    min_adjustment_magnitude: Int | None = Field(None, ge=1)
    cooldown: Cooldown = DEFAULT_COOLDOWN_S
    metric_aggregation: Literal["Average", "Minimum", "Maximum"] = "Average"

    @field_validator("steps")
    @classmethod
    def _steps_tile(cls, steps: list[Step], info: ValidationInfo) -> list[Step]:
        ordered = sorted(steps, key=lambda s: -math.inf if s.lower_bound is None else s.lower_bound)
        if sum(s.lower_bound is None for s in steps) > 1:
            raise ValueError("only one step may have a null lower_bound (negative infinity)")
        if sum(s.upper_bound is None for s in steps) > 1:
            raise ValueError("only one step may have a null upper_bound (positive infinity)")
        for before, after in itertools.pairwise(ordered):
            if before.upper_bound is None or after.lower_bound is None or before.upper_bound != after.lower_bound:
                raise ValueError(f"steps must not overlap or leave a gap: one ends at {_bound(before.upper_bound)}, "
                                 f"the next starts at {_bound(after.lower_bound)}")
        if any(s.lower_bound is not None and s.lower_bound < 0 for s in steps) and ordered[0].lower_bound is not None:
            raise ValueError("a step has a negative lower_bound, so one step needs a null lower_bound")
        if any(s.upper_bound is not None and s.upper_bound > 0 for s in steps) and ordered[-1].upper_bound is not None:
            raise ValueError("a step has a positive upper_bound, so one step needs a null upper_bound")
        adjustment_type = info.data.get("adjustment_type")
        if adjustment_type == "ExactCapacity" and any(s.adjustment < 0 for s in steps):
            raise ValueError("an ExactCapacity adjustment is a capacity, at least 0")
        return steps

    @field_validator("min_adjustment_magnitude")
    @classmethod
    def _percent_only(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("adjustment_type") not in (None, "PercentChangeInCapacity"):
            raise ValueError("applies only with adjustment_type PercentChangeInCapacity")
        return value


TargetTrackingPolicies = Annotated[list[TargetTracking], Field(max_length=MAX_POLICIES)]
StepScalingPolicies = Annotated[list[StepScaling], Field(max_length=MAX_POLICIES)]


class AutoScaling(_Model):
    """ECS Service Auto Scaling: the scalable target (the desired count within [min_capacity,
    max_capacity]) and its scaling policies."""

    min_capacity: Int = Field(ge=0, le=MAX_INSTANCES)
    max_capacity: Int = Field(ge=0, le=MAX_INSTANCES)
    target_tracking: TargetTrackingPolicies = Field(default_factory=list)
    step_scaling: StepScalingPolicies = Field(default_factory=list)

    @field_validator("max_capacity")
    @classmethod
    def _max_at_least_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_capacity")
        if low is not None and value < low:
            raise ValueError(f"must be at least min_capacity ({low}), got {value}")
        return value

    @field_validator("target_tracking")
    @classmethod
    def _one_policy_per_metric(cls, policies: list[TargetTracking]) -> list[TargetTracking]:
        seen: set[str] = set()
        for policy in policies:
            if policy.metric in seen:
                raise ValueError(f"each target-tracking policy needs its own metric; {policy.metric} is used twice")
            seen.add(policy.metric)
        return policies

    @model_validator(mode="after")
    def _unique_names(self) -> AutoScaling:
        names = self.policy_names()
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"policy name {name!r} is used twice")
        return self

    def policy_names(self) -> list[str]:
        """Each policy's name: its own, else its metric (target tracking) or ``step-<i>``."""
        return ([p.name or p.metric for p in self.target_tracking]
                + [p.name or f"step-{i}" for i, p in enumerate(self.step_scaling)])

    def to_config(self) -> AutoScalingConfig:
        """The plain dataclasses :class:`scheduler.sim.autoscaling.ServiceScaler` takes."""
        names = self.policy_names()
        tracking = tuple(
            TargetTrackingPolicy(name=name, metric=p.metric, target_value=p.target,
                                 scale_out_cooldown=p.scale_out_cooldown, scale_in_cooldown=p.scale_in_cooldown,
                                 disable_scale_in=p.disable_scale_in)
            for name, p in zip(names, self.target_tracking, strict=False))
        steps = tuple(
            StepScalingPolicy(
                name=name,
                alarm=MetricAlarm(p.alarm.metric, p.alarm.comparison, p.alarm.threshold, p.alarm.evaluation_periods,
                                  p.alarm.datapoints_to_alarm),
                adjustment_type=p.adjustment_type,
                steps=tuple(StepAdjustment(s.lower_bound, s.upper_bound, s.adjustment) for s in p.steps),
                min_adjustment_magnitude=p.min_adjustment_magnitude, cooldown=p.cooldown,
                metric_aggregation=p.metric_aggregation)
            for name, p in zip(names[len(self.target_tracking):], self.step_scaling, strict=False))
        return AutoScalingConfig(self.min_capacity, self.max_capacity, tracking, steps)


def _bound(value: float | None) -> str:
    return "infinity" if value is None else f"{value:g}"


def _fits_the_service(value: AutoScaling | None, info: ValidationInfo) -> AutoScaling | None:
    """Auto scaling drives a REPLICA service's desired count; a DAEMON service has none, and a ``schedule``
    would fight it over the same count."""
    if value is None:
        return value
    if info.data.get("scheduling_strategy") == "DAEMON":
        raise ValueError("a DAEMON service runs one task per instance and takes no auto_scaling")
    if info.data.get("schedule") is not None:
        raise ValueError("give schedule or auto_scaling, not both (both set the desired count)")
    if info.data.get("device_sets") is not None:
        raise ValueError("auto_scaling is not modelled for a service split into device sets; give one or the other")
    return value


ServiceAutoScaling = Annotated[AutoScaling | None, AfterValidator(_fits_the_service)]
