"""The cross-checks after validation: the catalog (with the scenario's additions), instance types
against it and against launch types, capacity providers and strategies, workload names, task
definitions (loaded and checked against how each workload launches) and fault targets. Each problem is
one ScenarioError naming the field path."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scheduler.catalog import LAUNCH_EC2, LAUNCH_MANAGED, Catalog, default_catalog, load_catalog
from scheduler.catalog.catalog import _build as _build_instance_type
from scheduler.ecs.taskdef import read_task_definition, validate_task_definition
from scheduler.ecs.taskspec import TaskSpec
from scheduler.errors import CatalogError
from scheduler.scenario.cluster import AutoScalingCapacityProvider, ClusterModel, ManagedInstancesCapacityProvider
from scheduler.scenario.context import _Context
from scheduler.scenario.limits import MAX_CONSTRAINTS, MAX_INSTANCES
from scheduler.scenario.models import Scenario, resolve_launch
from scheduler.scenario.placement import CapacityProviderStrategyItem
from scheduler.scenario.words import _exists, _path_part, _path_text
from scheduler.sim.faults import kinds as fault_kinds


def _scenario_catalog(model: Scenario, context: _Context) -> Catalog:
    catalog = default_catalog()
    if model.catalog is not None:
        file = context.base / model.catalog
        if not _exists(file):
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


def _check_cluster(cluster: ClusterModel, catalog: Catalog, context: _Context, *, snapshot_instances: int = 0) -> None:
    if not cluster.fleets and not cluster.capacity_providers and not snapshot_instances:
        raise context.error("cluster", "needs at least one fleet or capacity provider (or a snapshot)")
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
    initial = snapshot_instances
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


def _check_faults(faults: Any, catalog: Catalog, context: _Context) -> None:
    """Each targeted fault entry's ``instance_type``: in the catalog, and one its kind can strike."""
    for kind in fault_kinds():
        if not kind.many:
            continue
        for i, fault in enumerate(getattr(faults, kind.key)):
            if fault.instance_type is None:
                continue
            where = f"faults.{kind.key}[{i}].instance_type"
            try:
                itype = catalog.get(fault.instance_type)
            except CatalogError as exc:
                raise context.error(where, exc.message) from None
            problem = kind.type_problem(itype)
            if problem is not None:
                raise context.error(where, problem)


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
        for j, step in enumerate(getattr(workload, "deployments", None) or ()):
            _known_task_definition(model, step.task_definition, f"{where}.deployments[{j}].task_definition",
                                   context)
        _check_strategy(workload.capacity_provider_strategy, providers, f"{where}.capacity_provider_strategy",
                        context)


def _known_task_definition(model: Scenario, name: str, path: str, context: _Context) -> None:
    if name in model.task_definitions:
        return
    close = difflib.get_close_matches(name, list(model.task_definitions), n=1)
    hint = (f"; did you mean {close[0]!r}?" if close
            else f"; task_definitions has {', '.join(model.task_definitions)}")
    raise context.error(path, f"unknown task definition {name!r}{hint}")


def _load_task_definitions(model: Scenario, context: _Context, *, documents: dict[str, dict] | None = None
                           ) -> tuple[dict[str, TaskSpec], list[str]]:
    """Every task definition's TaskSpec, and one line per warning ECS's rules give about one (as `validate`
    prints them): a run says what it takes on trust. ``documents``, when given, receives each one's
    RegisterTaskDefinition input."""
    specs: dict[str, TaskSpec] = {}
    warnings: list[str] = []
    for name, source in model.task_definitions.items():
        where = "task_definitions" + _path_part(name)
        if isinstance(source, str):
            file = context.base / source
            if not _exists(file):
                raise context.error(where, f"task-definition file not found: {_path_text(file)}")
            described = _path_text(file)
            validation = read_task_definition(file)
        else:
            described = "the inline task definition"
            validation = validate_task_definition(source)
        if validation.spec is None:
            exc = validation.error()
            issue = exc.issues[0]
            more = f" (and {len(exc.issues) - 1} more)" if len(exc.issues) > 1 else ""
            raise context.error(where, f"task definition {name!r} is invalid: {described}: {issue.path}: "
                                f"{issue.message}{more}")
        specs[name] = validation.spec
        if documents is not None:
            documents[name] = validation.document
        warnings += [f"{where}: {described}: warning: {w.path}: {w.message}" + (f" ({w.rule})" if w.rule else "")
                     for w in validation.warnings]
    return specs, warnings


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
        if getattr(workload, "deployments", None) and getattr(workload, "device_sets", None) is not None:
            raise context.error(f"{where}.deployments", "a service with device_sets cannot take deployments yet: "
                                "deploy each block's generated task definition as its own service")
        for j, step in enumerate(getattr(workload, "deployments", None) or ()):
            new = specs[step.task_definition]
            gap = needed - new.compatibilities
            if gap:
                raise context.error(f"{where}.deployments[{j}].task_definition", f"task definition "
                                    f"{step.task_definition!r} does not support {', '.join(sorted(gap))} (its "
                                    f"requiresCompatibilities: {', '.join(sorted(new.compatibilities))}), "
                                    f"needed by {how}")
            if len(new.constraints) + len(workload.placement_constraints) > MAX_CONSTRAINTS:
                raise context.error(f"{where}.deployments[{j}].task_definition", f"a task may have at most "
                                    f"{MAX_CONSTRAINTS} placement constraints, task definition and request "
                                    f"together; here {len(new.constraints)} + {len(workload.placement_constraints)}")


MAX_DESIRED_COUNT_STEPS = 1_000_000  # changes of one service's desired count over a run


def _check_desired_count_steps(model: Scenario, context: _Context) -> None:
    """A repeating schedule or a diurnal desired count changes the count a bounded number of times per
    period; refuse a run that would schedule more than MAX_DESIRED_COUNT_STEPS changes for one service."""
    for i, workload in enumerate(model.workloads):
        schedule = getattr(workload, "schedule", None)
        curve = getattr(getattr(workload, "desired_count", None), "diurnal", None)
        if getattr(schedule, "repeat", None) is not None:
            where, period, per_period = f"workloads[{i}].schedule.repeat", schedule.repeat, len(schedule.steps)
        elif curve is not None:
            where, period, per_period = f"workloads[{i}].desired_count.diurnal.period", curve.period, 2 * (
                curve.peak - curve.trough)
        else:
            continue
        steps = math.ceil(model.duration / period) * per_period
        if steps > MAX_DESIRED_COUNT_STEPS:
            raise context.error(where, f"changes the desired count {steps:,} times over the run; the limit is "
                                f"{MAX_DESIRED_COUNT_STEPS:,} (use a longer period)")
