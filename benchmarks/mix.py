"""The stated cluster and task mixes every benchmark draws from, and the seeded stream built on them.

A cluster is a weighted mix of ordinary, Neuron and GPU instance types over three availability zones
(some Neuron and ordinary capacity as Managed Instances, so NeuronDevice=ALL tasks have somewhere to go).
A task stream draws task kinds by weight: CPU-only web and batch work, manual 1-chip and multi-chip Neuron
tasks (``linuxParameters.devices`` naming ``/dev/neuronN``, as real task definitions do), managed Neuron
tasks (NeuronDevice=ALL) and GPU tasks. Half the draws carry a ``memberOf`` instance-type constraint,
and every draw uses the chain ``[spread AZ, binpack memory]``.

Everything is deterministic given the numpy Generator passed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from scheduler.catalog import default_catalog
from scheduler.ecs.taskspec import Constraint, ContainerSpec, NeuronMode, Strategy, TaskSpec
from scheduler.placement.state import ClusterState

EC2 = "EC2"
MI = "MANAGED_INSTANCES"
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
CHAIN: tuple[Strategy, ...] = (
    Strategy("spread", "attribute:ecs.availability-zone"),
    Strategy("binpack", "memory"),
)

# (instance type, launch type, weight in percent of the instances)
CLUSTER_MIX: tuple[tuple[str, str, int], ...] = (
    ("c6i.xlarge", EC2, 10),
    ("c6i.2xlarge", EC2, 14),
    ("m6i.xlarge", EC2, 8),
    ("m6i.4xlarge", EC2, 10),
    ("r6i.2xlarge", EC2, 4),
    ("c6i.2xlarge", MI, 4),
    ("inf2.xlarge", EC2, 12),
    ("inf2.8xlarge", EC2, 4),
    ("inf2.24xlarge", EC2, 4),
    ("inf2.48xlarge", EC2, 2),
    ("inf1.xlarge", EC2, 4),
    ("inf1.6xlarge", EC2, 2),
    ("trn1.2xlarge", EC2, 4),
    ("trn1.32xlarge", EC2, 3),
    ("trn1.32xlarge", MI, 2),
    ("inf2.24xlarge", MI, 2),
    ("inf2.xlarge", MI, 2),
    ("g5.xlarge", EC2, 5),
    ("g5.12xlarge", EC2, 3),
    ("p4d.24xlarge", EC2, 1),
)

ORDINARY = ("c6i.xlarge", "c6i.2xlarge", "m6i.xlarge", "m6i.4xlarge", "r6i.2xlarge")


@dataclass(frozen=True, slots=True)
class TaskKind:
    """One task definition of the mix, the memberOf constraint it carries in half the draws, its weight."""

    spec: TaskSpec
    constraint: Constraint
    weight: float

    @property
    def cpu_only(self) -> bool:
        return self.spec.neuron_mode is NeuronMode.NONE and not self.spec.gpus


@dataclass(frozen=True, slots=True)
class Draw:
    """One task of a stream: its kind and the constraints it is placed with."""

    kind: int
    spec: TaskSpec
    constraints: tuple[Constraint, ...]


def _is_type(*names: str) -> Constraint:
    if len(names) == 1:
        return Constraint("memberOf", f"attribute:ecs.instance-type == {names[0]}")
    return Constraint("memberOf", f"attribute:ecs.instance-type in [{', '.join(names)}]")


def _cpu(family: str, cpu: int, memory: int) -> TaskSpec:
    return TaskSpec(
        family=family,
        cpu=cpu,
        memory=memory,
        compatibilities=frozenset({EC2, MI}),
        containers=(ContainerSpec(family, cpu=cpu, memory=memory),),
    )


def _manual(family: str, chips: tuple[int, ...], cpu: int, memory: int) -> TaskSpec:
    return TaskSpec(
        family=family,
        cpu=cpu,
        memory=memory,
        neuron_mode=NeuronMode.MANUAL,
        chips=chips,
        chip_count=len(chips),
        compatibilities=frozenset({EC2, MI}),
        containers=(ContainerSpec(family, cpu=cpu, memory=memory, chips=chips),),
    )


def _managed(family: str, cpu: int, memory: int) -> TaskSpec:
    return TaskSpec(
        family=family,
        cpu=cpu,
        memory=memory,
        neuron_mode=NeuronMode.MANAGED,
        compatibilities=frozenset({MI}),
        network_mode="awsvpc",
        containers=(ContainerSpec(family, cpu=cpu, memory=memory, neuron_all=True),),
    )


def _gpu(family: str, gpus: int, cpu: int, memory: int) -> TaskSpec:
    return TaskSpec(
        family=family,
        cpu=cpu,
        memory=memory,
        gpus=gpus,
        compatibilities=frozenset({EC2, MI}),
        containers=(ContainerSpec(family, cpu=cpu, memory=memory, gpus=gpus),),
    )


def task_kinds() -> tuple[TaskKind, ...]:
    """The placement stream's task definitions (weights in percent of the tasks)."""
    kinds: list[TaskKind] = []
    general = _is_type(*ORDINARY)
    for family, cpu, mem, w in (
        ("web-xs", 256, 512, 14),
        ("web", 512, 1024, 12),
        ("api", 1024, 2048, 10),
        ("worker", 2048, 4096, 8),
        ("batch", 4096, 8192, 4),
    ):
        kinds.append(TaskKind(_cpu(family, cpu, mem), general, w))
    kinds.append(TaskKind(_manual("inf2-chip", (0,), 2048, 8192), _is_type("inf2.xlarge"), 10))
    kinds.append(TaskKind(_manual("inf2-8x", (0,), 8192, 32768), _is_type("inf2.8xlarge"), 3))
    for k in range(6):
        kinds.append(TaskKind(_manual(f"inf2-24x-chip{k}", (k,), 8192, 32768), _is_type("inf2.24xlarge"), 1))
    for k in range(16):
        kinds.append(TaskKind(_manual(f"trn1-chip{k}", (k,), 7168, 28000), _is_type("trn1.32xlarge"), 0.375))
    kinds.append(TaskKind(_manual("inf1-chip", (0,), 2048, 4096), _is_type("inf1.xlarge", "inf1.6xlarge"), 4))
    kinds.append(TaskKind(_manual("trn1-small", (0,), 4096, 16384), _is_type("trn1.2xlarge"), 4))
    for start in (0, 4, 8, 12):
        chips = tuple(range(start, start + 4))
        kinds.append(
            TaskKind(_manual(f"trn1-4chip{start}", chips, 28672, 120000), _is_type("trn1.32xlarge"), 0.75)
        )
    kinds.append(
        TaskKind(_manual("inf2-48x-4chip", (0, 1, 2, 3), 49152, 190000), _is_type("inf2.48xlarge"), 1)
    )
    kinds.append(TaskKind(_manual("inf2-24x-2chip", (2, 3), 16384, 65536), _is_type("inf2.24xlarge"), 1))
    kinds.append(
        TaskKind(
            _managed("neuron-all", 8192, 16384), _is_type("trn1.32xlarge", "inf2.24xlarge", "inf2.xlarge"), 3
        )
    )
    kinds.append(TaskKind(_gpu("gpu-1", 1, 3072, 12000), _is_type("g5.xlarge", "g5.12xlarge"), 4))
    kinds.append(
        TaskKind(
            _gpu("gpu-4", 4, 16384, 60000),
            Constraint("memberOf", "attribute:ecs.instance-type =~ (g5|p4d)\\..*"),
            1,
        )
    )
    return tuple(kinds)


def build_cluster(n: int, rng: np.random.Generator, *, name: str = "bench") -> ClusterState:
    """``n`` container instances in CLUSTER_MIX proportions, in a seeded order, AZs round-robin per type."""
    catalog = default_catalog()
    weights = np.array([w for _, _, w in CLUSTER_MIX], float)
    exact = weights / weights.sum() * n
    counts = np.floor(exact).astype(int)
    for j in np.argsort(-(exact - counts), kind="stable")[: n - int(counts.sum())]:
        counts[j] += 1
    order = rng.permutation(np.repeat(np.arange(len(CLUSTER_MIX)), counts))
    state = ClusterState(name, capacity=max(n, 1))
    seen = np.zeros(len(CLUSTER_MIX), int)
    for j in order.tolist():
        type_name, launch, _ = CLUSTER_MIX[j]
        state.add_instance(
            catalog.get(type_name), launch_type=launch, availability_zone=AZS[seen[j] % len(AZS)]
        )
        seen[j] += 1
    return state


def draws(
    kinds: tuple[TaskKind, ...],
    rng: np.random.Generator,
    *,
    constrained_share: float = 0.5,
    only: tuple[int, ...] | None = None,
) -> Iterator[Draw]:
    """An endless seeded stream of tasks from ``kinds`` (or only the kinds listed in ``only``)."""
    pool = np.array(only if only is not None else range(len(kinds)))
    w = np.array([kinds[k].weight for k in pool], float)
    p = w / w.sum()
    with_c = [(kinds[k].constraint,) for k in range(len(kinds))]
    while True:
        picks = rng.choice(pool, size=4096, p=p)
        coins = rng.random(4096) < constrained_share
        for k, c in zip(picks.tolist(), coins.tolist(), strict=True):
            yield Draw(k, kinds[k].spec, with_c[k] if c else ())
