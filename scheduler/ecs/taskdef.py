"""Real ECS task definitions -> validated :class:`~scheduler.ecs.taskspec.TaskSpec`.

Takes the JSON that ``aws ecs register-task-definition --cli-input-json`` reads, or what
``aws ecs describe-task-definition`` prints (the ``{"taskDefinition": ..., "tags": ...}`` wrapper, whose
read-only fields are dropped). It checks the document against botocore's RegisterTaskDefinition shape,
then against the ECS rules that botocore leaves to the service (the Neuron rules first among them), and
collects every broken rule as an :class:`~scheduler.errors.Issue` with a JSON path and a rule id. A valid
document becomes a TaskSpec that counts the task's needs the way ECS does: task-level cpu and memory when
set, otherwise the containers' sum (memoryReservation before memory); static host ports by network mode;
GPUs; and the Neuron mode with the chips a task names.

Paths point into the document as given: ``$.containerDefinitions[0].cpu``, or
``$.taskDefinition.containerDefinitions[0].cpu`` for the describe-task-definition wrapper.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from scheduler.catalog.catalog import MAX_CHIPS
from scheduler.ecs import botocore_model, near_miss
from scheduler.ecs.taskspec import Constraint, ContainerSpec, NeuronMode, TaskSpec, first_gap
from scheduler.errors import Issue, NeuronSimError, TaskDefinitionError, one_line, show_value
from scheduler.files import UnreadableFile, read_bounded
from scheduler.nesting import MAX_DEPTH, lone_surrogate, too_deep

try:  # the cluster query language parser; without it, expressions are only checked for length
    from scheduler.ecs import cql as _cql
except ImportError:  # pragma: no cover - depends on what is installed alongside
    _cql = None

OPERATION = "RegisterTaskDefinition"

MAX_CONSTRAINTS = 10         # per task, task definition and run time together
MAX_EXPRESSION_CHARS = 2000  # PlacementConstraint.expression
# ECS refuses a task definition over 64 KiB; a file may also hold describe output (read-only fields, tags)
# and indentation, so the reader allows sixteen times that and no more.
MAX_FILE_BYTES = 1024 * 1024
MAX_AMOUNT_DIGITS = 18       # cpu and memory strings: far beyond any instance, and still printable
TASK_CPU_RANGE = (128, 196608)
FRACTIONAL_GPUS = {Decimal("0.125"), Decimal("0.25"), Decimal("0.5")}
MANAGED_INSTANCES_NETWORK_MODES = ("awsvpc", "host")

NEURON_PREFIX = "/dev/neuron"
_NEURON_PATH = re.compile(r"/dev/neuron(0|[1-9][0-9]*)")
_CPU_FORM = re.compile(r"\s*(?P<amount>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(?P<unit>vcpus?)?\s*", re.IGNORECASE)
_MEMORY_FORM = re.compile(r"\s*(?P<amount>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(?P<unit>mib|mb|gib|gb)?\s*",
                          re.IGNORECASE)
_MEMORY_UNITS = {None: 1, "mib": 1, "mb": 1, "gib": 1024, "gb": 1024}  # ECS reads "1 GB" as 1024 MiB


@cache
def _read_only_fields() -> frozenset[str]:
    """Members of describe-task-definition's TaskDefinition that RegisterTaskDefinition does not take."""
    model = botocore_model.ecs_service_model()
    output = set(model.shape_for("TaskDefinition").members)
    accepted = set(botocore_model.operation_model(OPERATION).input_shape.members)
    return frozenset(output - accepted)


@dataclass(frozen=True)
class Validation:
    """The verdict on one task definition: the TaskSpec when valid, and every issue found."""

    spec: TaskSpec | None        # None when invalid
    errors: tuple[Issue, ...]
    warnings: tuple[Issue, ...]
    document: dict               # the RegisterTaskDefinition input, unwrapped
    file: str | None = None
    hint: str | None = None      # when invalid and another kind of document: what it is, what to pass instead

    @property
    def valid(self) -> bool:
        return not self.errors

    def error(self) -> TaskDefinitionError:
        """The exception that carries this verdict's errors (the hint, if any, first)."""
        lead = [Issue("$", self.hint, near_miss.WRONG_DOCUMENT)] if self.hint else []
        return TaskDefinitionError([*lead, *self.errors], file=self.file)


# --- string forms of cpu and memory --------------------------------------------------------------------

def parse_cpu(value: object) -> int:
    """CPU units from ``1024``, ``"1024"``, ``"1 vCPU"``, ``"0.5 vcpu"``; ``ValueError`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"cpu {value} is negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"cpu must be a number of CPU units or a string like '1 vCPU', not {_quoted(value)}")
    match = _CPU_FORM.fullmatch(value)
    if match is None:
        raise ValueError(f"cpu {_quoted(value)} is not a CPU amount ECS reads "
                         "(e.g. '1024', '1 vCPU', '0.5 vcpu')")
    if len(match["amount"]) > MAX_AMOUNT_DIGITS:
        raise ValueError(f"cpu {_quoted(value)} is far more than any instance has")
    units = Decimal(match["amount"]) * (1024 if match["unit"] else 1)
    if units != units.to_integral_value():
        raise ValueError(f"cpu {value!r} is {units} CPU units; ECS counts whole units")
    return int(units)


def parse_memory(value: object) -> int:
    """MiB from ``2048``, ``"2048"``, ``"2 GB"``, ``"2GB"``, ``"2048 MiB"``; ``ValueError`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"memory {value} is negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"memory must be a number of MiB or a string like '2 GB', not {_quoted(value)}")
    match = _MEMORY_FORM.fullmatch(value)
    if match is None:
        raise ValueError(f"memory {_quoted(value)} is not a memory size ECS reads "
                         "(e.g. '2048', '2 GB', '2048 MiB')")
    if len(match["amount"]) > MAX_AMOUNT_DIGITS:
        raise ValueError(f"memory {_quoted(value)} is far more than any instance has")
    unit = match["unit"].lower() if match["unit"] else None
    mib = Decimal(match["amount"]) * _MEMORY_UNITS[unit]
    if mib != mib.to_integral_value():
        raise ValueError(f"memory {value!r} is {mib} MiB; ECS counts whole MiB")
    return int(mib)


def _quoted(value: object, limit: int = 60) -> str:
    """repr, shortened; also for what repr cannot print (an int of thousands of digits)."""
    try:
        shown = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__} too large to show"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# --- a type-tolerant view of the document ---------------------------------------------------------------

def _int(value: object) -> int | None:
    """An int ECS could read (32 bits); the shape check reports the rest."""
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass
class _Requirement:
    path: str
    type: object
    value: object
    sharing: bool


@dataclass
class _Device:
    path: str              # of the hostPath member
    host_path: str
    chip: int | None       # N for a well-formed /dev/neuronN


@dataclass
class _Port:
    path: str
    container_port: int | None
    host_port: int | None
    protocol: str


@dataclass
class _Container:
    path: str
    raw: Mapping[str, Any]
    name: str
    image: str
    cpu: int | None
    memory: int | None
    reservation: int | None
    essential: bool
    requirements: list[_Requirement] = field(default_factory=list)
    devices: list[_Device] = field(default_factory=list)
    ports: list[_Port] = field(default_factory=list)

    def of_type(self, kind: str) -> list[_Requirement]:
        return [r for r in self.requirements if r.type == kind]

    @property
    def chips(self) -> tuple[int, ...]:
        return tuple(sorted({d.chip for d in self.devices if d.chip is not None}))


@dataclass
class _Task:
    root: str
    doc: Mapping[str, Any]
    containers: list[_Container]
    compatibilities: frozenset[str]
    network_mode: str
    network_mode_given: bool

    def at(self, *keys: object) -> str:
        path = self.root
        for key in keys:
            path = f"{path}[{key}]" if isinstance(key, int) else botocore_model.member_path(path, key)
        return path


def _view(doc: Mapping[str, Any], root: str) -> _Task:
    containers = []
    for index, raw in enumerate(_list(doc.get("containerDefinitions"))):
        path = f"{botocore_model.member_path(root, 'containerDefinitions')}[{index}]"
        containers.append(_container_view(_map(raw), path))
    compat = frozenset(c for c in _list(doc.get("requiresCompatibilities")) if isinstance(c, str))
    mode = _str(doc.get("networkMode"))
    return _Task(root, doc, containers, compat or frozenset({"EC2"}), mode or "bridge", mode is not None)


def _container_view(raw: Mapping[str, Any], path: str) -> _Container:
    essential = raw.get("essential", True)
    container = _Container(
        path=path, raw=raw, name=_str(raw.get("name")) or "", image=_str(raw.get("image")) or "",
        cpu=_int(raw.get("cpu")), memory=_int(raw.get("memory")),
        reservation=_int(raw.get("memoryReservation")),
        essential=essential if isinstance(essential, bool) else True,
    )
    for index, item in enumerate(_list(raw.get("resourceRequirements"))):
        item = _map(item)
        container.requirements.append(_Requirement(
            f"{path}.resourceRequirements[{index}]", item.get("type"), item.get("value"),
            "sharingStrategy" in item))
    linux = _map(raw.get("linuxParameters"))
    for index, item in enumerate(_list(linux.get("devices"))):
        host_path = _str(_map(item).get("hostPath"))
        if host_path is None:
            continue
        container.devices.append(_Device(f"{path}.linuxParameters.devices[{index}].hostPath", host_path,
                                         _device_number(host_path)))
    for index, item in enumerate(_list(raw.get("portMappings"))):
        item = _map(item)
        protocol = _str(item.get("protocol")) or "tcp"
        container.ports.append(_Port(f"{path}.portMappings[{index}]", _int(item.get("containerPort")),
                                     _int(item.get("hostPort")), protocol))
    return container


def _device_number(host_path: str) -> int | None:
    """N of a well-formed /dev/neuronN; any N past MAX_CHIPS reads as MAX_CHIPS (refused later), so that a
    path of thousands of digits is never turned into an integer."""
    match = _NEURON_PATH.fullmatch(host_path)
    if match is None:
        return None
    digits = match[1]
    return int(digits) if len(digits) <= len(str(MAX_CHIPS)) else MAX_CHIPS


def _is_neuron_path(host_path: str) -> bool:
    return host_path.startswith(NEURON_PREFIX)


# --- ECS's rules ----------------------------------------------------------------------------------------

@dataclass
class _Findings:
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    def error(self, path: str, message: str, rule: str) -> None:
        self.errors.append(Issue(path, one_line(message), rule))

    def warn(self, path: str, message: str, rule: str) -> None:
        self.warnings.append(Issue(path, one_line(message), rule))


def _check_containers(task: _Task, out: _Findings) -> None:
    if "containerDefinitions" in task.doc and isinstance(task.doc["containerDefinitions"], list | tuple) \
            and not task.containers:
        out.error(task.at("containerDefinitions"), "a task definition needs at least one container",
                  "no-containers")
    seen: dict[str, str] = {}
    for c in task.containers:
        if c.name and c.name in seen:
            out.error(f"{c.path}.name", f"container name {c.name!r} is already used by {seen[c.name]}",
                      "duplicate-container-name")
        seen.setdefault(c.name, c.path)
        for key, amount in (("cpu", c.cpu), ("memory", c.memory), ("memoryReservation", c.reservation)):
            if amount is not None and amount < 0:  # RegisterTaskDefinition refuses a negative amount
                out.error(f"{c.path}.{key}", f"{key} must be at least 0, got {amount}", "negative-amount")
    if task.containers and not any(c.essential for c in task.containers):
        out.error(task.at("containerDefinitions"), "at least one container must be essential",
                  "no-essential-container")


def _check_neuron(task: _Task, out: _Findings) -> None:
    managed = [(c, r) for c in task.containers for r in c.of_type("NeuronDevice")]
    for _, req in managed:
        if req.value != "ALL":
            out.error(f"{req.path}.value",
                      f"NeuronDevice value must be 'ALL' (every Neuron device of the instance), "
                      f"not {_quoted(req.value)}",
                      "neuron-device-not-all")
    holders: list[_Container] = []
    for c, req in managed:
        if any(h is c for h in holders):
            continue
        if holders:
            out.error(req.path, f"only one container may ask for NeuronDevice; {holders[0].name!r} "
                      "already does", "two-neuron-device-containers")
        holders.append(c)
    if managed:
        for c in task.containers:
            for d in c.devices:
                if _is_neuron_path(d.host_path):
                    out.error(d.path, f"{d.host_path} cannot be mapped in a task definition that asks for "
                              "NeuronDevice; use one of the two ways, not both", "neuron-device-with-devices")
        if task.compatibilities != {"MANAGED_INSTANCES"}:
            given = ", ".join(sorted(task.compatibilities))
            default = "" if "requiresCompatibilities" in task.doc else " (the default)"
            out.error(task.at("requiresCompatibilities"),
                      f"NeuronDevice works on Managed Instances only: requiresCompatibilities must be "
                      f"['MANAGED_INSTANCES'], not [{given}]{default}", "neuron-device-launch-type")
    for c in task.containers:
        for d in c.devices:
            if _is_neuron_path(d.host_path) and d.chip is None:
                out.error(d.path, f"{show_value(d.host_path)} is not a Neuron device path; they are "
                          "/dev/neuronN with N = 0, 1, 2, ...", "bad-neuron-path")
            elif d.chip is not None and d.chip >= MAX_CHIPS:
                out.error(d.path, f"{show_value(d.host_path)} is beyond every instance type: the catalog "
                          f"allows at most {MAX_CHIPS} Neuron devices on one instance (/dev/neuron0 to "
                          f"/dev/neuron{MAX_CHIPS - 1})", "neuron-device-beyond-catalog")
    chips = sorted({d.chip for c in task.containers for d in c.devices if d.chip is not None})
    gap = first_gap(chips)
    if gap is not None:
        first = next(d for c in task.containers for d in c.devices if d.chip == gap)
        names = ", ".join(f"neuron{i}" for i in chips)
        out.warn(first.path, f"Neuron devices {names} are not contiguous: ECS accepts this, but the Neuron "
                 "runtime fails when the container starts", "non-contiguous-chips")


def _check_constraints(task: _Task, out: _Findings) -> None:
    constraints = _list(task.doc.get("placementConstraints"))
    if len(constraints) > MAX_CONSTRAINTS:
        out.error(task.at("placementConstraints"), f"{len(constraints)} placement constraints; at most "
                  f"{MAX_CONSTRAINTS} are allowed per task", "too-many-constraints")
    for index, raw in enumerate(constraints):
        item = _map(raw)
        kind = item.get("type")
        expression = item.get("expression")
        if kind == "distinctInstance":
            out.error(task.at("placementConstraints", index, "type"),
                      "distinctInstance is not allowed in a task definition (only memberOf); set it on "
                      "RunTask or the service", "distinct-instance-in-taskdef")
        if kind != "memberOf":
            continue
        if expression is None or (isinstance(expression, str) and not expression.strip()):
            out.error(task.at("placementConstraints", index, "expression"),
                      "a memberOf constraint needs an expression", "member-of-without-expression")
        elif isinstance(expression, str):
            if len(expression) > MAX_EXPRESSION_CHARS:
                out.error(task.at("placementConstraints", index, "expression"),
                          f"expression is {len(expression)} characters; at most {MAX_EXPRESSION_CHARS}",
                          "expression-too-long")
            else:
                problem = _cql_problem(expression)
                if problem:
                    out.error(task.at("placementConstraints", index, "expression"), problem, "bad-expression")


def _cql_problem(expression: str) -> str | None:
    parse = getattr(_cql, "parse", None)
    if parse is None:
        return None
    try:
        parse(expression)
    except (NeuronSimError, ValueError) as exc:
        return f"expression does not parse: {exc}"
    return None


def _check_memory(task: _Task, out: _Findings) -> None:
    task_memory = task.doc.get("memory")
    for c in task.containers:
        if c.memory is not None and c.reservation is not None and c.memory <= c.reservation:
            out.error(f"{c.path}.memory", f"memory ({c.memory} MiB) must be greater than memoryReservation "
                      f"({c.reservation} MiB)", "memory-below-reservation")
        given = [c.raw.get(k) for k in ("memory", "memoryReservation")]
        if task_memory is None and all(v is None or v == 0 for v in given):  # wrong types: reported already
            out.error(c.path, f"container {c.name or '#'}: with no task-level memory, each container needs a "
                      "non-zero memory or memoryReservation", "no-memory")


def _check_task_size(task: _Task, out: _Findings) -> None:
    cpu = task.doc.get("cpu")
    if isinstance(cpu, str):
        try:
            units = parse_cpu(cpu)
        except ValueError as exc:
            out.error(task.at("cpu"), str(exc), "bad-cpu-string")
        else:
            low, high = TASK_CPU_RANGE
            if not low <= units <= high:
                out.error(task.at("cpu"), f"task cpu {units} units is outside {low}-{high}", "task-cpu-range")
    memory = task.doc.get("memory")
    if isinstance(memory, str):
        try:
            mib = parse_memory(memory)
        except ValueError as exc:
            out.error(task.at("memory"), str(exc), "bad-memory-string")
        else:
            if mib < 1:
                out.error(task.at("memory"), "task memory must be at least 1 MiB", "task-memory-range")


def _check_ports(task: _Task, out: _Findings) -> None:
    if task.network_mode not in ("awsvpc", "host"):
        return
    rule = "awsvpc-host-port" if task.network_mode == "awsvpc" else "host-mode-host-port"
    for c in task.containers:
        for p in c.ports:
            if p.host_port and p.host_port != p.container_port:  # 0 or omitted: left blank
                out.error(f"{p.path}.hostPort", f"in {task.network_mode} mode hostPort must be omitted or "
                          f"equal containerPort ({p.container_port}), not {p.host_port}", rule)


def _check_accelerators(task: _Task, out: _Findings) -> None:
    names = {_str(_map(a).get("deviceName")) for a in _list(task.doc.get("inferenceAccelerators"))}
    for c in task.containers:
        for req in c.of_type("InferenceAccelerator"):
            if not isinstance(req.value, str) or req.value not in names:  # a list is not hashable
                known = ", ".join(sorted(n for n in names if n)) or "none defined"
                out.error(f"{req.path}.value", f"InferenceAccelerator {_quoted(req.value)} names no task-level "
                          f"inferenceAccelerators deviceName ({known})", "unknown-inference-accelerator")


def _gpu_amount(value: object) -> int | Decimal | str | None:
    """A positive integer, ``"ALL"``, a fractional Decimal, or None when ECS would reject the value."""
    if value == "ALL":
        return "ALL"
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)?|\.[0-9]+", value.strip()):
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:  # pragma: no cover - the pattern above admits only decimals
        return None
    if amount == amount.to_integral_value() and amount > 0:
        return int(amount)
    return amount if amount in FRACTIONAL_GPUS else None


def _check_gpus(task: _Task, out: _Findings) -> None:
    fractional: list[_Requirement] = []
    whole: list[_Requirement] = []
    for c in task.containers:
        for req in c.of_type("GPU"):
            if req.value is None and req.sharing:
                out.warn(req.path, "GPU sharing (nvidiaMps) is not modelled: the task is counted with no GPU",
                         "gpu-sharing-not-modelled")
                continue
            if req.value is not None and req.sharing:
                out.error(req.path, "set either value or sharingStrategy for a GPU, not both",
                          "gpu-value-and-sharing")
            amount = _gpu_amount(req.value)
            if amount is None:
                out.error(f"{req.path}.value", "GPU value must be a positive integer, 'ALL', or "
                          f"0.125/0.25/0.5, not {_quoted(req.value)}", "bad-gpu-value")
            elif isinstance(amount, Decimal):
                fractional.append(req)
                out.warn(f"{req.path}.value", f"fractional GPU {req.value} places only on G6f partition "
                         "types, and no catalog type offers them", "fractional-gpu")
            else:
                whole.append(req)
    if fractional and (len(fractional) > 1 or whole):
        out.error(fractional[0].path, "a fractional GPU must be the only GPU requirement in the task",
                  "fractional-gpu-mixed")


def _check_launch_types(task: _Task, out: _Findings) -> None:
    if "FARGATE" in task.compatibilities:
        if task.network_mode != "awsvpc":
            out.error(task.at("networkMode"), f"Fargate needs networkMode awsvpc, not {task.network_mode!r}"
                      + ("" if task.network_mode_given else " (the default)"), "fargate-network-mode")
        for c in task.containers:
            for d in c.devices:
                out.error(d.path, f"Fargate does not support devices ({d.host_path})", "fargate-devices")
            for req in c.of_type("GPU"):
                out.error(req.path, "Fargate does not support GPUs", "fargate-gpu")
        if _list(task.doc.get("placementConstraints")):
            out.error(task.at("placementConstraints"), "Fargate does not support placement constraints",
                      "fargate-placement-constraints")
    managed = "MANAGED_INSTANCES" in task.compatibilities
    if managed and task.network_mode not in MANAGED_INSTANCES_NETWORK_MODES:
        out.error(task.at("networkMode"), f"Managed Instances support networkMode awsvpc or host, not "
                  f"{task.network_mode!r}" + ("" if task.network_mode_given else " (the default)"),
                  "managed-instances-network-mode")


_RULES = (_check_containers, _check_neuron, _check_constraints, _check_memory, _check_task_size,
          _check_ports, _check_accelerators, _check_gpus, _check_launch_types)


# --- needs as ECS counts them ---------------------------------------------------------------------------

def _static_ports(task: _Task) -> tuple[tuple[int, ...], tuple[int, ...]]:
    tcp: set[int] = set()
    udp: set[int] = set()
    for c in task.containers:
        for p in c.ports:
            if task.network_mode == "bridge":
                port = p.host_port or None  # 0 or omitted: a dynamic port, nothing reserved
            elif task.network_mode == "host":
                port = p.host_port or p.container_port
            else:  # awsvpc: each task has its own ENI; none: no ports
                port = None
            if port:
                (udp if p.protocol == "udp" else tcp).add(port)
    return tuple(sorted(tcp)), tuple(sorted(udp))


def _container_spec(c: _Container) -> ContainerSpec:
    gpus = 0
    gpus_all = False
    fraction = Decimal(0)
    for req in c.of_type("GPU"):
        amount = _gpu_amount(req.value)
        if amount == "ALL":
            gpus_all = True
        elif isinstance(amount, int):
            gpus += amount
        elif isinstance(amount, Decimal):
            fraction += amount
    return ContainerSpec(
        name=c.name, image=c.image, cpu=c.cpu or 0, memory=c.memory, memory_reservation=c.reservation,
        gpus=gpus, neuron_all=bool(c.of_type("NeuronDevice")), chips=c.chips, essential=c.essential,
        gpus_all=gpus_all, gpu_fraction=float(fraction),
    )


def _task_spec(task: _Task, revision: int | None) -> TaskSpec:
    containers = tuple(_container_spec(c) for c in task.containers)
    cpu = task.doc.get("cpu")
    memory = task.doc.get("memory")
    task_cpu = parse_cpu(cpu) if cpu is not None else sum(c.cpu for c in containers)
    task_memory = (parse_memory(memory) if memory is not None
                   else sum(c.memory_reservation or c.memory or 0 for c in containers))
    chips = tuple(sorted({i for c in containers for i in c.chips}))
    if any(c.neuron_all for c in containers):
        mode = NeuronMode.MANAGED
    elif chips:
        mode = NeuronMode.MANUAL
    else:
        mode = NeuronMode.NONE
    tcp, udp = _static_ports(task)
    constraints = tuple(
        Constraint(str(item["type"]), _str(item.get("expression")))
        for item in map(_map, _list(task.doc.get("placementConstraints"))) if "type" in item
    )
    platform = _map(task.doc.get("runtimePlatform"))
    return TaskSpec(
        family=_str(task.doc.get("family")) or "",
        cpu=task_cpu, memory=task_memory, gpus=sum(c.gpus for c in containers),
        neuron_mode=mode, chips=chips, chip_count=len(chips),
        tcp_ports=tcp, udp_ports=udp, constraints=constraints,
        compatibilities=task.compatibilities, network_mode=task.network_mode,
        cpu_architecture=_str(platform.get("cpuArchitecture")), revision=revision,
        containers=containers,
        gpus_all=any(c.gpus_all for c in containers),
        gpu_fraction=sum(c.gpu_fraction for c in containers),
    )


# --- entry points ---------------------------------------------------------------------------------------

def _unwrap(doc: object) -> tuple[object, str, dict[str, Any], list[Issue]]:
    """(task definition, its root path, extra input members such as the wrapper's tags, wrapper issues)."""
    if not (isinstance(doc, Mapping) and "taskDefinition" in doc and "containerDefinitions" not in doc):
        return doc, "$", {}, []
    issues = [
        Issue(botocore_model.member_path("$", key), f"unknown key {_quoted(key)} beside taskDefinition; "
              "describe-task-definition prints only taskDefinition and tags", botocore_model.UNKNOWN_KEY)
        for key in doc if key not in ("taskDefinition", "tags", "ResponseMetadata")
    ]
    extra: dict[str, Any] = {}
    tags = doc.get("tags")
    if tags:
        shape = botocore_model.operation_model(OPERATION).input_shape.members["tags"]
        tag_issues = botocore_model.check_shape(tags, shape, root="$.tags")
        issues.extend(tag_issues)
        if not tag_issues:
            extra["tags"] = list(tags)
    return doc["taskDefinition"], "$.taskDefinition", extra, issues


def _supersede(shape_issues: list[Issue], rule_issues: list[Issue]) -> list[Issue]:
    """Drop enum findings where an ECS rule explains the same field (e.g. distinctInstance)."""
    explained = {i.path for i in rule_issues}
    return [i for i in shape_issues if not (i.rule == botocore_model.BAD_ENUM and i.path in explained)]


def validate_task_definition(doc: object, *, file: str | None = None) -> Validation:
    """Validate a RegisterTaskDefinition input or a describe-task-definition output; never raises for bad
    input: every problem is an issue in the returned Validation."""
    deep_path = _too_deep(doc)
    if deep_path is not None:
        issue = Issue(deep_path, f"nested more than {MAX_DEPTH} levels deep", "too-deep")
        return Validation(None, (issue,), (), {}, file)
    bad_text = lone_surrogate(doc)
    if bad_text is not None:
        issue = Issue(_json_path(bad_text), "text holding a lone UTF-16 surrogate (a \\ud800-\\udfff escape "
                      "without its pair), which is not valid Unicode and cannot be sent to ECS", "not-unicode")
        return Validation(None, (issue,), (), {}, file)
    inner, root, extra, issues = _unwrap(doc)
    if not isinstance(inner, Mapping):
        kind = "array" if isinstance(inner, list | tuple) else type(inner).__name__
        if inner is None:
            kind = "null"
        issues.append(Issue(root, f"a task definition is a JSON object, not {kind}", "not-an-object"))
        return Validation(None, tuple(issues), (), {}, file, _hint(doc))
    revision = _int(inner.get("revision"))
    read_only = _read_only_fields()
    document = {k: v for k, v in inner.items() if k not in read_only}
    shape_issues = botocore_model.validate_input(OPERATION, document, root=root)
    task = _view(document, root)
    findings = _Findings()
    for rule in _RULES:
        rule(task, findings)
    issues.extend(_supersede(shape_issues, findings.errors))
    issues.extend(findings.errors)
    if extra and "tags" not in document:
        document.update(extra)
    spec = None if issues else _task_spec(task, revision)
    return Validation(spec, tuple(issues), tuple(findings.warnings), document, file, _hint(doc) if issues else None)


def _hint(doc: object) -> str | None:
    return near_miss.task_definition_hint(near_miss.recognise(doc), doc)


def _too_deep(doc: object) -> str | None:
    """The JSON path of the first collection nested more than MAX_DEPTH levels deep, or None."""
    keys = too_deep(doc, MAX_DEPTH)
    return None if keys is None else _json_path(keys)


def _json_path(keys: tuple[object, ...]) -> str:
    path = "$"
    for key in keys:
        path = f"{path}[{key}]" if isinstance(key, int) else botocore_model.member_path(path, key)
    return path


def read_task_definition(path: str | Path) -> Validation:
    """Read and validate a JSON file; an unreadable file or bad JSON gives a Validation with an error."""
    file = str(path)
    try:
        text = read_bounded(path, MAX_FILE_BYTES).decode("utf-8-sig")
    except FileNotFoundError:
        return _failed(file, "cannot read the file: No such file or directory", "unreadable-file")
    except UnreadableFile as exc:
        return _failed(file, str(exc), "unreadable-file")
    except UnicodeDecodeError as exc:
        return _failed(file, f"not UTF-8 text (byte {exc.start}): {exc.reason}", "not-json")
    duplicates = _Duplicates()
    try:
        doc = json.loads(text, object_pairs_hook=duplicates)
    except json.JSONDecodeError as exc:
        failed = _failed(file, f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}", "not-json")
        hint = near_miss.task_definition_hint(near_miss.recognise_text(text), text)
        return dataclasses.replace(failed, hint=hint)
    except RecursionError:
        return _failed(file, "not valid JSON: nested too deeply", "not-json")
    except ValueError:  # a number with more digits than int() reads (sys.get_int_max_str_digits)
        return _failed(file, "not valid JSON: a number has thousands of digits", "not-json")
    validation = validate_task_definition(doc, file=file)
    warnings = duplicates.warnings(doc)
    if not warnings:
        return validation
    return replace(validation, warnings=(*warnings, *validation.warnings))


class _Duplicates:
    """A json.loads object hook that builds each object as json does (the last of a repeated key wins) and
    remembers the objects that repeated a key. ECS's parsers are not all Python's: one may keep the first
    value or refuse the document, so a repeated key is worth a warning."""

    def __init__(self) -> None:
        self.found: dict[int, list[str]] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        built = dict(pairs)
        if len(built) < len(pairs):
            seen: set[str] = set()
            self.found[id(built)] = [key for key, _ in pairs if key in seen or seen.add(key)]
        return built

    def warnings(self, doc: object) -> list[Issue]:
        """One warning per repeated key, at its JSON path, in document order."""
        issues = []
        stack: list[tuple[object, tuple[object, ...]]] = [(doc, ())]
        while stack and self.found:
            node, keys = stack.pop()
            if isinstance(node, dict):
                for key in dict.fromkeys(self.found.pop(id(node), ())):
                    issues.append(Issue(_json_path((*keys, key)), f"the key {show_value(key)} appears more than "
                                        "once; this reader keeps the last value, but JSON parsers differ (some "
                                        "keep the first, some refuse the document)", "duplicate-key"))
                stack.extend((child, (*keys, key)) for key, child in reversed(node.items()))
            elif isinstance(node, list):
                stack.extend((child, (*keys, index)) for index, child in reversed(list(enumerate(node))))
        return issues


def _failed(file: str, message: str, rule: str) -> Validation:
    return Validation(None, (Issue("$", message, rule),), (), {}, file)


def load_task_definition(source: str | Path | Mapping[str, Any], *, file: str | None = None) -> TaskSpec:
    """The TaskSpec of a file or an already-parsed document; raises TaskDefinitionError when invalid."""
    if isinstance(source, Mapping):
        validation = validate_task_definition(source, file=file)
    else:
        validation = read_task_definition(source)
        if file is not None:
            validation = dataclasses.replace(validation, file=file)
    if validation.spec is None:
        raise validation.error()
    return validation.spec
