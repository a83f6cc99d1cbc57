"""What a placement decision returns: a Placement, or a Failure with ECS's reason and an explanation."""

from __future__ import annotations

from collections.abc import Callable
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


class DeferredFailure(Failure):
    """A Failure whose words are built when first read: ``build(*args)`` makes the Failure it stands for.

    The compiled path returns one per failed decision, holding the kernel's failure details as they were:
    building the steps and sentences costs more than the decision itself, and a caller that only counts
    failures never reads them. It reads, compares, hashes, prints and pickles as that Failure."""

    __slots__ = ("_args", "_build", "_made")

    def __init__(self, build: Callable[..., Failure], *args: object) -> None:
        object.__setattr__(self, "_build", build)
        object.__setattr__(self, "_args", args)
        object.__setattr__(self, "_made", None)

    def made(self) -> Failure:
        """The Failure in words (built on the first call)."""
        made = self._made
        if made is None:
            made = self._build(*self._args)
            object.__setattr__(self, "_made", made)
        return made

    @property
    def reason(self) -> str:  # type: ignore[override]
        return self.made().reason

    @property
    def detail(self) -> str:  # type: ignore[override]
        return self.made().detail

    @property
    def instance(self) -> int | None:  # type: ignore[override]
        return self.made().instance

    @property
    def explanation(self) -> Explanation | None:  # type: ignore[override]
        return self.made().explanation

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DeferredFailure):
            other = other.made()
        return self.made() == other

    def __hash__(self) -> int:
        return hash(self.made())

    def __repr__(self) -> str:
        return repr(self.made())

    def __reduce__(self) -> tuple:
        f = self.made()
        return Failure, (f.reason, f.detail, f.instance, f.explanation)
