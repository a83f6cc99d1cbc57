"""A loaded scenario compiled into the simulation's plan (:mod:`scheduler.sim.plan`): the pydantic models
stop here. Defaults are the schema's (read off the validated models) or, for the few the schema leaves
as None, resolved here once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import pandas as pd

from scheduler.catalog import Catalog
from scheduler.ecs.capacity import matching_types
from scheduler.ecs.taskspec import TaskSpec
from scheduler.scenario import arrivals as arrival_models
from scheduler.scenario import cluster as cluster_models
from scheduler.scenario import requests as request_models
from scheduler.scenario import workloads as workload_models
from scheduler.scenario.models import Launch as LaunchModel
from scheduler.scenario.models import Scenario, resolve_launch
from scheduler.sim import plan
from scheduler.sim.capacity import MI_DEFAULT_SCALE_IN_AFTER_S
from scheduler.sim.faults import FaultKind, params
from scheduler.sim.faults import kinds as fault_kinds
from scheduler.sim.plan import ClusterSnapshot

ModelWorkload = workload_models.RunTaskWorkload | workload_models.ServiceWorkload


class LoadedScenario(Protocol):
    """What the compiler reads of a :class:`scheduler.scenario.loading.LoadedScenario` (named here by its
    parts, since that module builds on this one)."""

    model: Scenario
    catalog: Catalog
    task_specs: Mapping[str, TaskSpec]
    traces: Mapping[str, pd.DataFrame]
    snapshot: ClusterSnapshot | None
    device_sets: Mapping[str, tuple[tuple[str, str], ...]]
    request_traces: Mapping[str, pd.DataFrame]


def compile_plan(loaded: LoadedScenario) -> plan.Plan:
    """The plan of a loaded scenario (durations in seconds, every default resolved)."""
    model: Scenario = loaded.model
    cluster = model.cluster
    catalog = loaded.catalog
    faults = model.faults
    return plan.Plan(
        name=model.name, seed=int(model.seed), duration=float(model.duration),
        sample_interval=float(model.sample_interval), device_mode=str(model.device_mode),
        cluster_name=cluster.name, awsvpc_trunking=bool(cluster.awsvpc_trunking),
        provisioning_timeout=float(cluster.provisioning_timeout), spot_discount=float(cluster.spot_discount),
        fleets=tuple(_fleet(f, catalog) for f in cluster.fleets),
        capacity_providers=tuple(_provider(cp, catalog) for cp in cluster.capacity_providers),
        workloads=tuple(_workload(w, loaded) for w in model.workloads),
        task_specs=dict(loaded.task_specs), catalog=catalog,
        faults=tuple(_fault(kind, e) for kind in fault_kinds() if kind.many for e in getattr(faults, kind.key)),
        # a one-object kind goes to the plan field of its key (Spot interruptions: ``spot_interruptions``)
        **{kind.key: _fault(kind, getattr(faults, kind.key)) for kind in fault_kinds() if not kind.many},
        snapshot=loaded.snapshot,
    )


# --- cluster --------------------------------------------------------------------------------------

def _fleet(fleet: cluster_models.Fleet, catalog: Catalog) -> plan.Fleet:
    return plan.Fleet(instance_type=catalog.get(fleet.instance_type), count=int(fleet.count),
                      launch_type=fleet.launch_type, availability_zones=tuple(fleet.availability_zones),
                      capacity_provider=fleet.capacity_provider, attributes=dict(fleet.attributes), spot=fleet.spot)


def _provider(cp: cluster_models.AutoScalingCapacityProvider | cluster_models.ManagedInstancesCapacityProvider,
              catalog: Catalog) -> plan.CapacityProvider:
    if isinstance(cp, cluster_models.AutoScalingCapacityProvider):
        ms = cp.managed_scaling
        return plan.AutoScalingGroup(
            name=cp.name, instance_types=tuple(catalog.get(t) for t in cp.instance_types), min_size=int(cp.min_size),
            max_size=int(cp.max_size), desired_capacity=int(cp.desired_capacity or 0),
            availability_zones=tuple(cp.availability_zones), launch_time=float(cp.launch_time),
            managed_scaling=ms.status == "ENABLED", target_capacity=float(ms.target_capacity),
            minimum_scaling_step_size=int(ms.minimum_scaling_step_size),
            maximum_scaling_step_size=int(ms.maximum_scaling_step_size),
            instance_warmup_period=float(ms.instance_warmup_period), spot=cp.spot)
    return plan.ManagedInstances(
        name=cp.name, candidates=tuple(matching_types(cp.instance_requirements, catalog.values())),
        scale_in_after=MI_DEFAULT_SCALE_IN_AFTER_S if cp.scale_in_after is None else float(cp.scale_in_after),
        launch_time=float(cp.launch_time), max_instances=cp.max_instances,
        availability_zones=tuple(cp.availability_zones), spot=cp.spot)


def _launch(launch: LaunchModel) -> plan.Launch:
    return plan.Launch(launch.launch_type, tuple(plan.ProviderShare(item.capacity_provider, item.weight, item.base)
                                                 for item in launch.strategy))


# --- faults ---------------------------------------------------------------------------------------

def _fault(kind: FaultKind, entry: Any) -> Any:
    """A fault entry of the scenario as its kind's plan class: every field in seconds (per second)."""
    if entry is None:
        return None
    values = {}
    for name, p in params(kind.plan):
        value = getattr(entry, name)
        if p.unit == "times":
            value = tuple(float(t) for t in value)
        elif value is not None and p.unit != "instance_type":
            value = float(value)
        values[name] = value
    return kind.plan(**values)


# --- workloads ------------------------------------------------------------------------------------

def duration(model: workload_models.TaskDuration | None) -> plan.TaskDuration | None:
    """A task duration model as the plan's."""
    if model is None:
        return None
    if isinstance(model, workload_models.FixedDuration):
        return plan.FixedDuration(float(model.value))
    if isinstance(model, workload_models.ExponentialDuration):
        return plan.ExponentialDuration(float(model.mean))
    if isinstance(model, workload_models.LognormalDuration):
        return plan.LognormalDuration(float(model.median), float(model.sigma))
    return plan.EmpiricalDuration(tuple(float(v) for v in model.values),
                                  None if model.weights is None else tuple(float(w) for w in model.weights))


def _startup(model: workload_models.Startup | None) -> plan.Startup | None:
    if model is None:
        return None
    return plan.Startup(duration(model.image_pull), duration(model.image_pull_cached), duration(model.start))


def arrivals(model: object, loaded: LoadedScenario | None = None, workload: str = "") -> plan.Arrivals:
    """A generated arrival process (RunTask calls or requests) as the plan's; a trace takes its table
    from ``loaded``."""
    if isinstance(model, arrival_models.PoissonArrivals):
        return plan.PoissonArrivals(float(model.rate))
    if isinstance(model, workload_models.IntervalArrivals):
        return plan.IntervalArrivals(float(model.every), float(model.jitter or 0))
    if isinstance(model, workload_models.OnceArrivals):
        return plan.OnceArrivals(float(model.at), int(model.calls))
    if isinstance(model, arrival_models.DiurnalArrivals):
        return plan.DiurnalArrivals(float(model.peak_rate), float(model.trough_rate), float(model.peak_at),
                                    float(model.period))
    if isinstance(model, arrival_models.BurstyArrivals):
        return plan.BurstyArrivals(float(model.base_rate), float(model.burst_rate), float(model.mean_burst),
                                   float(model.mean_gap))
    if isinstance(model, workload_models.TraceArrivals) and loaded is not None:
        return plan.TraceArrivals(loaded.traces[workload])
    raise TypeError(f"not an arrival process: {type(model).__name__}")


def desired_count(w: workload_models.ServiceWorkload) -> plan.DesiredCount | None:
    """A REPLICA service's desired count (fixed, diurnal or a schedule) as the plan's."""
    if w.schedule is not None:
        schedule = w.schedule
        if isinstance(schedule, workload_models.RepeatingSchedule):
            return plan.Schedule(tuple(plan.ScheduleStep(float(e.at), int(e.count)) for e in schedule.steps),
                                 float(schedule.repeat))
        return plan.Schedule(tuple(plan.ScheduleStep(float(e.at), int(e.count)) for e in schedule))
    count = w.desired_count
    if isinstance(count, workload_models.DiurnalDesiredCount):
        c = count.diurnal
        return plan.DiurnalCount(int(c.peak), int(c.trough), float(c.peak_at), float(c.period))
    return None if count is None else plan.FixedCount(int(count))


def _requests(w: workload_models.ServiceWorkload, loaded: LoadedScenario) -> plan.ServiceRequests | None:
    block = w.requests
    if block is None:
        return None
    source = block.arrivals
    if isinstance(source, request_models.RequestTrace):
        env = source.envelope
        flow: plan.PoissonArrivals | plan.DiurnalArrivals | plan.BurstyArrivals | plan.RequestTrace = plan.RequestTrace(
            loaded.request_traces[w.name], float(source.speed), bool(source.repeat),
            None if env is None else plan.Envelope(float(env.trough), float(env.peak_at), float(env.period)))
    else:
        flow = arrivals(source)  # type: ignore[assignment]
    sizes = plan.TokenSizes(int(block.sizes.input_tokens), int(block.sizes.output_tokens), block.sizes.distribution)
    return plan.ServiceRequests(flow, sizes, block.service_time_config(), block.to_config(), float(block.start))


def _workload(w: workload_models.RunTaskWorkload | workload_models.ServiceWorkload,
              loaded: LoadedScenario) -> plan.Workload:
    blocks = tuple(plan.TaskBlock(label, name) for label, name in
                   (loaded.device_sets.get(w.name) or ((None, w.task_definition),)))
    launch = _launch(resolve_launch(w, loaded.model.cluster))
    if isinstance(w, workload_models.RunTaskWorkload):
        return plan.RunTaskWorkload(
            name=w.name, blocks=blocks, arrivals=arrivals(w.arrivals, loaded, w.name), count=int(w.count),
            duration=duration(w.duration), constraints=w.runtime_constraints(), strategies=w.effective_strategy(),
            launch=launch, group=w.group, start=float(w.start or 0), stop=None if w.stop is None else float(w.stop),
            max_calls=w.max_calls, on_no_capacity=w.on_no_capacity, startup=_startup(w.startup))
    low, high = w.healthy_bounds
    daemon = w.scheduling_strategy == "DAEMON"
    return plan.ServiceWorkload(
        name=w.name, blocks=blocks, daemon=daemon, desired=None if daemon else desired_count(w),
        task_duration=duration(w.task_duration), constraints=w.runtime_constraints(),
        strategies=w.effective_strategy(), launch=launch, start=float(w.start or 0), startup=_startup(w.startup),
        minimum_healthy_percent=int(low), maximum_percent=int(high), rebalance=bool(w.rebalances),
        deployments=tuple(plan.Deployment(float(d.at), d.task_definition) for d in w.deployments or ()),
        auto_scaling=None if w.auto_scaling is None else w.auto_scaling.to_config(), requests=_requests(w, loaded))


def workload_kinds(workloads: Iterable[ModelWorkload]) -> dict[str, str]:
    """Each scenario workload's kind for per-workload figures: ``run_task``, ``service`` or ``daemon``."""
    out = {}
    for w in workloads:
        daemon = isinstance(w, workload_models.ServiceWorkload) and w.scheduling_strategy == "DAEMON"
        out[w.name] = "daemon" if daemon else w.kind
    return out


def workloads_with_requests(workloads: Iterable[ModelWorkload]) -> set[str]:
    """The scenario's services that receive requests (a ``requests:`` block): only they have request figures."""
    return {w.name for w in workloads
            if isinstance(w, workload_models.ServiceWorkload) and w.requests is not None}

