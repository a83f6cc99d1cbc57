"""What every part of the simulation may use of the engine: the cluster state, the recorder, the run's
length and the clock. The parts' own ports (capacity providers, faults) add their few actions to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from scheduler.placement.state import ClusterState
from scheduler.sim.metrics import Recorder


class EnginePort(Protocol):
    """The engine as a part sees it (the engine implements it)."""

    state: ClusterState
    recorder: Recorder
    duration: float

    @property
    def now(self) -> float: ...

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None: ...
