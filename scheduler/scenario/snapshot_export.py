"""A finished run as a cluster snapshot: the AWS CLI describe outputs a real cluster in the run's end state
would print, written to a folder that a scenario's ``snapshot:`` reads back.

``describe_container_instances.json`` and ``describe_tasks.json`` of the results folder are copied (tasks
that hold nothing, STOPPED or still PROVISIONING, are left out). What the results do not hold is derived:

- task definitions: with the run's scenario, its own task-definition JSON, matched by family and revision;
  without it, one rebuilt from the tasks (CPU, memory, containers, and the Neuron devices the containers
  hold: ``NeuronDevice ALL`` for a Managed Instances task holding every chip, else those device paths);
- services: one per ``service:<name>`` task group, desired count = its tasks still wanted (RUNNING and
  waiting), with the scenario's placement strategy and constraints when the scenario is given;
- capacity providers: one per ``capacityProviderName`` on the instances (the scenario's settings when
  given; otherwise Managed Instances if any of its tasks runs with that launch type, else Auto Scaling).

Every file is checked against botocore's output shape, and the whole is read back with
:func:`~scheduler.scenario.snapshot.read_snapshot` before any file takes its place in the folder.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scheduler.catalog import Catalog
from scheduler.ecs import botocore_model
from scheduler.errors import ScenarioError
from scheduler.output import write_json
from scheduler.results_folder import ResultsFolder
from scheduler.scenario.snapshot import HOLDING, TASKDEF_PREFIX, read_snapshot, task_definition_key

WAITING = frozenset({"PROVISIONING"})


def _load(file: Path, name: str) -> dict[str, Any]:
    if not file.is_file():
        raise ScenarioError(f"no {name}: give a folder written by `neuron-sim run`", file=str(file.parent))
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"cannot read: {exc}", file=str(file)) from None
    if not isinstance(doc, dict):
        raise ScenarioError("not a describe output (a JSON object)", file=str(file), path="$")
    return doc


def _scenario_documents(scenario: Any) -> dict[str, dict[str, Any]]:
    """family:revision -> the scenario's own task-definition document (as RegisterTaskDefinition takes it)."""
    out: dict[str, dict[str, Any]] = {}
    base = Path(scenario.path).parent
    for name, source in scenario.model.task_definitions.items():
        doc = json.loads((base / source).read_text(encoding="utf-8-sig")) if isinstance(source, str) else dict(source)
        inner = dict(doc["taskDefinition"]) if isinstance(doc.get("taskDefinition"), Mapping) else doc
        spec = scenario.task_specs[name]
        out[f"{spec.family}:{spec.revision or 1}"] = inner
    for name, document in getattr(scenario, "generated_task_definitions", {}).items():  # device sets' blocks
        spec = scenario.task_specs[name]
        out[f"{spec.family}:{spec.revision or 1}"] = document
    return out


def _taskdef_output(key: str, arn: str, document: Mapping[str, Any]) -> dict[str, Any]:
    family, revision = key.rsplit(":", 1)
    inner = {k: v for k, v in document.items() if k != "tags"}
    inner.update({"taskDefinitionArn": arn, "family": family, "revision": int(revision), "status": "ACTIVE"})
    inner.setdefault("requiresCompatibilities", ["EC2"])
    inner["compatibilities"] = list(inner["requiresCompatibilities"])
    return {"taskDefinition": inner, "tags": list(document.get("tags") or [])}


def _derived_taskdef(tasks: list[dict[str, Any]], chips_of_instance: Mapping[str, list[str]]) -> dict[str, Any]:
    """A task definition rebuilt from the tasks that run it (what placement needs, nothing more)."""
    first = tasks[0]
    launch = first.get("launchType") or "EC2"
    containers = []
    for c in first.get("containers") or []:
        definition: dict[str, Any] = {"name": c["name"], "image": c.get("image") or "unknown", "essential": True,
                                      "cpu": int(c.get("cpu") or 0)}
        for key, member in (("memory", "memory"), ("memoryReservation", "memoryReservation")):
            if c.get(member):
                definition[key] = int(c[member])
        ids = c.get("neuronDeviceIds") or []
        every = chips_of_instance.get(first.get("containerInstanceArn") or "", [])
        if ids and launch == "MANAGED_INSTANCES" and sorted(ids) == sorted(every):
            definition["resourceRequirements"] = [{"type": "NeuronDevice", "value": "ALL"}]
        elif ids:
            definition["linuxParameters"] = {"devices": [
                {"hostPath": f"/dev/neuron{i}", "containerPath": f"/dev/neuron{i}", "permissions": ["read", "write"]}
                for i in sorted(ids, key=int)]}
        if c.get("gpuIds"):
            definition["resourceRequirements"] = [{"type": "GPU", "value": str(len(c["gpuIds"]))}]
        containers.append(definition)
    doc: dict[str, Any] = {"containerDefinitions": containers, "requiresCompatibilities": [launch],
                           "networkMode": "awsvpc" if launch == "MANAGED_INSTANCES" else "bridge"}
    for key in ("cpu", "memory"):
        if first.get(key):
            doc[key] = str(first[key])
    return doc


def _services(tasks: list[dict[str, Any]], scenario: Any, cluster_arn: str) -> list[dict[str, Any]]:
    by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in tasks:
        group = t.get("group") or ""
        if group.startswith("service:") and t.get("desiredStatus") == "RUNNING":
            by_service[group.removeprefix("service:")].append(t)
    workloads = {w.name: w for w in scenario.model.workloads} if scenario is not None else {}
    blocks_of = {f"{name}-{label}": name for name, blocks in (getattr(scenario, "device_sets", None) or {}).items()
                 for label, _ in blocks}  # device sets: one service per block, with distinctInstance
    workloads.update({block: workloads[name] for block, name in blocks_of.items()})
    out = []
    for name, mine in sorted(by_service.items()):
        arn = Counter(t["taskDefinitionArn"] for t in mine).most_common(1)[0][0]
        service: dict[str, Any] = {
            "serviceArn": cluster_arn.replace(":cluster/", ":service/") + f"/{name}", "serviceName": name,
            "clusterArn": cluster_arn, "status": "ACTIVE", "desiredCount": len(mine),
            "runningCount": sum(t.get("lastStatus") == "RUNNING" for t in mine),
            "pendingCount": sum(t.get("lastStatus") == "PENDING" for t in mine), "taskDefinition": arn,
            "schedulingStrategy": "REPLICA",
        }
        providers = sorted({t["capacityProviderName"] for t in mine if t.get("capacityProviderName")})
        workload = workloads.get(name)
        if workload is not None and workload.capacity_provider_strategy:
            service["capacityProviderStrategy"] = [
                {"capacityProvider": i.capacity_provider, "weight": i.weight, "base": i.base}
                for i in workload.capacity_provider_strategy]
        elif providers and (workload is None or workload.launch_type is None):
            service["capacityProviderStrategy"] = [{"capacityProvider": p, "weight": 1, "base": 0} for p in providers]
        else:
            service["launchType"] = mine[0].get("launchType") or "EC2"
        if workload is not None:
            if workload.scheduling_strategy == "DAEMON":
                service["schedulingStrategy"] = "DAEMON"
            elif workload.placement_strategy:
                service["placementStrategy"] = [{k: v for k, v in (("type", s.type), ("field", s.field)) if v}
                                                for s in workload.placement_strategy]
            constraints = [{k: v for k, v in (("type", c.type), ("expression", c.expression)) if v}
                           for c in workload.placement_constraints]
            if name in blocks_of and {"type": "distinctInstance"} not in constraints:
                constraints.append({"type": "distinctInstance"})
            if constraints:
                service["placementConstraints"] = constraints
            if getattr(workload, "healthy_bounds", None) is not None:
                low, high = workload.healthy_bounds
                service["deploymentConfiguration"] = {"minimumHealthyPercent": low, "maximumPercent": high}
                if workload.scheduling_strategy != "DAEMON":
                    service["availabilityZoneRebalancing"] = "ENABLED" if workload.rebalances else "DISABLED"
        out.append(service)
    return out


def _providers(instances: list[dict[str, Any]], tasks: list[dict[str, Any]], scenario: Any,
               cluster_arn: str) -> list[dict[str, Any]]:
    names = sorted({i["capacityProviderName"] for i in instances if i.get("capacityProviderName")})
    models = {p.name: p for p in scenario.model.cluster.capacity_providers} if scenario is not None else {}
    managed = {t.get("capacityProviderName") for t in tasks if t.get("launchType") == "MANAGED_INSTANCES"}
    prefix = cluster_arn.split(":cluster/")[0]
    account = prefix.split(":")[4]
    out = []
    for name in names:
        model = models.get(name)
        kind = model.type if model is not None else ("MANAGED_INSTANCES" if name in managed else "EC2_AUTOSCALING")
        entry: dict[str, Any] = {"capacityProviderArn": f"{prefix}:capacity-provider/{name}", "name": name,
                                 "status": "ACTIVE", "type": kind}
        if kind == "EC2_AUTOSCALING":
            scaling = getattr(model, "managed_scaling", None)
            entry["autoScalingGroupProvider"] = {
                "autoScalingGroupArn": f"arn:aws:autoscaling:{prefix.split(':')[3]}:{account}:autoScalingGroup:"
                                       f"00000000-0000-0000-0000-000000000000:autoScalingGroupName/{name}",
                "managedScaling": {"status": scaling.status if scaling else "ENABLED",
                                   "targetCapacity": scaling.target_capacity if scaling else 100},
                "managedTerminationProtection": "ENABLED" if getattr(model, "managed_termination_protection", False)
                else "DISABLED"}
        else:
            template: dict[str, Any] = {
                "ec2InstanceProfileArn": f"arn:aws:iam::{account}:instance-profile/ecsInstanceRole",
                "networkConfiguration": {"subnets": []}}
            requirements = getattr(model, "instance_requirements", None)
            if requirements:
                template["instanceRequirements"] = requirements
            entry["managedInstancesProvider"] = {
                "infrastructureRoleArn": f"arn:aws:iam::{account}:role/ecsInfrastructureRole",
                "instanceLaunchTemplate": template}
        out.append(entry)
    return out


def _checked(command: str, payload: dict[str, Any], file: Path) -> dict[str, Any]:
    issues = botocore_model.validate_cli_output(command, payload)
    if issues:
        raise ScenarioError(f"the derived {command} output breaks botocore's shape: {issues[0].message}",
                            file=str(file), path=issues[0].path)
    return payload


def snapshot_from_results(results: Path, out: Path, catalog: Catalog, *, scenario: Any = None,
                          force: bool = False) -> list[Path]:
    """Write a snapshot folder for the end state of the run in ``results``; returns the files written."""
    results = Path(results)
    instances_doc = _load(results / "describe_container_instances.json", "describe_container_instances.json")
    tasks_doc = _load(results / "describe_tasks.json", "describe_tasks.json")
    for command, doc, name in (("describe-container-instances", instances_doc, "describe_container_instances.json"),
                               ("describe-tasks", tasks_doc, "describe_tasks.json")):
        _checked(command, doc, results / name)
    instances = list(instances_doc.get("containerInstances") or [])
    every_task = list(tasks_doc.get("tasks") or [])
    holding = [t for t in every_task if t.get("lastStatus") in HOLDING]
    wanted = [t for t in every_task if t.get("lastStatus") in HOLDING | WAITING]
    cluster_arn = next((t["clusterArn"] for t in every_task if t.get("clusterArn")), None)
    if cluster_arn is None:
        arn = instances[0]["containerInstanceArn"] if instances else "arn:aws:ecs:us-east-1:123456789012:x/default/"
        cluster_arn = arn.split(":container-instance/")[0] + ":cluster/" + arn.rsplit("/", 2)[-2]
    chips_of_instance = {
        i["containerInstanceArn"]: next((r.get("stringSetValue") or [] for r in i.get("registeredResources") or []
                                         if r.get("name") == "NEURON_DEVICES"), [])
        for i in instances}
    own_docs = _scenario_documents(scenario) if scenario is not None else {}
    by_definition: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in wanted:
        by_definition[t["taskDefinitionArn"]].append(t)
    files: dict[str, dict[str, Any]] = {
        "describe-container-instances.json": {"containerInstances": instances, "failures": []},
        "describe-tasks.json": {"tasks": holding, "failures": []},
    }
    for arn, tasks in sorted(by_definition.items()):
        key = (task_definition_key(arn) or "").removeprefix(TASKDEF_PREFIX)
        document = own_docs.get(key) or _derived_taskdef(tasks, chips_of_instance)
        files[f"describe-task-definition-{key.replace(':', '-')}.json"] = _taskdef_output(key, arn, document)
    files["describe-services.json"] = {"services": _services(wanted, scenario, cluster_arn), "failures": []}
    files["describe-capacity-providers.json"] = {
        "capacityProviders": _providers(instances, every_task, scenario, cluster_arn), "failures": []}
    for name, payload in files.items():
        _checked(_command_of(name), payload, out / name)
    # written into a staging folder and read back before it replaces ``out`` whole: a folder that would
    # not load is never left behind, and no file is half written
    with ResultsFolder(out, "snapshot", force=force) as folder:
        for name, payload in files.items():
            write_json(folder.staging / name, payload)
        read_snapshot(folder.staging, catalog)
        folder.commit()
    return [out / name for name in files]


def _command_of(file_name: str) -> str:
    command = file_name.removesuffix(".json")
    return "describe-task-definition" if command.startswith("describe-task-definition") else command
