"""A plain reference placer: ECS's placement steps in straightforward Python, one instance at a time.

It exists to be obviously right and to be measured against the core: no numpy columns, no caches, no
classes of identical instances. For every task it walks every container instance through the filters in
ECS order (launch type, status, cpu architecture, constraints, CPU, memory, GPU, ports, ENIs, Neuron
devices),
then applies the strategy chain to the survivors, breaking a tie with the same seeded draw as the core
(``rng.integers(number of tied instances)``, tied instances in row order; see https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-placement-strategies.html).

Only what the benchmark streams use is implemented: ``memberOf`` expressions made of
``attribute:NAME == v``, ``!= v``, ``in [..]``, ``not in [..]`` and ``=~ regex`` joined by ``and``;
strategies binpack (cpu, memory, gpu, neuronDevices), spread (attribute:NAME) and random. The chip
rule for topology-aware tasks is the catalog's device-graph rule, ``topology.choose_block``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scheduler.catalog.model import InstanceType
from scheduler.ecs.taskspec import Constraint, NeuronMode, Strategy, TaskSpec
from scheduler.placement import topology
from scheduler.placement.state import ClusterState

MANAGED = "MANAGED_INSTANCES"
IMPLICIT_MANAGED_CHAIN = (
    Strategy("spread", "attribute:ecs.availability-zone"),
    Strategy("binpack", "memory"),
)
# The first filter step left with no instance names the failure, as RunTask failures[].reason does.
REASONS = {
    "launch type": "NO ACTIVE INSTANCES",
    "status": "NO ACTIVE INSTANCES",
    "cpu architecture": "ATTRIBUTE",
    "memberOf": "MemberOf placement constraint unsatisfied",
    "cpu": "RESOURCE:CPU",
    "memory": "RESOURCE:MEMORY",
    "gpu": "RESOURCE:GPU",
    "ports": "RESOURCE:PORTS",
    "eni": "RESOURCE:ENI",
    "neuron devices": "RESOURCE:NEURON_DEVICES",
}
_TERM = re.compile(r"\s*attribute:(\S+)\s+(==|!=|=~|in|not in)\s+(\[[^\]]*\]|\S+)\s*")


@dataclass
class RefInstance:
    """One container instance as plain Python values."""

    row: int
    itype: InstanceType
    launch_type: str
    attributes: dict[str, str]
    schedulable: bool
    agent_connected: bool
    cpu: int
    memory: int
    gpus: int
    chips_free: int
    chips_all: int
    enis: int = 0  # free ENI attachment slots (awsvpc tasks take one each)
    tcp: set[int] = field(default_factory=set)
    udp: set[int] = field(default_factory=set)
    groups: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RefHold:
    """What one placed task holds, to give back on release."""

    row: int
    cpu: int
    memory: int
    gpus: int
    chips: int
    tcp: tuple[int, ...]
    udp: tuple[int, ...]
    group: str
    enis: int = 0


@dataclass(frozen=True)
class Decision:
    """A decision in comparable form: the row (or None) and chips, or the failure reason."""

    row: int | None
    chips: tuple[int, ...] = ()
    started: bool = True
    reason: str | None = None


def _member_of(expression: str, attributes: dict[str, str]) -> bool:
    for part in re.split(r"\s+and\s+", expression.strip()):
        m = _TERM.fullmatch(part)
        if m is None:
            raise NotImplementedError(f"the reference placer does not read {part!r}")
        name, op, raw = m.groups()
        value = attributes.get(name)
        if op in ("in", "not in"):
            items = [v.strip() for v in raw.strip("[]").split(",")]
            ok = value is not None and value in items
            ok = ok if op == "in" else (value is not None and not ok)
        elif op == "==":
            ok = value == raw
        elif op == "!=":
            ok = value is not None and value != raw
        else:
            ok = value is not None and re.fullmatch(raw, value) is not None
        if not ok:
            return False
    return True


def _bits(mask: int) -> tuple[int, ...]:
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


class ReferencePlacer:
    """Places and releases tasks over a list of RefInstance."""

    def __init__(self, instances: list[RefInstance], *, device_mode: str = "device-aware") -> None:
        self.instances = instances
        self.blind = device_mode == "ecs-blind"
        self.holds: dict[str, RefHold] = {}

    @classmethod
    def from_state(cls, state: ClusterState, *, device_mode: str = "device-aware") -> ReferencePlacer:
        """A reference with the same instances, free resources and running tasks as ``state`` now."""
        out = []
        for inst in state.instances:
            i = inst.index
            out.append(
                RefInstance(
                    row=i,
                    itype=inst.instance_type,
                    launch_type=inst.launch_type,
                    attributes=dict(inst.attributes),
                    schedulable=inst.status == "ACTIVE" and inst.agent_connected,
                    agent_connected=inst.agent_connected,
                    cpu=int(state.cpu_free[i]),
                    memory=int(state.mem_free[i]),
                    gpus=int(state.gpu_free[i]),
                    chips_free=int(state.chips_free[i]),
                    chips_all=int(state.chips_all[i]),
                    enis=int(state.eni_free[i]),
                    tcp=set(inst.reserved_tcp),
                    udp=set(inst.reserved_udp),
                )
            )
        ref = cls(out, device_mode=device_mode)
        for task_id, a in state.allocations.items():
            group = a.group or ""
            ref.holds[task_id] = RefHold(
                a.instance, a.cpu, a.memory, len(a.gpu_ids), a.chips, a.tcp_ports, a.udp_ports, group, a.enis
            )
            groups = out[a.instance].groups
            groups[group] = groups.get(group, 0) + 1
        return ref

    # ------------------------------------------------------------------ filters
    def _chips_fit(self, inst: RefInstance, spec: TaskSpec) -> bool:
        mode = spec.neuron_mode
        if mode is NeuronMode.MANUAL:
            need = sum(1 << c for c in spec.chips)
            return self.blind or inst.chips_free & need == need
        if mode is NeuronMode.MANAGED:
            return inst.launch_type == MANAGED and inst.chips_all > 0 and inst.chips_free == inst.chips_all
        if mode is NeuronMode.TOPOLOGY:
            if inst.itype.chips < spec.chip_count:
                return False
            return topology.choose_block(inst.itype, inst.chips_free, spec.chip_count) is not None
        return True

    def _filters(self, spec: TaskSpec, constraints: Sequence[Constraint], launch_type: str | None) -> list:
        allowed = {launch_type} if launch_type else set(spec.compatibilities)
        steps: list = [
            ("launch type", lambda i: i.launch_type in allowed),
            ("status", lambda i: i.schedulable),
            (
                "cpu architecture",
                lambda i: (
                    not spec.cpu_architecture
                    or i.attributes.get("ecs.cpu-architecture") == spec.cpu_architecture.lower()
                ),
            ),
        ]
        for c in constraints:
            if c.type != "memberOf":
                raise NotImplementedError(f"the reference placer does not model {c.type}")
            steps.append(("memberOf", lambda i, e=c.expression or "": _member_of(e, i.attributes)))
        steps += [
            ("cpu", lambda i: i.cpu >= spec.cpu),
            ("memory", lambda i: i.memory >= spec.memory),
        ]
        if spec.gpus:
            steps.append(("gpu", lambda i: i.gpus >= spec.gpus))
        if spec.tcp_ports or spec.udp_ports:
            steps.append(
                ("ports", lambda i: not (set(spec.tcp_ports) & i.tcp or set(spec.udp_ports) & i.udp))
            )
        if spec.network_mode == "awsvpc":
            steps.append(("eni", lambda i: i.enis >= 1))
        if spec.neuron_mode is not NeuronMode.NONE and not (
            spec.neuron_mode is NeuronMode.MANUAL and self.blind
        ):
            steps.append(("neuron devices", lambda i: self._chips_fit(i, spec)))
        return steps

    # ------------------------------------------------------------------ strategies
    def _scores(self, cand: list[RefInstance], s: Strategy, group: str) -> list[int]:
        if s.type == "binpack":
            f = s.field or "memory"
            if f == "neuronDevices":
                return [i.chips_free.bit_count() for i in cand]
            return [{"cpu": i.cpu, "memory": i.memory, "gpu": i.gpus}[f] for i in cand]
        # spread: tasks of the group on every instance (candidate or not) sharing the candidate's value
        name = (s.field or "").removeprefix("attribute:")
        per_value: dict[str | None, int] = {}
        for o in self.instances:
            value = o.attributes.get(name)
            per_value[value] = per_value.get(value, 0) + o.groups.get(group, 0)
        return [per_value[i.attributes.get(name)] for i in cand]

    def _choose(
        self, cand: list[RefInstance], chain: Sequence[Strategy], group: str, rng: np.random.Generator | None
    ) -> RefInstance:
        if len(cand) == 1:
            return cand[0]
        if all(i.launch_type == MANAGED for i in cand):
            chain = IMPLICIT_MANAGED_CHAIN
        for s in chain:
            if len(cand) == 1:
                return cand[0]
            if s.type == "random":
                return cand[int(rng.integers(len(cand)))] if rng is not None else cand[0]
            if s.type == "spread" and not (s.field or "").startswith("attribute:"):
                raise NotImplementedError("the reference placer spreads by attribute only")
            if s.type in ("binpack", "spread"):
                scores = self._scores(cand, s, group)
                best = min(scores)
                cand = [i for i, v in zip(cand, scores, strict=True) if v == best]
        if len(cand) > 1 and rng is not None and chain:
            return cand[int(rng.integers(len(cand)))]
        return cand[0]

    # ------------------------------------------------------------------ place / release
    def place(
        self,
        spec: TaskSpec,
        *,
        task_id: str,
        group: str | None = None,
        constraints: Sequence[Constraint] = (),
        strategies: Sequence[Strategy] = (),
        launch_type: str | None = None,
        rng: np.random.Generator | None = None,
    ) -> Decision:
        group = group or f"family:{spec.family}"
        cand = list(self.instances)
        for name, test in self._filters(spec, tuple(spec.constraints) + tuple(constraints), launch_type):
            cand = [i for i in cand if test(i)]
            if not cand:
                reason = REASONS[name]
                if name == "status" and any(not i.agent_connected for i in self.instances):
                    reason = "AGENT"
                return Decision(None, reason=reason)
        inst = self._choose(cand, strategies, group, rng)
        need = 0
        if spec.neuron_mode is NeuronMode.MANUAL:
            need = sum(1 << c for c in spec.chips)
            if self.blind and inst.chips_free & need != need:
                return Decision(inst.row, started=False)  # the container cannot open a named device
        elif spec.neuron_mode is NeuronMode.MANAGED:
            need = inst.chips_all
        elif spec.neuron_mode is NeuronMode.TOPOLOGY:
            need = topology.choose_block(inst.itype, inst.chips_free, spec.chip_count) or 0
        inst.cpu -= spec.cpu
        inst.memory -= spec.memory
        inst.gpus -= spec.gpus
        enis = 1 if spec.network_mode == "awsvpc" else 0
        inst.enis -= enis
        inst.chips_free &= ~need
        inst.tcp |= set(spec.tcp_ports)
        inst.udp |= set(spec.udp_ports)
        inst.groups[group] = inst.groups.get(group, 0) + 1
        self.holds[task_id] = RefHold(
            inst.row, spec.cpu, spec.memory, spec.gpus, need, spec.tcp_ports, spec.udp_ports, group, enis
        )
        return Decision(inst.row, _bits(need))

    def release(self, task_id: str) -> None:
        h = self.holds.pop(task_id)
        inst = self.instances[h.row]
        inst.cpu += h.cpu
        inst.memory += h.memory
        inst.gpus += h.gpus
        inst.enis += h.enis
        inst.chips_free |= h.chips
        inst.tcp -= set(h.tcp)
        inst.udp -= set(h.udp)
        inst.groups[h.group] -= 1


def core_decision(out: object) -> Decision:
    """The core's Placement or Failure in the reference's comparable form."""
    from scheduler.placement.results import Failure

    if isinstance(out, Failure):
        return Decision(None, reason=out.reason)
    return Decision(out.instance, tuple(out.chips), out.ok)  # type: ignore[attr-defined]
