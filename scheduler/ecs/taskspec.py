"""TaskSpec: what one ECS task needs from a container instance, as the placement core sees it.

Built from a validated task definition (``scheduler.ecs.taskdef``) or directly in tests. Immutable and
hashable, so the core can memoise per distinct spec.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass, field
from enum import StrEnum

from scheduler.errors import Issue, TaskDefinitionError, show_value


def first_gap(chips: tuple[int, ...] | list[int]) -> int | None:
    """The first device index (of sorted, unique ``chips``) that does not follow the one before it, or None
    when the devices are contiguous. The Neuron runtime refuses a container whose devices are not
    contiguous ("Neuron cores are not contiguous"), though ECS accepts such a task definition."""
    return next((b for a, b in itertools.pairwise(chips) if b != a + 1), None)


class NeuronMode(StrEnum):
    """How a task asks for Neuron chips."""

    NONE = "none"        # no Neuron device
    MANAGED = "managed"  # resourceRequirements NeuronDevice=ALL: every chip, Managed Instances only
    MANUAL = "manual"    # linuxParameters.devices /dev/neuronN: exactly the named chips
    TOPOLOGY = "topology"  # beyond ECS (what-if): k chips, chosen contiguous on the device graph


@dataclass(frozen=True, slots=True)
class Constraint:
    """A placement constraint: ``memberOf`` with a query-language expression, or ``distinctInstance``."""

    type: str
    expression: str | None = None


@dataclass(frozen=True, slots=True)
class Strategy:
    """A placement strategy rule: binpack(cpu|memory), spread(field), random."""

    type: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """The parts of one container definition that placement and the ECS views care about."""

    name: str
    image: str = ""
    cpu: int = 0
    memory: int | None = None              # hard limit, MiB
    memory_reservation: int | None = None  # soft limit, MiB
    gpus: int = 0
    neuron_all: bool = False               # resourceRequirements NeuronDevice=ALL
    chips: tuple[int, ...] = ()            # device indices this container maps (manual mode)
    essential: bool = True
    gpus_all: bool = False                 # resourceRequirements GPU=ALL: every GPU of the instance
    gpu_fraction: float = 0.0              # GPU=0.125|0.25|0.5: a G6f partition, not a whole GPU


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task's needs as ECS counts them, plus its Neuron mode and its own placement constraints."""

    family: str
    cpu: int = 0                        # CPU units
    memory: int = 0                     # MiB
    gpus: int = 0
    neuron_mode: NeuronMode = NeuronMode.NONE
    chips: tuple[int, ...] = ()         # manual: the device indices named, sorted, unique
    chip_count: int = 0                 # topology: how many chips; manual: len(chips); else 0
    tcp_ports: tuple[int, ...] = ()     # static host ports reserved while the task runs
    udp_ports: tuple[int, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    compatibilities: frozenset[str] = frozenset({"EC2"})
    network_mode: str = "bridge"
    cpu_architecture: str | None = None  # runtimePlatform.cpuArchitecture: X86_64 | ARM64
    revision: int | None = None
    containers: tuple[ContainerSpec, ...] = field(default=(), compare=False)
    gpus_all: bool = False              # a container asks GPU=ALL: every GPU of the instance
    gpu_fraction: float = 0.0           # a container asks a fractional GPU (G6f partition types only)

    def __post_init__(self) -> None:
        """A TaskSpec built directly (not from a task definition, which is checked field by field as ECS
        checks it) must still hold amounts placement can honour: TaskDefinitionError naming the field."""
        issues = [Issue(name, f"must be a whole number >= 0, got {show_value(getattr(self, name))}")
                  for name in ("cpu", "memory", "gpus", "chip_count") if not _count(getattr(self, name))]
        issues += [Issue("chips", f"device indices must be whole numbers >= 0, got {show_value(c)}")
                   for c in self.chips if not _count(c)]
        for name in ("tcp_ports", "udp_ports"):
            issues += [Issue(name, f"host ports must be 1-65535, got {show_value(port)}")
                       for port in getattr(self, name) if not (_count(port) and 1 <= port <= 65535)]
        if not 0.0 <= self.gpu_fraction < 1.0:
            issues.append(Issue("gpu_fraction", f"must be at least 0 and below 1, got "
                                                f"{show_value(self.gpu_fraction)}"))
        if issues:
            raise TaskDefinitionError(issues)

    @property
    def device_paths(self) -> tuple[str, ...]:
        return tuple(f"/dev/neuron{i}" for i in self.chips)

    @property
    def uses_neuron(self) -> bool:
        return self.neuron_mode is not NeuronMode.NONE


def _count(value: object) -> bool:
    """Whether ``value`` is a whole number (not a bool) at least 0."""
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= 0  # type: ignore[arg-type]
    except TypeError:
        return False
