"""Filters that read free capacity: CPU, memory, GPUs, host ports, ENI slots, Neuron devices.

Each is one function over a ColumnView (instance rows or classes of identical instances) and the items
to test, so the same code answers per row and per class.
"""

from __future__ import annotations

import numpy as np

from scheduler.ecs.taskspec import NeuronMode, TaskSpec
from scheduler.placement import devices
from scheduler.placement.columns import ColumnView
from scheduler.placement.filters.base import Filter, Request, always

# Fractional GPU values and the G6f partition types that serve them (ECS developer guide, "Specifying GPUs
# in an Amazon ECS task definition", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-gpu-specifying.html).
# Such a type offers one GPU partition; a task asking the fraction takes it whole. Integer and ALL
# requests never place on them.
FRACTIONAL_GPU_TYPES: dict[str, float] = {
    "g6f.large": 0.125, "g6f.xlarge": 0.125, "g6f.2xlarge": 0.25, "g6f.4xlarge": 0.5, "gr6f.4xlarge": 0.5,
}


def cpu_fits(view: ColumnView, req: Request, items: np.ndarray) -> np.ndarray:
    return view.cpu[items] >= req.spec.cpu


def memory_fits(view: ColumnView, req: Request, items: np.ndarray) -> np.ndarray:
    return view.mem[items] >= req.spec.memory


def needs_gpu(req: Request) -> bool:
    s = req.spec
    return bool(s.gpus or s.gpus_all or s.gpu_fraction)


def gpu_partition(view: ColumnView, items: np.ndarray) -> np.ndarray:
    """The GPU fraction each item's instance type offers (0.0: whole GPUs or none)."""
    types = view.state.types
    per_type = np.array([FRACTIONAL_GPU_TYPES.get(t.name, 0.0) for t in types] or [0.0])
    return per_type[view.type_code[items]]


def gpu_fits(view: ColumnView, req: Request, items: np.ndarray) -> np.ndarray:
    """Whole GPUs free; GPU=ALL: every GPU of an instance that has some, none in use; a fraction: a free
    partition of exactly that size (only the G6f types offer one)."""
    s = req.spec
    partition = gpu_partition(view, items)
    free = view.gpu[items]
    if s.gpu_fraction:
        return (partition == s.gpu_fraction) & (free >= 1)
    ok = (partition == 0.0) & (free >= s.gpus)
    if s.gpus_all:
        total = view.gpu_all[items]
        ok &= (total > 0) & (free == total)
    return ok


def gpus_taken(spec: TaskSpec, state_gpus_registered: int) -> int:
    """How many GPUs (or partitions) the task takes on an instance with this many registered."""
    if spec.gpus_all:
        return state_gpus_registered
    if spec.gpu_fraction:
        return 1
    return spec.gpus


def needs_ports(req: Request) -> bool:
    return bool(req.spec.tcp_ports or req.spec.udp_ports)


def ports_fit(view: ColumnView, req: Request, items: np.ndarray) -> np.ndarray:
    return view.ports_free(req.spec.tcp_ports, req.spec.udp_ports)[items]


def needs_eni(req: Request) -> bool:
    return req.spec.network_mode == "awsvpc"


def eni_fits(view: ColumnView, req: Request, items: np.ndarray) -> np.ndarray:
    """A free ENI attachment slot: every awsvpc task takes one."""
    return view.eni[items] >= 1


def enis_taken(spec: TaskSpec) -> int:
    return 1 if spec.network_mode == "awsvpc" else 0


def needs_chips(req: Request) -> bool:
    return devices.needs_chip_check(req.spec, req.device_mode)


def chips_fit(view: ColumnView, req: Request, items: np.ndarray) -> np.ndarray:
    """The chips the task's Neuron mode needs are free (devices.py has the three rules)."""
    spec = req.spec
    free = view.chips[items]
    if spec.neuron_mode is NeuronMode.MANUAL:
        return devices.manual_fits(spec, free)
    if spec.neuron_mode is NeuronMode.MANAGED:
        return devices.managed_fits(free, view.launch[items], view.n_chips[items], view.chips_all[items])
    return devices.topology_fits(view.state, spec, free, view.n_chips[items], view.type_code[items])


CPU = Filter("cpu", "RESOURCE:CPU", "has insufficient CPU units available", True, False, ("cpu",), always, cpu_fits)
MEMORY = Filter("memory", "RESOURCE:MEMORY", "has insufficient memory available", True, False, ("memory",), always,
                memory_fits)
GPU = Filter("gpu", "RESOURCE:GPU", "has insufficient GPU available", True, False,
             ("gpus", "gpus_all", "gpu_fraction"), needs_gpu, gpu_fits)
PORTS = Filter("ports", "RESOURCE:PORTS", "is already using a port required by your task", True, False,
               ("tcp_ports", "udp_ports"), needs_ports, ports_fit)
ENI = Filter("eni", "RESOURCE:ENI", "has no free network interface attachment for an awsvpc task", True, False,
             ("network_mode",), needs_eni, eni_fits)
NEURON = Filter("neuron devices", "RESOURCE:NEURON_DEVICES", "has no free Neuron device required by your task",
                True, False, ("neuron_mode", "chips", "chip_count"), needs_chips, chips_fit)

# ECS's resource step in its order (CPU, memory, GPU, ports), then ENIs and Neuron devices.
RESOURCES = (CPU, MEMORY, GPU, PORTS, ENI, NEURON)
