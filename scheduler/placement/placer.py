"""The placement core: ``place(task)`` -> Placement | Failure, and ``release(task)``.

The pipeline follows ECS (ecs-semantics.md §1.1) and the scheduling-framework shape of DESIGN.md:
filter (launch type and status, constraints, resources, devices) -> score (strategies) -> reserve
(CPU, memory, GPUs, ports, chips). Filters are vectorised masks over all instances; masks that depend
only on the cluster's membership and attributes are cached until the membership changes. On failure the
filters are replayed one by one to say which step removed the last candidates and what the closest
instance lacked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count

import numpy as np

from scheduler.ecs import cql
from scheduler.ecs.taskspec import Constraint, NeuronMode, Strategy, TaskSpec
from scheduler.errors import PlacementError, QueryError
from scheduler.placement import devices, strategies
from scheduler.placement.devices import DeviceMode
from scheduler.placement.results import Explanation, Failure, Placement, Step
from scheduler.placement.state import LAUNCH_CODES, Allocation, ClusterState, chips_of

MAX_CONSTRAINTS = 10
# Query subjects that differ from one instance to the next even among identical ones: a constraint that
# reads them cannot be answered per class of identical instances.
PER_INSTANCE_SUBJECTS = frozenset({"ec2InstanceId", "registeredAt"})

# ECS failure reasons (RunTask failures[].reason) per filter step.
REASONS = {
    "launch type": "NO ACTIVE INSTANCES",
    "status": "NO ACTIVE INSTANCES",
    "cpu architecture": "ATTRIBUTE",
    "memberOf": "MemberOf placement constraint unsatisfied",
    "distinctInstance": "DistinctInstance placement constraint unsatisfied",
    "cpu": "RESOURCE:CPU",
    "memory": "RESOURCE:MEMORY",
    "gpu": "RESOURCE:GPU",
    "ports": "RESOURCE:PORTS",
    "neuron devices": "RESOURCE:NEURON_DEVICES",
}
# The closest instance's shortfall in the words of ECS's service events.
EVENT_PHRASES = {
    "cpu": "has insufficient CPU units available",
    "memory": "has insufficient memory available",
    "gpu": "has insufficient GPU available",
    "ports": "is already using a port required by your task",
    "neuron devices": "has no free Neuron device required by your task",
}


class Placer:
    """Places tasks on one ClusterState and releases them."""

    def __init__(self, state: ClusterState, *, device_mode: DeviceMode | str = DeviceMode.AWARE,
                 cql_options: cql.CqlOptions | None = None, by_class: bool = True) -> None:
        self.state = state
        self.device_mode = DeviceMode(device_mode)
        self.cql_options = cql_options or cql.CqlOptions()
        # Decide over classes of identical instances where the request allows it (same decisions, fewer
        # rows to look at); False keeps every decision on the per-row path.
        self.by_class = by_class
        self._ids = count(1)

    # ------------------------------------------------------------------ public API
    def place(
        self,
        spec: TaskSpec,
        *,
        task_id: str | None = None,
        group: str | None = None,
        constraints: Sequence[Constraint] = (),
        strategies: Sequence[Strategy] = (),
        launch_type: str | None = None,
        capacity_providers: Sequence[str] | None = None,
        rng: np.random.Generator | None = None,
        only: np.ndarray | None = None,
    ) -> Placement | Failure:
        """Choose an instance for one task and reserve what it needs there.

        ``group`` defaults to ``family:<family>``; ``constraints`` are added to the task definition's
        own; with no ``strategies`` the first feasible instance (lowest row) is taken. ``only`` (a boolean
        array of instance rows) restricts the candidates, as StartTask and daemon placement do.
        """
        group = group or f"family:{spec.family}"
        every = spec.constraints + tuple(constraints)
        if len(every) > MAX_CONSTRAINTS:
            raise PlacementError(f"at most {MAX_CONSTRAINTS} placement constraints per task (task "
                                 f"definition and request together), got {len(every)}")
        if self.by_class and only is None:
            request = self._class_request(spec, every, launch_type, capacity_providers)
            if request is not None and _chain_by_class(strategies):
                cls = self._feasible_classes(spec, request.sig_ok)
                if len(cls) == 0:
                    return self._explain_classes(spec, group, every, launch_type, capacity_providers, request)
                index = _narrow_classes(self.state, cls, strategies, request.managed, group=group, rng=rng)
                return self._reserve(spec, index, task_id or f"task-{next(self._ids)}", group)
        mask = self.feasible(spec, group=group, constraints=every, launch_type=launch_type,
                             capacity_providers=capacity_providers, only=only)
        cand = np.flatnonzero(mask)
        if len(cand) == 0:
            return self.explain(spec, group=group, constraints=every, launch_type=launch_type,
                                capacity_providers=capacity_providers, only=only)
        index = strategies_narrow(self.state, cand, strategies, group=group, rng=rng)
        return self._reserve(spec, index, task_id or f"task-{next(self._ids)}", group)

    def release(self, task_id: str) -> Allocation:
        """Give back everything the task holds."""
        return self.state.free(task_id)

    def satisfies(
        self,
        spec: TaskSpec,
        *,
        group: str | None = None,
        constraints: Sequence[Constraint] | None = None,
        launch_type: str | None = None,
        capacity_providers: Sequence[str] | None = None,
        only: np.ndarray | None = None,
    ) -> np.ndarray:
        """Instances that meet the task's launch type, status and constraints, whatever their load."""
        group = group or f"family:{spec.family}"
        every = spec.constraints if constraints is None else tuple(constraints)
        mask = self._eligible(spec, launch_type, capacity_providers)
        if only is not None:
            mask = mask & _rows_mask(len(self.state), only)
        for c in every:
            if not mask.any():
                return mask
            mask = mask & self._constraint_mask(c, group)
        return mask

    def feasible(
        self,
        spec: TaskSpec,
        *,
        group: str | None = None,
        constraints: Sequence[Constraint] | None = None,
        launch_type: str | None = None,
        capacity_providers: Sequence[str] | None = None,
        only: np.ndarray | None = None,
    ) -> np.ndarray:
        """Boolean mask of the instances that can take the task now."""
        st = self.state
        mask = self.satisfies(spec, group=group, constraints=constraints, launch_type=launch_type,
                              capacity_providers=capacity_providers, only=only)
        if spec.cpu:
            mask = mask & (st.cpu_free >= spec.cpu)
        if spec.memory:
            mask = mask & (st.mem_free >= spec.memory)
        if spec.gpus:
            mask = mask & (st.gpu_free >= spec.gpus)
        if spec.tcp_ports or spec.udp_ports:
            ports = st.ports_free_mask(spec.tcp_ports, spec.udp_ports)
            if ports is not None:
                mask = mask & ports
        if spec.neuron_mode is not NeuronMode.NONE:
            cand = np.flatnonzero(mask)
            chips = devices.chip_mask(st, spec, cand, self.device_mode)
            if chips is not None:
                mask = np.zeros(len(st), bool)
                mask[cand[chips]] = True
        return mask

    # ------------------------------------------------------------------ filters
    def _eligible(self, spec: TaskSpec, launch_type: str | None,
                  capacity_providers: Sequence[str] | None) -> np.ndarray:
        st = self.state
        key = ("eligible", launch_type, spec.compatibilities, spec.cpu_architecture,
               tuple(capacity_providers) if capacity_providers is not None else None)
        hit = st.static_masks.get(key)
        if hit is None:
            hit = self._launch_mask(spec, launch_type, capacity_providers) & self._arch_mask(spec)
            hit = hit & st.schedulable
            st.static_masks[key] = hit
        return hit

    def _launch_mask(self, spec: TaskSpec, launch_type: str | None,
                     capacity_providers: Sequence[str] | None) -> np.ndarray:
        st = self.state
        allowed = {launch_type} if launch_type else set(spec.compatibilities)
        codes = [LAUNCH_CODES[lt] for lt in allowed if lt in LAUNCH_CODES]
        mask = np.isin(st.launch_code, codes)
        if capacity_providers is not None:
            wanted = set(capacity_providers)
            mask &= np.fromiter((i.capacity_provider in wanted for i in st.instances), bool, len(st))
        return mask

    def _arch_mask(self, spec: TaskSpec) -> np.ndarray:
        if not spec.cpu_architecture:
            return np.ones(len(self.state), bool)
        arch = self.state.attribute_column("ecs.cpu-architecture")
        return arch == spec.cpu_architecture.lower()

    def _constraint_mask(self, c: Constraint, group: str) -> np.ndarray:
        st = self.state
        if c.type == "distinctInstance":
            return st.group_counts(group) == 0
        if c.type == "memberOf":
            query = cql.parse(c.expression or "", self.cql_options)
            return query.evaluate(st, st.static_masks)
        raise PlacementError(f"unknown placement constraint type {c.type!r}")

    # ------------------------------------------------------------------ the same filters over classes
    def _class_request(self, spec: TaskSpec, every: tuple[Constraint, ...], launch_type: str | None,
                       capacity_providers: Sequence[str] | None) -> _ClassRequest | None:
        """What the request's static filters say per signature, cached until the instances change.

        None when some constraint can differ between identical instances (task groups, running counts,
        instance ids, registration times, distinctInstance): such requests take the per-row path."""
        st = self.state
        cps = tuple(capacity_providers) if capacity_providers is not None else None
        key = ("by-class", launch_type, spec.compatibilities, spec.cpu_architecture, cps, every)
        hit = st.static_masks.get(key, _MISSING)
        if hit is _MISSING:
            hit = st.static_masks[key] = self._compute_class_request(spec, every, launch_type, cps)
        return hit

    def _compute_class_request(self, spec: TaskSpec, every: tuple[Constraint, ...], launch_type: str | None,
                               cps: tuple[str, ...] | None) -> _ClassRequest | None:
        for c in every:
            if c.type != "memberOf":
                return None
            try:
                query = cql.parse(c.expression or "", self.cql_options)
            except QueryError:
                return None  # the per-row path raises it where it would
            if not query.is_static or query.subjects & PER_INSTANCE_SUBJECTS:
                return None
        st = self.state
        mask = self._eligible(spec, launch_type, cps)
        for c in every:
            mask = mask & self._constraint_mask(c, "")
        ix = st.classes()
        sig_ok = ix.signature_mask(mask)
        managed = ix.signature_mask(st.launch_code == LAUNCH_CODES["MANAGED_INSTANCES"])[:-1][sig_ok[:-1]]
        kind = 1 if managed.all() else (2 if managed.any() else 0)
        return _ClassRequest(sig_ok, kind)

    def _feasible_classes(self, spec: TaskSpec, sig_ok: np.ndarray) -> np.ndarray:
        """The classes (of the index) whose instances can take the task now, as in ``feasible``."""
        ix = self.state.classes()
        ok = sig_ok[ix.c_sig]
        if spec.cpu:
            ok &= ix.c_cpu >= spec.cpu
        if spec.memory:
            ok &= ix.c_mem >= spec.memory
        if spec.gpus:
            ok &= ix.c_gpu >= spec.gpus
        if spec.tcp_ports or spec.udp_ports:
            ok &= self._ports_ok(spec)[ix.c_port]
        cls = ok.nonzero()[0]
        if len(cls) and devices.needs_chip_check(spec, self.device_mode):
            cls = cls[self._class_chip_fits(spec, cls)]
        return cls

    def _ports_ok(self, spec: TaskSpec) -> np.ndarray:
        tcp, udp = set(spec.tcp_ports), set(spec.udp_ports)
        ok = [not (tcp & t or udp & u) for t, u in self.state.classes().port_sets]
        # at least one entry: free class slots hold port id 0 even before any port set exists (no instance)
        return np.array(ok or [False], bool)

    def _class_chip_fits(self, spec: TaskSpec, cls: np.ndarray) -> np.ndarray:
        ix = self.state.classes()
        free = ix.c_chips[cls]
        if spec.neuron_mode is NeuronMode.MANUAL:
            return devices.manual_fits(spec, free)
        launch, types, n_chips, chips_all = ix.signature_columns()
        sig = ix.c_sig[cls]
        if spec.neuron_mode is NeuronMode.MANAGED:
            return devices.managed_fits(free, launch[sig], n_chips[sig], chips_all[sig])
        return devices.topology_fits(self.state, spec, free, n_chips[sig], types[sig])

    def _explain_classes(self, spec: TaskSpec, group: str, every: tuple[Constraint, ...],
                         launch_type: str | None, capacity_providers: Sequence[str] | None,
                         request: _ClassRequest) -> Failure:
        """``explain`` for a request whose filters the classes answer: the same Failure, counted per class."""
        st = self.state
        ix = st.classes()
        survivors = request.sig_ok[ix.c_sig].nonzero()[0]
        if len(survivors) == 0:
            return self.explain(spec, group=group, constraints=every, launch_type=launch_type,
                                capacity_providers=capacity_providers)
        if request.static_steps is None:
            request.static_steps = self._static_steps(spec, group, every, launch_type, capacity_providers)
        steps = list(request.static_steps)
        sizes = ix.c_size[survivors]
        named: list[tuple[str, np.ndarray]] = [
            ("cpu", ix.c_cpu[survivors] >= spec.cpu),
            ("memory", ix.c_mem[survivors] >= spec.memory),
        ]
        if spec.gpus:
            named.append(("gpu", ix.c_gpu[survivors] >= spec.gpus))
        if spec.tcp_ports or spec.udp_ports:
            named.append(("ports", self._ports_ok(spec)[ix.c_port[survivors]]))
        if devices.needs_chip_check(spec, self.device_mode):
            named.append(("neuron devices", self._class_chip_fits(spec, survivors)))
        passed = np.array([m for _, m in named])  # steps x survivor classes
        # rows left after each step, all steps at once: cumulative AND, weighted by class sizes
        left = (np.logical_and.accumulate(passed, axis=0) @ sizes).tolist()
        before = int(sizes.sum())
        for (name, _), after in zip(named, left, strict=True):
            steps.append(Step(name, before, before - after))
            if not after:
                misses = len(named) - passed.sum(axis=0)
                firsts = ix.c_first[survivors]
                j = int(np.argmin(np.where(misses == misses.min(), firsts, len(st))))
                column = passed[:, j].tolist()
                lacks = tuple(step for (step, _), ok in zip(named, column, strict=True) if not ok)
                return self._failure(name, spec, steps, launch_type=launch_type,
                                     closest=(int(firsts[j]), lacks, firsts))
            before = after
        raise PlacementError("internal: no class is feasible, yet every resource step kept one")

    def _static_steps(self, spec: TaskSpec, group: str, every: tuple[Constraint, ...],
                      launch_type: str | None, capacity_providers: Sequence[str] | None) -> tuple[Step, ...]:
        st = self.state
        mask = np.ones(len(st), bool)
        steps = []
        makes = [("launch type", lambda: self._launch_mask(spec, launch_type, capacity_providers)),
                 ("status", lambda: st.schedulable),
                 ("cpu architecture", lambda: self._arch_mask(spec))]
        makes += [(c.type, lambda c=c: self._constraint_mask(c, group)) for c in every]
        for name, make in makes:
            before = int(mask.sum())
            mask = mask & make()
            steps.append(Step(name, before, before - int(mask.sum())))
        return tuple(steps)

    # ------------------------------------------------------------------ reserve
    def _reserve(self, spec: TaskSpec, index: int, task_id: str, group: str) -> Placement:
        st = self.state
        if self.device_mode is DeviceMode.BLIND:
            conflict = devices.start_conflict(st, spec, index)
            if conflict is not None:
                return Placement(task_id, index, start_failure=conflict)
        chips = devices.chips_for(st, spec, index, self.device_mode)
        alloc = st.reserve(task_id, index, cpu=spec.cpu, memory=spec.memory, gpus=spec.gpus, chips=chips,
                           tcp_ports=spec.tcp_ports, udp_ports=spec.udp_ports, group=group)
        return Placement(task_id, index, chips_of(chips), alloc.gpu_ids)

    # ------------------------------------------------------------------ explanation
    def explain(self, spec: TaskSpec, *, group: str | None = None,
                constraints: Sequence[Constraint] | None = None, launch_type: str | None = None,
                capacity_providers: Sequence[str] | None = None, only: np.ndarray | None = None) -> Failure:
        """Replay the filters one by one and say why the task cannot be placed now."""
        st = self.state
        group = group or f"family:{spec.family}"
        every = spec.constraints if constraints is None else tuple(constraints)
        n = len(st)
        if n == 0:
            return Failure("NO ACTIVE INSTANCES", "No Container Instances were found in your cluster",
                           explanation=Explanation(steps=()))
        steps: list[Step] = []
        mask = np.ones(n, bool) if only is None else _rows_mask(n, only)

        def apply(name: str, step_mask: np.ndarray) -> bool:
            nonlocal mask
            before = int(mask.sum())
            mask = mask & step_mask
            steps.append(Step(name, before, before - int(mask.sum())))
            return bool(mask.any())

        static_steps = [
            ("launch type", lambda: self._launch_mask(spec, launch_type, capacity_providers)),
            ("status", lambda: st.schedulable),
            ("cpu architecture", lambda: self._arch_mask(spec)),
        ]
        for c in every:
            static_steps.append((c.type, lambda c=c: self._constraint_mask(c, group)))
        for name, make in static_steps:
            if not apply(name, make()):
                return self._failure(name, spec, steps, launch_type=launch_type)
        survivors = mask.copy()
        resource_steps = self._resource_masks(spec, survivors)
        for name, step_mask in resource_steps:
            if not apply(name, step_mask):
                return self._failure(name, spec, steps, launch_type=launch_type,
                                     closest=_closest(survivors, resource_steps))
        # Feasible after all: the caller raced a change; report the generic form.
        return Failure("RESOURCE:*", "no instance satisfied every requirement", explanation=Explanation(tuple(steps)))

    def _resource_masks(self, spec: TaskSpec, cand_mask: np.ndarray) -> list[tuple[str, np.ndarray]]:
        st = self.state
        out: list[tuple[str, np.ndarray]] = [
            ("cpu", st.cpu_free >= spec.cpu),
            ("memory", st.mem_free >= spec.memory),
        ]
        if spec.gpus:
            out.append(("gpu", st.gpu_free >= spec.gpus))
        ports = st.ports_free_mask(spec.tcp_ports, spec.udp_ports)
        if ports is not None:
            out.append(("ports", ports))
        cand = np.arange(len(st))
        chips = devices.chip_mask(st, spec, cand, self.device_mode)
        if chips is not None:
            out.append(("neuron devices", chips))
        return out

    def _failure(self, name: str, spec: TaskSpec, steps: list[Step], *, launch_type: str | None,
                 closest: tuple[int, tuple[str, ...], np.ndarray] | None = None) -> Failure:
        """The Failure for a decision that ran out of candidates at step ``name``; ``closest`` is the
        nearest instance, what it lacks, and the candidate rows before the resource steps."""
        st = self.state
        reason = REASONS.get(name, "RESOURCE:*")
        detail = ""
        best = None
        lacks: tuple[str, ...] = ()
        event = ""
        if name == "launch type":
            wanted = launch_type or "/".join(sorted(spec.compatibilities))
            detail = f"no container instance of launch type {wanted} in the cluster"
        elif name == "status":
            disconnected = [i for i in st.instances if not i.agent_connected]
            if disconnected:
                reason = "AGENT"
                detail = "the agent of every candidate instance is disconnected"
            else:
                detail = "no ACTIVE container instance (all are DRAINING or deregistered)"
        elif name == "cpu architecture":
            detail = f"no instance with cpu architecture {spec.cpu_architecture}"
        elif name in ("memberOf", "distinctInstance"):
            detail = "no instance satisfies the placement constraints"
        if closest is not None:
            best, lacks, cand = closest
            phrase = EVENT_PHRASES.get(lacks[0], "does not meet the task's requirements") if lacks else ""
            inst = st.instances[best]
            event = (f"unable to place a task because no container instance met all of its requirements. "
                     f"The closest matching container-instance {inst.arn.rsplit('/', 1)[-1]} {phrase}.")
            if name == "neuron devices":
                detail = devices.shortage_detail(st, spec, cand)
            else:
                need = {"cpu": f"{spec.cpu} CPU units", "memory": f"{spec.memory} MiB",
                        "gpu": f"{spec.gpus} GPU(s)",
                        "ports": "host ports " + ", ".join(map(str, spec.tcp_ports + spec.udp_ports))}
                detail = f"no candidate instance has {need.get(name, name)} free"
        explanation = Explanation(tuple(steps), best,
                                  st.instances[best].ec2_instance_id if best is not None else None,
                                  lacks, event)
        arn = st.instances[best].arn if best is not None else None
        return Failure(reason, detail, arn, explanation)


def strategies_narrow(state: ClusterState, cand: np.ndarray, chain: Sequence[Strategy], *,
                      group: str | None, rng: np.random.Generator | None) -> int:
    """Apply a strategy chain; Managed Instances rows take ECS's implicit AZ spread instead."""
    if len(cand) == 1:
        return int(cand[0])
    if bool((state.launch_code[cand] == LAUNCH_CODES["MANAGED_INSTANCES"]).all()):
        chain = strategies.MANAGED_INSTANCES_IMPLICIT
    return strategies.narrow(state, cand, chain, group=group, rng=rng)


@dataclass(slots=True)
class _ClassRequest:
    """A request's static filters per signature of the class index (cached in ``state.static_masks``)."""

    sig_ok: np.ndarray  # per signature, plus False for free class slots (index -1)
    managed: int        # eligible signatures that are Managed Instances: 0 none, 1 all, 2 some
    static_steps: tuple[Step, ...] | None = None  # explain's static steps, made on the first failure


_CHAIN_BY_CLASS: dict[tuple[Strategy, ...], bool] = {}


def _chain_by_class(chain: Sequence[Strategy]) -> bool:
    key = tuple(chain)
    hit = _CHAIN_BY_CLASS.get(key)
    if hit is None:
        hit = _CHAIN_BY_CLASS[key] = strategies.classes_can_narrow(key)
    return hit


def _narrow_classes(state: ClusterState, cls: np.ndarray, chain: Sequence[Strategy], managed: int, *,
                    group: str | None, rng: np.random.Generator | None) -> int:
    """``strategies_narrow`` over the candidate classes ``cls``: the same row, found per class."""
    ix = state.classes()
    if len(cls) == 1 and ix.c_size[cls[0]] == 1:
        return ix.rows[int(cls[0])][0]
    if managed == 2:
        launch = ix.signature_columns()[0][ix.c_sig[cls]]
        managed = int(bool((launch == LAUNCH_CODES["MANAGED_INSTANCES"]).all()))
    if managed == 1:
        chain = strategies.MANAGED_INSTANCES_IMPLICIT
    return strategies.narrow_classes(state, cls, chain, group=group, rng=rng)


def _closest(survivors: np.ndarray,
             resource_steps: list[tuple[str, np.ndarray]]) -> tuple[int, tuple[str, ...], np.ndarray]:
    """The first candidate row that fails the fewest resource steps, and which steps it fails."""
    cand = np.flatnonzero(survivors)
    misses = np.zeros(len(cand), np.int64)
    for _, m in resource_steps:
        misses += ~m[cand]
    best = int(cand[int(np.argmin(misses))])
    return best, tuple(step for step, m in resource_steps if not m[best]), cand


_MISSING = object()


def _rows_mask(n: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[rows] = True
    return mask
