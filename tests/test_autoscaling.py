"""ECS Service Auto Scaling against Application Auto Scaling's documented rules: target tracking's alarms
and proportional capacity, step scaling's alarm, steps and adjustment types, cooldowns, several policies,
the scalable target's range; properties over random metric series; and the scenario's auto_scaling block."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.errors import ScenarioError
from scheduler.scenario import load_scenario
from scheduler.scenario.schema import scenario_json_schema
from scheduler.sim.autoscaling import (
    CPU,
    HIGH_ALARM_DATAPOINTS,
    LOW_ALARM_DATAPOINTS,
    MEMORY,
    REQUESTS_PER_TARGET,
    AutoScalingConfig,
    MetricAlarm,
    ServiceScaler,
    StepAdjustment,
    StepScalingPolicy,
    TargetTrackingPolicy,
    percent_change,
    proportional_capacity,
    select_step,
    step_capacity,
)

P = 60.0  # one metric period


def cpu_policy(target: float = 50, **kw: Any) -> TargetTrackingPolicy:
    return TargetTrackingPolicy("cpu", "ECSServiceAverageCPUUtilization", target, **kw)


def memory_policy(target: float = 50, **kw: Any) -> TargetTrackingPolicy:
    return TargetTrackingPolicy("memory", "ECSServiceAverageMemoryUtilization", target, **kw)


def scaler(*tracking: TargetTrackingPolicy, steps: tuple[StepScalingPolicy, ...] = (), low: int = 0,
           high: int = 1000) -> ServiceScaler:
    return ServiceScaler(AutoScalingConfig(low, high, tuple(tracking), steps))


def drive(s: ServiceScaler, desired: int, series: list[dict[str, float]], *, start: float = P,
          running: int | None = None) -> tuple[int, list[tuple[float, int]]]:
    """Feed one datapoint per period; the engine's part: the desired count follows every decision."""
    changes = []
    for i, metrics in enumerate(series):
        t = start + i * P
        new = s.observe(t, metrics, desired if running is None else running, desired)
        if new is not None:
            desired = new
            changes.append((t, new))
    return desired, changes


# --- target tracking: alarms ----------------------------------------------------------------------------------

def test_high_alarm_needs_three_consecutive_datapoints_above_target() -> None:
    s = scaler(cpu_policy(50))
    _, changes = drive(s, 4, [{CPU: 80}] * HIGH_ALARM_DATAPOINTS)
    assert changes == [(HIGH_ALARM_DATAPOINTS * P, 7)]  # ceil(4 x 80 / 50)
    d = s.decisions[0]
    assert (d.policy, d.metric, d.value, d.old, d.new) == ("cpu", CPU, 80, 4, 7) and "AlarmHigh" in d.reason


def test_a_datapoint_at_or_below_target_restarts_the_high_alarm() -> None:
    _, changes = drive(scaler(cpu_policy(50)), 4, [{CPU: 80}, {CPU: 80}, {CPU: 50}, {CPU: 80}, {CPU: 80}, {CPU: 80}])
    assert [t for t, _ in changes] == [6 * P]


def test_a_missing_datapoint_is_not_breaching() -> None:
    series: list[dict[str, float]] = [{CPU: 80}, {CPU: 80}, {}, {CPU: 80}, {CPU: math.nan}, {CPU: 80}]
    assert drive(scaler(cpu_policy(50)), 4, series)[1] == []


def test_no_running_tasks_means_no_cpu_datapoints() -> None:
    # ECS publishes no service CPU or memory metric for a period without RUNNING tasks.
    assert drive(scaler(cpu_policy(50)), 2, [{CPU: 90}] * 10, running=0)[1] == []


def test_skipped_periods_count_as_missing_datapoints() -> None:
    s = scaler(cpu_policy(50))
    assert s.observe(60, {CPU: 90}, 2, 2) is None
    assert s.observe(120, {CPU: 90}, 2, 2) is None
    assert s.observe(300, {CPU: 90}, 2, 2) is None  # 180 and 240 had no datapoint


def test_scale_in_only_after_fifteen_low_datapoints() -> None:
    _, changes = drive(scaler(cpu_policy(50)), 10, [{CPU: 20}] * (LOW_ALARM_DATAPOINTS + 5))
    assert changes[0] == (LOW_ALARM_DATAPOINTS * P, 4)  # ceil(10 x 20 / 50)


def test_low_alarm_is_at_ninety_percent_of_the_target() -> None:
    assert drive(scaler(cpu_policy(50)), 10, [{CPU: 45}] * 40)[1] == []  # not below 45
    _, changes = drive(scaler(cpu_policy(50)), 10, [{CPU: 44.9}] * LOW_ALARM_DATAPOINTS)
    assert changes == [(LOW_ALARM_DATAPOINTS * P, 9)]  # ceil(8.98)


def test_between_the_low_threshold_and_the_target_nothing_changes() -> None:
    assert drive(scaler(cpu_policy(50)), 10, [{CPU: 47}, {CPU: 50}, {CPU: 46}] * 20)[1] == []


def test_one_high_datapoint_restarts_the_low_alarm() -> None:
    series = [{CPU: 20}] * 10 + [{CPU: 60}] + [{CPU: 20}] * LOW_ALARM_DATAPOINTS
    _, changes = drive(scaler(cpu_policy(50)), 10, series)
    assert changes == [(len(series) * P, 4)]


@pytest.mark.parametrize(("capacity", "metric", "target", "expected"), [
    (4, 80, 50, 7), (10, 55, 50, 11), (3, 100, 50, 6), (10, 20, 50, 4), (7, 30, 60, 4), (10, 50, 50, 10),
    (1, 1000, 10, 100), (5, 0, 50, 0),
])
def test_proportional_capacity_rounds_up(capacity: int, metric: float, target: float, expected: int) -> None:
    assert proportional_capacity(capacity, metric, target) == expected


def test_request_count_per_target_scales_from_zero_tasks() -> None:
    policy = TargetTrackingPolicy("alb", "ALBRequestCountPerTarget", 100)
    _, changes = drive(scaler(policy), 0, [{REQUESTS_PER_TARGET: 350}] * 3)
    assert changes == [(3 * P, 4)]


def test_insufficient_data_never_scales() -> None:
    assert drive(scaler(cpu_policy(50)), 10, [{}] * 30)[1] == []


# --- cooldowns ---------------------------------------------------------------------------------------------

def test_scale_out_cooldown_counts_the_capacity_already_added() -> None:
    s = scaler(cpu_policy(50, scale_out_cooldown=300))
    desired, changes = drive(s, 4, [{CPU: 80}] * 3)
    assert desired == 7
    # Within the cooldown the tasks have not yet brought the metric down: 80 again asks ceil(4 x 80/50) = 7,
    # which is no larger scale-out, so nothing happens ...
    desired, changes = drive(s, desired, [{CPU: 80}] * 2, start=4 * P)
    assert changes == []
    # ... but a larger one goes ahead at once: ceil(4 x 150 / 50) = 12, from the capacity before the cooldown.
    desired, changes = drive(s, desired, [{CPU: 150}], start=6 * P)
    assert changes == [(6 * P, 12)]


def test_after_the_scale_out_cooldown_capacity_compounds_from_the_current_one() -> None:
    s = scaler(cpu_policy(50, scale_out_cooldown=120))
    _, changes = drive(s, 4, [{CPU: 80}] * 6)
    assert changes == [(3 * P, 7), (5 * P, 12)]  # 180 + 120 = 300: ceil(7 x 80 / 50)


def test_scale_in_cooldown_holds_the_next_scale_in() -> None:
    s = scaler(cpu_policy(50, scale_in_cooldown=600))
    _, changes = drive(s, 20, [{CPU: 20}] * 40)
    assert changes[0] == (15 * P, 8)
    assert changes[1][0] == 15 * P + 600  # the alarm stayed in ALARM; the cooldown held it
    assert changes[1][1] == 4  # ceil(8 x 20 / 50)


def test_scale_out_during_a_scale_in_cooldown_is_immediate() -> None:
    s = scaler(cpu_policy(50, scale_in_cooldown=3600))
    desired, _ = drive(s, 10, [{CPU: 20}] * 15)
    assert desired == 4
    _, changes = drive(s, desired, [{CPU: 100}] * 3, start=16 * P)
    assert changes == [(18 * P, 8)]


def test_scale_in_is_gated_by_the_low_alarm_not_by_the_scale_out_cooldown() -> None:
    # The documented scale-out cooldown only holds further scale-outs; what delays a scale-in after a scale-out
    # is AlarmLow's 15 datapoints (and the scale-in cooldown of an earlier scale-in).
    s = scaler(cpu_policy(50, scale_out_cooldown=3600))
    desired, _ = drive(s, 4, [{CPU: 80}] * 3)
    assert desired == 7
    _, changes = drive(s, desired, [{CPU: 10}] * 15, start=4 * P)
    assert changes == [(18 * P, 2)]  # 15 minutes after the scale-out, well within its hour of cooldown


def test_disable_scale_in_keeps_capacity_but_still_scales_out() -> None:
    s = scaler(cpu_policy(50, disable_scale_in=True))
    desired, changes = drive(s, 10, [{CPU: 5}] * 60)
    assert changes == [] and desired == 10
    assert drive(s, 10, [{CPU: 90}] * 3, start=61 * P)[1] == [(63 * P, 18)]


# --- the scalable target's range ------------------------------------------------------------------------------

def test_scale_out_is_clamped_to_max_capacity() -> None:
    s = scaler(cpu_policy(50), low=1, high=10)
    assert drive(s, 4, [{CPU: 500}] * 3)[1] == [(3 * P, 10)]
    assert "clamped to 10" in s.decisions[0].reason


def test_scale_in_is_clamped_to_min_capacity() -> None:
    assert drive(scaler(cpu_policy(50), low=3), 10, [{CPU: 1}] * 15)[1] == [(15 * P, 3)]


def test_at_max_capacity_nothing_happens() -> None:
    s = scaler(cpu_policy(50), low=1, high=10)
    assert drive(s, 10, [{CPU: 500}] * 10)[1] == [] and s.decisions == []


def test_a_desired_count_outside_the_range_is_brought_into_it() -> None:
    assert scaler(cpu_policy(50), low=2, high=5).observe(60, {CPU: 50}, 9, 9) == 5
    assert scaler(cpu_policy(50), low=2, high=5).observe(60, {CPU: 50}, 0, 0) == 2


# --- several policies ------------------------------------------------------------------------------------------

def test_any_policy_scales_out() -> None:
    _, changes = drive(scaler(cpu_policy(50), memory_policy(50)), 4, [{CPU: 50, MEMORY: 100}] * 3)
    assert changes == [(3 * P, 8)]


def test_the_largest_scale_out_wins() -> None:
    s = scaler(cpu_policy(50), memory_policy(50))
    assert drive(s, 4, [{CPU: 75, MEMORY: 100}] * 3)[1] == [(3 * P, 8)]
    assert s.decisions[0].policy == "memory"


def test_scale_in_only_when_every_target_tracking_policy_agrees() -> None:
    both = scaler(cpu_policy(50), memory_policy(50))
    assert drive(both, 10, [{CPU: 10, MEMORY: 50}] * 30)[1] == []
    _, changes = drive(scaler(cpu_policy(50), memory_policy(50)), 10, [{CPU: 10, MEMORY: 30}] * 15)
    assert changes == [(15 * P, 6)]  # the larger of ceil(10 x 10/50) = 2 and ceil(10 x 30/50) = 6


def test_a_policy_with_scale_in_disabled_does_not_block_scale_in() -> None:
    s = scaler(cpu_policy(50), memory_policy(50, disable_scale_in=True))
    assert drive(s, 10, [{CPU: 10, MEMORY: 50}] * 15)[1] == [(15 * P, 2)]


def test_a_step_policy_scales_in_without_waiting_for_target_tracking() -> None:
    step_in = StepScalingPolicy("cpu-low", MetricAlarm(CPU, "LessThanThreshold", 15), "ChangeInCapacity",
                                (StepAdjustment(None, 0, -1),), cooldown=0)
    s = scaler(memory_policy(50), steps=(step_in,))
    _, changes = drive(s, 10, [{CPU: 10, MEMORY: 50}] * 3)
    assert changes == [(P, 9), (2 * P, 8), (3 * P, 7)]  # runs each period the alarm stays in ALARM


# --- step scaling --------------------------------------------------------------------------------------------

DOCS_OUT = StepScalingPolicy("out", MetricAlarm(CPU, "GreaterThanOrEqualToThreshold", 50), "PercentChangeInCapacity",
                             (StepAdjustment(0, 10, 0), StepAdjustment(10, 20, 10), StepAdjustment(20, None, 30)),
                             cooldown=0)
DOCS_IN = StepScalingPolicy("in", MetricAlarm(CPU, "LessThanOrEqualToThreshold", 50), "PercentChangeInCapacity",
                            (StepAdjustment(-10, 0, 0), StepAdjustment(-20, -10, -10), StepAdjustment(None, -20, -30)),
                            cooldown=0)


def test_the_documented_step_scaling_example() -> None:
    # Application Auto Scaling User Guide, "Step scaling policies": capacity 10, threshold 50.
    s = scaler(steps=(DOCS_OUT, DOCS_IN))
    assert s.observe(60, {CPU: 45}, 10, 10) is None   # between 40 and 60: unchanged
    assert s.observe(120, {CPU: 60}, 10, 10) == 11    # +10% of 10
    assert s.observe(180, {CPU: 70}, 11, 11) == 14    # +30% of 11 = 3.3 -> 3
    assert s.observe(240, {CPU: 40}, 14, 14) == 13    # -10% of 14 = 1.4 -> 1
    assert s.observe(300, {CPU: 30}, 13, 13) == 10    # -30% of 13 = 3.9 -> 3


@pytest.mark.parametrize(("difference", "expected"), [
    (0, 0), (9.99, 0), (10, 1), (19.99, 1), (20, 2), (1e9, 2),     # above: lower inclusive, upper exclusive
    (-0.01, 3), (-9.99, 3), (-10, 4), (-19.99, 4), (-20, 5), (-1e9, 5),  # below: lower exclusive, upper inclusive
])
def test_step_selection_bounds(difference: float, expected: int) -> None:
    steps = (*DOCS_OUT.steps, *DOCS_IN.steps)
    assert select_step(steps, difference) is steps[expected]


@pytest.mark.parametrize(("capacity", "percent", "change"), [
    (10, 10, 1), (11, 30, 3), (14, -10, -1), (13, -30, -3), (127, 10, 12), (3, 10, 1), (3, -10, -1),
    (100, -6.67, -6), (10, 0, 0), (0, 50, 0),
])
def test_percent_change_rounding(capacity: int, percent: float, change: int) -> None:
    assert percent_change(capacity, percent) == change


@pytest.mark.parametrize(("adjustment_type", "adjustment", "magnitude", "capacity", "expected"), [
    ("ChangeInCapacity", 5, None, 3, 8),
    ("ChangeInCapacity", -2, None, 3, 1),
    ("ExactCapacity", 5, None, 3, 5),
    ("ExactCapacity", 1, None, 3, 1),
    ("PercentChangeInCapacity", 10, None, 10, 11),
    ("PercentChangeInCapacity", 25, 2, 4, 6),     # 25% of 4 is 1; MinAdjustmentMagnitude 2 adds 2
    ("PercentChangeInCapacity", -25, 2, 4, 2),
    ("PercentChangeInCapacity", 50, 2, 10, 15),   # 5 is already above the minimum
])
def test_adjustment_types(adjustment_type: str, adjustment: int, magnitude: int | None, capacity: int,
                          expected: int) -> None:
    step = StepAdjustment(0, None, adjustment)
    policy = StepScalingPolicy("p", MetricAlarm(CPU, "GreaterThanThreshold", 0), adjustment_type,  # type: ignore[arg-type]
                               (step,), magnitude)
    assert step_capacity(policy, capacity, step) == expected


def test_step_alarm_needs_m_of_n_datapoints() -> None:
    policy = StepScalingPolicy("p", MetricAlarm(CPU, "GreaterThanThreshold", 80, 3, 2), "ChangeInCapacity",
                               (StepAdjustment(0, None, 1),))
    _, changes = drive(scaler(steps=(policy,)), 2, [{CPU: 90}, {CPU: 70}, {CPU: 90}])
    assert changes == [(3 * P, 3)]  # two of three above 80 (and their average, 83.3, picks the step)
    assert drive(scaler(steps=(policy,)), 2, [{CPU: 90}, {CPU: 70}, {CPU: 70}, {CPU: 90}])[1] == []


@pytest.mark.parametrize(("aggregation", "expected"), [("Maximum", 5), ("Average", 3), ("Minimum", 2)])
def test_step_metric_aggregation_picks_the_step(aggregation: str, expected: int) -> None:
    # Two of three datapoints above 50: the alarm fires; the aggregate of the window decides the step.
    policy = StepScalingPolicy("p", MetricAlarm(CPU, "GreaterThanThreshold", 50, 3, 2), "ChangeInCapacity",
                               (StepAdjustment(None, 10, 0), StepAdjustment(10, 30, 1),
                                StepAdjustment(30, None, 3)),
                               metric_aggregation=aggregation)  # type: ignore[arg-type]
    # datapoints 90, 40, 70: max 90 (+40: +3), average 66.7 (+16.7: +1), minimum 40 (-10: 0)
    final, _ = drive(scaler(steps=(policy,)), 2, [{CPU: 90}, {CPU: 40}, {CPU: 70}])
    assert final == expected


def test_step_scale_out_within_cooldown_counts_the_previous_increase() -> None:
    # The guide: +2, then during the cooldown the alarm hits a step of +3: the earlier 2 count, so 1 is added.
    policy = StepScalingPolicy("p", MetricAlarm(CPU, "GreaterThanThreshold", 50), "ChangeInCapacity",
                               (StepAdjustment(0, 20, 2), StepAdjustment(20, None, 3)), cooldown=300)
    s = scaler(steps=(policy,))
    assert s.observe(60, {CPU: 60}, 10, 10) == 12
    assert s.observe(120, {CPU: 60}, 12, 12) is None   # +2 again is no larger scale-out
    assert s.observe(180, {CPU: 80}, 12, 12) == 13     # 10 + 3
    assert s.observe(420, {CPU: 60}, 13, 13) is None   # the cooldown restarted at 180
    assert s.observe(480, {CPU: 60}, 13, 13) == 15     # and is over: +2 from the current capacity


def test_step_scale_in_waits_for_its_cooldown() -> None:
    policy = StepScalingPolicy("p", MetricAlarm(CPU, "LessThanThreshold", 20), "ChangeInCapacity",
                               (StepAdjustment(None, 0, -1),), cooldown=300)
    _, changes = drive(scaler(steps=(policy,)), 10, [{CPU: 5}] * 11)
    assert changes == [(P, 9), (6 * P, 8), (11 * P, 7)]


def test_decisions_log_every_activity_with_its_reason() -> None:
    s = scaler(steps=(DOCS_OUT, DOCS_IN))
    drive(s, 10, [{CPU: 60}, {CPU: 70}, {CPU: 30}])
    assert [(d.policy, d.old, d.new) for d in s.decisions] == [("out", 10, 11), ("out", 11, 14), ("in", 14, 10)]
    assert all("PercentChangeInCapacity" in d.reason for d in s.decisions)


def test_observations_must_come_in_time_order() -> None:
    s = scaler(cpu_policy())
    s.observe(120, {CPU: 50}, 1, 1)
    with pytest.raises(ValueError, match="time order"):
        s.observe(60, {CPU: 50}, 1, 1)


# --- properties --------------------------------------------------------------------------------------------

cooldowns = st.sampled_from([0.0, 60.0, 300.0, 900.0])
tracking_policies = st.lists(
    st.builds(lambda metric, target, out, into, off: TargetTrackingPolicy(metric, metric, target, out, into, off),
              st.sampled_from(["ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization",
                               "ALBRequestCountPerTarget"]),
              st.floats(1, 100), cooldowns, cooldowns, st.booleans()),
    min_size=1, max_size=3, unique_by=lambda p: p.metric)


@st.composite
def step_policy(draw: st.DrawFn, name: str, out: bool) -> StepScalingPolicy:
    """A sane step policy: scale-out steps above a Greater alarm, scale-in steps below a Less one, with
    adjustments that grow with the breach (the monotone property needs no more than that)."""
    threshold = draw(st.floats(0, 200))
    sizes = sorted(draw(st.lists(st.integers(1, 200), min_size=1, max_size=3)))
    cuts = sorted(set(draw(st.lists(st.floats(1, 100), min_size=len(sizes) - 1, max_size=len(sizes) - 1))))
    sizes = sizes[:len(cuts) + 1]
    kind = draw(st.sampled_from(["ChangeInCapacity", "PercentChangeInCapacity"]))
    edges: list[float | None] = [0.0, *cuts, None]
    if out:
        steps = tuple(StepAdjustment(edges[i], edges[i + 1], sizes[i]) for i in range(len(sizes)))
        comparison = draw(st.sampled_from(["GreaterThanThreshold", "GreaterThanOrEqualToThreshold"]))
    else:
        steps = tuple(StepAdjustment(None if edges[i + 1] is None else -edges[i + 1], -edges[i],  # type: ignore[operator]
                                     -sizes[i]) for i in range(len(sizes)))
        comparison = draw(st.sampled_from(["LessThanThreshold", "LessThanOrEqualToThreshold"]))
    periods = draw(st.integers(1, 4))
    alarm = MetricAlarm(CPU, comparison, threshold, periods, draw(st.integers(1, periods)))
    return StepScalingPolicy(name, alarm, kind, steps,  # type: ignore[arg-type]
                             draw(st.none() | st.integers(1, 5)) if kind == "PercentChangeInCapacity" else None,
                             draw(cooldowns), draw(st.sampled_from(["Average", "Minimum", "Maximum"])))


@st.composite
def configs(draw: st.DrawFn, with_steps: bool = True) -> AutoScalingConfig:
    low = draw(st.integers(0, 20))
    high = draw(st.integers(low, 60))
    steps: tuple[StepScalingPolicy, ...] = ()
    if with_steps:
        steps = tuple(draw(step_policy(f"s{i}", out)) for i, out in enumerate(draw(st.lists(st.booleans(),
                                                                                           max_size=2))))
    return AutoScalingConfig(low, high, tuple(draw(tracking_policies)), steps)


metric_values = st.floats(0, 400) | st.just(math.nan)
series_of = st.lists(st.fixed_dictionaries({CPU: metric_values, MEMORY: metric_values,
                                            REQUESTS_PER_TARGET: metric_values}), max_size=60)


@settings(max_examples=150, deadline=None)
@given(config=configs(), start=st.integers(0, 100), series=series_of)
def test_desired_count_always_within_min_and_max(config: AutoScalingConfig, start: int,
                                                 series: list[dict[str, float]]) -> None:
    s = ServiceScaler(config)
    desired = start
    for i, metrics in enumerate(series):
        new = s.observe((i + 1) * P, metrics, desired, desired)
        desired = desired if new is None else new
        # from the first observation on, even a start outside the range is brought into it
        assert config.min_capacity <= desired <= config.max_capacity


@settings(max_examples=150, deadline=None)
@given(config=configs(with_steps=False), data=st.data(), periods=st.integers(1, 80))
def test_a_metric_held_at_its_target_never_changes_capacity(config: AutoScalingConfig, data: st.DataObject,
                                                            periods: int) -> None:
    desired = data.draw(st.integers(config.min_capacity, config.max_capacity))
    at_target = {p.cloudwatch_metric: p.target_value for p in config.target_tracking}
    _, changes = drive(ServiceScaler(config), desired, [at_target] * periods)
    assert changes == []


# Target tracking only: step scaling does what its table says, and a table may remove more tasks for a
# smaller breach (a second scale-in alarm whose step starts only near its threshold), which ECS honours.
@settings(max_examples=150, deadline=None)
@given(config=configs(with_steps=False), data=st.data(), history=series_of, last=st.fixed_dictionaries(
    {CPU: st.floats(0, 400), MEMORY: st.floats(0, 400), REQUESTS_PER_TARGET: st.floats(0, 400)}))
def test_a_higher_latest_datapoint_never_yields_a_lower_desired_count(
        config: AutoScalingConfig, data: st.DataObject, history: list[dict[str, float]],
        last: dict[str, float]) -> None:
    # Same history, same state; only the newest datapoint of each metric is higher in the second run.
    start = data.draw(st.integers(config.min_capacity, config.max_capacity))
    bump = data.draw(st.fixed_dictionaries({k: st.floats(0, 200) for k in last}))
    results = []
    for final in (last, {k: v + bump[k] for k, v in last.items()}):
        s = ServiceScaler(config)
        desired, _ = drive(s, start, history)
        new = s.observe((len(history) + 1) * P, final, desired, desired)
        results.append(desired if new is None else new)
    assert results[1] >= results[0]


@settings(max_examples=100, deadline=None)
@given(config=configs(with_steps=False), data=st.data(), low=st.floats(0, 400), extra=st.floats(0, 200),
       periods=st.integers(1, 60))
def test_a_constant_higher_metric_never_ends_lower(config: AutoScalingConfig, data: st.DataObject, low: float,
                                                   extra: float, periods: int) -> None:
    start = data.draw(st.integers(config.min_capacity, config.max_capacity))
    finals = []
    for value in (low, low + extra):
        metrics = {CPU: value, MEMORY: value, REQUESTS_PER_TARGET: value}
        finals.append(drive(ServiceScaler(config), start, [metrics] * periods)[0])
    assert finals[1] >= finals[0]


# --- the scenario's auto_scaling block ----------------------------------------------------------------------

TASKDEF = {"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx", "cpu": 512,
                                                      "memory": 1024}]}
BLOCK: dict[str, Any] = {
    "min_capacity": 1,
    "max_capacity": 20,
    "target_tracking": [{"metric": "ECSServiceAverageCPUUtilization", "target": 60, "scale_in_cooldown": "10m"},
                        {"metric": "ALBRequestCountPerTarget", "target": 1000, "disable_scale_in": True}],
    "step_scaling": [{
        "name": "burst",
        "alarm": {"metric": "TargetResponseTime", "comparison": "GreaterThanThreshold", "threshold": 2,
                  "evaluation_periods": 3, "datapoints_to_alarm": 2},
        "adjustment_type": "PercentChangeInCapacity",
        "min_adjustment_magnitude": 2,
        "steps": [{"lower_bound": 0, "upper_bound": 1, "adjustment": 20}, {"lower_bound": 1, "adjustment": 50}],
        "cooldown": "2m",
        "metric_aggregation": "Maximum",
    }],
}


def scenario(block: object, **service: object) -> dict[str, Any]:
    return {
        "name": "autoscaled", "duration": "1h", "task_definitions": {"web": TASKDEF},
        "cluster": {"fleets": [{"instance_type": "m6i.xlarge", "count": 2}]},
        "workloads": [{"kind": "service", "name": "web", "task_definition": "web", "auto_scaling": block}
                      | service],
    }


def load(tmp_path: Path, data: dict[str, Any]) -> Any:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_scenario(path)


def test_a_service_with_auto_scaling_loads_and_compiles(tmp_path: Path) -> None:
    loaded = load(tmp_path, scenario(BLOCK, desired_count=2))
    config = loaded.model.workloads[0].auto_scaling.to_config()
    assert (config.min_capacity, config.max_capacity) == (1, 20)
    cpu, alb = config.target_tracking
    assert (cpu.name, cpu.target_value, cpu.scale_in_cooldown, cpu.scale_out_cooldown) == (
        "ECSServiceAverageCPUUtilization", 60, 600, 300)
    assert alb.disable_scale_in and alb.cloudwatch_metric == REQUESTS_PER_TARGET
    (burst,) = config.step_scaling
    assert burst.name == "burst" and burst.cooldown == 120 and burst.metric_aggregation == "Maximum"
    assert burst.alarm == MetricAlarm("TargetResponseTime", "GreaterThanThreshold", 2, 3, 2)
    assert burst.steps == (StepAdjustment(0, 1, 20), StepAdjustment(1, None, 50))
    assert ServiceScaler(config).observe(60, {CPU: 60}, 2, 2) is None


def test_auto_scaling_is_optional(tmp_path: Path) -> None:
    data = scenario(None)
    del data["workloads"][0]["auto_scaling"]
    assert load(tmp_path, data).model.workloads[0].auto_scaling is None


def test_the_json_schema_has_the_block() -> None:
    schema = scenario_json_schema()
    assert "auto_scaling" in schema["$defs"]["ServiceWorkload"]["properties"]
    assert "StepScaling" in schema["$defs"]


def _with(block: dict[str, Any], dotted: str, value: object) -> dict[str, Any]:
    out = yaml.safe_load(yaml.safe_dump(block))
    node: Any = out
    *parts, key = dotted.split(".")
    for part in parts:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(key) if key.isdigit() else key] = value
    return out


@pytest.mark.parametrize(("dotted", "value", "path", "words"), [
    ("max_capacity", 0, "max_capacity", "at least min_capacity (1)"),
    ("min_capacity", -1, "min_capacity", "greater than or equal to 0"),
    ("target_tracking.0.metric", "ECSServiceAverageCPU", "target_tracking[0].metric",
     "ECSServiceAverageCPUUtilization"),
    ("target_tracking.0.target", 0, "target_tracking[0].target", "greater than 0"),
    ("target_tracking.0.target", 150, "target_tracking[0].target", "at most 100"),
    ("target_tracking.0.scale_out_cooldown", "5 parsecs", "target_tracking[0].scale_out_cooldown",
     "expected a duration"),
    ("target_tracking.1", {"metric": "ECSServiceAverageCPUUtilization", "target": 70}, "target_tracking",
     "is used twice"),
    ("target_tracking.0.scale_in_cooldwn", "5m", "target_tracking[0].scale_in_cooldwn",
     "did you mean 'scale_in_cooldown'"),
    ("step_scaling.0.alarm.comparison", "GreaterThan", "step_scaling[0].alarm.comparison", "GreaterThanThreshold"),
    ("step_scaling.0.alarm.metric", "Latency", "step_scaling[0].alarm.metric", "TargetResponseTime"),
    ("step_scaling.0.alarm.datapoints_to_alarm", 4, "step_scaling[0].alarm.datapoints_to_alarm",
     "must not exceed evaluation_periods (3)"),
    ("step_scaling.0.steps.1.lower_bound", 2, "step_scaling[0].steps", "overlap or leave a gap"),
    ("step_scaling.0.steps.1.lower_bound", None, "step_scaling[0].steps[1]", "not both null"),
    ("step_scaling.0.steps.1.upper_bound", 0.5, "step_scaling[0].steps.1", "must be below upper_bound"),
    ("step_scaling.0.adjustment_type", "ChangeInCapacity", "step_scaling[0].min_adjustment_magnitude",
     "only with adjustment_type PercentChangeInCapacity"),
    ("step_scaling.0.metric_aggregation", "Median", "step_scaling[0].metric_aggregation", "'Average'"),
    ("step_scaling.0.name", "burst job", "step_scaling[0].name", "letters, digits"),
])
def test_bad_auto_scaling_fields_name_their_path(tmp_path: Path, dotted: str, value: object, path: str,
                                                 words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load(tmp_path, scenario(_with(BLOCK, dotted, value)))
    error = caught.value
    assert error.file == str(tmp_path / "scenario.yaml")
    assert error.path is not None and error.path.replace("[", ".").replace("]", "").startswith(
        f"workloads.0.auto_scaling.{path}".replace("[", ".").replace("]", "")), error.path
    assert words in error.message, error.message


@pytest.mark.parametrize(("steps", "words"), [
    ([{"lower_bound": -5, "upper_bound": 0, "adjustment": -1}], "needs a null lower_bound"),
    ([{"lower_bound": 0, "upper_bound": 5, "adjustment": 1}], "needs a null upper_bound"),
    ([{"upper_bound": 0, "adjustment": -1}, {"upper_bound": 5, "adjustment": 1}], "only one step may have a null "
                                                                                   "lower_bound"),
    ([{"lower_bound": 0, "adjustment": 1}, {"lower_bound": 5, "adjustment": 1}], "only one step may have a null "
                                                                                 "upper_bound"),
])
def test_step_rules(tmp_path: Path, steps: list[dict[str, Any]], words: str) -> None:
    block = _with(_with(BLOCK, "step_scaling.0.steps", steps), "step_scaling.0.adjustment_type", "ChangeInCapacity")
    del block["step_scaling"][0]["min_adjustment_magnitude"]
    with pytest.raises(ScenarioError) as caught:
        load(tmp_path, scenario(block))
    assert caught.value.path == "workloads[0].auto_scaling.step_scaling[0].steps"
    assert words in caught.value.message


@pytest.mark.parametrize(("service", "words"), [
    ({"scheduling_strategy": "DAEMON", "desired_count": None}, "takes no auto_scaling"),
    ({"schedule": [{"at": 0, "count": 2}]}, "not both"),
])
def test_auto_scaling_only_on_a_replica_service_without_schedule(tmp_path: Path, service: dict[str, Any],
                                                                 words: str) -> None:
    data = scenario(BLOCK, **service)
    if data["workloads"][0].get("desired_count", 0) is None:
        del data["workloads"][0]["desired_count"]
    with pytest.raises(ScenarioError) as caught:
        load(tmp_path, data)
    assert caught.value.path == "workloads[0].auto_scaling" and words in caught.value.message
