"""Scenario files: YAML -> validated models -> a :class:`LoadedScenario` the simulation can run.

A scenario names a cluster (static fleets and capacity providers), the real ECS task definitions the
workloads run, and the workloads themselves (RunTask arrival processes and services). This package owns
the boundary: it reads the YAML defensively (size, alias expansion, depth and duplicate-key limits),
applies dotted-path overrides (for sweeps), validates the shape with pydantic models, checks every
cross-reference (instance types against the catalog, task definitions, capacity providers, trace files)
and turns every problem into one :class:`~scheduler.errors.ScenarioError` naming the file and the field
path, such as ``workloads[1].arrivals.rate``. Nothing else (no pydantic or YAML error) escapes.

The models are data only; how arrivals, durations and scaling play out over time is ``scheduler.sim``'s
business. ECS defaults that depend on the kind of request (the default placement strategy, the default
task group, launch type versus capacity provider strategy) are resolved here, in one place.

The modules, in the order they build on each other:

- ``limits``, ``words``, ``context``: size limits and ECS constants; small words for messages; where
  cross-check errors go;
- ``fields``: the field types and shared validators; ``placement``, ``cluster``, ``workloads``,
  ``faults``: the models of each part; ``models``: the whole :class:`Scenario` and launch resolution;
- ``yaml_reader``: reading the file and its YAML safely; ``overrides``: dotted-path overrides;
  ``validation_errors``: pydantic errors as one line; ``checks``: cross-checks; ``traces``: trace files;
- ``snapshot_model``, ``snapshot_parts``, ``snapshot``, ``snapshot_merge``: a cluster snapshot (AWS CLI
  describe outputs) read, checked and folded into the scenario; ``snapshot_export``: a run's end state
  written as one;
- ``loading``: :func:`load_scenario` and :func:`scenario_from_mapping`; ``schema``: the JSON Schema.

Everything public is importable from ``scheduler.scenario`` itself.
"""

from scheduler.scenario.cluster import (
    AutoScalingCapacityProvider,
    CapacityProvider,
    ClusterModel,
    Fleet,
    ManagedInstancesCapacityProvider,
    ManagedScaling,
)
from scheduler.scenario.faults import (
    AgentDisconnect,
    ChipFailure,
    Faults,
    InstanceFailure,
    InstanceRetirement,
    SpotInterruptions,
)
from scheduler.scenario.fields import (
    AttributeName,
    AttributeValue,
    AvailabilityZones,
    Duration,
    EcsName,
    Int,
    Number,
    ProviderName,
    Rate,
    RateOrZero,
    ScaleInAfter,
    TaskDefinitionSource,
)
from scheduler.scenario.limits import (
    AZ_ATTRIBUTE,
    DEFAULT_AVAILABILITY_ZONES,
    MAX_CALLS,
    MAX_CONSTRAINTS,
    MAX_FILE_BYTES,
    MAX_INSTANCES,
    MAX_NAME,
    MAX_NODES,
    MAX_PROVIDERS_PER_STRATEGY,
    MAX_SAMPLES,
    MAX_STRATEGIES,
    MAX_TASKS_PER_CALL,
    LaunchType,
)
from scheduler.scenario.loading import LoadedScenario, load_scenario, scenario_from_mapping
from scheduler.scenario.models import Launch, Scenario, resolve_launch
from scheduler.scenario.overrides import apply_overrides
from scheduler.scenario.placement import (
    CapacityProviderStrategy,
    CapacityProviderStrategyItem,
    PlacementConstraintItem,
    PlacementConstraints,
    PlacementStrategies,
    PlacementStrategyItem,
)
from scheduler.scenario.schema import scenario_json_schema
from scheduler.scenario.workloads import (
    Arrivals,
    DiurnalArrivals,
    EmpiricalDuration,
    ExponentialDuration,
    FixedDuration,
    IntervalArrivals,
    LognormalDuration,
    OnceArrivals,
    PoissonArrivals,
    RunTaskWorkload,
    ScheduleStep,
    ServiceWorkload,
    TaskDuration,
    TraceArrivals,
    Workload,
)
from scheduler.scenario.yaml_reader import MAX_DIGITS, parse_yaml

__all__ = [
    "AZ_ATTRIBUTE",
    "DEFAULT_AVAILABILITY_ZONES",
    "MAX_CALLS",
    "MAX_CONSTRAINTS",
    "MAX_DIGITS",
    "MAX_FILE_BYTES",
    "MAX_INSTANCES",
    "MAX_NAME",
    "MAX_NODES",
    "MAX_PROVIDERS_PER_STRATEGY",
    "MAX_SAMPLES",
    "MAX_STRATEGIES",
    "MAX_TASKS_PER_CALL",
    "AgentDisconnect",
    "Arrivals",
    "AttributeName",
    "AttributeValue",
    "AutoScalingCapacityProvider",
    "AvailabilityZones",
    "CapacityProvider",
    "CapacityProviderStrategy",
    "CapacityProviderStrategyItem",
    "ChipFailure",
    "ClusterModel",
    "DiurnalArrivals",
    "Duration",
    "EcsName",
    "EmpiricalDuration",
    "ExponentialDuration",
    "Faults",
    "FixedDuration",
    "Fleet",
    "InstanceFailure",
    "InstanceRetirement",
    "Int",
    "IntervalArrivals",
    "Launch",
    "LaunchType",
    "LoadedScenario",
    "LognormalDuration",
    "ManagedInstancesCapacityProvider",
    "ManagedScaling",
    "Number",
    "OnceArrivals",
    "PlacementConstraintItem",
    "PlacementConstraints",
    "PlacementStrategies",
    "PlacementStrategyItem",
    "PoissonArrivals",
    "ProviderName",
    "Rate",
    "RateOrZero",
    "RunTaskWorkload",
    "ScaleInAfter",
    "Scenario",
    "ScheduleStep",
    "ServiceWorkload",
    "SpotInterruptions",
    "TaskDefinitionSource",
    "TaskDuration",
    "TraceArrivals",
    "Workload",
    "apply_overrides",
    "load_scenario",
    "parse_yaml",
    "resolve_launch",
    "scenario_from_mapping",
    "scenario_json_schema",
]
