"""Chip utilization under inflation, in the manner of the FGD paper (ATC'23), against the exact optimum.

A small Neuron cluster (UTIL_CLUSTER, times ``scale``) receives tasks drawn from a stated mix until the
Neuron chips requested reach 130% of the cluster's chips; nothing departs. Every (strategy, device mode)
pair sees the same task sequence per seed:

- device modes: ``device-aware`` and ``ecs-blind`` run the mix as real ECS task definitions would, each
  chip task naming its ``/dev/neuronN`` paths (a k-chip task names an aligned block of a type the fleet
  has, drawn in proportion to that type's chips); ``topology-aware`` runs the same tasks asking for k
  chips, placed contiguous on the device graph (a what-if beyond ECS);
- strategies: ECS's binpack(memory), binpack(cpu), spread(AZ) and random, and the chip-aware extension
  binpack(neuronDevices) then binpack(memory).

Measured per pair (mean over seeds): chip allocation ratio at the end and when the first chip task
failed to run, and stranded chips at the end (free chips on instances that no chip task of the mix can
use). The optimum is what a MILP (scipy.optimize.milp, HiGHS) finds for the same task multiset: the most
chips placeable at once, with each instance's CPU, memory and chips respected (the CPU-only tasks never
raise it, so it leaves them out).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from scheduler.catalog import default_catalog
from scheduler.ecs.taskspec import ContainerSpec, NeuronMode, Strategy, TaskSpec
from scheduler.placement import topology
from scheduler.placement.devices import DeviceMode
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure
from scheduler.placement.state import ClusterState

AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
UTIL_CLUSTER: tuple[tuple[str, int], ...] = (
    ("trn1.32xlarge", 1),
    ("inf2.48xlarge", 2),
    ("inf2.24xlarge", 3),
    ("inf2.8xlarge", 2),
    ("inf2.xlarge", 4),
)  # 64 chips per unit of scale
CHIP_TASKS: tuple[tuple[int, float], ...] = ((1, 0.55), (2, 0.20), (4, 0.15), (8, 0.07), (16, 0.03))
CPU_ONLY_SHARE = 0.2  # of all tasks
CPU_PER_CHIP, MEM_PER_CHIP = 2048, 8192
CPU_ONLY = (2048, 4096)  # CPU units, MiB
INFLATION = 1.3
SPREAD_AZ = Strategy("spread", "attribute:ecs.availability-zone")
STRATEGIES: tuple[tuple[str, tuple[Strategy, ...]], ...] = (
    ("binpack(memory)", (Strategy("binpack", "memory"),)),
    ("binpack(cpu)", (Strategy("binpack", "cpu"),)),
    ("spread(AZ)", (SPREAD_AZ,)),
    ("random", (Strategy("random"),)),
    (
        "chip-aware: binpack(neuronDevices), binpack(memory)",
        (Strategy("binpack", "neuronDevices"), Strategy("binpack", "memory")),
    ),
)
DEVICE_MODES = ("device-aware", "ecs-blind", "topology-aware")


@dataclass(frozen=True)
class UtilizationConfig:
    scale: int = 3
    seeds: int = 10
    seed: int = 23


@dataclass(frozen=True)
class Arrival:
    """One task of the sequence: CPU-only (chips == ()) or a chip task naming ``chips``."""

    chips: tuple[int, ...]

    @property
    def k(self) -> int:
        return len(self.chips)


def build(scale: int) -> ClusterState:
    catalog = default_catalog()
    state = ClusterState("util")
    n = 0
    for name, count in UTIL_CLUSTER:
        for _ in range(count * scale):
            state.add_instance(catalog.get(name), availability_zone=AZS[n % len(AZS)])
            n += 1
    return state


def arrivals(state: ClusterState, rng: np.random.Generator) -> list[Arrival]:
    """Tasks until the chips requested reach INFLATION x the cluster's chips."""
    chips_by_type: Counter[int] = Counter()
    for inst in state.instances:
        chips_by_type[inst.instance_type.chips] += inst.instance_type.chips
    total = sum(chips_by_type.values())
    sizes = np.array([k for k, _ in CHIP_TASKS])
    p = np.array([w for _, w in CHIP_TASKS])
    out: list[Arrival] = []
    asked = 0
    while asked < INFLATION * total:
        if rng.random() < CPU_ONLY_SHARE:
            out.append(Arrival(()))
            continue
        k = int(rng.choice(sizes, p=p / p.sum()))
        fitting = sorted(c for c in chips_by_type if c >= k)
        weights = np.array([chips_by_type[c] for c in fitting], float)
        n_chips = fitting[int(rng.choice(len(fitting), p=weights / weights.sum()))]
        j = int(rng.integers(n_chips // k))
        out.append(Arrival(tuple(range(j * k, j * k + k))))
        asked += k
    return out


def spec_for(a: Arrival, mode: str) -> TaskSpec:
    if not a.chips:
        cpu, mem = CPU_ONLY
        return TaskSpec(family="cpu-only", cpu=cpu, memory=mem, containers=(ContainerSpec("c"),))
    cpu, mem = CPU_PER_CHIP * a.k, MEM_PER_CHIP * a.k
    if mode == "topology-aware":
        return TaskSpec(
            family=f"chips{a.k}",
            cpu=cpu,
            memory=mem,
            neuron_mode=NeuronMode.TOPOLOGY,
            chip_count=a.k,
            containers=(ContainerSpec("c"),),
        )
    return TaskSpec(
        family=f"chips{a.k}-at{a.chips[0]}",
        cpu=cpu,
        memory=mem,
        neuron_mode=NeuronMode.MANUAL,
        chips=a.chips,
        chip_count=a.k,
        containers=(ContainerSpec("c", chips=a.chips),),
    )


def _held(state: ClusterState) -> int:
    return int(np.bitwise_count(state.chips_all).sum() - np.bitwise_count(state.chips_free).sum())


def stranded(state: ClusterState, specs: list[TaskSpec]) -> int:
    """Free chips on instances where no chip task of ``specs`` fits now (checked device-aware)."""
    check = Placer(state, device_mode=DeviceMode.AWARE, by_class=False)
    free = np.bitwise_count(state.chips_free).astype(np.int64)
    usable = np.zeros(len(state), bool)
    for spec in specs:
        usable |= check.feasible(spec)
    return int(free[~usable].sum())


def online(
    seq: list[Arrival], scale: int, chain: tuple[Strategy, ...], mode: str, seed: int
) -> dict[str, float]:
    state = build(scale)
    placer = Placer(state, device_mode=DeviceMode.BLIND if mode == "ecs-blind" else DeviceMode.AWARE)
    rng = np.random.default_rng(seed)
    total = int(np.bitwise_count(state.chips_all).sum())
    at_first_failure = None
    for k, a in enumerate(seq):
        out = placer.place(spec_for(a, mode), task_id=f"t{k}", strategies=chain, rng=rng)
        ran = not isinstance(out, Failure) and out.ok
        if a.chips and not ran and at_first_failure is None:
            at_first_failure = _held(state) / total
    end = _held(state) / total
    kinds = {spec_for(a, mode) for a in seq if a.chips}
    return {
        "allocation_ratio": end,
        "ratio_at_first_failure": end if at_first_failure is None else at_first_failure,
        "stranded_chips": stranded(state, sorted(kinds, key=lambda s: s.family)),
        "chips": total,
    }


def optimum(seq: list[Arrival], scale: int, mode: str) -> float:
    """The most chips the task multiset can hold at once on the cluster, as a share of its chips (MILP).

    One binary column per (kind of task, instance, chip block it would take there); a kind is a set of
    named chips (manual) or a chip count (topology-aware). Rows: tasks of each kind available, CPU and
    memory per instance, and each chip of each instance held at most once."""
    state = build(scale)
    insts = state.instances
    topo = mode == "topology-aware"
    demand = Counter((len(a.chips) if topo else a.chips) for a in seq if a.chips)
    kinds = sorted(demand, key=str)
    cols: list[tuple[int, int, int]] = []  # (kind, instance, chip mask)
    for m, kind in enumerate(kinds):
        for inst in insts:
            itype = inst.instance_type
            if topo:
                cols += [(m, inst.index, block) for block in topology.candidate_blocks(itype, int(kind))]
            elif kind[-1] < itype.chips:
                cols.append((m, inst.index, topology.chip_mask(kind)))
    total = int(np.bitwise_count(state.chips_all).sum())
    if not cols:
        return 0.0
    base_cpu = len(kinds)
    chip_row = np.cumsum([base_cpu + 2 * len(insts)] + [i.instance_type.chips for i in insts])
    a = lil_matrix((int(chip_row[-1]), len(cols)))
    upper = np.ones(int(chip_row[-1]))
    upper[: len(kinds)] = [demand[kind] for kind in kinds]
    upper[base_cpu : base_cpu + 2 * len(insts) : 2] = state.cpu_registered
    upper[base_cpu + 1 : base_cpu + 2 * len(insts) : 2] = state.mem_registered
    weight = np.zeros(len(cols))
    for j, (m, i, mask) in enumerate(cols):
        chips = topology.mask_chips(mask)
        a[m, j] = 1
        a[base_cpu + 2 * i, j] = CPU_PER_CHIP * len(chips)
        a[base_cpu + 2 * i + 1, j] = MEM_PER_CHIP * len(chips)
        for c in chips:
            a[chip_row[i] + c, j] = 1
        weight[j] = len(chips)
    res = milp(
        -weight,
        constraints=LinearConstraint(a.tocsr(), -np.inf, upper),
        integrality=np.ones(len(cols)),
        bounds=Bounds(0, 1),
        options={"time_limit": 60},
    )
    if res.status != 0:  # only a proven optimum is reported as "the optimum"
        raise RuntimeError(f"the MILP did not prove an optimum: {res.message}")
    return float(weight @ np.round(res.x)) / total


def run(config: UtilizationConfig, log: Any = print) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    optima: dict[str, list[float]] = {mode: [] for mode in DEVICE_MODES}
    for s in range(config.seeds):
        seq = arrivals(build(config.scale), np.random.default_rng([config.seed, s]))
        best_manual = optimum(seq, config.scale, "device-aware")
        optima["device-aware"].append(best_manual)
        optima["ecs-blind"].append(best_manual)
        optima["topology-aware"].append(optimum(seq, config.scale, "topology-aware"))
        for name, chain in STRATEGIES:
            for mode in DEVICE_MODES:
                rows.setdefault((name, mode), []).append(online(seq, config.scale, chain, mode, seed=s))
    out = []
    for (name, mode), runs in rows.items():
        out.append(
            {
                "strategy": name,
                "device_mode": mode,
                "allocation_ratio": float(np.mean([r["allocation_ratio"] for r in runs])),
                "ratio_at_first_failure": float(np.mean([r["ratio_at_first_failure"] for r in runs])),
                "stranded_chips": float(np.mean([r["stranded_chips"] for r in runs])),
                "optimum_ratio": float(np.mean(optima[mode])),
                "chips": int(runs[0]["chips"]),
                "seeds": len(runs),
            }
        )
    log(
        f"  utilization: {len(out)} strategy x device-mode pairs over {config.seeds} seeds, "
        f"{out[0]['chips']} chips each"
    )
    return out
