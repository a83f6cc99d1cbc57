"""Workloads with ``device_sets``: their one manual-mode task definition spread over the aligned device
blocks of an instance type (see :mod:`scheduler.ecs.device_sets`), checked and resolved at load time.

The generated task definitions join the scenario's task specs under their own family names
(``<family>-neuron2-3``), so a run treats them exactly as task definitions the user wrote. What each
workload becomes is returned as ``(block label, task-definition name)`` pairs in block order; the
simulation runs one ECS service per block for a service (named ``<service>-<label>``, its desired count
split with :func:`~scheduler.ecs.device_sets.split_count`) and sends a RunTask workload's calls to the
blocks in turn. Each block's tasks carry a ``distinctInstance`` constraint (their group is the block's
service, or the block's task-definition family for RunTask), as an ECS user adds it: ECS does not track
devices, and without it could place two tasks naming the same chips on one instance.
"""

from __future__ import annotations

from typing import Any

from scheduler.catalog import Catalog, InstanceType
from scheduler.ecs.device_sets import DeviceSetError, constrained_instance_type, expand, uncovered_chips
from scheduler.ecs.taskspec import TaskSpec
from scheduler.errors import CatalogError
from scheduler.scenario.context import _Context
from scheduler.scenario.limits import MAX_CONSTRAINTS, MAX_NAME
from scheduler.scenario.models import Scenario
from scheduler.scenario.workloads import RunTaskWorkload, ServiceWorkload, TraceArrivals

DeviceSetPlan = tuple[tuple[str, str], ...]  # (block label, task-definition name) per block, in block order


def resolve_device_sets(model: Scenario, specs: dict[str, TaskSpec], documents: dict[str, dict[str, Any]],
                        catalog: Catalog, context: _Context) -> tuple[dict[str, DeviceSetPlan], list[str]]:
    """Every device-set workload's blocks; adds the generated task definitions to ``specs`` and their
    RegisterTaskDefinition input to ``documents``. Returns the plans by workload name and one notice per
    workload whose blocks leave chips unused."""
    plans: dict[str, DeviceSetPlan] = {}
    notices: list[str] = []
    names = {w.name for w in model.workloads}
    for i, workload in enumerate(model.workloads):
        if workload.device_sets is None:
            continue
        where = f"workloads[{i}].device_sets"
        if isinstance(workload, RunTaskWorkload) and isinstance(workload.arrivals, TraceArrivals):
            raise context.error(where, "does not go with trace arrivals: the trace names each call's task "
                                "definition")
        template = workload.task_definition
        itype = _instance_type(model, workload, specs[template], catalog, where, context)
        try:
            sets = expand(documents[template], specs[template], itype)
        except DeviceSetError as exc:
            raise context.error(where, f"task definition {template!r}: {exc.message}") from None
        if not any(c.type == "distinctInstance" for c in workload.placement_constraints):
            total = len(sets[0].spec.constraints) + len(workload.placement_constraints) + 1
            if total > MAX_CONSTRAINTS:
                raise context.error(where, f"each block's tasks get a distinctInstance constraint, which makes "
                                    f"{total} placement constraints (task definition and request); ECS allows "
                                    f"{MAX_CONSTRAINTS}")
        plan = []
        for block in sets:
            name = block.family
            if name in model.task_definitions:
                raise context.error(where, f"the task definition generated for block {block.label} would be "
                                    f"named {name!r}, which task_definitions already uses")
            specs[name] = block.spec
            documents[name] = block.document
            plan.append((block.label, name))
            if isinstance(workload, ServiceWorkload):
                _check_service_name(f"{workload.name}-{block.label}", names, where, context)
        plans[workload.name] = tuple(plan)
        left = uncovered_chips(len(sets[0].chips), itype)
        if left:
            notices.append(f"{context.file}: {where}: {itype.name} has {itype.chips} chips; blocks of "
                           f"{len(sets[0].chips)} leave {', '.join(f'neuron{c}' for c in left)} unused")
    return plans, notices


def _instance_type(model: Scenario, workload: RunTaskWorkload | ServiceWorkload, spec: TaskSpec, catalog: Catalog,
                   where: str, context: _Context) -> InstanceType:
    options = workload.device_sets
    if options != "auto":
        try:
            return catalog.get(options.instance_type)  # type: ignore[union-attr]
        except CatalogError as exc:
            raise context.error(f"{where}.instance_type", exc.message) from None
    named = constrained_instance_type(spec)
    if named is not None and named in catalog:
        return catalog.get(named)
    candidates = sorted({catalog.get(name).name for name in _cluster_types(model) if name in catalog
                         and catalog.get(name).is_neuron})
    if len(candidates) == 1:
        return catalog.get(candidates[0])
    found = f"the cluster has {', '.join(candidates)}" if candidates else "the cluster has no Neuron instance type"
    raise context.error(where, f"'auto' cannot tell which instance type to spread task definition "
                        f"{workload.task_definition!r} over: it has no memberOf attribute:ecs.instance-type == "
                        f"constraint and {found}; write device_sets: {{instance_type: ...}}")


def _cluster_types(model: Scenario) -> list[str]:
    """Instance types named by the cluster's fleets and Auto Scaling groups."""
    names = [fleet.instance_type for fleet in model.cluster.fleets]
    for provider in model.cluster.capacity_providers:
        names += list(getattr(provider, "instance_types", ()) or ())
    return names


def _check_service_name(name: str, taken: set[str], where: str, context: _Context) -> None:
    if len(name) > MAX_NAME:
        raise context.error(where, f"the service for a block would be named {name[:40]!r}..., longer than "
                            f"ECS's {MAX_NAME} characters; shorten the workload name")
    if name in taken:
        raise context.error(where, f"the service for a block would be named {name!r}, which another workload "
                            "already uses")
