"""Device sets: one manual-mode Neuron task definition spread over the aligned device blocks of an instance type.

In manual mode a task names its chips (``linuxParameters.devices`` with ``/dev/neuronN``), so a task
definition is tied to one set of chips: a 2-chip task on ``/dev/neuron0-1`` can never use chips 2-5 of an
inf2.24xlarge. An ECS user who wants the whole instance registers one task definition per block of chips
and runs one service (or sends RunTask calls) per task definition. This module writes those task
definitions from one template:

- The template's chips must be one contiguous run (the Neuron runtime refuses non-contiguous cores:
  ``nrt_allocate_neuron_cores Neuron cores are not contiguous``); its size ``n`` is the block size.
- The blocks of an instance type with ``c`` chips are the aligned windows ``[k*n, k*n + n)`` for
  ``k = 0 .. c // n - 1``: disjoint, contiguous, and covering every chip when ``n`` divides ``c``. Aligned
  windows are also the ones the Neuron Kubernetes scheduler extension hands out on trn1 (rows and
  halves of the 4x4 torus), so they are contiguous on every bundled device graph for n in 1, 2, 4, 8, 16.
- Each generated definition is the template with its Neuron device paths moved by the block's offset
  (``hostPath`` always; ``containerPath`` too when it equalled ``hostPath``, as in the Neuron docs'
  ``--device=/dev/neuronN``), the family suffixed with the block (``llama-neuron2-3``), and, when the
  template has no placement constraint on ``ecs.instance-type``, one added (``memberOf
  attribute:ecs.instance-type == <type>``): a manual-mode task definition is specific to one instance
  type, and ECS would otherwise place ``/dev/neuron4`` on a type that has no such device.
- Every generated document is checked again exactly as a user's own (botocore's RegisterTaskDefinition
  shape, then ECS's rules), so it can be registered as is.

A service's desired count is split over the blocks as a user would set the desired counts of one
service per block: evenly, the remainder to the first blocks (:func:`split_count`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from scheduler.catalog import InstanceType
from scheduler.ecs.taskdef import NEURON_PREFIX, validate_task_definition
from scheduler.ecs.taskspec import NeuronMode, TaskSpec
from scheduler.errors import NeuronSimError

INSTANCE_TYPE_ATTRIBUTE = "ecs.instance-type"
_INSTANCE_TYPE_EQUALS = re.compile(r"\s*attribute:ecs\.instance-type\s*==\s*([A-Za-z0-9.\-]+)\s*")


class DeviceSetError(NeuronSimError):
    """A task definition that cannot be spread over device sets (one line saying why)."""


@dataclass(frozen=True)
class DeviceSet:
    """One block of chips and the task definition that names it."""

    index: int                # 0-based block number on the instance type
    chips: tuple[int, ...]    # the device indices of the block, contiguous
    document: dict[str, Any]  # the RegisterTaskDefinition input for this block
    spec: TaskSpec

    @property
    def label(self) -> str:
        """``neuron2-3`` for a block of two or more chips, ``neuron3`` for one."""
        return _label(self.chips)

    @property
    def family(self) -> str:
        return str(self.document["family"])


def device_blocks(chips_per_task: int, instance_chips: int) -> tuple[tuple[int, ...], ...]:
    """The aligned blocks of ``chips_per_task`` chips on an instance of ``instance_chips`` chips."""
    if chips_per_task < 1:
        raise ValueError(f"a block needs at least one chip, not {chips_per_task}")
    return tuple(tuple(range(k * chips_per_task, (k + 1) * chips_per_task))
                 for k in range(instance_chips // chips_per_task))


def split_count(total: int, blocks: int) -> tuple[int, ...]:
    """``total`` tasks over ``blocks`` services: ``total // blocks`` each, one more for the first
    ``total % blocks`` blocks (what a user sets when splitting a count evenly by hand)."""
    if blocks < 1:
        raise ValueError(f"needs at least one block, not {blocks}")
    base, extra = divmod(int(total), blocks)
    return tuple(base + (1 if k < extra else 0) for k in range(blocks))


def constrained_instance_type(spec: TaskSpec) -> str | None:
    """The instance type a task definition's own ``memberOf attribute:ecs.instance-type == T`` names."""
    for constraint in spec.constraints:
        if constraint.type == "memberOf" and constraint.expression:
            match = _INSTANCE_TYPE_EQUALS.fullmatch(constraint.expression)
            if match:
                return match[1]
    return None


def template_chips(spec: TaskSpec) -> tuple[int, ...]:
    """The template's chips, checked: manual mode, at least one chip, one contiguous run."""
    if spec.neuron_mode is NeuronMode.MANAGED:
        raise DeviceSetError("device sets need a manual-mode task definition (linuxParameters.devices naming "
                             "/dev/neuronN); this one asks for NeuronDevice=ALL, which already takes every "
                             "chip of the instance")
    if spec.neuron_mode is not NeuronMode.MANUAL or not spec.chips:
        raise DeviceSetError("device sets need a task definition that names its Neuron devices "
                             "(linuxParameters.devices with hostPath /dev/neuronN); this one names none")
    chips = spec.chips
    if chips[-1] - chips[0] + 1 != len(chips):
        names = ", ".join(f"neuron{i}" for i in chips)
        raise DeviceSetError(f"its Neuron devices {names} are not contiguous, so they form no block (the Neuron "
                             "runtime refuses non-contiguous cores); name one contiguous run such as "
                             f"/dev/neuron0 to /dev/neuron{len(chips) - 1}")
    return chips


def expand(document: dict[str, Any], spec: TaskSpec, itype: InstanceType) -> tuple[DeviceSet, ...]:
    """One task definition per aligned block of ``itype``; raises DeviceSetError when none can work."""
    chips = template_chips(spec)
    n = len(chips)
    if not itype.chips:
        raise DeviceSetError(f"{itype.name} has no Neuron devices")
    if n > itype.chips:
        raise DeviceSetError(f"the task names {n} Neuron devices, but {itype.name} has {itype.chips}")
    named = constrained_instance_type(spec)
    if named is not None and named != itype.name:
        raise DeviceSetError(f"the task definition is constrained to {named} (memberOf "
                             f"attribute:{INSTANCE_TYPE_ATTRIBUTE} == {named}), not {itype.name}")
    sets = []
    for index, block in enumerate(device_blocks(n, itype.chips)):
        moved = _block_document(document, shift=block[0] - chips[0], label=_label(block), itype=itype.name)
        validation = validate_task_definition(moved)
        if validation.spec is None:
            issue = validation.errors[0]
            raise DeviceSetError(f"the task definition for block {_label(block)} would be invalid: "
                                 f"{issue.path}: {issue.message}")
        sets.append(DeviceSet(index, block, validation.document, validation.spec))
    return tuple(sets)


def uncovered_chips(chips_per_task: int, itype: InstanceType) -> tuple[int, ...]:
    """Chips of ``itype`` that no block covers (when the block size does not divide the chip count)."""
    covered = (itype.chips // chips_per_task) * chips_per_task
    return tuple(range(covered, itype.chips))


def _label(block: tuple[int, ...]) -> str:
    return f"neuron{block[0]}" if len(block) == 1 else f"neuron{block[0]}-{block[-1]}"


def _block_document(document: dict[str, Any], *, shift: int, label: str, itype: str) -> dict[str, Any]:
    moved = copy.deepcopy(document)
    moved["family"] = f"{document.get('family', '')}-{label}"
    for container in moved.get("containerDefinitions") or ():
        for device in ((container or {}).get("linuxParameters") or {}).get("devices") or ():
            host = device.get("hostPath")
            if not isinstance(host, str) or not host.startswith(NEURON_PREFIX):
                continue
            new = f"{NEURON_PREFIX}{int(host[len(NEURON_PREFIX):]) + shift}"
            if device.get("containerPath") == host:
                device["containerPath"] = new
            device["hostPath"] = new
    constraints = moved.get("placementConstraints") or []
    if not any(INSTANCE_TYPE_ATTRIBUTE in str(c.get("expression", "")) for c in constraints):
        moved["placementConstraints"] = [*constraints, {
            "type": "memberOf", "expression": f"attribute:{INSTANCE_TYPE_ATTRIBUTE} == {itype}"}]
    return moved
