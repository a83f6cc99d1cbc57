"""Which Neuron chips a task gets, and on which instances it can get them.

- managed (NeuronDevice=ALL): every chip of a Managed Instances instance, only when none is held;
- manual (linuxParameters.devices): exactly the chips it names, each held by one task at most;
- topology (a what-if beyond ECS): k chips forming a contiguous block on the instance's device graph.

In ECS-blind device mode the manual check is skipped at placement (real ECS does not schedule
``linuxParameters.devices``) and ``start_conflict`` tells what the container runtime would then hit.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from scheduler.ecs.taskspec import NeuronMode, TaskSpec
from scheduler.placement import topology
from scheduler.placement.results import StartFailure
from scheduler.placement.state import LAUNCH_CODES, ClusterState, chips_of

MANAGED_CODE = LAUNCH_CODES["MANAGED_INSTANCES"]


class DeviceMode(StrEnum):
    """How the placer treats manual device paths."""

    AWARE = "device-aware"  # never places onto a busy or missing chip (default)
    BLIND = "ecs-blind"     # places on CPU/memory alone, as ECS does; conflicts fail at container start


def request_mask(spec: TaskSpec) -> int:
    """The chips a manual task names, as a bitmask."""
    mask = 0
    for c in spec.chips:
        mask |= 1 << c
    return mask


def chip_mask(state: ClusterState, spec: TaskSpec, cand: np.ndarray, mode: DeviceMode) -> np.ndarray | None:
    """Boolean mask over ``cand`` (instance rows) of those whose chips can serve ``spec``.

    None when the task needs no chip check (no Neuron, or manual under ECS-blind).
    """
    nm = spec.neuron_mode
    if nm is NeuronMode.NONE or (nm is NeuronMode.MANUAL and mode is DeviceMode.BLIND):
        return None
    free = state.chips_free[cand]
    if nm is NeuronMode.MANUAL:
        return manual_fits(spec, free)
    if nm is NeuronMode.MANAGED:
        return managed_fits(free, state.launch_code[cand], state.n_chips[cand], state.chips_all[cand])
    return topology_fits(state, spec, free, state.n_chips[cand], state.type_code[cand])


def needs_chip_check(spec: TaskSpec, mode: DeviceMode) -> bool:
    """Whether ``chip_mask`` filters anything for this task in this device mode."""
    nm = spec.neuron_mode
    return not (nm is NeuronMode.NONE or (nm is NeuronMode.MANUAL and mode is DeviceMode.BLIND))


# The three rules over plain arrays, so that rows and classes of identical rows share them.
def manual_fits(spec: TaskSpec, free: np.ndarray) -> np.ndarray:
    need = np.uint64(request_mask(spec))
    return (free & need) == need


def managed_fits(free: np.ndarray, launch: np.ndarray, n_chips: np.ndarray,
                 chips_all: np.ndarray) -> np.ndarray:
    return (launch == MANAGED_CODE) & (n_chips > 0) & (free == chips_all)


def topology_fits(state: ClusterState, spec: TaskSpec, free: np.ndarray, n_chips: np.ndarray,
                  types: np.ndarray) -> np.ndarray:
    """Decided once per distinct (instance type, free-chip pattern)."""
    k = spec.chip_count
    ok = n_chips >= k
    if not ok.any():
        return ok
    keys = types.astype(np.uint64) << np.uint64(40) | free
    uniq, inverse = np.unique(keys, return_inverse=True)
    verdict = np.empty(len(uniq), bool)
    for j, key in enumerate(uniq.tolist()):
        itype = state.types[key >> 40]
        verdict[j] = topology.choose_block(itype, key & ((1 << 40) - 1), k) is not None
    return ok & verdict[inverse]


def chips_for(state: ClusterState, spec: TaskSpec, index: int, mode: DeviceMode) -> int:
    """The chip bitmask the task takes on instance ``index`` (which passed ``chip_mask``)."""
    nm = spec.neuron_mode
    if nm is NeuronMode.NONE:
        return 0
    if nm is NeuronMode.MANAGED:
        return int(state.chips_all[index])
    if nm is NeuronMode.MANUAL:
        need = request_mask(spec)
        if mode is DeviceMode.BLIND:
            return need & int(state.chips_free[index])  # whatever exists and is free; conflicts checked apart
        return need
    itype = state.instances[index].instance_type
    block = topology.choose_block(itype, int(state.chips_free[index]), spec.chip_count)
    return 0 if block is None else block


def start_conflict(state: ClusterState, spec: TaskSpec, index: int) -> StartFailure | None:
    """ECS-blind: why the container would fail to start on this instance (None when it starts)."""
    if spec.neuron_mode is not NeuronMode.MANUAL:
        return None
    need = request_mask(spec)
    missing = need & ~int(state.chips_all[index])
    if missing:
        return StartFailure(StartFailure.MISSING, chips_of(missing)[0])
    busy = need & ~int(state.chips_free[index])
    if busy:
        chip = chips_of(busy)[0]
        return StartFailure(StartFailure.IN_USE, chip, state.instances[index].chip_holders.get(chip))
    return None


def shortage_detail(state: ClusterState, spec: TaskSpec, cand: np.ndarray) -> str:
    """Why no instance among ``cand`` can give the chips, naming the device path where there is one."""
    nm = spec.neuron_mode
    if nm is not NeuronMode.TOPOLOGY:
        present = int(np.bitwise_or.reduce(state.chips_all[cand], initial=np.uint64(0)))
        free = int(np.bitwise_or.reduce(state.chips_free[cand], initial=np.uint64(0)))
        return shortage_words(spec, bool((state.launch_code[cand] == MANAGED_CODE).any()),
                              bool((state.n_chips[cand] > 0).any()), present, free)
    k = spec.chip_count
    types = [state.types[c] for c in np.unique(state.type_code[cand]).tolist()]
    unsupported = [t.name for t in types if not topology.candidate_blocks(t, k)]
    if unsupported and len(unsupported) == len(types):
        return f"instance type {unsupported[0]} does not support requests for {k} devices"
    return f"no candidate instance has {k} free Neuron devices that are contiguous on its device graph"


def shortage_words(spec: TaskSpec, any_managed: bool, any_neuron: bool, present: int, free: int) -> str:
    """``shortage_detail`` for managed and manual tasks from what it reads of the candidates: whether any is
    Managed Instances capacity, whether any has Neuron devices, and the chips present on (``present``) and
    free on (``free``) at least one of them, as bitmasks."""
    if spec.neuron_mode is NeuronMode.MANAGED:
        if not any_managed:
            return "NeuronDevice=ALL runs only on Managed Instances capacity; no candidate is one"
        if not any_neuron:
            return "no candidate instance has Neuron devices"
        return ("every candidate Neuron instance already has a chip in use; NeuronDevice=ALL takes all "
                "of them, so one Neuron task per instance")
    for c in spec.chips:
        if not present >> c & 1:
            return f"/dev/neuron{c} does not exist on any candidate instance"
        if not free >> c & 1:
            return f"/dev/neuron{c} is already in use on every candidate instance that has it"
    return "the named Neuron devices are not free together on any candidate instance"
