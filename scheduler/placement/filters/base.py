"""What a filter is: a name, ECS's failure reason, the service-event phrase, and one test function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from scheduler.ecs.cql import CqlOptions
from scheduler.ecs.taskspec import Constraint, TaskSpec
from scheduler.placement.devices import DeviceMode

if TYPE_CHECKING:
    from scheduler.placement.state import ClusterState


@dataclass(frozen=True, slots=True)
class Request:
    """One placement request as the filters see it."""

    spec: TaskSpec
    state: ClusterState
    device_mode: DeviceMode = DeviceMode.AWARE
    launch_type: str | None = None
    capacity_providers: tuple[str, ...] | None = None
    group: str = ""
    constraints: tuple[Constraint, ...] = ()
    cql_options: CqlOptions = field(default_factory=CqlOptions)


@dataclass(frozen=True, slots=True)
class Filter:
    """One placement filter.

    ``static`` filters read what changes only with the cluster's membership and attributes (launch type,
    status, architecture, constraints): ``test(request, constraint)`` gives a mask over instance rows.
    Resource filters read free capacity through a ColumnView: ``test(view, request, items)`` gives a mask
    over the view's ``items`` (rows or classes). ``per_class`` says whether identical instances always get
    the same answer, so the filter can run over classes (memberOf only when its expression is static and
    reads no per-instance subject). ``reads`` names the TaskSpec fields the filter reads.
    """

    name: str
    reason: str
    phrase: str
    per_class: bool
    static: bool
    reads: tuple[str, ...]
    applies: Callable[[Request], bool]
    test: Callable[..., np.ndarray]
    # static filters whose answer depends only on these request fields are cached in state.static_masks
    cache_key: Callable[[Request], tuple] | None = None

    def __repr__(self) -> str:
        return f"Filter({self.name!r}, {self.reason!r})"


def always(_: Any) -> bool:
    return True


def by_name(filters: Sequence[Filter]) -> dict[str, Filter]:
    return {f.name: f for f in filters}
