"""A cluster snapshot: the JSON the AWS CLI prints for a real ECS cluster, read into plain values the
simulation starts from.

A snapshot is a folder of files saved with ``--output json``:

- ``describe-container-instances*.json`` (required): the instances, their attributes (instance type from
  ``ecs.instance-type``, zone from ``ecs.availability-zone``), status, registered and remaining resources;
- ``describe-tasks*.json`` (required): the tasks, with the chips their containers' ``neuronDeviceIds`` say
  they hold (without them: the chips their task definition names, or all of them for ``NeuronDevice ALL``),
  and the static host ports their task definition names (dynamic ``networkBindings`` are not reserved);
- ``describe-task-definition*.json``: one file per task definition the tasks and services run;
- ``describe-services*.json``, ``describe-capacity-providers*.json`` (optional).

Several files of one kind are merged (describe-tasks takes at most 100 tasks a call). Underscores instead
of hyphens (``describe_tasks.json``, as a results folder names them) are accepted too.

Every file is checked against botocore's output shape of its command, then the whole is checked for
consistency: a task on an unknown or inactive instance, a task whose task definition is missing, remaining
more than registered, a chip (or GPU, or host port) held twice, an instance type the catalog does not know,
and an instance whose remaining resources do not equal what it registered less what its tasks hold. Each
problem is one :class:`~scheduler.errors.ScenarioError` naming the file and the JSON path.

:func:`apply_snapshot` then folds the snapshot into a scenario: its task definitions join
``task_definitions`` (as ``snapshot/<family>:<revision>``), its services join the workloads (reconciled
like any other service) and its capacity providers the cluster, unless the scenario defines one of the same
name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scheduler.catalog import Catalog
from scheduler.ecs import botocore_model
from scheduler.ecs.taskdef import load_task_definition, parse_cpu, parse_memory
from scheduler.ecs.taskspec import NeuronMode, TaskSpec
from scheduler.errors import CatalogError, ScenarioError, TaskDefinitionError, show_value

REQUIRED = ("describe-container-instances", "describe-tasks")
OPTIONAL = ("describe-task-definition", "describe-services", "describe-capacity-providers")
TASKDEF_PREFIX = "snapshot/"
# Task states that hold resources on their container instance (PROVISIONING is not placed yet).
HOLDING = frozenset({"PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING"})
USABLE_INSTANCE = frozenset({"ACTIVE", "DRAINING"})
MAX_CHIP_INDEX = 63


@dataclass(frozen=True)
class SnapshotInstance:
    """One container instance as the snapshot shows it."""

    arn: str
    ec2_instance_id: str
    instance_type: str
    availability_zone: str
    attributes: dict[str, str]
    status: str
    agent_connected: bool
    agent_version: str
    capacity_provider: str | None
    launch_type: str
    cpu: int                      # registered CPU units
    memory: int                   # registered MiB
    gpu_ids: tuple[str, ...]      # registered GPUs
    chips: tuple[int, ...]        # registered Neuron chips (a failed chip has left)
    where: str                    # file and JSON path, for messages


@dataclass(frozen=True)
class SnapshotTask:
    """One task that holds resources on a container instance."""

    task_id: str
    arn: str
    instance_arn: str
    task_definition: str          # the task_definitions key: snapshot/<family>:<revision>
    group: str
    started_by: str | None
    service: str | None
    cpu: int
    memory: int
    chips: tuple[int, ...]
    gpu_ids: tuple[str, ...]
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...]
    capacity_provider: str | None


@dataclass(frozen=True)
class SnapshotService:
    """One ACTIVE service, as a scenario service workload (the fields of ``ServiceWorkload``)."""

    name: str
    workload: dict[str, Any]
    where: str


@dataclass(frozen=True)
class SnapshotProvider:
    """One capacity provider (FARGATE ones are left out: nothing is placed on instances there)."""

    name: str
    type: str                     # EC2_AUTOSCALING | MANAGED_INSTANCES
    managed_scaling: dict[str, Any]
    managed_termination_protection: bool
    instance_requirements: dict[str, Any] | None


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything read from a snapshot folder, consistent with itself."""

    folder: Path
    cluster: str | None
    instances: tuple[SnapshotInstance, ...]
    tasks: tuple[SnapshotTask, ...]
    services: tuple[SnapshotService, ...]
    providers: tuple[SnapshotProvider, ...]
    task_definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> describe output
    skipped: dict[str, int] = field(default_factory=dict)  # what was left out and why -> how many

    @property
    def chips_held(self) -> int:
        return sum(len(t.chips) for t in self.tasks)

    def summary(self) -> dict[str, Any]:
        """What the snapshot brought into a run, for summary.json."""
        return {"folder": self.folder.name, "instances": len(self.instances), "tasks": len(self.tasks),
                "chips_held": self.chips_held, "services": sorted(s.name for s in self.services),
                "skipped": dict(sorted(self.skipped.items()))}


# --- reading files ------------------------------------------------------------------------------------

def snapshot_files(folder: Path, command: str) -> list[Path]:
    """The files of one AWS CLI command in the folder: ``<command>*.json`` (or with underscores)."""
    found = {*folder.glob(f"{command}*.json"), *folder.glob(f"{command.replace('-', '_')}*.json")}
    if command == "describe-tasks":  # describe-task-definition* is another command
        found = {f for f in found if not f.name.replace("_", "-").startswith("describe-task-definition")}
    return sorted(found)


def _read(file: Path, command: str) -> dict[str, Any]:
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


def _items(folder: Path, command: str, member: str) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    """(file, JSON path, item) for every item of ``member`` in every file of ``command``."""
    for file in snapshot_files(folder, command):
        doc = _read(file, command)
        for k, item in enumerate(doc.get(member) or []):
            yield str(file), f"$.{member}[{k}]", item


def _fail(file: str, path: str, message: str) -> ScenarioError:
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
    for key in ("integerValue", "longValue", "doubleValue"):
        value = res.get(key)
        if value is not None:
            if value < 0 or value != int(value):
                raise _fail(file, f"{path}.{member}[{k}].{key}", f"{name} must be a whole number of at least 0, "
                            f"got {show_value(value)}")
            return int(value)
    raise _fail(file, f"{path}.{member}[{k}]", f"{name} has no integerValue")


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
            raise _fail(file, f"{path}[{j}]", f"a Neuron device id is a chip number such as \"0\" (or "
                        f"/dev/neuron0), got {show_value(value)}")
        if int(text) in chips:
            raise _fail(file, f"{path}[{j}]", f"Neuron device {text} is listed twice")
        chips.append(int(text))
    return tuple(sorted(chips))


def _arn_tail(arn: str, marker: str) -> str | None:
    """The part of an ARN after ``marker``: ``task-definition/`` gives ``family:revision``."""
    at = arn.find(marker)
    return arn[at + len(marker):] if at >= 0 else None


def task_definition_key(arn_or_name: str) -> str | None:
    """``snapshot/<family>:<revision>`` for a task definition ARN (or a bare ``family:revision``)."""
    tail = _arn_tail(arn_or_name, ":task-definition/") if arn_or_name.startswith("arn:") else arn_or_name
    if not tail or ":" not in tail:
        return None
    return TASKDEF_PREFIX + tail


# --- the parts ---------------------------------------------------------------------------------------------

def _task_definitions(folder: Path) -> tuple[dict[str, dict[str, Any]], dict[str, TaskSpec]]:
    docs: dict[str, dict[str, Any]] = {}
    specs: dict[str, TaskSpec] = {}
    for file in snapshot_files(folder, "describe-task-definition"):
        label = str(file)
        doc = _read(file, "describe-task-definition")
        inner = doc.get("taskDefinition")
        if not isinstance(inner, Mapping):
            raise _fail(label, "$.taskDefinition", "missing: a describe-task-definition output holds one "
                        "taskDefinition")
        if "family" not in inner or "revision" not in inner:
            raise _fail(label, "$.taskDefinition", "needs family and revision, as describe-task-definition "
                        "prints them")
        key = f"{TASKDEF_PREFIX}{inner['family']}:{inner['revision']}"
        try:
            spec = load_task_definition(doc, file=label)
        except TaskDefinitionError as exc:
            issue = exc.issues[0]
            raise _fail(label, issue.path, issue.message) from None
        if key in docs and docs[key]["taskDefinition"] != inner:
            raise _fail(label, "$.taskDefinition", f"{key.removeprefix(TASKDEF_PREFIX)} is also in another "
                        "file, with different contents")
        docs[key] = {"taskDefinition": dict(inner)}
        specs[key] = spec
    return docs, specs


def _providers(folder: Path) -> tuple[dict[str, SnapshotProvider], int]:
    providers: dict[str, SnapshotProvider] = {}
    fargate = 0
    for file, path, cp in _items(folder, "describe-capacity-providers", "capacityProviders"):
        name = cp.get("name")
        if not name:
            raise _fail(file, f"{path}", "a capacity provider needs its name")
        if name in providers:
            raise _fail(file, f"{path}.name", f"capacity provider {name!r} is listed twice")
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


def _instance(file: str, path: str, ci: Mapping[str, Any], catalog: Catalog,
              providers: Mapping[str, SnapshotProvider], has_provider_file: bool) -> SnapshotInstance:
    arn = ci.get("containerInstanceArn")
    if not arn:
        raise _fail(file, path, "a container instance needs its containerInstanceArn")
    attributes = {a["name"]: a.get("value", "") for a in ci.get("attributes") or [] if "name" in a}
    names = [a.get("name") for a in ci.get("attributes") or []]
    type_name = attributes.get("ecs.instance-type")
    if not type_name:
        raise _fail(file, f"{path}.attributes", "no ecs.instance-type attribute: the instance type is read from "
                    "it (the ECS agent sets it on every EC2 container instance)")
    where_type = f"{path}.attributes[{names.index('ecs.instance-type')}].value"
    try:
        itype = catalog.get(type_name)
    except CatalogError as exc:
        raise _fail(file, where_type, exc.message) from None
    zone = attributes.get("ecs.availability-zone")
    if not zone:
        raise _fail(file, f"{path}.attributes", "no ecs.availability-zone attribute")
    provider_name = ci.get("capacityProviderName")
    launch = "EC2"
    if provider_name:
        provider = providers.get(provider_name)
        if provider is None and has_provider_file:
            raise _fail(file, f"{path}.capacityProviderName", f"capacity provider {provider_name!r} is not in "
                        "describe-capacity-providers")
        if provider is not None and provider.type == "MANAGED_INSTANCES":
            launch = "MANAGED_INSTANCES"
    if launch not in itype.launch_types:
        raise _fail(file, where_type, f"{itype.name} is not offered with launch type {launch}")
    registered = _resources(ci.get("registeredResources"))
    remaining = _resources(ci.get("remainingResources"))
    values: dict[str, int] = {}
    for name in ("CPU", "MEMORY"):
        reg = _integer(registered, name, file, path, "registeredResources")
        rem = _integer(remaining, name, file, path, "remainingResources")
        if reg is None:
            raise _fail(file, f"{path}.registeredResources", f"no {name} resource")
        if rem is not None and rem > reg:
            k = remaining[name][0]
            raise _fail(file, f"{path}.remainingResources[{k}]", f"remaining {name} {rem} is more than the "
                        f"{reg} registered")
        values[name] = reg
        values[f"free {name}"] = reg if rem is None else rem
    if values["CPU"] > itype.registered_cpu:
        raise _fail(file, f"{path}.registeredResources[{registered['CPU'][0]}]", f"registers {values['CPU']} CPU "
                    f"units; an {itype.name} has {itype.registered_cpu}")
    if values["MEMORY"] > itype.memory_mib:
        raise _fail(file, f"{path}.registeredResources[{registered['MEMORY'][0]}]", f"registers "
                    f"{values['MEMORY']} MiB; an {itype.name} has {itype.memory_mib}")
    chips = tuple(range(itype.chips))
    neuron = _string_set(registered, "NEURON_DEVICES")
    if neuron is not None:
        where = f"{path}.registeredResources[{neuron[1]}].stringSetValue"
        chips = _chip_indices(neuron[0], file, where)
        beyond = [c for c in chips if c >= itype.chips]
        if beyond:
            raise _fail(file, where, f"an {itype.name} has {itype.chips} Neuron chip(s); /dev/neuron{beyond[0]} "
                        "is not one of them")
    gpus = _string_set(registered, "GPU")
    gpu_ids = tuple(gpus[0]) if gpus is not None else ()
    if gpus is not None and len(gpu_ids) != itype.gpus:
        raise _fail(file, f"{path}.registeredResources[{gpus[1]}]", f"registers {len(gpu_ids)} GPU(s); an "
                    f"{itype.name} has {itype.gpus}")
    for name, have in (("NEURON_DEVICES", {str(c) for c in chips}), ("GPU", set(gpu_ids))):
        rem_set = _string_set(remaining, name)
        if rem_set is None:
            continue
        extra = [v for v in rem_set[0] if str(v).removeprefix("/dev/neuron") not in have and v not in have]
        if extra:
            raise _fail(file, f"{path}.remainingResources[{rem_set[1]}].stringSetValue", f"remaining {name} "
                        f"lists {show_value(extra[0])}, which the instance does not register")
    ec2_id = ci.get("ec2InstanceId") or arn.rsplit("/", 1)[-1]
    return SnapshotInstance(
        arn=arn, ec2_instance_id=ec2_id, instance_type=itype.name, availability_zone=zone, attributes=attributes,
        status=ci.get("status", "ACTIVE"), agent_connected=bool(ci.get("agentConnected", True)),
        agent_version=(ci.get("versionInfo") or {}).get("agentVersion") or "1.90.0",
        capacity_provider=provider_name, launch_type=launch, cpu=values["CPU"], memory=values["MEMORY"],
        gpu_ids=gpu_ids, chips=chips, where=f"{file}: {path}")


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
                raise _fail(file, where, f"/dev/neuron{chip} is held by two containers of the task")
            if chip not in inst.chips:
                raise _fail(file, where, f"/dev/neuron{chip} is not a Neuron device of {inst.ec2_instance_id} "
                            f"({inst.instance_type} registers {len(inst.chips)})")
            listed.append(chip)
    if seen_ids:
        return tuple(sorted(listed))
    if spec.neuron_mode is NeuronMode.MANUAL:
        return spec.chips
    if spec.neuron_mode is NeuronMode.MANAGED:
        return inst.chips
    return ()


def _task(file: str, path: str, task: Mapping[str, Any], instances: Mapping[str, SnapshotInstance],
          skipped_instances: Mapping[str, str], specs: Mapping[str, TaskSpec]) -> SnapshotTask:
    arn = task.get("taskArn") or ""
    if not arn:
        raise _fail(file, path, "a task needs its taskArn")
    instance_arn = task.get("containerInstanceArn")
    if not instance_arn:
        raise _fail(file, path, f"task {arn.rsplit('/', 1)[-1]} is {task.get('lastStatus')} but names no "
                    "containerInstanceArn")
    inst = instances.get(instance_arn)
    if inst is None:
        status = skipped_instances.get(instance_arn)
        why = (f"is {status}" if status else "is not in describe-container-instances")
        raise _fail(file, f"{path}.containerInstanceArn", f"the task's container instance {why}: "
                    f"{show_value(instance_arn, 120)}")
    key = task_definition_key(task.get("taskDefinitionArn") or "")
    if key is None:
        raise _fail(file, f"{path}.taskDefinitionArn", "names no task definition (family:revision)")
    spec = specs.get(key)
    if spec is None:
        raise _fail(file, f"{path}.taskDefinitionArn", f"task definition {key.removeprefix(TASKDEF_PREFIX)} is "
                    "not in any describe-task-definition file of the snapshot")
    amounts = {}
    for name, parse, default in (("cpu", parse_cpu, spec.cpu), ("memory", parse_memory, spec.memory)):
        value = task.get(name)
        try:
            amounts[name] = default if value is None else parse(value)
        except ValueError as exc:
            raise _fail(file, f"{path}.{name}", str(exc)) from None
    gpu_ids = tuple(g for c in task.get("containers") or [] for g in c.get("gpuIds") or [])
    unknown = [g for g in gpu_ids if g not in inst.gpu_ids]
    if unknown:
        raise _fail(file, f"{path}.containers", f"GPU {show_value(unknown[0])} is not a GPU of "
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


def _check_holdings(instances: Mapping[str, SnapshotInstance], tasks: list[tuple[str, str, SnapshotTask]],
                    remaining: Mapping[str, tuple[str, str, Mapping[str, Any]]]) -> None:
    """No chip, GPU or host port held twice; remaining = registered - what the instance's tasks hold."""
    holders: dict[tuple[str, str, object], str] = {}
    used: dict[str, dict[str, int]] = {arn: {"CPU": 0, "MEMORY": 0} for arn in instances}
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
                    raise _fail(file, path, f"{shown} on {inst.ec2_instance_id} is held twice: by task {other} "
                                f"and by task {t.task_id}")
        used[t.instance_arn]["CPU"] += t.cpu
        used[t.instance_arn]["MEMORY"] += t.memory
        chips[t.instance_arn].update(t.chips)
        gpus[t.instance_arn].update(g for g in t.gpu_ids if g)
    for arn, inst in instances.items():
        file, path, rem_list = remaining[arn]
        rem = _resources(rem_list)  # type: ignore[arg-type]
        for name, registered in (("CPU", inst.cpu), ("MEMORY", inst.memory)):
            if name not in rem:
                continue
            k, res = rem[name]
            free = int(res.get("integerValue", res.get("longValue", res.get("doubleValue", 0))))
            held = used[arn][name]
            if held > registered:
                raise _fail(file, f"{path}.registeredResources", f"the tasks on {inst.ec2_instance_id} hold "
                            f"{held} {name} but it registers {registered}")
            if free != registered - held:
                raise _fail(file, f"{path}.remainingResources[{k}]", f"remaining {name} is {free}, but registered "
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
                raise _fail(file, f"{path}.remainingResources[{k}].stringSetValue", f"{shown} is held by a task "
                            f"but listed as remaining {name} on {inst.ec2_instance_id}")
            if name == "GPU" and any(not g for t in tasks for g in t[2].gpu_ids):
                continue  # tasks holding GPUs the output does not name: cannot compare sets
            unheld = sorted(present - free_set - held_set, key=str)
            if unheld:
                shown = f"/dev/neuron{unheld[0]}" if name == "NEURON_DEVICES" else str(unheld[0])
                raise _fail(file, f"{path}.remainingResources[{k}].stringSetValue", f"{shown} is not remaining "
                            f"{name} on {inst.ec2_instance_id}, but no task in describe-tasks holds it")


def _service(file: str, path: str, svc: Mapping[str, Any], specs: Mapping[str, TaskSpec]) -> SnapshotService:
    name = svc.get("serviceName")
    if not name:
        raise _fail(file, path, "a service needs its serviceName")
    key = task_definition_key(svc.get("taskDefinition") or "")
    if key is None or key not in specs:
        shown = key.removeprefix(TASKDEF_PREFIX) if key else show_value(svc.get("taskDefinition"))
        raise _fail(file, f"{path}.taskDefinition", f"task definition {shown} is not in any "
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
    return SnapshotService(name, workload, f"{file}: {path}")


def read_snapshot(folder: Path, catalog: Catalog) -> ClusterSnapshot:
    """Read and check a snapshot folder; every problem is a ScenarioError naming the file and JSON path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError("is not a folder of AWS CLI describe outputs", file=str(folder))
    for command in REQUIRED:
        if not snapshot_files(folder, command):
            raise ScenarioError(f"no {command}.json: save `aws ecs {command} --cluster NAME ... --output json` "
                                "there", file=str(folder))
    docs, specs = _task_definitions(folder)
    providers, fargate = _providers(folder)
    has_provider_file = bool(snapshot_files(folder, "describe-capacity-providers"))
    skipped: dict[str, int] = {}
    instances: dict[str, SnapshotInstance] = {}
    skipped_instances: dict[str, str] = {}
    remaining: dict[str, tuple[str, str, Any]] = {}
    clusters: set[str] = set()
    for file, path, ci in _items(folder, "describe-container-instances", "containerInstances"):
        arn = ci.get("containerInstanceArn")
        if arn in instances or arn in skipped_instances:
            raise _fail(file, f"{path}.containerInstanceArn", f"container instance {show_value(arn, 120)} is "
                        "listed twice")
        status = ci.get("status", "ACTIVE")
        if status not in USABLE_INSTANCE:
            skipped_instances[arn] = status
            skipped[f"container instances {status}"] = skipped.get(f"container instances {status}", 0) + 1
            continue
        inst = _instance(file, path, ci, catalog, providers, has_provider_file)
        instances[arn] = inst
        remaining[arn] = (file, path, ci.get("remainingResources"))
        cluster = _arn_tail(arn, ":container-instance/")
        if cluster and "/" in cluster:
            clusters.add(cluster.split("/", 1)[0])
    if len(clusters) > 1:
        raise ScenarioError(f"the container instances belong to {len(clusters)} clusters "
                            f"({', '.join(sorted(clusters))}); a snapshot is one cluster", file=str(folder))
    tasks: list[tuple[str, str, SnapshotTask]] = []
    seen: set[str] = set()
    for file, path, task in _items(folder, "describe-tasks", "tasks"):
        status = task.get("lastStatus")
        if status not in HOLDING or task.get("launchType") == "FARGATE":
            reason = "FARGATE tasks" if task.get("launchType") == "FARGATE" else f"tasks {status}"
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        parsed = _task(file, path, task, instances, skipped_instances, specs)
        if parsed.arn in seen:
            raise _fail(file, f"{path}.taskArn", f"task {parsed.task_id} is listed twice")
        seen.add(parsed.arn)
        tasks.append((file, path, parsed))
    _check_holdings(instances, tasks, remaining)
    services: dict[str, SnapshotService] = {}
    for file, path, svc in _items(folder, "describe-services", "services"):
        if svc.get("status", "ACTIVE") != "ACTIVE":
            skipped[f"services {svc.get('status')}"] = skipped.get(f"services {svc.get('status')}", 0) + 1
            continue
        parsed_service = _service(file, path, svc, specs)
        if parsed_service.name in services:
            raise _fail(file, f"{path}.serviceName", f"service {parsed_service.name!r} is listed twice")
        services[parsed_service.name] = parsed_service
    if fargate:
        skipped["FARGATE capacity providers"] = fargate
    return ClusterSnapshot(
        folder=folder, cluster=next(iter(clusters)) if len(clusters) == 1 else None,
        instances=tuple(instances.values()), tasks=tuple(t for _, _, t in tasks),
        services=tuple(services.values()), providers=tuple(providers.values()), task_definitions=docs,
        skipped=skipped)


# --- into a scenario ------------------------------------------------------------------------------------------

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
    from scheduler.scenario.cluster import AutoScalingCapacityProvider, ManagedInstancesCapacityProvider
    from scheduler.scenario.workloads import ServiceWorkload

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


__all__ = ["ClusterSnapshot", "SnapshotInstance", "SnapshotProvider", "SnapshotService", "SnapshotTask",
           "apply_snapshot", "read_snapshot", "snapshot_files",
           "task_definition_key"]
