"""Reading the files of a cluster snapshot and each of its parts (task definitions, capacity providers,
container instances, tasks, services), and checking what the instances' tasks hold against what the
instances say remains. Every problem is a ScenarioError naming the file and the JSON path."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scheduler.catalog import Catalog
from scheduler.ecs import botocore_model
from scheduler.ecs.taskdef import load_task_definition, parse_cpu, parse_memory
from scheduler.ecs.taskspec import NeuronMode, TaskSpec
from scheduler.errors import CatalogError, ScenarioError, TaskDefinitionError, show_value
from scheduler.scenario.snapshot_model import (
    MAX_CHIP_INDEX,
    TASKDEF_PREFIX,
    SnapshotInstance,
    SnapshotProvider,
    SnapshotService,
    SnapshotTask,
    task_definition_key,
)

# --- reading files ------------------------------------------------------------------------------------

def snapshot_files(folder: Path, command: str) -> list[Path]:
    """The files of one AWS CLI command in the folder: ``<command>*.json`` (or with underscores)."""
    found = {*folder.glob(f"{command}*.json"), *folder.glob(f"{command.replace('-', '_')}*.json")}
    if command == "describe-tasks":  # describe-task-definition* is another command
        found = {f for f in found if not f.name.replace("_", "-").startswith("describe-task-definition")}
    return sorted(found)


def read_file(file: Path, command: str) -> dict[str, Any]:
    label = str(file)
    try:
        text = file.read_bytes().decode("utf-8-sig")
        doc = json.loads(text)
    except OSError as exc:
        raise ScenarioError(f"cannot read the file: {exc.strerror or exc}", file=label) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text (byte {exc.start})", file=label) from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}", file=label) from None
    except (RecursionError, ValueError):
        raise ScenarioError("not valid JSON (nested too deeply or a number too long)", file=label) from None
    if not isinstance(doc, Mapping):
        raise ScenarioError(f"expected the JSON object `aws ecs {command} --output json` prints, not "
                            f"{type(doc).__name__}", file=label, path="$")
    issues = botocore_model.validate_cli_output(command, doc)
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise ScenarioError(f"{issues[0].message}{more}; not what `aws ecs {command} --output json` prints",
                            file=label, path=issues[0].path)
    return dict(doc)


def items(folder: Path, command: str, member: str) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    """(file, JSON path, item) for every item of ``member`` in every file of ``command``."""
    for file in snapshot_files(folder, command):
        doc = read_file(file, command)
        for k, item in enumerate(doc.get(member) or []):
            yield str(file), f"$.{member}[{k}]", item


def fail(file: str, path: str, message: str) -> ScenarioError:
    return ScenarioError(message, file=file, path=path)


# --- small readers --------------------------------------------------------------------------------------

def _resources(items: list[Mapping[str, Any]] | None) -> dict[str, tuple[int, Mapping[str, Any]]]:
    """name -> (index in the list, resource)."""
    return {r["name"]: (k, r) for k, r in enumerate(items or []) if "name" in r}


def _integer(resources: Mapping[str, tuple[int, Mapping[str, Any]]], name: str, file: str, path: str,
             member: str) -> int | None:
    hit = resources.get(name)
    if hit is None:
        return None
    k, res = hit
    # the CLI prints all three members; the resource's type says which one holds the amount
    first = {"LONG": "longValue", "DOUBLE": "doubleValue"}.get(str(res.get("type")), "integerValue")
    for key in dict.fromkeys((first, "integerValue", "longValue", "doubleValue")):
        value = res.get(key)
        if value is not None:
            if value < 0 or value != int(value):
                raise fail(file, f"{path}.{member}[{k}].{key}", f"{name} must be a whole number of at least 0, "
                            f"got {show_value(value)}")
            return int(value)
    raise fail(file, f"{path}.{member}[{k}]", f"{name} has no integerValue")


def _string_set(resources: Mapping[str, tuple[int, Mapping[str, Any]]], name: str) -> tuple[list[str], int] | None:
    hit = resources.get(name)
    if hit is None:
        return None
    k, res = hit
    return list(res.get("stringSetValue") or []), k


def _chip_indices(values: Iterable[str], file: str, path: str) -> tuple[int, ...]:
    chips: list[int] = []
    for j, value in enumerate(values):
        text = str(value).removeprefix("/dev/neuron")
        if not text.isdigit() or int(text) > MAX_CHIP_INDEX:
            raise fail(file, f"{path}[{j}]", f"a Neuron device id is a chip number such as \"0\" (or "
                        f"/dev/neuron0), got {show_value(value)}")
        if int(text) in chips:
            raise fail(file, f"{path}[{j}]", f"Neuron device {text} is listed twice")
        chips.append(int(text))
    return tuple(sorted(chips))


# --- the parts ---------------------------------------------------------------------------------------------

def read_task_definitions(folder: Path) -> tuple[dict[str, dict[str, Any]], dict[str, TaskSpec]]:
    docs: dict[str, dict[str, Any]] = {}
    specs: dict[str, TaskSpec] = {}
    for file in snapshot_files(folder, "describe-task-definition"):
        label = str(file)
        doc = read_file(file, "describe-task-definition")
        inner = doc.get("taskDefinition")
        if not isinstance(inner, Mapping):
            raise fail(label, "$.taskDefinition", "missing: a describe-task-definition output holds one "
                        "taskDefinition")
        if "family" not in inner or "revision" not in inner:
            raise fail(label, "$.taskDefinition", "needs family and revision, as describe-task-definition "
                        "prints them")
        key = f"{TASKDEF_PREFIX}{inner['family']}:{inner['revision']}"
        try:
            spec = load_task_definition(doc, file=label)
        except TaskDefinitionError as exc:
            issue = exc.issues[0]
            raise fail(label, issue.path, issue.message) from None
        if key in docs and docs[key]["taskDefinition"] != inner:
            raise fail(label, "$.taskDefinition", f"{key.removeprefix(TASKDEF_PREFIX)} is also in another "
                        "file, with different contents")
        docs[key] = {"taskDefinition": dict(inner)}
        specs[key] = spec
    return docs, specs


def read_providers(folder: Path) -> tuple[dict[str, SnapshotProvider], int]:
    providers: dict[str, SnapshotProvider] = {}
    fargate = 0
    for file, path, cp in items(folder, "describe-capacity-providers", "capacityProviders"):
        name = cp.get("name")
        if not name:
            raise fail(file, f"{path}", "a capacity provider needs its name")
        if name in providers:
            raise fail(file, f"{path}.name", f"capacity provider {name!r} is listed twice")
        if cp.get("status", "ACTIVE") != "ACTIVE":
            continue
        asg, mi = cp.get("autoScalingGroupProvider"), cp.get("managedInstancesProvider")
        if asg:
            providers[name] = SnapshotProvider(name, "EC2_AUTOSCALING", dict(asg.get("managedScaling") or {}),
                                               asg.get("managedTerminationProtection") == "ENABLED", None)
        elif mi:
            template = mi.get("instanceLaunchTemplate") or {}
            requirements = template.get("instanceRequirements")
            providers[name] = SnapshotProvider(name, "MANAGED_INSTANCES", {}, False,
                                               dict(requirements) if requirements else None)
        else:
            fargate += 1  # FARGATE, FARGATE_SPOT: no container instances
    return providers, fargate


def read_instance(file: str, path: str, ci: Mapping[str, Any], catalog: Catalog,
              providers: Mapping[str, SnapshotProvider], has_provider_file: bool) -> SnapshotInstance:
    arn = ci.get("containerInstanceArn")
    if not arn:
        raise fail(file, path, "a container instance needs its containerInstanceArn")
    attributes = {a["name"]: a.get("value", "") for a in ci.get("attributes") or [] if "name" in a}
    names = [a.get("name") for a in ci.get("attributes") or []]
    type_name = attributes.get("ecs.instance-type")
    if not type_name:
        raise fail(file, f"{path}.attributes", "no ecs.instance-type attribute: the instance type is read from "
                    "it (the ECS agent sets it on every EC2 container instance)")
    where_type = f"{path}.attributes[{names.index('ecs.instance-type')}].value"
    try:
        itype = catalog.get(type_name)
    except CatalogError as exc:
        raise fail(file, where_type, exc.message) from None
    zone = attributes.get("ecs.availability-zone")
    if not zone:
        raise fail(file, f"{path}.attributes", "no ecs.availability-zone attribute")
    provider_name = ci.get("capacityProviderName")
    launch = "EC2"
    if provider_name:
        provider = providers.get(provider_name)
        if provider is None and has_provider_file:
            raise fail(file, f"{path}.capacityProviderName", f"capacity provider {provider_name!r} is not in "
                        "describe-capacity-providers")
        if provider is not None and provider.type == "MANAGED_INSTANCES":
            launch = "MANAGED_INSTANCES"
    if launch not in itype.launch_types:
        raise fail(file, where_type, f"{itype.name} is not offered with launch type {launch}")
    registered = _resources(ci.get("registeredResources"))
    remaining = _resources(ci.get("remainingResources"))
    values: dict[str, int] = {}
    for name in ("CPU", "MEMORY"):
        reg = _integer(registered, name, file, path, "registeredResources")
        rem = _integer(remaining, name, file, path, "remainingResources")
        if reg is None:
            raise fail(file, f"{path}.registeredResources", f"no {name} resource")
        if rem is not None and rem > reg:
            k = remaining[name][0]
            raise fail(file, f"{path}.remainingResources[{k}]", f"remaining {name} {rem} is more than the "
                        f"{reg} registered")
        values[name] = reg
        values[f"free {name}"] = reg if rem is None else rem
    if values["CPU"] > itype.registered_cpu:
        raise fail(file, f"{path}.registeredResources[{registered['CPU'][0]}]", f"registers {values['CPU']} CPU "
                    f"units; an {itype.name} has {itype.registered_cpu}")
    if values["MEMORY"] > itype.memory_mib:
        raise fail(file, f"{path}.registeredResources[{registered['MEMORY'][0]}]", f"registers "
                    f"{values['MEMORY']} MiB; an {itype.name} has {itype.memory_mib}")
    chips = tuple(range(itype.chips))
    neuron = _string_set(registered, "NEURON_DEVICES")
    if neuron is not None:
        where = f"{path}.registeredResources[{neuron[1]}].stringSetValue"
        chips = _chip_indices(neuron[0], file, where)
        beyond = [c for c in chips if c >= itype.chips]
        if beyond:
            raise fail(file, where, f"an {itype.name} has {itype.chips} Neuron chip(s); /dev/neuron{beyond[0]} "
                        "is not one of them")
    gpus = _string_set(registered, "GPU")
    gpu_ids = tuple(gpus[0]) if gpus is not None else ()
    if gpus is not None and len(gpu_ids) != itype.gpus:
        raise fail(file, f"{path}.registeredResources[{gpus[1]}]", f"registers {len(gpu_ids)} GPU(s); an "
                    f"{itype.name} has {itype.gpus}")
    for name, have in (("NEURON_DEVICES", {str(c) for c in chips}), ("GPU", set(gpu_ids))):
        rem_set = _string_set(remaining, name)
        if rem_set is None:
            continue
        extra = [v for v in rem_set[0] if str(v).removeprefix("/dev/neuron") not in have and v not in have]
        if extra:
            raise fail(file, f"{path}.remainingResources[{rem_set[1]}].stringSetValue", f"remaining {name} "
                        f"lists {show_value(extra[0])}, which the instance does not register")
    ec2_id = ci.get("ec2InstanceId") or arn.rsplit("/", 1)[-1]
    return SnapshotInstance(
        arn=arn, ec2_instance_id=ec2_id, instance_type=itype.name, availability_zone=zone, attributes=attributes,
        status=ci.get("status", "ACTIVE"), agent_connected=bool(ci.get("agentConnected", True)),
        agent_version=(ci.get("versionInfo") or {}).get("agentVersion") or "1.90.0",
        capacity_provider=provider_name, launch_type=launch, cpu=values["CPU"], memory=values["MEMORY"],
        gpu_ids=gpu_ids, gpus=itype.gpus, chips=chips, where=f"{file}: {path}")


def _task_chips(task: Mapping[str, Any], spec: TaskSpec, inst: SnapshotInstance, file: str,
                path: str) -> tuple[int, ...]:
    listed: list[int] = []
    seen_ids = False
    for j, c in enumerate(task.get("containers") or []):
        ids = c.get("neuronDeviceIds")
        if ids is None:
            continue
        seen_ids = True
        where = f"{path}.containers[{j}].neuronDeviceIds"
        for chip in _chip_indices(ids, file, where):
            if chip in listed:
                raise fail(file, where, f"/dev/neuron{chip} is held by two containers of the task")
            if chip not in inst.chips:
                raise fail(file, where, f"/dev/neuron{chip} is not a Neuron device of {inst.ec2_instance_id} "
                            f"({inst.instance_type} registers {len(inst.chips)})")
            listed.append(chip)
    if seen_ids:
        return tuple(sorted(listed))
    if spec.neuron_mode is NeuronMode.MANUAL:
        missing = [c for c in spec.chips if c not in inst.chips]
        if missing:
            raise fail(file, f"{path}.taskDefinitionArn", f"the task definition names /dev/neuron{missing[0]}, "
                       f"which {inst.ec2_instance_id} ({inst.instance_type}) does not have: ECS could not have "
                       "started this task there")
        return spec.chips
    if spec.neuron_mode is NeuronMode.MANAGED:
        return inst.chips
    return ()


def read_task(file: str, path: str, task: Mapping[str, Any], instances: Mapping[str, SnapshotInstance],
          skipped_instances: Mapping[str, str], specs: Mapping[str, TaskSpec]) -> SnapshotTask:
    arn = task.get("taskArn") or ""
    if not arn:
        raise fail(file, path, "a task needs its taskArn")
    instance_arn = task.get("containerInstanceArn")
    if not instance_arn:
        raise fail(file, path, f"task {arn.rsplit('/', 1)[-1]} is {task.get('lastStatus')} but names no "
                    "containerInstanceArn")
    inst = instances.get(instance_arn)
    if inst is None:
        status = skipped_instances.get(instance_arn)
        why = (f"is {status}" if status else "is not in describe-container-instances")
        raise fail(file, f"{path}.containerInstanceArn", f"the task's container instance {why}: "
                    f"{show_value(instance_arn, 120)}")
    key = task_definition_key(task.get("taskDefinitionArn") or "")
    if key is None:
        raise fail(file, f"{path}.taskDefinitionArn", "names no task definition (family:revision)")
    spec = specs.get(key)
    if spec is None:
        raise fail(file, f"{path}.taskDefinitionArn", f"task definition {key.removeprefix(TASKDEF_PREFIX)} is "
                    "not in any describe-task-definition file of the snapshot")
    amounts = {}
    for name, parse, default in (("cpu", parse_cpu, spec.cpu), ("memory", parse_memory, spec.memory)):
        value = task.get(name)
        try:
            amounts[name] = default if value is None else parse(value)
        except ValueError as exc:
            raise fail(file, f"{path}.{name}", str(exc)) from None
    gpu_ids = tuple(g for c in task.get("containers") or [] for g in c.get("gpuIds") or [])
    unknown = [g for g in gpu_ids if inst.gpu_ids and g not in inst.gpu_ids]
    if unknown:
        raise fail(file, f"{path}.containers", f"GPU {show_value(unknown[0])} is not a GPU of "
                    f"{inst.ec2_instance_id}")
    if not gpu_ids and spec.gpus:
        gpu_ids = ("",) * spec.gpus  # held, but the output does not say which
    group = task.get("group") or f"family:{spec.family}"
    service = group.removeprefix("service:") if group.startswith("service:") else None
    return SnapshotTask(
        task_id=arn.rsplit("/", 1)[-1], arn=arn, instance_arn=instance_arn, task_definition=key, group=group,
        started_by=task.get("startedBy"), service=service, cpu=amounts["cpu"], memory=amounts["memory"],
        chips=_task_chips(task, spec, inst, file, path), gpu_ids=gpu_ids, tcp_ports=spec.tcp_ports,
        udp_ports=spec.udp_ports,
        capacity_provider=task.get("capacityProviderName") or inst.capacity_provider)


def check_holdings(instances: Mapping[str, SnapshotInstance], tasks: list[tuple[str, str, SnapshotTask]],
                    remaining: Mapping[str, tuple[str, str, Mapping[str, Any]]]) -> None:
    """No chip, GPU or host port held twice; remaining = registered - what the instance's tasks hold."""
    holders: dict[tuple[str, str, object], str] = {}
    used: dict[str, dict[str, int]] = {arn: {"CPU": 0, "MEMORY": 0, "GPU": 0} for arn in instances}
    chips: dict[str, set[int]] = {arn: set() for arn in instances}
    gpus: dict[str, set[str]] = {arn: set() for arn in instances}
    for file, path, t in tasks:
        inst = instances[t.instance_arn]
        for kind, items in (("chip", t.chips), ("GPU", [g for g in t.gpu_ids if g]), ("TCP port", t.tcp_ports),
                            ("UDP port", t.udp_ports)):
            for item in items:
                other = holders.setdefault((t.instance_arn, kind, item), t.task_id)
                if other != t.task_id:
                    shown = f"/dev/neuron{item}" if kind == "chip" else f"{kind} {item}"
                    raise fail(file, path, f"{shown} on {inst.ec2_instance_id} is held twice: by task {other} "
                                f"and by task {t.task_id}")
        used[t.instance_arn]["GPU"] += len(t.gpu_ids)
        if used[t.instance_arn]["GPU"] > inst.gpus:
            raise fail(file, path, f"the tasks on {inst.ec2_instance_id} hold more GPUs than its {inst.gpus}")
        used[t.instance_arn]["CPU"] += t.cpu
        used[t.instance_arn]["MEMORY"] += t.memory
        chips[t.instance_arn].update(t.chips)
        gpus[t.instance_arn].update(g for g in t.gpu_ids if g)
    for arn, inst in instances.items():
        file, path, rem_list = remaining[arn]
        rem = _resources(rem_list)  # type: ignore[arg-type]
        for name, registered in (("CPU", inst.cpu), ("MEMORY", inst.memory)):
            held = used[arn][name]
            if held > registered:
                raise fail(file, f"{path}.registeredResources", f"the tasks on {inst.ec2_instance_id} hold "
                            f"{held} {name} but it registers {registered}")
            free = _integer(rem, name, file, path, "remainingResources")
            if free is None:
                continue
            k = rem[name][0]
            if free != registered - held:
                raise fail(file, f"{path}.remainingResources[{k}]", f"remaining {name} is {free}, but registered "
                            f"{registered} less the {held} its tasks in describe-tasks hold leaves "
                            f"{registered - held} (describe every task of the cluster: describe-tasks takes "
                            "100 a call; save each call as describe-tasks-N.json)")
        for name, held_set, present in (("NEURON_DEVICES", chips[arn], set(inst.chips)),
                                        ("GPU", gpus[arn], set(inst.gpu_ids))):
            if name not in rem or (name == "GPU" and not inst.gpu_ids):
                continue
            k, res = rem[name]
            free = {str(v).removeprefix("/dev/neuron") for v in res.get("stringSetValue") or []}
            free_set = {int(v) for v in free} if name == "NEURON_DEVICES" else free
            both = sorted(held_set & free_set, key=str)
            if both:
                shown = f"/dev/neuron{both[0]}" if name == "NEURON_DEVICES" else str(both[0])
                raise fail(file, f"{path}.remainingResources[{k}].stringSetValue", f"{shown} is held by a task "
                            f"but listed as remaining {name} on {inst.ec2_instance_id}")
            if name == "GPU" and any(not g for t in tasks for g in t[2].gpu_ids):
                continue  # tasks holding GPUs the output does not name: cannot compare sets
            unheld = sorted(present - free_set - held_set, key=str)
            if unheld:
                shown = f"/dev/neuron{unheld[0]}" if name == "NEURON_DEVICES" else str(unheld[0])
                raise fail(file, f"{path}.remainingResources[{k}].stringSetValue", f"{shown} is not remaining "
                            f"{name} on {inst.ec2_instance_id}, but no task in describe-tasks holds it")


def read_service(file: str, path: str, svc: Mapping[str, Any], specs: Mapping[str, TaskSpec]) -> SnapshotService:
    name = svc.get("serviceName")
    if not name:
        raise fail(file, path, "a service needs its serviceName")
    key = task_definition_key(svc.get("taskDefinition") or "")
    if key is None or key not in specs:
        shown = key.removeprefix(TASKDEF_PREFIX) if key else show_value(svc.get("taskDefinition"))
        raise fail(file, f"{path}.taskDefinition", f"task definition {shown} is not in any "
                    "describe-task-definition file of the snapshot")
    workload: dict[str, Any] = {"kind": "service", "name": name, "task_definition": key}
    if svc.get("schedulingStrategy") == "DAEMON":
        workload["scheduling_strategy"] = "DAEMON"
    else:
        workload["desired_count"] = int(svc.get("desiredCount", 0))
        if svc.get("placementStrategy"):
            workload["placement_strategy"] = [{k: v for k, v in (("type", s.get("type")), ("field", s.get("field")))
                                               if v is not None} for s in svc["placementStrategy"]]
    if svc.get("placementConstraints"):
        workload["placement_constraints"] = [{k: v for k, v in (("type", c.get("type")),
                                                                ("expression", c.get("expression")))
                                              if v is not None} for c in svc["placementConstraints"]]
    if svc.get("capacityProviderStrategy"):
        workload["capacity_provider_strategy"] = [
            {"capacity_provider": item.get("capacityProvider"), "weight": int(item.get("weight", 0)),
             "base": int(item.get("base", 0))} for item in svc["capacityProviderStrategy"]]
    elif svc.get("launchType") in ("EC2", "MANAGED_INSTANCES"):
        workload["launch_type"] = svc["launchType"]
    config = svc.get("deploymentConfiguration")
    for key, field_name in (("minimumHealthyPercent", "minimum_healthy_percent"),
                            ("maximumPercent", "maximum_percent")):
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            workload[field_name] = value
    if svc.get("schedulingStrategy") != "DAEMON":
        # an existing service that never set it is treated as DISABLED (ECS, UpdateService)
        rebalancing = svc.get("availabilityZoneRebalancing")
        workload["availability_zone_rebalancing"] = rebalancing if rebalancing in ("ENABLED", "DISABLED") \
            else "DISABLED"
    return SnapshotService(name, workload, f"{file}: {path}")
