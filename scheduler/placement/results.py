"""What a placement decision returns: a Placement, or a Failure with ECS's reason and an explanation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class StartFailure:
    """Why a container placed ECS-blind cannot open a device it names: ``code`` is ``MISSING`` (the chip
    does not exist on the instance) or ``IN_USE`` (``holder``, another task, holds it). The words are the
    views' (``scheduler.views.events``)."""

    MISSING = "missing"
    IN_USE = "in use"

    code: str
    chip: int
    holder: str | None = None

    @property
    def device_path(self) -> str:
        return f"/dev/neuron{self.chip}"


class _PlacementFields(NamedTuple):
    task_id: str
    instance: int
    chips: tuple[int, ...] = ()
    gpu_ids: tuple[str, ...] = ()
    start_failure: StartFailure | None = None


class Placement(_PlacementFields):
    """A task placed on instance row ``instance`` with these chips and GPU ids.

    ``start_failure`` is set only in ECS-blind device mode, when the instance was chosen on CPU and memory
    but the container could not open a named device; such a task holds nothing.

    Immutable, and a tuple underneath: the compiled path makes one per decision, and a tuple is built
    several times faster than a frozen dataclass (fields are read by name as before).
    """

    __slots__ = ()

    @property
    def ok(self) -> bool:
        return self.start_failure is None

    @property
    def device_paths(self) -> tuple[str, ...]:
        return tuple(f"/dev/neuron{c}" for c in self.chips)


class Step(NamedTuple):
    """One filter step of a decision: how many candidates it removed (a tuple underneath, like Placement)."""

    name: str
    before: int
    removed: int


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a placement failed: the filter steps, and the closest instance with what it lacked."""

    steps: tuple[Step, ...]
    closest: int | None = None
    lacks: tuple[str, ...] = ()
    event: str = ""   # ECS's service-event sentence without the instance's identity (views add it)
    phrase: str = ""  # what the closest instance lacks, in the service event's words

    def lines(self) -> list[str]:
        out = [f"{s.name}: {s.before} candidate(s), removed {s.removed}" for s in self.steps]
        if self.event:
            out.append(self.event)
        return out


@dataclass(frozen=True, slots=True)
class Failure:
    """ECS's answer when no instance can take the task: ``reason`` as in RunTask ``failures[].reason``.

    ``instance`` is the row of the closest instance (None when no instance got that far); the views turn
    it into the container instance's ARN."""

    reason: str
    detail: str = ""
    instance: int | None = None
    explanation: Explanation | None = None

    @property
    def ok(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason
