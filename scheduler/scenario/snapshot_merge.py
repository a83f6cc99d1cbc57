"""Folding a cluster snapshot into a scenario: its task definitions join ``task_definitions``, its services
the workloads, its capacity providers the cluster (unless the scenario defines one of the same name)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from scheduler.errors import ScenarioError
from scheduler.scenario.cluster import AutoScalingCapacityProvider, ManagedInstancesCapacityProvider
from scheduler.scenario.snapshot_model import ClusterSnapshot, SnapshotProvider
from scheduler.scenario.workloads import ServiceWorkload


def _synthesized_provider(provider: SnapshotProvider, snapshot: ClusterSnapshot) -> dict[str, Any] | None:
    """A scenario capacity provider for a snapshot one the scenario does not define.

    ECS's describe output has no Auto Scaling group size limits: the group keeps its current instances as
    its maximum (managed scaling may scale in empty ones, as ECS would). A group with no instance in the
    snapshot is left out (its instance types are unknown).
    """
    own = [i for i in snapshot.instances if i.capacity_provider == provider.name]
    if provider.type == "MANAGED_INSTANCES":
        out: dict[str, Any] = {"name": provider.name, "type": "MANAGED_INSTANCES"}
        if provider.instance_requirements:
            out["instance_requirements"] = provider.instance_requirements
        return out
    if not own:
        return None
    scaling = provider.managed_scaling
    managed = {"status": scaling.get("status", "ENABLED")}
    if scaling.get("targetCapacity"):
        managed["target_capacity"] = scaling["targetCapacity"]
    protection = provider.managed_termination_protection and managed["status"] == "ENABLED"
    return {"name": provider.name, "type": "EC2_AUTOSCALING", "instance_types": sorted({i.instance_type for i in own}),
            "min_size": 0, "max_size": len(own), "desired_capacity": 0, "managed_scaling": managed,
            "managed_termination_protection": protection}


def apply_snapshot(model: Any, snapshot: ClusterSnapshot) -> Any:
    """The scenario model with the snapshot's task definitions, services and capacity providers added."""
    names = {w.name: i for i, w in enumerate(model.workloads)}
    services = []
    for svc in snapshot.services:
        if svc.name in names:
            raise ScenarioError(f"workload name {svc.name!r} is also a service of the snapshot ({svc.where}); "
                                "rename the what-if workload", path=f"workloads[{names[svc.name]}].name")
        try:
            services.append(ServiceWorkload.model_validate(svc.workload))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ScenarioError(f"service {svc.name!r} cannot be simulated: {where}: {err['msg']}",
                                file=svc.where.split(": ", 1)[0], path=svc.where.split(": ", 1)[1]) from None
    defined = {p.name for p in model.cluster.capacity_providers}
    providers = list(model.cluster.capacity_providers)
    for provider in snapshot.providers:
        if provider.name in defined:
            continue
        data = _synthesized_provider(provider, snapshot)
        if data is None:
            continue
        kind = AutoScalingCapacityProvider if data["type"] == "EC2_AUTOSCALING" else ManagedInstancesCapacityProvider
        try:
            providers.append(kind.model_validate(data))
        except ValidationError as exc:
            raise ScenarioError(f"capacity provider {provider.name!r} cannot be simulated: "
                                f"{exc.errors()[0]['msg']}", file=str(snapshot.folder)) from None
    cluster_update: dict[str, Any] = {"capacity_providers": providers}
    if "name" not in model.cluster.model_fields_set and snapshot.cluster:
        cluster_update["name"] = snapshot.cluster
    return model.model_copy(update={
        "task_definitions": {**model.task_definitions, **snapshot.task_definitions},
        "workloads": [*services, *model.workloads],
        "cluster": model.cluster.model_copy(update=cluster_update),
    })
