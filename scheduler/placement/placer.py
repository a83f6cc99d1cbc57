"""The placement core: ``place(task)`` -> Placement | Failure, and ``release(task)``.

The pipeline follows ECS (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-placement.html)
and the scheduling-framework shape: filter (launch type and status, constraints, resources, devices) ->
score (strategies) -> reserve (CPU, memory, GPUs, ports, ENIs, chips). The filters are data
(``placement.filters``): one function each over a column view that instance rows and classes of
identical instances both expose. One pass runs them and keeps each step's survivors, so a failure is
explained from the pass itself: which step removed the last candidates, and what the closest instance
lacks. Masks that depend only on the cluster's membership and attributes are cached until the membership
changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count

import numpy as np

from scheduler.ecs import cql
from scheduler.ecs.taskspec import Constraint, Strategy, TaskSpec
from scheduler.errors import PlacementError, QueryError
from scheduler.placement import devices, kernel, strategies
from scheduler.placement.columns import ClassView, RowView
from scheduler.placement.devices import DeviceMode
from scheduler.placement.filters import EVENT_PHRASES, REASONS, Request
from scheduler.placement.filters.pipeline import ResourcePass, StaticPass, run_resources, run_static
from scheduler.placement.filters.resources import RESOURCES, enis_taken, gpus_taken
from scheduler.placement.filters.static import PER_INSTANCE_SUBJECTS
from scheduler.placement.results import DeferredFailure, Explanation, Failure, Placement, Step
from scheduler.placement.state import LAUNCH_CODES, Allocation, ClusterState, chips_of

MAX_CONSTRAINTS = 10

__all__ = ["EVENT_PHRASES", "MAX_CONSTRAINTS", "REASONS", "Placer", "strategies_narrow"]


class Placer:
    """Places tasks on one ClusterState and releases them."""

    def __init__(self, state: ClusterState, *, device_mode: DeviceMode | str = DeviceMode.AWARE,
                 cql_options: cql.CqlOptions | None = None, by_class: bool = True,
                 compiled: bool | str = "auto") -> None:
        self.state = state
        self.device_mode = DeviceMode(device_mode)
        self.cql_options = cql_options or cql.CqlOptions()
        # Decide over classes of identical instances where the request allows it (same decisions, fewer
        # rows to look at); False keeps every decision on the per-row path.
        self.by_class = by_class
        # The compiled kernel (placement.kernel) decides the requests it supports: True always (numba
        # required), False never, "auto" when numba is installed and its on-disk cache is warm or the
        # cluster has at least kernel.AUTO_MIN_INSTANCES instances (a cold compile pays off only there).
        if compiled not in (True, False, "auto"):
            raise PlacementError(f"compiled must be True, False or 'auto', got {compiled!r}")
        if compiled is True and not kernel.available():
            raise ImportError(kernel.INSTALL_HINT)
        self.compiled = compiled
        self._ids = count(1)
        self._entries: dict[tuple, _Entry] = {}
        self._keep: list[tuple] = []  # the arguments whose identities key ``_entries``
        self._generation = -1
        self._declined = -1  # the state version at which "auto" last declined the kernel

    # ------------------------------------------------------------------ the compiled path
    def live(self) -> kernel.LiveIndex | None:
        """The compiled index this placer decides through now (built or rebuilt as needed), or None."""
        st = self.state
        if self.compiled is False or self.device_mode is not DeviceMode.AWARE or not self.by_class:
            return None
        live = st._live
        if live is None:
            if self._declined == st.version:
                return None
            if self.compiled == "auto" and not (kernel.available() and (
                    len(st) >= kernel.AUTO_MIN_INSTANCES or kernel.cache_is_warm())):
                self._declined = st.version
                return None
            live = kernel.LiveIndex(st)
            st.attach(live)
            if self.compiled == "auto" or self.compiled is True:
                kernel.mark_warm()
        elif live.version != st.version:
            live.build()
        if self._generation != live.generation:
            self._entries.clear()
            self._keep.clear()
            self._generation = live.generation
        return live

    def prepared(self, spec: TaskSpec, every: tuple[Constraint, ...], chain: tuple[Strategy, ...], group: str,
                 launch_type: str | None, cps: tuple[str, ...] | None) -> _Entry:
        """A request as the compiled path decides it (cached until the instances change): its slot in the
        kernel, or its static failure, or why the Python path decides it."""
        key = (spec, every, chain, group, launch_type, cps)
        hit = self._entries.get(key)
        if hit is not None:
            return hit
        live = self.live()
        entry = _Entry(spec)
        if len(self._entries) > 4096:
            self._entries.clear()
            self._keep.clear()
        self._entries[key] = entry
        if live is None or self.device_mode is not DeviceMode.AWARE:
            entry.why = "the Python path decides (no compiled index)"
            return entry
        if len(every) > MAX_CONSTRAINTS:
            entry.why = "too many constraints: the Python path raises"
            return entry
        try:
            kernel.check_supported(spec, every, chain)
        except kernel.Unsupported as e:
            entry.why = str(e)
            return entry
        request = self._class_request(spec, every, launch_type, cps)
        if request is None:
            entry.why = "a constraint answered per instance"
            return entry
        req = self._request(spec, group, every, launch_type, cps)
        if request.static.failed is not None or len(self.state) == 0:
            entry.failure = self._static_failure(req, request.static)
            return entry
        entry.slot = live.prepare(spec, request.sig_ok, chain, group)
        entry.steps = request.static.steps()
        entry.group = group
        entry.gpus = spec.gpus if not (spec.gpus_all or spec.gpu_fraction) else -1
        entry.enis = enis_taken(spec)
        # the chips it takes: the ones it names, none, or (-1) every chip of the instance it lands on
        entry.chips = {"manual": devices.request_mask(spec), "managed": -1}.get(spec.neuron_mode.value, 0)
        entry.chip_ids = chips_of(entry.chips) if entry.chips > 0 else ()
        entry.request = req
        entry.resource_steps = [f.name for f in RESOURCES if f.applies(req)]
        entry.resource_at = [kernel.RESOURCE_STEPS.index(name) for name in entry.resource_steps]
        entry.cpu, entry.memory = spec.cpu, spec.memory
        return entry

    def _compiled_failure(self, entry: _Entry, live: kernel.LiveIndex) -> Failure:
        """The Failure the Python pass gives, from the kernel's failure details, its words built when first
        read (``DeferredFailure``). The words depend on those details and the request only, so a request's
        failures are kept by details (a Failure is immutable; the key is the details' raw bytes, read without
        building Python ints): a cluster at saturation fails the same way over and over, and pays for the
        words once."""
        key = live.failure_key()
        hit = entry.failures.get(key)
        if hit is None:
            if len(entry.failures) >= _FAILURES_KEPT:
                entry.failures.clear()
            hit = entry.failures[key] = DeferredFailure(self._compiled_failure_words, entry, key)
        return hit

    def _compiled_failure_words(self, entry: _Entry, key: bytes) -> Failure:
        left, before, closest, lacks, (managed, neuron, present, free) = kernel.failure_details(key)
        req = entry.request
        names = entry.resource_steps
        steps = list(entry.steps)
        failed = names[-1]
        for name, at in zip(names, entry.resource_at, strict=True):
            after = left[at]
            steps.append(_new_step(Step, (name, before, before - after)))
            if not after:
                failed = name
                break
            before = after
        shortage = devices.shortage_words(entry.spec, bool(managed), bool(neuron), present, free)
        # the words depend on the failed step, what the closest instance lacks and the Neuron shortage, not
        # on which instance is closest nor on the counts: build them once per such triple
        wkey = (failed, tuple(lacks), shortage)
        words = entry.words.get(wkey)
        if words is None:
            if len(entry.words) >= _FAILURES_KEPT:
                entry.words.clear()
            words = entry.words[wkey] = self._failure(failed, req, [], closest=(closest, tuple(lacks), None),
                                                      shortage=shortage)
        said = words.explanation
        assert said is not None
        return Failure(words.reason, words.detail, closest,
                       Explanation(tuple(steps), closest, said.lacks, said.event, said.phrase))

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
        if only is None and self.compiled is not False:
            # keyed by identity (the arguments are immutable tuples kept alive in ``_keep``), so that a
            # repeated request costs one dict lookup, not a hash of the whole task definition
            key = (id(spec), id(constraints), id(strategies), group, launch_type, id(capacity_providers))
            entry = self._entries.get(key)
            st = self.state
            live = st._live
            # the fast path: a request met before, on the same compiled index (no instance changed since);
            # _AWARE, not DeviceMode.AWARE: an enum member read through its class costs ~0.3 us
            if not (entry is not None and live is not None and live.generation == self._generation
                    and live.version == st.version and self.by_class and self.device_mode is _AWARE):
                live = self.live()  # built or rebuilt: a new index forgets the requests prepared for the old
                entry = self._entries.get(key) if live is not None else None
                if live is not None and entry is None:
                    _chain_by_class(strategies)  # raises for a chain ECS rejects, before it is prepared
                    g = group or f"family:{spec.family}"
                    cps = tuple(capacity_providers) if capacity_providers is not None else None
                    entry = self.prepared(spec, spec.constraints + tuple(constraints), tuple(strategies), g,
                                          launch_type, cps)
                    if (type(constraints) is tuple and type(strategies) is tuple
                            and type(capacity_providers) in (tuple, type(None))):
                        self._entries[key] = entry
                        self._keep.append((spec, constraints, strategies, capacity_providers))
            if entry is not None:
                if entry.slot >= 0:  # the compiled decision, inline (a call costs as much as a few checks)
                    if not task_id:  # None or "": a generated id, as on the Python path
                        task_id = f"task-{next(self._ids)}"
                    elif task_id in st.allocations:
                        raise PlacementError(f"task {task_id} already holds resources")
                    if rng is not live._rng:
                        live.use_rng(rng)
                    row = live._decide(live.R, live.X, live.Z, entry.slot, live._st, live._fn, True)
                    if row < 0:  # a failure met before (by its details) costs one lookup
                        return entry.failures.get(live._details.tobytes()) or self._compiled_failure(entry, live)
                    chips = entry.chips
                    if chips < 0:  # NeuronDevice=ALL: every chip of the instance
                        chips = int(st._chips_all[row])
                        chip_ids = chips_of(chips)
                    else:
                        chip_ids = entry.chip_ids
                    gpus = entry.gpus if entry.gpus >= 0 else gpus_taken(entry.spec, int(st._gpu_reg[row]))
                    alloc = st.record(task_id, row, entry.cpu, entry.memory, gpus, chips, (), (), entry.group,
                                      entry.enis, chip_ids)
                    return _new_placement(Placement, (task_id, row, chip_ids, alloc[4], None))
                if entry.failure is not None:
                    return entry.failure
        group = group or f"family:{spec.family}"
        every = spec.constraints + tuple(constraints)
        if len(every) > MAX_CONSTRAINTS:
            raise PlacementError(f"at most {MAX_CONSTRAINTS} placement constraints per task (task "
                                 f"definition and request together), got {len(every)}")
        chain_by_class = _chain_by_class(strategies)
        if self.by_class and only is None:
            request = self._class_request(spec, every, launch_type, capacity_providers)
            if request is not None and chain_by_class:
                if request.static.failed is not None or len(self.state) == 0:
                    return self._static_failure(self._request(spec, group, every, launch_type,
                                                              capacity_providers), request.static)
                req = self._request(spec, group, every, launch_type, capacity_providers)
                ix = self.state.classes()
                items = request.sig_ok[ix.c_sig[: ix.k]].nonzero()[0]
                rp = run_resources(ClassView(self.state), req, items)
                cls = rp.feasible()
                if len(cls) == 0:
                    return self._resource_failure(req, request.static.steps(), rp)
                index = _narrow_classes(self.state, cls, strategies, request.managed, group=group, rng=rng)
                return self._reserve(spec, index, task_id or f"task-{next(self._ids)}", group)
        req = self._request(spec, group, every, launch_type, capacity_providers)
        sp = self._static_pass(req, only)
        if sp.failed is not None or len(self.state) == 0:
            return self._static_failure(req, sp)
        rp = run_resources(RowView(self.state), req, np.flatnonzero(sp.mask))
        cand = rp.feasible()
        if len(cand) == 0:
            return self._resource_failure(req, sp.steps(), rp)
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
        return self._static_pass(self._request(spec, group, every, launch_type, capacity_providers), only).mask

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
        group = group or f"family:{spec.family}"
        every = spec.constraints if constraints is None else tuple(constraints)
        req = self._request(spec, group, every, launch_type, capacity_providers)
        sp = self._static_pass(req, only)
        mask = np.zeros(len(self.state), bool)
        if sp.failed is None and len(self.state):
            mask[run_resources(RowView(self.state), req, np.flatnonzero(sp.mask)).feasible()] = True
        return mask

    def explain(self, spec: TaskSpec, *, group: str | None = None,
                constraints: Sequence[Constraint] | None = None, launch_type: str | None = None,
                capacity_providers: Sequence[str] | None = None, only: np.ndarray | None = None) -> Failure:
        """Run the filters over every row and say why the task cannot be placed now."""
        group = group or f"family:{spec.family}"
        every = spec.constraints if constraints is None else tuple(constraints)
        req = self._request(spec, group, every, launch_type, capacity_providers)
        sp = self._static_pass(req, only)
        if sp.failed is not None or len(self.state) == 0:
            return self._static_failure(req, sp)
        rp = run_resources(RowView(self.state), req, np.flatnonzero(sp.mask))
        if rp.ok.any():  # feasible after all: the caller raced a change; report the generic form
            return Failure("RESOURCE:*", "no instance satisfied every requirement",
                           explanation=Explanation(tuple(sp.steps())))
        return self._resource_failure(req, sp.steps(), rp)

    # ------------------------------------------------------------------ the pass
    def _request(self, spec: TaskSpec, group: str, every: tuple[Constraint, ...], launch_type: str | None,
                 capacity_providers: Sequence[str] | None) -> Request:
        cps = tuple(capacity_providers) if capacity_providers is not None else None
        return Request(spec, self.state, self.device_mode, launch_type, cps, group, every, self.cql_options)

    def _static_pass(self, req: Request, only: np.ndarray | None) -> StaticPass:
        start = None if only is None else _rows_mask(len(self.state), only)
        return run_static(req, start)

    # ------------------------------------------------------------------ the same pass over classes
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
        sp = run_static(self._request(spec, "", every, launch_type, cps))
        ix = st.classes()
        sig_ok = ix.signature_mask(sp.mask)
        managed = ix.signature_mask(st.launch_code == LAUNCH_CODES["MANAGED_INSTANCES"])[:-1][sig_ok[:-1]]
        kind = 1 if managed.all() else (2 if managed.any() else 0)
        return _ClassRequest(sig_ok, kind, sp)

    # ------------------------------------------------------------------ reserve
    def _reserve(self, spec: TaskSpec, index: int, task_id: str, group: str) -> Placement:
        st = self.state
        if self.device_mode is DeviceMode.BLIND:
            conflict = devices.start_conflict(st, spec, index)
            if conflict is not None:
                return Placement(task_id, index, start_failure=conflict)
        chips = devices.chips_for(st, spec, index, self.device_mode)
        gpus = gpus_taken(spec, int(st._gpu_reg[index])) if spec.gpus or spec.gpus_all or spec.gpu_fraction else 0
        alloc = st.reserve(task_id, index, cpu=spec.cpu, memory=spec.memory, gpus=gpus, chips=chips,
                           tcp_ports=spec.tcp_ports, udp_ports=spec.udp_ports, group=group,
                           enis=enis_taken(spec))
        return Placement(task_id, index, chips_of(chips), alloc.gpu_ids)

    # ------------------------------------------------------------------ failures, in words
    def _static_failure(self, req: Request, sp: StaticPass) -> Failure:
        """The Failure for a request that no row passes the static steps of (or an empty cluster)."""
        if len(self.state) == 0:
            return Failure("NO ACTIVE INSTANCES", "No Container Instances were found in your cluster",
                           explanation=Explanation(steps=()))
        assert sp.failed is not None
        return self._failure(sp.failed.name, req, sp.steps())

    def _resource_failure(self, req: Request, steps: list[Step], rp: ResourcePass) -> Failure:
        more, failed, closest, lacks = rp.explain()
        return self._failure(failed.name, req, steps + more, closest=(closest, lacks, rp.view.first[rp.items]))

    def _failure(self, name: str, req: Request, steps: list[Step], *,
                 closest: tuple[int, tuple[str, ...], np.ndarray | None] | None = None,
                 shortage: str | None = None) -> Failure:
        """The Failure for a decision that ran out of candidates at step ``name``; ``closest`` is the
        nearest instance row, what it lacks, and the candidate rows before the resource steps (or None
        with ``shortage``, the Neuron step's words, already found). The words name no instance: views add
        its identity (``Failure.instance`` is its row)."""
        st, spec, launch_type = self.state, req.spec, req.launch_type
        reason = REASONS.get(name, "RESOURCE:*")
        detail = ""
        best = None
        lacks: tuple[str, ...] = ()
        event = phrase = ""
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
            event = (f"unable to place a task because no container instance met all of its requirements. "
                     f"The closest matching container-instance {phrase}.")
            if name == "neuron devices":
                detail = shortage if cand is None else devices.shortage_detail(st, spec, cand)
            elif name == "gpu":
                detail = _gpu_detail(spec)
            elif name == "eni":
                detail = "no candidate instance has a free ENI attachment slot for an awsvpc task"
            else:
                need = {"cpu": f"{spec.cpu} CPU units", "memory": f"{spec.memory} MiB",
                        "ports": "host ports " + ", ".join(map(str, spec.tcp_ports + spec.udp_ports))}
                detail = f"no candidate instance has {need.get(name, name)} free"
        explanation = Explanation(tuple(steps), best, lacks, event, phrase)
        return Failure(reason, detail, best, explanation)


def _gpu_detail(spec: TaskSpec) -> str:
    if spec.gpu_fraction:
        return (f"no candidate instance has a free {spec.gpu_fraction:g} GPU partition (only the G6f "
                "partition types offer one)")
    if spec.gpus_all:
        return "no candidate instance has GPUs, all of them free (GPU=ALL takes every GPU of the instance)"
    return f"no candidate instance has {spec.gpus} GPU(s) free"


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
    static: StaticPass  # the static steps' survivors over rows: the explanation's first steps


class _Entry:
    """One request as ``Placer.place`` met it (keyed by its arguments): a kernel slot (-1: none), or its
    static failure, or why the Python path decides it; and what a placement takes."""

    __slots__ = (
        "chip_ids",
        "chips",
        "cpu",
        "enis",
        "failure",
        "failures",
        "gpus",
        "group",
        "memory",
        "request",
        "resource_at",
        "resource_steps",
        "slot",
        "spec",
        "steps",
        "why",
        "words",
    )

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.slot = -1
        self.failure: Failure | None = None
        self.failures: dict[tuple, Failure] = {}  # the kernel's failure details -> the Failure in words
        self.words: dict[tuple, Failure] = {}  # (failed step, lacks, shortage) -> a Failure with those words
        self.why = ""
        self.steps: list[Step] = []
        self.group = ""
        self.gpus = self.enis = self.chips = 0
        self.chip_ids: tuple[int, ...] = ()
        self.request: Request | None = None
        self.resource_steps: list[str] = []
        self.resource_at: list[int] = []  # each resource step's place in the kernel's failure details
        self.cpu = self.memory = 0


_CHAIN_BY_CLASS: dict[tuple[Strategy, ...], bool] = {}  # a chain ECS accepts -> whether classes can narrow it


def _chain_by_class(chain: Sequence[Strategy]) -> bool:
    """Whether the strategy chain can be narrowed over classes of identical instances; PlacementError for a
    chain RunTask rejects (more than five rules, an unknown type or field). Each distinct chain is checked once."""
    key = tuple(chain)
    hit = _CHAIN_BY_CLASS.get(key)
    if hit is None:
        strategies.check_strategies(key)
        hit = strategies.classes_can_narrow(key)
        if len(_CHAIN_BY_CLASS) < 4096:
            _CHAIN_BY_CLASS[key] = hit
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


_MISSING = object()
_AWARE = DeviceMode.AWARE
_FAILURES_KEPT = 256  # per request: distinct failures kept in words
_new_placement = _new_step = tuple.__new__  # Placement(*fields), Step(*fields) without NamedTuple's keyword handling


def _rows_mask(n: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[rows] = True
    return mask
