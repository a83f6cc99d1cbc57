"""The whole scenario model: :class:`Scenario` (one file) made of the cluster, workload and fault
models, the table of tagged-union members that error paths see through, and ECS's rule for how a
workload's tasks reach capacity (:func:`resolve_launch`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from scheduler.catalog import LAUNCH_EC2
from scheduler.scenario.cluster import AutoScalingCapacityProvider, ClusterModel, ManagedInstancesCapacityProvider
from scheduler.scenario.faults import Faults
from scheduler.scenario.fields import Duration, Int, TaskDefinitionSource, _Model, _one_line
from scheduler.scenario.limits import MAX_NAME, MAX_SAMPLES
from scheduler.scenario.placement import CapacityProviderStrategyItem
from scheduler.scenario.workloads import (
    DeviceSetsOptions,
    DiurnalArrivals,
    DiurnalDesiredCount,
    EmpiricalDuration,
    ExponentialDuration,
    FixedDuration,
    IntervalArrivals,
    LognormalDuration,
    OnceArrivals,
    PoissonArrivals,
    RepeatingSchedule,
    RunTaskWorkload,
    ScheduleStep,
    ServiceWorkload,
    TraceArrivals,
    Workload,
)

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
    snapshot: Annotated[str, Field(min_length=1, description="a folder of AWS CLI describe outputs (relative to "
                                   "the scenario) the cluster starts from")] | None = None
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


_TAGGED: dict[str, Any] = {  # a tag -> the type its member holds
    "run_task": RunTaskWorkload, "service": ServiceWorkload,
    "poisson": PoissonArrivals, "interval": IntervalArrivals, "diurnal": DiurnalArrivals,
    "once": OnceArrivals, "trace": TraceArrivals,
    "fixed": FixedDuration, "exponential": ExponentialDuration, "lognormal": LognormalDuration,
    "empirical": EmpiricalDuration,
    "EC2_AUTOSCALING": AutoScalingCapacityProvider, "MANAGED_INSTANCES": ManagedInstancesCapacityProvider,
    # callable-discriminated unions: the tag pydantic puts in an error's location, never in a path users see
    "fixed-count": int, "diurnal-count": DiurnalDesiredCount,
    "schedule-steps": list[ScheduleStep], "repeating-schedule": RepeatingSchedule,
    "device-sets-auto": str, "device-sets-options": DeviceSetsOptions,
}


# --- how a workload's tasks reach capacity ----------------------------------------------------------

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
