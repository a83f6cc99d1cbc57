"""How many copies of a task one empty instance of each type runs at once (``neuron-sim validate``)."""

from __future__ import annotations

from collections.abc import Iterable

from scheduler.catalog.model import InstanceType
from scheduler.ecs.taskspec import TaskSpec
from scheduler.placement.devices import DeviceMode
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure
from scheduler.placement.state import ClusterState

COPY_LIMIT = 100_000  # a task with no CPU, memory or ports would otherwise fit forever


def copies_on_empty(spec: TaskSpec, itype: InstanceType, launch_type: str | None = None) -> int:
    """Copies of ``spec`` that one empty instance runs at once under device-aware placement.

    ``launch_type`` None means any launch type both the task definition and the type allow (the best).
    """
    options = [launch_type] if launch_type else sorted(spec.compatibilities & itype.launch_types)
    best = 0
    for lt in options:
        if lt not in itype.launch_types or lt not in spec.compatibilities:
            continue
        state = ClusterState("fits", capacity=1)
        state.add_instance(itype, launch_type=lt)
        placer = Placer(state, device_mode=DeviceMode.AWARE, compiled=False)  # one instance: Python is quicker
        n = 0
        while n < COPY_LIMIT and not isinstance(placer.place(spec, launch_type=lt), Failure):
            n += 1
        best = max(best, n)
    return best


def fits_table(spec: TaskSpec, types: Iterable[InstanceType], launch_type: str | None = None) -> dict[str, int]:
    """``{instance type: copies}`` for every type, 0 where the task cannot run at all."""
    return {t.name: copies_on_empty(spec, t, launch_type) for t in types}
