"""What one kind of fault declares: its plan fields (with their scenario units, defaults and meaning), its
scenario key (also its counter in the run summary), the instances it can strike and what a strike does.

A kind is one module of this package that sets ``KIND`` to an instance of a :class:`FaultKind` subclass
(:mod:`scheduler.sim.faults.registry` finds it). Its plan class is a frozen dataclass; every field carries
a :func:`param` in its metadata, from which the scenario schema (:mod:`scheduler.scenario.faults`), the
compile step, the checks and the docs tables are derived. Most kinds strike "targets" (every instance,
or those of one type, at given times or with an MTBF): their plan class extends :class:`FaultTarget`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from scheduler.catalog.model import InstanceType
from scheduler.placement.state import ClusterState
from scheduler.sim.ports import EnginePort

# The units a plan field may have in a scenario (the scenario layer maps each to its validated type):
UNITS: Mapping[str, str] = {
    "instance_type": "catalog type",            # the name of a catalog instance type
    "duration": "duration ≥ 0",                 # seconds, or "90s", "15m", "2h"
    "step": "duration >= 1ms",                  # a duration at least the shortest time step
    "step_rate": "rate > 0, at most 1000/s",    # per second, or "0.02/h"; at most one event per time step
    "times": "list of durations",               # fixed times from the start of the run
}
REQUIRED = object()  # a param without a default: the scenario must give it


@dataclass(frozen=True)
class Param:
    """How a plan field reads in a scenario: its unit (a key of :data:`UNITS`), its default as a scenario
    writes it (``"5m"``; :data:`REQUIRED` when it has none; ``None`` when leaving it out means "none"),
    and what it means (one sentence, for the schema and the docs)."""

    unit: str
    doc: str
    default: Any = REQUIRED

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; one of {', '.join(UNITS)}")


def param(unit: str, doc: str, default: Any = REQUIRED) -> dict[str, Param]:
    """Field metadata declaring how a plan field reads in a scenario (see :class:`Param`)."""
    return {"param": Param(unit, doc, default)}


def params(plan: type) -> tuple[tuple[str, Param], ...]:
    """Each field of a plan class with its :class:`Param`, in field order."""
    return tuple((f.name, f.metadata["param"]) for f in dataclasses.fields(plan))


@dataclass(frozen=True)
class FaultTarget:
    """The fields every targeted kind shares: which instances it strikes, at fixed times or at random."""

    instance_type: str | None = field(metadata=param(
        "instance_type", "Which instances the entry strikes (any when left out).", None))
    mtbf: float | None = field(metadata=param(
        "step", "Mean time between failures of one instance (exponential): each matching instance has its own "
        "clock, from when it registers until it leaves.", None))
    at: tuple[float, ...] = field(metadata=param(
        "times", "Fixed times at which the fault strikes one matching instance, chosen at random.", []))


class FaultPort(EnginePort, Protocol):
    """What faults do to the simulation (the engine implements it)."""

    def drain(self, row: int, reason: str) -> None: ...

    def lose_instance(self, row: int, stop_code: str, reason: str) -> None: ...

    def agent_reconnected(self, row: int) -> None: ...

    def fail_chip(self, row: int, chip: int) -> None: ...


class Striking(Protocol):
    """The faults of a run as a kind's hooks see them: the engine, the fault generator and the counters."""

    sim: FaultPort
    rng: np.random.Generator
    counts: dict[str, int]


class FaultKind:
    """One kind of fault. ``key`` is its scenario key under ``faults:`` and its counter in summary.json's
    ``faults``; ``plan`` its plan class (its docstring is the kind's meaning in the schema and the docs);
    ``label`` how the terminal and the report name its counter; ``order`` its place among the kinds (in a
    scenario, in the fault generator's draws, in the report) and ``summary_order`` its counter's place in
    summary.json (the same unless a kind says otherwise). ``many``: a list of targeted entries (the plan
    class extends :class:`FaultTarget`; struck by the one mechanism of :mod:`.mechanism`), or one
    object with a clock of its own (Spot interruptions). A new targeted kind is its module alone; a new
    one-object kind would also need its field in :class:`~scheduler.sim.plan.Plan` (compile fills the field
    named by its key) and its engine call, as Spot interruptions have."""

    key: ClassVar[str]
    plan: ClassVar[type]
    label: ClassVar[str]
    order: ClassVar[int] = 1000
    summary_order: ClassVar[int | None] = None
    many: ClassVar[bool] = True

    @property
    def counter_order(self) -> int:
        return self.order if self.summary_order is None else self.summary_order

    @property
    def doc(self) -> str:
        """The kind's meaning: its plan class's docstring as one paragraph."""
        return " ".join((self.plan.__doc__ or "").split())

    def type_problem(self, itype: InstanceType) -> str | None:
        """Why an entry may not name ``itype`` (a scenario check), or None."""
        return None

    def strikable(self, state: ClusterState, row: int) -> bool:
        """Whether the kind can strike instance ``row`` (already ACTIVE and of the entry's type)."""
        return True

    def hit(self, faults: Striking, entry: Any, row: int) -> None:  # pragma: no cover - overridden
        """What a strike does to instance ``row`` (the mechanism has counted it)."""
        raise NotImplementedError

    def instance_added(self, faults: Striking, entry: Any, row: int, *, spot: bool) -> None:
        """A one-object kind's clock for a new instance (targeted kinds use the mechanism's clocks)."""
