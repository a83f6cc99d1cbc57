"""ClusterState: the container instances of one cluster and what remains free on each.

One row per container instance; one numpy column per resource (CPU units, MiB, GPUs, a bitmask of free
Neuron chips), so that feasibility is a handful of vectorised comparisons rather than a Python loop.
Python objects (attributes, GPU ids, which task holds which chip) live beside the columns and are touched
only for the one instance a decision picks.

The state also implements the query language's ``InstanceTable`` protocol (attribute columns, subjects,
task-group masks), so memberOf expressions evaluate over all instances at once.

The core formats no ECS or AWS identity (no ARNs, account or region): an instance is a row. Its EC2
instance id and GPU ids are plain values the caller gives at registration (``scheduler.views.identity``
does), stored so that the query language's ``ec2InstanceId`` can compare them and the views can show them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import NamedTuple

import numpy as np

from scheduler.catalog.model import LAUNCH_EC2, LAUNCH_MANAGED, InstanceType
from scheduler.errors import PlacementError
from scheduler.placement import pages
from scheduler.placement.enis import eni_slots

LAUNCH_CODES = {LAUNCH_EC2: 0, LAUNCH_MANAGED: 1}

ACTIVE = "ACTIVE"
DRAINING = "DRAINING"
INACTIVE = "INACTIVE"  # deregistered: kept as a row so indices stay stable, never a candidate

# Ports the ECS agent reserves on every Linux container instance (RESOURCE:PORTS).
AGENT_RESERVED_TCP_PORTS = (22, 2375, 2376, 51678, 51679)
MAX_RESERVED_PORTS = 100
SMALL_MERGE = 128  # tied candidates up to this many rows are merged and indexed directly

# Positions in ClusterState's totals block (see ``Totals``)
TOTAL_CPU, USED_CPU, TOTAL_MEMORY, USED_MEMORY, TOTAL_CHIPS, HELD_CHIPS = range(6)


class Totals(NamedTuple):
    """Cluster totals over the *live* container instances, ACTIVE and DRAINING (an INACTIVE row counts
    nothing): registered CPU units, registered MiB and Neuron chips present (a failed chip has left), and
    what running tasks hold of each. Free = total - used (tasks run only on live rows)."""

    cpu: int
    cpu_used: int
    memory: int
    memory_used: int
    chips: int
    chips_held: int

    @property
    def cpu_free(self) -> int:
        return self.cpu - self.cpu_used

    @property
    def memory_free(self) -> int:
        return self.memory - self.memory_used

    @property
    def chips_free(self) -> int:
        return self.chips - self.chips_held


@dataclass(slots=True)
class ContainerInstance:
    """What ECS knows of one registered container instance, beyond the numeric columns.

    ``ec2_instance_id`` is opaque data from the caller (None: an instance registered without one)."""

    index: int
    ec2_instance_id: str | None
    instance_type: InstanceType
    launch_type: str
    capacity_provider: str | None
    availability_zone: str
    attributes: dict[str, str]
    registered_at: float
    agent_version: str
    status: str = ACTIVE
    agent_connected: bool = True
    gpu_ids: tuple[str, ...] = ()
    free_gpu_ids: list[str] = field(default_factory=list)
    chip_holders: dict[int, str] = field(default_factory=dict)  # chip index -> task id
    reserved_tcp: set[int] = field(default_factory=set)
    reserved_udp: set[int] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)


class Allocation(NamedTuple):
    """Everything one running task holds on its instance; ``release`` gives exactly this back.

    Immutable, and a tuple underneath: one is made per placement, and a tuple is built several times
    faster than a frozen dataclass (fields are read by name)."""

    task_id: str
    instance: int
    cpu: int
    memory: int
    gpu_ids: tuple[str, ...]
    chips: int          # bitmask of chips held
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...]
    group: str | None
    enis: int = 0       # ENI attachment slots held (1 for an awsvpc task)


_new_allocation = tuple.__new__  # Allocation(*fields) without NamedTuple's keyword handling


class ClusterState:
    """The resource columns and instance records of one ECS cluster.

    It also keeps the cluster totals (:class:`Totals`) as one int64 block of six, so that reading them costs
    nothing and compiled code can update them in place. The update rule, O(1) per change:

    - a task's resources taken (``record``, which ``reserve`` and the compiled placer both call) add its
      CPU, MiB and chip count to the used totals; ``free`` subtracts them again;
    - a row registered (``add_instance``) adds its registered CPU, MiB and chips to the totals; a status
      change between live (ACTIVE, DRAINING) and INACTIVE adds or subtracts them; ``set_registered`` on a
      live row adds the difference; ``remove_chip`` of a present chip on a live row subtracts one chip.
    """

    def __init__(self, cluster: str = "default", *, capacity: int = 64, reserved_memory_mib: int = 0,
                 awsvpc_trunking: bool = False) -> None:
        self.cluster = cluster
        self.reserved_memory_mib = reserved_memory_mib
        self.awsvpc_trunking = awsvpc_trunking  # ENI trunking for instances registered from now on
        self._n = 0
        self._cap = max(1, capacity)
        self.instances: list[ContainerInstance] = []
        self.allocations: dict[str, Allocation] = {}
        self.version = 0  # bumped when instances or attributes change: static masks depend on it
        cap = self._cap
        self._set_columns(pages.zeros((7, cap)))
        self._eni_reg = np.zeros(cap, np.int64)
        self._cpu_reg = np.zeros(cap, np.int64)
        self._mem_reg = np.zeros(cap, np.int64)
        self._gpu_reg = np.zeros(cap, np.int64)
        self._chips_all = np.zeros(cap, np.uint64)
        self._n_chips = np.zeros(cap, np.int64)
        self._launch = np.zeros(cap, np.int8)
        self._type_code = np.zeros(cap, np.int32)
        self._active = np.zeros(cap, bool)
        self._connected = np.zeros(cap, bool)
        self._running = np.zeros(cap, np.int64)
        self._registered_at = np.zeros(cap, np.float64)
        self.type_names: list[str] = []
        self.types: list[InstanceType] = []  # indexed by type code
        self._type_codes: dict[str, int] = {}
        self._tcp_used: dict[int, np.ndarray] = {}
        self._udp_used: dict[int, np.ndarray] = {}
        self._group_counts: dict[str, np.ndarray] = {}
        self._set_counters()
        self._set_totals(np.zeros(6, np.int64))
        self._attr_cache: dict[str, np.ndarray] = {}
        self._codes_cache: dict[str, tuple[np.ndarray, list[str | None]]] = {}
        self._subject_cache: dict[str, np.ndarray] = {}
        self.static_masks: dict = {}  # per distinct request: masks that change only with the instances
        self._spread_counts: dict[str, dict[str, np.ndarray]] = {}  # group -> attribute -> tasks per value
        self._sig_codes: dict[str, np.ndarray] = {}
        self._classes: InstanceClasses | None = None
        # The compiled kernel's index (kernel.LiveIndex) when a Placer decides in compiled code: told of
        # every change to the free columns made here. While it is attached, the Python class index is
        # brought up to date only when read (rows changed since are kept in ``_dirty``).
        self._live = None
        self._dirty: set[int] = set()

    def _set_columns(self, block: np.ndarray) -> None:
        """The free columns are rows of one int64 block, so that compiled code reads and writes them in
        place: 0 and 6 belong to the kernel (signature, class slot), 1 CPU, 2 MiB, 3 GPUs, 4 ENI slots,
        5 free chips (the bits of the uint64 mask)."""
        self._cols = block
        self._cpu_free, self._mem_free, self._gpu_free, self._eni_free = block[1], block[2], block[3], block[4]
        self._chips_free = block[5].view(np.uint64)
        # the same memory as Python buffers: one item read or written in ~50 ns instead of a numpy scalar's ~300
        self._mv_cols = tuple(memoryview(block[k]) for k in range(block.shape[0]))

    def _set_totals(self, block: np.ndarray) -> None:
        self._totals = block
        self._mv_totals = memoryview(block)  # written item by item from Python (see the class docstring)

    def _set_counters(self) -> None:
        """Memoryviews over the running-task and task-group counters (rebuilt when the arrays change)."""
        self._mv_running = memoryview(self._running)
        self._group_mv = {group: memoryview(col) for group, col in self._group_counts.items()}

    def __getstate__(self) -> dict:
        """Pickle and deepcopy: the free columns as one block (views are rebuilt), no compiled index
        (a copy decides on the Python path until a Placer attaches a new one)."""
        if self._classes is not None:
            self.classes()  # bring the Python class index up to date first
        state = dict(self.__dict__)
        for name in ("_cpu_free", "_mem_free", "_gpu_free", "_eni_free", "_chips_free", "_mv_cols", "_mv_running",
                     "_group_mv", "_mv_totals"):
            state.pop(name)
        state["_live"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        block = pages.zeros(self._cols.shape)  # a copy's block in huge pages too, when large
        block[:] = self._cols
        self._set_columns(block)
        self._set_counters()
        self._set_totals(self._totals)

    # ---------------------------------------------------------------- size and views
    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[ContainerInstance]:
        return iter(self.instances)

    @property
    def cpu_free(self) -> np.ndarray:
        return self._cpu_free[: self._n]

    @property
    def mem_free(self) -> np.ndarray:
        return self._mem_free[: self._n]

    @property
    def gpu_free(self) -> np.ndarray:
        return self._gpu_free[: self._n]

    @property
    def eni_free(self) -> np.ndarray:
        return self._eni_free[: self._n]

    @property
    def eni_registered(self) -> np.ndarray:
        return self._eni_reg[: self._n]

    @property
    def chips_free(self) -> np.ndarray:
        return self._chips_free[: self._n]

    @property
    def chips_all(self) -> np.ndarray:
        return self._chips_all[: self._n]

    @property
    def n_chips(self) -> np.ndarray:
        return self._n_chips[: self._n]

    @property
    def cpu_registered(self) -> np.ndarray:
        return self._cpu_reg[: self._n]

    @property
    def mem_registered(self) -> np.ndarray:
        return self._mem_reg[: self._n]

    @property
    def gpu_registered(self) -> np.ndarray:
        return self._gpu_reg[: self._n]

    @property
    def launch_code(self) -> np.ndarray:
        return self._launch[: self._n]

    @property
    def type_code(self) -> np.ndarray:
        return self._type_code[: self._n]

    @property
    def schedulable(self) -> np.ndarray:
        """ACTIVE instances whose agent is connected: the only placement candidates."""
        return self._active[: self._n] & self._connected[: self._n]

    @property
    def running(self) -> np.ndarray:
        return self._running[: self._n]

    def totals(self) -> Totals:
        """The cluster totals now (O(1): kept up to date by every change, see the class docstring)."""
        return Totals._make(self._mv_totals.tolist())

    def totals_values(self) -> list[int]:
        """The totals as a plain list in :class:`Totals` order (the cheapest read, for a recorder)."""
        return self._mv_totals.tolist()

    @property
    def totals_block(self) -> np.ndarray:
        """The int64 block the totals live in (indexed by ``TOTAL_CPU`` ... ``HELD_CHIPS``), for compiled
        code that takes or gives back resources without ``record``/``free``: it must apply the same rule."""
        return self._totals

    def group_counts(self, group: str) -> np.ndarray:
        """Tasks of ``group`` on each instance (a zero column for an unknown group)."""
        col = self._group_counts.get(group)
        if col is None:
            return np.zeros(self._n, np.int32)
        return col[: self._n]

    # ---------------------------------------------------------------- membership
    def _grow(self) -> None:
        new = self._cap * 2
        block = pages.zeros((self._cols.shape[0], new))
        block[:, : self._cap] = self._cols
        self._set_columns(block)
        for name in ("_eni_reg", "_cpu_reg",
                     "_mem_reg", "_gpu_reg", "_chips_all", "_n_chips", "_launch", "_type_code", "_active",
                     "_connected", "_running", "_registered_at"):
            old = getattr(self, name)
            arr = np.zeros(new, old.dtype)
            arr[: self._cap] = old
            setattr(self, name, arr)
        for table in (self._tcp_used, self._udp_used, self._group_counts):
            for key, old in table.items():
                arr = np.zeros(new, old.dtype)
                arr[: self._cap] = old
                table[key] = arr
        self._cap = new
        self._set_counters()

    def _touch(self) -> None:
        self.version += 1
        self._attr_cache.clear()
        self._codes_cache.clear()
        self._subject_cache.clear()
        self.static_masks.clear()
        self._spread_counts.clear()
        self._sig_codes.clear()

    def add_instance(
        self,
        instance_type: InstanceType,
        *,
        launch_type: str = LAUNCH_EC2,
        availability_zone: str = "us-east-1a",
        capacity_provider: str | None = None,
        attributes: dict[str, str] | None = None,
        registered_at: float = 0.0,
        agent_version: str = "1.90.0",
        ec2_instance_id: str | None = None,
        gpu_ids: Sequence[str] | None = None,
    ) -> int:
        """Register a container instance; returns its row index (stable for the cluster's life).

        ``ec2_instance_id`` and ``gpu_ids`` are the caller's names for the instance and its GPUs (GPUs are
        named by their index when none are given); ``attributes`` are added to the built-in ones."""
        if launch_type not in LAUNCH_CODES:
            raise PlacementError(f"unknown launch type {launch_type!r}; expected EC2 or MANAGED_INSTANCES")
        if launch_type not in instance_type.launch_types:
            raise PlacementError(
                f"{instance_type.name} is not offered with launch type {launch_type} "
                f"(only {', '.join(sorted(instance_type.launch_types))})"
            )
        gpus = tuple(str(g) for g in range(instance_type.gpus)) if gpu_ids is None else tuple(gpu_ids)
        if len(gpus) != instance_type.gpus:
            raise PlacementError(f"{instance_type.name} has {instance_type.gpus} GPU(s), got {len(gpus)} GPU id(s)")
        if self._n == self._cap:
            self._grow()
        i = self._n
        self._n += 1
        code = self._type_codes.get(instance_type.name)
        if code is None:
            code = self._type_codes[instance_type.name] = len(self.type_names)
            self.type_names.append(instance_type.name)
            self.types.append(instance_type)
        cpu = instance_type.registered_cpu
        mem = instance_type.registered_memory_mib(self.reserved_memory_mib)
        all_chips = (1 << instance_type.chips) - 1
        self._cpu_free[i] = self._cpu_reg[i] = cpu
        self._mem_free[i] = self._mem_reg[i] = mem
        self._gpu_free[i] = self._gpu_reg[i] = instance_type.gpus
        self._eni_free[i] = self._eni_reg[i] = eni_slots(instance_type, self.awsvpc_trunking)
        self._chips_free[i] = self._chips_all[i] = all_chips
        self._n_chips[i] = instance_type.chips
        self._launch[i] = LAUNCH_CODES[launch_type]
        self._type_code[i] = code
        self._active[i] = True
        self._connected[i] = True
        self._running[i] = 0
        self._registered_at[i] = registered_at
        builtin = {
            "ecs.instance-type": instance_type.name,
            "ecs.availability-zone": availability_zone,
            "ecs.os-type": "linux",
            "ecs.os-family": "LINUX",
            "ecs.cpu-architecture": instance_type.cpu_architecture,
        }
        builtin.update(attributes or {})
        self.instances.append(ContainerInstance(
            index=i, ec2_instance_id=ec2_instance_id, instance_type=instance_type,
            launch_type=launch_type, capacity_provider=capacity_provider,
            availability_zone=availability_zone, attributes=builtin, registered_at=registered_at,
            agent_version=agent_version, gpu_ids=gpus, free_gpu_ids=list(gpus),
            reserved_tcp=set(AGENT_RESERVED_TCP_PORTS),
        ))
        for port in AGENT_RESERVED_TCP_PORTS:
            self._port_column(self._tcp_used, port)[i] = True
        totals = self._mv_totals
        totals[TOTAL_CPU] += cpu
        totals[TOTAL_MEMORY] += mem
        totals[TOTAL_CHIPS] += instance_type.chips
        self._touch()
        if self._classes is not None:
            self._classes.add_row(i)
        return i

    def set_status(self, index: int, status: str) -> None:
        """ACTIVE, DRAINING (no new tasks) or INACTIVE (deregistered)."""
        if status not in (ACTIVE, DRAINING, INACTIVE):
            raise PlacementError(f"unknown container instance status {status!r}")
        inst = self.instance(index)
        if status == INACTIVE and inst.tasks:
            raise PlacementError(f"container instance row {index} still runs {len(inst.tasks)} task(s)")
        if (inst.status == INACTIVE) != (status == INACTIVE):  # joins or leaves the live rows (runs no task)
            sign = 1 if inst.status == INACTIVE else -1
            totals = self._mv_totals
            totals[TOTAL_CPU] += sign * int(self._cpu_reg[index])
            totals[TOTAL_MEMORY] += sign * int(self._mem_reg[index])
            totals[TOTAL_CHIPS] += sign * int(self._n_chips[index])
        inst.status = status
        self._active[index] = status == ACTIVE
        self._touch()
        if self._classes is not None:
            self._classes.resign(index)

    def set_agent_connected(self, index: int, connected: bool) -> None:
        self.instance(index).agent_connected = connected
        self._connected[index] = connected
        self._touch()
        if self._classes is not None:
            self._classes.resign(index)

    def put_attributes(self, index: int, attributes: dict[str, str]) -> None:
        self.instance(index).attributes.update(attributes)
        self._touch()
        if self._classes is not None:
            self._classes.resign(index)

    def remove_chip(self, index: int, chip: int) -> None:
        """A failed Neuron chip leaves the instance's NEURON_DEVICES; no task may hold it."""
        inst = self.instance(index)
        if chip in inst.chip_holders:
            raise PlacementError(f"/dev/neuron{chip} on container instance row {index} is held by "
                                 f"{inst.chip_holders[chip]}")
        if int(self._chips_all[index]) >> chip & 1 and inst.status != INACTIVE:
            self._mv_totals[TOTAL_CHIPS] -= 1
        keep = np.uint64(~(1 << chip) & 0xFFFFFFFFFFFFFFFF)
        self._chips_all[index] &= keep
        self._chips_free[index] &= keep
        self._n_chips[index] = int(np.bitwise_count(self._chips_all[index]))
        self._touch()
        if self._classes is not None:
            self._classes.resign(index)

    def set_registered(self, index: int, *, cpu: int, memory: int) -> None:
        """Registered CPU and memory as the instance's agent reported them (a snapshot); nothing held yet."""
        inst = self.instance(index)
        if inst.tasks:
            raise PlacementError(f"{inst.ec2_instance_id} already runs tasks")
        if inst.status != INACTIVE:
            totals = self._mv_totals
            totals[TOTAL_CPU] += cpu - int(self._cpu_reg[index])
            totals[TOTAL_MEMORY] += memory - int(self._mem_reg[index])
        self._cpu_reg[index] = self._cpu_free[index] = cpu
        self._mem_reg[index] = self._mem_free[index] = memory
        self._touch()
        if self._classes is not None:
            self._classes.update_row(index, False)

    def instance(self, index: int) -> ContainerInstance:
        if not 0 <= index < self._n:
            raise PlacementError(f"no container instance at row {index}")
        return self.instances[index]

    # ---------------------------------------------------------------- ports
    def _port_column(self, table: dict[int, np.ndarray], port: int) -> np.ndarray:
        col = table.get(port)
        if col is None:
            col = table[port] = np.zeros(self._cap, bool)
        return col

    def ports_free_mask(self, tcp: Iterable[int], udp: Iterable[int]) -> np.ndarray | None:
        """Instances where none of the ports is reserved; None when the task reserves no port."""
        mask: np.ndarray | None = None
        for table, ports in ((self._tcp_used, tcp), (self._udp_used, udp)):
            for port in ports:
                col = table.get(port)
                if col is None:
                    continue
                free = ~col[: self._n]
                mask = free if mask is None else mask & free
        if mask is None and (tuple(tcp) or tuple(udp)):
            return np.ones(self._n, bool)
        return mask

    # ---------------------------------------------------------------- reserve / free
    def reserve(self, task_id: str, index: int, *, cpu: int, memory: int, gpus: int, chips: int,
                tcp_ports: tuple[int, ...] = (), udp_ports: tuple[int, ...] = (),
                group: str | None = None, enis: int = 0) -> Allocation:
        """Take resources on one instance for a task. The caller has checked feasibility."""
        if task_id in self.allocations:
            raise PlacementError(f"task {task_id} already holds resources")
        self.instance(index)
        self._cpu_free[index] -= cpu
        self._mem_free[index] -= memory
        self._gpu_free[index] -= gpus
        self._eni_free[index] -= enis
        if chips:
            self._chips_free[index] &= np.uint64(~chips & 0xFFFFFFFFFFFFFFFF)
        alloc = self.record(task_id, index, cpu, memory, gpus, chips, tcp_ports, udp_ports, group, enis)
        if self._live is not None:
            self._live.moved(index, group, 1)
        if self._classes is not None:
            if self._live is not None:
                self._dirty.add(index)
            else:
                self._classes.shift_row(index, -cpu, -memory, -gpus, chips, 0, bool(tcp_ports or udp_ports), -enis)
        return alloc

    def record(self, task_id: str, index: int, cpu: int, memory: int, gpus: int, chips: int,
               tcp_ports: tuple[int, ...], udp_ports: tuple[int, ...], group: str | None, enis: int,
               chip_ids: tuple[int, ...] | None = None) -> Allocation:
        """Everything ``reserve`` does but the free columns: the compiled kernel has taken those in place.
        ``chip_ids`` are the chips of ``chips`` when the caller has them (``chips_of(chips)``)."""
        inst = self.instances[index]
        if gpus:
            free_ids = inst.free_gpu_ids
            gpu_ids = tuple(free_ids[:gpus])
            del free_ids[:gpus]
        else:
            gpu_ids = ()
        totals = self._mv_totals
        totals[USED_CPU] += cpu
        totals[USED_MEMORY] += memory
        if chips:
            holders = inst.chip_holders
            ids = chip_ids or chips_of(chips)
            for c in ids:
                holders[c] = task_id
            totals[HELD_CHIPS] += len(ids)
        if tcp_ports or udp_ports:
            for port in tcp_ports:
                inst.reserved_tcp.add(port)
                self._port_column(self._tcp_used, port)[index] = True
            for port in udp_ports:
                inst.reserved_udp.add(port)
                self._port_column(self._udp_used, port)[index] = True
            tcp_ports, udp_ports = tuple(tcp_ports), tuple(udp_ports)
        else:
            tcp_ports = udp_ports = ()
        if group is not None:
            mv = self._group_mv.get(group)
            if mv is None:
                col = self._group_counts[group] = np.zeros(self._cap, np.int32)
                mv = self._group_mv[group] = memoryview(col)
            mv[index] += 1
            if self._spread_counts:
                spread = self._spread_counts.get(group)
                if spread:
                    for attribute, per_value in spread.items():
                        per_value[self._codes_cache[attribute][0][index]] += 1
        self._mv_running[index] += 1
        inst.tasks.add(task_id)
        alloc = self.allocations[task_id] = _new_allocation(
            Allocation, (task_id, index, cpu, memory, gpu_ids, chips, tcp_ports, udp_ports, group, enis))
        if self._live is not None:
            self._dirty.add(index)
        return alloc

    def free(self, task_id: str) -> Allocation:
        """Give back exactly what ``reserve`` took (O(1) Python work: the columns are written through
        memoryviews, and a compiled index moves the row with one kernel call)."""
        alloc = self.allocations.pop(task_id, None)
        if alloc is None:
            raise PlacementError(f"task {task_id} holds no resources")
        _, i, cpu, memory, gpu_ids, chips, tcp_ports, udp_ports, group, enis = alloc
        inst = self.instances[i]
        _, m_cpu, m_mem, m_gpu, m_eni, m_chips, _ = self._mv_cols
        m_cpu[i] += cpu
        m_mem[i] += memory
        m_eni[i] += enis
        totals = self._mv_totals
        totals[USED_CPU] -= cpu
        totals[USED_MEMORY] -= memory
        if gpu_ids:
            m_gpu[i] += len(gpu_ids)
            inst.free_gpu_ids.extend(gpu_ids)
            order = {g: k for k, g in enumerate(inst.gpu_ids)}
            inst.free_gpu_ids.sort(key=order.__getitem__)
        if chips:
            if chips >> 63:
                self._chips_free[i] |= np.uint64(chips)
            else:  # the int64 view of the same bits
                m_chips[i] |= chips
            holders = inst.chip_holders
            ids = chips_of(chips)
            for c in ids:
                del holders[c]
            totals[HELD_CHIPS] -= len(ids)
        if tcp_ports or udp_ports:
            for port in tcp_ports:
                inst.reserved_tcp.discard(port)
                self._tcp_used[port][i] = False
            for port in udp_ports:
                inst.reserved_udp.discard(port)
                self._udp_used[port][i] = False
        if group is not None:
            self._group_mv[group][i] -= 1
            spread = self._spread_counts and self._spread_counts.get(group)
            if spread:
                for attribute, per_value in spread.items():
                    per_value[self._codes_cache[attribute][0][i]] -= 1
        self._mv_running[i] -= 1
        inst.tasks.discard(task_id)
        live = self._live
        if live is not None:
            if live.version == self.version:  # = live.moved(i, group, -1), without the extra call
                live._relocate(live.R, live.X, live.Z, i, live.groups.get(group, -1), -1)
            self._dirty.add(i)
        elif self._classes is not None:
            self._classes.shift_row(i, cpu, memory, len(gpu_ids), 0, chips, bool(tcp_ports or udp_ports), enis)
        return alloc

    # ---------------------------------------------------------------- InstanceTable (query language)
    def attribute_column(self, name: str) -> np.ndarray:
        col = self._attr_cache.get(name)
        if col is None:
            col = np.empty(self._n, dtype=object)
            col[:] = [inst.attributes.get(name) for inst in self.instances]
            self._attr_cache[name] = col
        return col

    def attribute_codes(self, name: str) -> tuple[np.ndarray, list[str | None]]:
        """The attribute as integer codes per instance and the value of each code (None = absent)."""
        hit = self._codes_cache.get(name)
        if hit is None:
            values: dict[str | None, int] = {}
            codes = np.fromiter(
                (values.setdefault(inst.attributes.get(name), len(values)) for inst in self.instances),
                dtype=np.int64, count=self._n)
            hit = self._codes_cache[name] = (codes, list(values))
        return hit

    def spread_counts(self, group: str, name: str) -> np.ndarray:
        """Tasks of ``group`` per value of attribute ``name`` (indexed by ``attribute_codes`` code).

        Kept up to date by reserve and free once asked for, so a spread decision need not sum over
        every instance; dropped with the attribute codes whenever instances or attributes change.
        """
        per_group = self._spread_counts.setdefault(group, {})
        hit = per_group.get(name)
        if hit is None:
            codes, values = self.attribute_codes(name)
            hit = np.bincount(codes, weights=self.group_counts(group), minlength=len(values))
            per_group[name] = hit
        return hit

    def signature_codes(self, name: str) -> np.ndarray:
        """The code of attribute ``name`` per static signature of the class index."""
        hit = self._sig_codes.get(name)
        if hit is None:
            codes, _ = self.attribute_codes(name)
            hit = self._sig_codes[name] = codes[self.classes().signature_rows()]
        return hit

    def classes(self) -> InstanceClasses:
        """The index of interchangeable instances, built on first use and kept up to date after."""
        if self._classes is None:
            self._classes = InstanceClasses(self)
            self._dirty.clear()
        elif self._dirty:
            for i in sorted(self._dirty):
                self._classes.update_row(i, True)
            self._dirty.clear()
        return self._classes

    def attach(self, live) -> None:
        """Let a compiled index (``kernel.LiveIndex``) follow every change to the free columns (None:
        detach; the Python class index is then brought up to date)."""
        if live is None and self._live is not None:
            self._live = None
            self.classes()
        self._live = live

    def subject_column(self, subject: str) -> np.ndarray:
        if subject == "runningTasksCount":
            return self.running
        if subject == "agentConnected":
            return self._connected[: self._n]
        if subject == "registeredAt":
            return self._registered_at[: self._n]
        col = self._subject_cache.get(subject)
        if col is None:
            col = np.empty(self._n, dtype=object)
            if subject == "ec2InstanceId":
                col[:] = [inst.ec2_instance_id for inst in self.instances]
            elif subject == "agentVersion":
                col[:] = [inst.agent_version for inst in self.instances]
            else:
                raise PlacementError(f"unknown query subject {subject!r}")
            self._subject_cache[subject] = col
        return col

    def group_mask(self, group: str) -> np.ndarray:
        return self.group_counts(group) > 0

    # ---------------------------------------------------------------- inspection
    def chip_holder(self, index: int, chip: int) -> str | None:
        """Which task holds /dev/neuron<chip> on this instance (None when free)."""
        return self.instance(index).chip_holders.get(chip)

    def recount_totals(self) -> Totals:
        """The cluster totals counted afresh from the columns (O(instances): for checks; ``totals`` is O(1))."""
        n = self._n
        live = np.fromiter((inst.status != INACTIVE for inst in self.instances), bool, n)
        chips = int(np.bitwise_count(self._chips_all[:n][live]).sum())
        return Totals(int(self._cpu_reg[:n][live].sum()), int((self._cpu_reg[:n] - self._cpu_free[:n])[live].sum()),
                      int(self._mem_reg[:n][live].sum()), int((self._mem_reg[:n] - self._mem_free[:n])[live].sum()),
                      chips, chips - int(np.bitwise_count(self._chips_free[:n][live]).sum()))

    def is_empty(self) -> bool:
        """True when no task holds anything and every column equals its registered value."""
        n = self._n
        return (not self.allocations
                and bool(np.array_equal(self._cpu_free[:n], self._cpu_reg[:n]))
                and bool(np.array_equal(self._mem_free[:n], self._mem_reg[:n]))
                and bool(np.array_equal(self._gpu_free[:n], self._gpu_reg[:n]))
                and bool(np.array_equal(self._eni_free[:n], self._eni_reg[:n]))
                and bool(np.array_equal(self._chips_free[:n], self._chips_all[:n]))
                and not self._running[:n].any())


class InstanceClasses:
    """Container instances grouped into classes of interchangeable rows (Nomad's computed node classes).

    Two rows share a *static signature* when they agree on everything a launch-type, status, architecture
    or attribute filter reads: launch type, instance type, chips present (a failed chip leaves), status,
    agent connection and version, capacity provider and attributes. They share a *class* when they also
    have the same free CPU, memory, GPUs, chips and reserved ports. Every filter and strategy the placer
    evaluates per class then gives all rows of a class the same answer, so a decision scans classes
    (hundreds) instead of rows (tens of thousands) and touches rows only to pick one. Each class keeps
    its rows sorted, so "the k-th candidate in row order" (how ties are broken) is found without listing
    the candidates.

    A class that loses its last row is dropped and its slot reused by the next new class, so the class
    arrays stay about as long as the most classes ever alive at once.
    """

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._build()

    def _build(self) -> None:
        st = self.state
        cap = max(st._cap, 16)
        self.sig_ids: dict[tuple, int] = {}
        self.sig_rows: list[int] = []
        self._sig_rows_arr: np.ndarray | None = None
        self._sig_columns: tuple[np.ndarray, ...] | None = None
        self.port_ids: dict[tuple[frozenset[int], frozenset[int]], int] = {}
        self.port_sets: list[tuple[frozenset[int], frozenset[int]]] = []
        self.class_ids: dict[tuple, int] = {}
        self.keys: list[tuple | None] = []
        self.rows: list[list[int]] = []
        self.free_slots: list[int] = []
        self.k = 0
        self.row_sig = np.zeros(cap, np.int32)
        self.row_port = np.zeros(cap, np.int32)
        self.row_class = np.zeros(cap, np.int32)
        kcap = 64
        self.c_sig = np.full(kcap, -1, np.int32)  # -1: a free slot (see ``signature_mask``)
        self.c_port = np.zeros(kcap, np.int32)
        self.c_cpu = np.zeros(kcap, np.int64)
        self.c_mem = np.zeros(kcap, np.int64)
        self.c_gpu = np.zeros(kcap, np.int64)
        self.c_eni = np.zeros(kcap, np.int64)
        self.c_chips = np.zeros(kcap, np.uint64)
        self.c_size = np.zeros(kcap, np.int64)
        self.c_first = np.zeros(kcap, np.int64)  # lowest row of the class
        for i in range(len(st)):
            self.add_row(i)

    # ------------------------------------------------------------------ keys
    def _signature(self, i: int) -> int:
        st = self.state
        inst = st.instances[i]
        key = (int(st._launch[i]), int(st._type_code[i]), int(st._chips_all[i]), inst.status,
               inst.agent_connected, inst.capacity_provider, inst.agent_version,
               frozenset(inst.attributes.items()))
        sig = self.sig_ids.get(key)
        if sig is None:
            sig = self.sig_ids[key] = len(self.sig_rows)
            self.sig_rows.append(i)
            self._sig_rows_arr = None
            self._sig_columns = None
        elif self.sig_rows[sig] < 0:  # a signature no row had any more: this row now answers for it
            self.sig_rows[sig] = i
            self._sig_rows_arr = None
            self._sig_columns = None
        return sig

    def _ports(self, i: int) -> int:
        inst = self.state.instances[i]
        key = (frozenset(inst.reserved_tcp), frozenset(inst.reserved_udp))
        pid = self.port_ids.get(key)
        if pid is None:
            pid = self.port_ids[key] = len(self.port_sets)
            self.port_sets.append(key)
        return pid

    def _key(self, i: int) -> tuple:
        st = self.state
        return (int(self.row_sig[i]), int(st._cpu_free[i]), int(st._mem_free[i]), int(st._gpu_free[i]),
                int(st._chips_free[i]), int(self.row_port[i]), int(st._eni_free[i]))

    def signature_mask(self, row_mask: np.ndarray) -> np.ndarray:
        """A row mask that is constant per signature, read per signature, with a False for free slots
        at the end (index -1), so that ``signature_mask(...)[c_sig]`` is False for classes not in use."""
        return np.append(row_mask[self.signature_rows()], False)

    def signature_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Launch code, type code, chip count, all-chips mask and registered GPUs per signature."""
        if self._sig_columns is None:
            st, rows = self.state, self.signature_rows()
            self._sig_columns = (st._launch[rows], st._type_code[rows], st._n_chips[rows],
                                 st._chips_all[rows], st._gpu_reg[rows])
        return self._sig_columns

    def signature_rows(self) -> np.ndarray:
        """A row per static signature (-1 when no row has it any more): where its answers are read."""
        if self._sig_rows_arr is None:
            self._sig_rows_arr = np.array(self.sig_rows, np.intp)
        return self._sig_rows_arr

    # ------------------------------------------------------------------ membership
    def _class_for(self, key: tuple, i: int) -> int:
        c = self.class_ids.get(key)
        if c is not None:
            return c
        if self.free_slots:
            c = self.free_slots.pop()
            self.keys[c] = key
        else:
            c = self.k
            self.k += 1
            self.keys.append(key)
            self.rows.append([])
            if c == len(self.c_sig):
                for name in ("c_sig", "c_port", "c_cpu", "c_mem", "c_gpu", "c_eni", "c_chips", "c_size", "c_first"):
                    old = getattr(self, name)
                    arr = np.full(2 * len(old), -1 if name == "c_sig" else 0, old.dtype)
                    arr[: len(old)] = old
                    setattr(self, name, arr)
        self.class_ids[key] = c
        self.c_sig[c] = key[0]
        self.c_cpu[c] = key[1]
        self.c_mem[c] = key[2]
        self.c_gpu[c] = key[3]
        self.c_chips[c] = key[4]
        self.c_port[c] = key[5]
        self.c_eni[c] = key[6]
        self.c_first[c] = i
        return c

    def _enter(self, i: int, c: int) -> None:
        rows = self.rows[c]
        if not rows or rows[-1] < i:
            rows.append(i)
        else:
            insort(rows, i)
            if rows[0] == i:
                self.c_first[c] = i
        self.c_size[c] += 1
        self.row_class[i] = c

    def _leave(self, i: int, c: int) -> None:
        rows = self.rows[c]
        at = bisect_left(rows, i)
        del rows[at]
        self.c_size[c] -= 1
        if rows:
            if at == 0:
                self.c_first[c] = rows[0]
        else:
            del self.class_ids[self.keys[c]]
            self.keys[c] = None
            self.c_sig[c] = -1
            self.free_slots.append(c)

    def add_row(self, i: int) -> None:
        if i >= len(self.row_sig):
            for name in ("row_sig", "row_port", "row_class"):
                old = getattr(self, name)
                arr = np.zeros(max(2 * len(old), i + 1), old.dtype)
                arr[: len(old)] = old
                setattr(self, name, arr)
        self.row_sig[i] = self._signature(i)
        self.row_port[i] = self._ports(i)
        key = self._key(i)
        self._enter(i, self._class_for(key, i))

    def update_row(self, i: int, ports_changed: bool) -> None:
        """Move row ``i`` to the class of its current free resources and signature."""
        if ports_changed:
            self.row_port[i] = self._ports(i)
        key = self._key(i)
        old = int(self.row_class[i])
        if self.keys[old] == key:
            return
        self._leave(i, old)
        self._enter(i, self._class_for(key, i))

    def shift_row(self, i: int, cpu: int, mem: int, gpu: int, chips_taken: int, chips_given: int,
                  ports_changed: bool, enis: int = 0) -> None:
        """Row ``i``'s free resources changed by these amounts (reserve: negative; free: positive)."""
        old = int(self.row_class[i])
        sig, c, m, g, chips, port, e = self.keys[old]
        if ports_changed:
            port = self.row_port[i] = self._ports(i)
        key = (sig, c + cpu, m + mem, g + gpu, (chips & ~chips_taken) | chips_given, port, e + enis)
        if key == self.keys[old]:
            return
        self._leave(i, old)
        self._enter(i, self._class_for(key, i))

    def resign(self, i: int) -> None:
        """Row ``i``'s static signature changed (status, agent, attributes)."""
        old_sig = int(self.row_sig[i])
        self.row_sig[i] = self._signature(i)
        if self.sig_rows[old_sig] == i:
            others = np.flatnonzero(self.row_sig[: len(self.state)] == old_sig)
            self.sig_rows[old_sig] = int(others[0]) if len(others) else -1
            self._sig_rows_arr = None
            self._sig_columns = None
        self.update_row(i, False)

    # ------------------------------------------------------------------ reading
    def kth_row(self, classes: np.ndarray, k: int) -> int:
        """The ``k``-th smallest row (0-based) among the rows of ``classes``."""
        if len(classes) == 1:
            return self.rows[int(classes[0])][k]
        lists = [self.rows[c] for c in classes.tolist()]
        if sum(map(len, lists)) <= SMALL_MERGE:
            return sorted(chain.from_iterable(lists))[k]  # sorted runs: timsort merges them
        big = [rows for rows in lists if len(rows) > SMALL_MERGE]
        if len(big) == 1:
            small = sorted(chain.from_iterable(rows for rows in lists if len(rows) <= SMALL_MERGE))
            return _kth_of_two(big[0], small, k)
        if len(lists) > 24:
            member = np.zeros(self.k, bool)
            member[classes] = True
            return int(np.flatnonzero(member[self.row_class[: len(self.state)]])[k])
        # the smallest row r with more than k candidate rows <= r
        lo = min(rows[0] for rows in lists)
        hi = max(rows[-1] for rows in lists)
        while lo < hi:
            mid = (lo + hi) // 2
            if sum(bisect_right(rows, mid) for rows in lists) > k:
                hi = mid
            else:
                lo = mid + 1
        return lo


def _kth_of_two(a: list[int], b: list[int], k: int) -> int:
    """The ``k``-th smallest (0-based) of two disjoint sorted lists, in O(log len(b)) steps."""
    take = k + 1
    lo, hi = max(0, take - len(a)), min(take, len(b))
    while lo < hi:  # the fewest taken from b such that a's part ends below b's next
        i = (lo + hi) // 2
        j = take - i
        if j > 0 and a[j - 1] > b[i]:
            lo = i + 1
        else:
            hi = i
    j = take - lo
    return max(a[j - 1] if j > 0 else -1, b[lo - 1] if lo > 0 else -1)


def _bits(mask: int) -> Iterator[int]:
    i = 0
    while mask:
        if mask & 1:
            yield i
        mask >>= 1
        i += 1


_CHIPS_OF: dict[int, tuple[int, ...]] = {}


def chips_of(mask: int) -> tuple[int, ...]:
    """The chip indices set in a bitmask, ascending (kept per mask: a cluster meets few distinct masks)."""
    hit = _CHIPS_OF.get(mask)
    if hit is None:
        if len(_CHIPS_OF) > 4096:
            _CHIPS_OF.clear()
        hit = _CHIPS_OF[mask] = tuple(_bits(mask))
    return hit
