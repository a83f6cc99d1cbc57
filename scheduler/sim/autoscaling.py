"""ECS Service Auto Scaling for one service, as Application Auto Scaling and CloudWatch do it.

A scalable target (the service's desired count, kept within ``[min_capacity, max_capacity]``) with
target-tracking and step-scaling policies. Engine-free: no simpy, no clock of its own, no randomness
(every rule below is deterministic, so the scaler takes no generator).

How the engine uses it
----------------------
Build one :class:`ServiceScaler` per service from its :class:`AutoScalingConfig` and call
``observe(t_seconds, metrics, running, desired)`` once per metric period (:data:`METRIC_PERIOD_S`, 60 s:
ECS and ALB publish their CloudWatch metrics per minute), at the end of the period the metrics cover:

- ``metrics`` maps CloudWatch metric names (:data:`CPU`, :data:`MEMORY`, :data:`REQUESTS_PER_TARGET`,
  :data:`REQUEST_COUNT`, :data:`RESPONSE_TIME`) to that period's value, computed from the simulated load:
  ``CPUUtilization`` = 100 x (CPU units the service's RUNNING tasks used) / (CPU units they reserve), i.e.
  the average over RUNNING tasks of busy fraction x the task's CPU share, in percent; likewise
  ``MemoryUtilization``; ``RequestCountPerTarget`` = requests routed to the service in the period divided
  by its RUNNING (healthy) tasks; ``RequestCount`` the period's requests; ``TargetResponseTime`` the
  average response time in seconds. A missing name or a NaN is a missing datapoint.
- ``running`` is the number of RUNNING tasks. ECS publishes no service CPU or memory datapoint for a
  period without RUNNING tasks, so with ``running == 0`` those two are read as missing whatever is passed.
- ``desired`` is the service's current desired count: the scalable target's current capacity.

It returns the new desired count when a scaling activity happens (the engine sets the service's
desired count to it, as Application Auto Scaling calls UpdateService), else ``None``. Every activity is
appended to :attr:`ServiceScaler.decisions` as a :class:`ScalingDecision` (time, policy, metric, value,
old -> new, reason) for the engine to turn into events and scaling rows. Calls must come in time order;
a call more than one period after the previous one counts the periods between as missing datapoints.

The rules (sources in docs/modelling.md, "Service Auto Scaling")
------------------------------------------------------------------
- Target tracking creates two alarms per policy: high, metric > target for 3 of 3 one-minute datapoints
  (scale out); low, metric < 90% of target for 15 of 15 (scale in; not created with
  ``disable_scale_in``). The new capacity is proportional, ``ceil(capacity x metric / target)`` on the
  latest datapoint, rounded up both ways: enough added, never too much removed. No datapoints, no
  scaling (INSUFFICIENT_DATA never scales in).
- Step scaling: a CloudWatch metric alarm (threshold, comparison, ``datapoints_to_alarm`` of
  ``evaluation_periods``). While it is in ALARM the policy runs every period (Auto Scaling actions repeat
  while the alarm stays in ALARM). The alarm's datapoints in its evaluation window are aggregated
  (Average, Minimum or Maximum); the step whose bounds (relative to the threshold) hold ``aggregate -
  threshold`` gives the adjustment. Above the threshold a lower bound is inclusive and an upper
  exclusive; below it, the other way round. ``PercentChangeInCapacity`` rounds toward zero, except that
  values between -1 and 1 become -1 or 1, and is raised to ``min_adjustment_magnitude``.
- Cooldowns, per policy. After a scale-out, the policy scales out again within its scale-out cooldown
  only to a larger capacity than the current one, computed from the capacity before the scale-out that
  started the cooldown (what was added counts as already there). After a scale-in, the policy's
  scale-ins wait for its scale-in cooldown; a scale-out by any policy ends every scale-in cooldown.
- Several policies: scale out if any policy says so; scale in through target tracking only if every
  target-tracking policy with scale-in enabled says so; a step policy's scale-in is not blocked by target
  tracking. Among the proposals, the largest capacity wins. The result is clamped to
  ``[min_capacity, max_capacity]`` (a current capacity outside the range is brought into it).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

METRIC_PERIOD_S = 60.0  # ECS service and ALB metrics reach CloudWatch once a minute

CPU = "CPUUtilization"
MEMORY = "MemoryUtilization"
REQUESTS_PER_TARGET = "RequestCountPerTarget"
REQUEST_COUNT = "RequestCount"
RESPONSE_TIME = "TargetResponseTime"
CLOUDWATCH_METRICS = (CPU, MEMORY, REQUESTS_PER_TARGET, REQUEST_COUNT, RESPONSE_TIME)
ECS_SERVICE_METRICS = frozenset({CPU, MEMORY})  # not published for a period without RUNNING tasks

# Application Auto Scaling's predefined metric types for an ECS service, and the CloudWatch metric each reads.
PREDEFINED_METRICS: dict[str, str] = {
    "ECSServiceAverageCPUUtilization": CPU,
    "ECSServiceAverageMemoryUtilization": MEMORY,
    "ALBRequestCountPerTarget": REQUESTS_PER_TARGET,
}
PredefinedMetric = Literal["ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization",
                           "ALBRequestCountPerTarget"]
Comparison = Literal["GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold",
                     "LessThanOrEqualToThreshold"]
AdjustmentType = Literal["ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity"]
Aggregation = Literal["Average", "Minimum", "Maximum"]

HIGH_ALARM_DATAPOINTS = 3   # target tracking's AlarmHigh: 3 datapoints within 3 minutes
LOW_ALARM_DATAPOINTS = 15   # AlarmLow: 15 datapoints within 15 minutes
LOW_ALARM_FRACTION = 0.9    # AlarmLow's threshold: 90% of the target value
DEFAULT_COOLDOWN_S = 300.0  # ECS services: scale-in, scale-out and step-scaling cooldowns


# --- configuration (compiled from the scenario's auto_scaling block) ---------------------------------------

@dataclass(frozen=True)
class TargetTrackingPolicy:
    """Keep ``metric`` at ``target_value``: Application Auto Scaling's TargetTrackingScalingPolicyConfiguration
    with a predefined metric."""

    name: str
    metric: PredefinedMetric
    target_value: float
    scale_out_cooldown: float = DEFAULT_COOLDOWN_S
    scale_in_cooldown: float = DEFAULT_COOLDOWN_S
    disable_scale_in: bool = False

    @property
    def cloudwatch_metric(self) -> str:
        return PREDEFINED_METRICS[self.metric]


@dataclass(frozen=True)
class MetricAlarm:
    """A CloudWatch metric alarm on one of the service's one-minute metrics: ALARM when at least
    ``datapoints_to_alarm`` of the last ``evaluation_periods`` datapoints breach the threshold."""

    metric: str
    comparison: Comparison
    threshold: float
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None  # None: all of evaluation_periods

    @property
    def needed(self) -> int:
        return self.evaluation_periods if self.datapoints_to_alarm is None else self.datapoints_to_alarm

    def breaches(self, value: float) -> bool:
        return _compare(value, self.comparison, self.threshold)


@dataclass(frozen=True)
class StepAdjustment:
    """One step: bounds relative to the alarm threshold (None = infinite) and the scaling adjustment."""

    lower_bound: float | None
    upper_bound: float | None
    scaling_adjustment: int


@dataclass(frozen=True)
class StepScalingPolicy:
    """Scale by steps while ``alarm`` is in ALARM: StepScalingPolicyConfiguration plus its alarm."""

    name: str
    alarm: MetricAlarm
    adjustment_type: AdjustmentType
    steps: tuple[StepAdjustment, ...]
    min_adjustment_magnitude: int | None = None
    cooldown: float = DEFAULT_COOLDOWN_S
    metric_aggregation: Aggregation = "Average"


@dataclass(frozen=True)
class AutoScalingConfig:
    """A scalable target (a service's desired count within [min, max]) and its scaling policies."""

    min_capacity: int
    max_capacity: int
    target_tracking: tuple[TargetTrackingPolicy, ...] = ()
    step_scaling: tuple[StepScalingPolicy, ...] = ()
    period: float = METRIC_PERIOD_S

    def __post_init__(self) -> None:
        if not 0 <= self.min_capacity <= self.max_capacity:
            raise ValueError(f"need 0 <= min_capacity <= max_capacity, got {self.min_capacity}, {self.max_capacity}")
        names = [p.name for p in (*self.target_tracking, *self.step_scaling)]
        if len(set(names)) != len(names):
            raise ValueError(f"policy names must be unique, got {names}")

    def metrics(self) -> tuple[str, ...]:
        """The CloudWatch metrics the policies read."""
        seen = [p.cloudwatch_metric for p in self.target_tracking] + [p.alarm.metric for p in self.step_scaling]
        return tuple(dict.fromkeys(seen))


@dataclass(frozen=True)
class ScalingDecision:
    """One scaling activity: at ``time`` the desired count went from ``old`` to ``new`` because ``policy``
    saw ``metric`` at ``value``. A desired count found outside [min, max] and brought into it is logged with
    policy ``scalable-target``, no metric and a NaN value."""

    time: float
    policy: str
    metric: str
    value: float
    old: int
    new: int
    reason: str


# --- the rules as plain functions ---------------------------------------------------------------------------

def _compare(value: float, comparison: str, threshold: float) -> bool:
    if comparison == "GreaterThanThreshold":
        return value > threshold
    if comparison == "GreaterThanOrEqualToThreshold":
        return value >= threshold
    if comparison == "LessThanThreshold":
        return value < threshold
    if comparison == "LessThanOrEqualToThreshold":
        return value <= threshold
    raise ValueError(f"unknown comparison {comparison!r}")


def proportional_capacity(capacity: int, metric: float, target: float) -> int:
    """Target tracking's new capacity: ``ceil(capacity x metric / target)``. Rounding up adds enough on the
    way out and never removes too much on the way in. From zero tasks the metric is read as the load one
    task would take, so a service at 0 can scale out on a metric that is published without tasks."""
    return math.ceil(max(capacity, 1 if metric > target else 0) * metric / target - 1e-9)


def alarm_in_alarm(window: list[float | None], alarm: MetricAlarm) -> bool:
    """CloudWatch's M-of-N rule over the last ``evaluation_periods`` datapoints (None = missing, which
    neither breaches nor counts as OK)."""
    recent = window[-alarm.evaluation_periods:]
    return sum(1 for v in recent if v is not None and alarm.breaches(v)) >= alarm.needed


def aggregate(values: list[float], how: str) -> float:
    if how == "Average":
        return sum(values) / len(values)
    if how == "Minimum":
        return min(values)
    if how == "Maximum":
        return max(values)
    raise ValueError(f"unknown aggregation {how!r}")


def select_step(steps: tuple[StepAdjustment, ...], difference: float) -> StepAdjustment | None:
    """The step whose interval holds ``difference`` (metric minus threshold). At or above the threshold
    the lower bound is inclusive and the upper exclusive; below it, the lower exclusive and the upper
    inclusive."""
    above = difference >= 0
    for step in steps:
        lo = -math.inf if step.lower_bound is None else step.lower_bound
        hi = math.inf if step.upper_bound is None else step.upper_bound
        if (lo <= difference < hi) if above else (lo < difference <= hi):
            return step
    return None


def percent_change(capacity: int, percent: float) -> int:
    """PercentChangeInCapacity's adjustment: values above 1 round down, below -1 round up, and values
    between 0 and 1 (or -1 and 0) become 1 (or -1)."""
    raw = capacity * percent / 100.0
    if raw == 0:
        return 0
    if 0 < raw < 1:
        return 1
    if -1 < raw < 0:
        return -1
    return math.floor(raw) if raw > 0 else math.ceil(raw)


def step_capacity(policy: StepScalingPolicy, capacity: int, step: StepAdjustment) -> int:
    """The capacity a step asks for, from ``capacity``."""
    if policy.adjustment_type == "ExactCapacity":
        return step.scaling_adjustment
    if policy.adjustment_type == "ChangeInCapacity":
        return capacity + step.scaling_adjustment
    change = percent_change(capacity, step.scaling_adjustment)
    magnitude = policy.min_adjustment_magnitude
    if magnitude is not None and change != 0 and abs(change) < magnitude:
        change = magnitude if change > 0 else -magnitude
    return capacity + change


def clamp(capacity: int, config: AutoScalingConfig) -> int:
    return min(max(capacity, config.min_capacity), config.max_capacity)


# --- the scaler ------------------------------------------------------------------------------------------------

@dataclass
class _Cooldown:
    """A policy's cooldown state: scale-outs until ``out_until`` count from ``out_base``; scale-ins wait
    until ``in_until``."""

    out_until: float = -math.inf
    out_base: int = 0
    in_until: float = -math.inf


@dataclass(frozen=True)
class _Proposal:
    policy: str
    metric: str
    value: float
    new: int
    reason: str
    target_tracking: bool


@dataclass
class ServiceScaler:
    """Application Auto Scaling for one ECS service: see the module docstring for how to drive it."""

    config: AutoScalingConfig
    decisions: list[ScalingDecision] = field(default_factory=list)
    _history: dict[str, deque[float | None]] = field(default_factory=dict, init=False)
    _cooldowns: dict[str, _Cooldown] = field(default_factory=dict, init=False)
    _last_t: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        longest = max([LOW_ALARM_DATAPOINTS, *(p.alarm.evaluation_periods for p in self.config.step_scaling)])
        self._history = {m: deque(maxlen=longest) for m in self.config.metrics()}
        self._cooldowns = {p.name: _Cooldown() for p in (*self.config.target_tracking, *self.config.step_scaling)}

    def observe(self, t_seconds: float, metrics: Mapping[str, float], running: int, desired: int) -> int | None:
        """Take one period's datapoints (ending at ``t_seconds``) and return the new desired count if a
        scaling activity happens, else None."""
        self._record(t_seconds, metrics, running)
        proposals = [*self._target_tracking(t_seconds, desired), *self._step_scaling(t_seconds, desired)]
        chosen = self._combine(proposals, desired)
        if chosen is None:
            bounded = clamp(desired, self.config)
            if bounded == desired:
                return None
            chosen = _Proposal("scalable-target", "", math.nan, bounded,
                               f"desired count outside [{self.config.min_capacity}, {self.config.max_capacity}]",
                               False)
        new = clamp(chosen.new, self.config)
        if new == desired:
            return None
        self._start_cooldown(t_seconds, chosen.policy, desired, new)
        reason = chosen.reason if new == chosen.new else f"{chosen.reason}; clamped to {new}"
        self.decisions.append(ScalingDecision(t_seconds, chosen.policy, chosen.metric, chosen.value, desired, new,
                                              reason))
        return new

    # -- datapoints --

    def _record(self, t: float, metrics: Mapping[str, float], running: int) -> None:
        if self._last_t is not None and t < self._last_t:
            raise ValueError(f"observations must come in time order: {t} after {self._last_t}")
        gaps = 0 if self._last_t is None else max(0, round((t - self._last_t) / self.config.period) - 1)
        self._last_t = t
        for name, history in self._history.items():
            for _ in range(min(gaps, history.maxlen or 0)):
                history.append(None)
            value = metrics.get(name)
            if value is None or math.isnan(value) or (name in ECS_SERVICE_METRICS and running <= 0):
                history.append(None)
            else:
                history.append(float(value))

    # -- policies --

    def _target_tracking(self, t: float, capacity: int) -> list[_Proposal]:
        out = []
        for policy in self.config.target_tracking:
            window = list(self._history[policy.cloudwatch_metric])
            latest = window[-1] if window else None
            cool = self._cooldowns[policy.name]
            high = MetricAlarm(policy.cloudwatch_metric, "GreaterThanThreshold", policy.target_value,
                               HIGH_ALARM_DATAPOINTS)
            if latest is not None and alarm_in_alarm(window, high):
                base = cool.out_base if t < cool.out_until else capacity
                new = proportional_capacity(base, latest, policy.target_value)
                if new > capacity:
                    out.append(_Proposal(policy.name, policy.cloudwatch_metric, latest, new,
                                         f"AlarmHigh: {policy.cloudwatch_metric} > {policy.target_value:g} for "
                                         f"{HIGH_ALARM_DATAPOINTS} datapoints", True))
                continue
            if policy.disable_scale_in or t < cool.in_until:
                continue
            low_threshold = LOW_ALARM_FRACTION * policy.target_value
            low = MetricAlarm(policy.cloudwatch_metric, "LessThanThreshold", low_threshold, LOW_ALARM_DATAPOINTS)
            if latest is not None and alarm_in_alarm(window, low):
                new = proportional_capacity(capacity, latest, policy.target_value)
                if new < capacity:
                    out.append(_Proposal(policy.name, policy.cloudwatch_metric, latest, new,
                                         f"AlarmLow: {policy.cloudwatch_metric} < {low_threshold:g} for "
                                         f"{LOW_ALARM_DATAPOINTS} datapoints", True))
        return out

    def _step_scaling(self, t: float, capacity: int) -> list[_Proposal]:
        out = []
        for policy in self.config.step_scaling:
            alarm = policy.alarm
            window = list(self._history[alarm.metric])
            if not alarm_in_alarm(window, alarm):
                continue
            present = [v for v in window[-alarm.evaluation_periods:] if v is not None]
            value = aggregate(present, policy.metric_aggregation)
            step = select_step(policy.steps, value - alarm.threshold)
            if step is None:
                continue
            cool = self._cooldowns[policy.name]
            new = step_capacity(policy, capacity, step)
            if new > capacity and t < cool.out_until:
                new = step_capacity(policy, cool.out_base, step)  # what the last scale-out added counts
                if new <= capacity:
                    continue
            if new < capacity and t < cool.in_until:
                continue
            if new != capacity:
                out.append(_Proposal(policy.name, alarm.metric, value, new,
                                     f"alarm {alarm.metric} {alarm.comparison} {alarm.threshold:g}: step "
                                     f"{_bounds(step)} -> {policy.adjustment_type} {step.scaling_adjustment}",
                                     False))
        return out

    def _combine(self, proposals: list[_Proposal], capacity: int) -> _Proposal | None:
        outs = [p for p in proposals if p.new > capacity]
        if outs:
            return max(outs, key=lambda p: p.new)
        ins = [p for p in proposals if p.new < capacity and not p.target_tracking]
        tracking_ins = [p for p in proposals if p.new < capacity and p.target_tracking]
        scaling_in = [p for p in self.config.target_tracking if not p.disable_scale_in]
        if scaling_in and len(tracking_ins) == len(scaling_in):
            ins += tracking_ins
        return max(ins, key=lambda p: p.new) if ins else None

    def _start_cooldown(self, t: float, policy: str, old: int, new: int) -> None:
        cool = self._cooldowns.get(policy)
        if new > old:
            for other in self._cooldowns.values():
                other.in_until = -math.inf  # a scale-out ends every scale-in cooldown
            if cool is not None:
                if t >= cool.out_until:
                    cool.out_base = old
                cool.out_until = t + self._cooldown_of(policy, out=True)
        elif cool is not None:
            cool.in_until = t + self._cooldown_of(policy, out=False)

    def _cooldown_of(self, name: str, *, out: bool) -> float:
        for policy in self.config.target_tracking:
            if policy.name == name:
                return policy.scale_out_cooldown if out else policy.scale_in_cooldown
        for step in self.config.step_scaling:
            if step.name == name:
                return step.cooldown
        return 0.0


def _bounds(step: StepAdjustment) -> str:
    lo = "-inf" if step.lower_bound is None else f"{step.lower_bound:g}"
    hi = "+inf" if step.upper_bound is None else f"{step.upper_bound:g}"
    return f"[{lo}, {hi})"
