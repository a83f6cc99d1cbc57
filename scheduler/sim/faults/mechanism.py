"""The one mechanism that strikes every targeted fault kind (simpy's shape: a small core specialised by the
kinds' hooks).

Each entry of the plan strikes at its fixed times (one matching instance, chosen at random) and, with an
MTBF, by an exponential clock per matching instance that dies with its instance. What a strike does is
its kind's (:class:`~scheduler.sim.faults.base.FaultKind`): which instances it can strike and what
happens to one. A one-object kind (Spot interruptions) runs a clock of its own from ``instance_added``.

Every draw comes from the one fault generator, in the order the engine has always made them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scheduler.placement.state import ContainerInstance
from scheduler.sim.faults.base import FaultPort, FaultTarget
from scheduler.sim.faults.registry import by_plan, counter_names

# counts a run keeps beside each kind's: tasks a fault stopped, and of those the service tasks
TASK_COUNTERS = ("tasks_stopped", "service_tasks_stopped")


class Faults:
    """The faults of one run: their clocks, their counters and the work they cost."""

    def __init__(self, sim: FaultPort, entries: tuple[FaultTarget, ...], spot: Any | None,
                 rng: np.random.Generator) -> None:
        self.sim = sim
        self.entries = entries
        self.spot = spot  # the plan's one-object kind (Spot interruptions), or None
        self.rng = rng
        self.counts = dict.fromkeys((*counter_names(), *TASK_COUNTERS), 0)
        self.task_seconds_lost = 0.0
        self._clocks: list[FaultTarget] = []  # entries with an MTBF: a clock per matching instance, once started

    def start(self) -> None:
        """Schedule the fixed-time strikes and start the clocks of the instances there are now."""
        for entry in self.entries:
            for t in entry.at:
                self.sim.at(t, self._strike, entry)
            if entry.mtbf:
                self._clocks.append(entry)
        for inst in self.sim.state.instances:
            self._arm_clocks(inst.index)

    def instance_added(self, row: int, *, spot: bool) -> None:
        """A new instance: its Spot interruption clock (a Spot instance), then its failure clocks."""
        if self.spot is not None:
            by_plan()[type(self.spot)].instance_added(self, self.spot, row, spot=spot)
        self._arm_clocks(row)

    def task_stopped(self, task: Any, *, service: bool) -> None:
        """A fault stopped ``task``: a service replaces it (the cost shows as service shortfall); a RunTask
        task's work so far is lost."""
        self.counts["tasks_stopped"] += 1
        if service:
            self.counts["service_tasks_stopped"] += 1
        else:
            self.task_seconds_lost += self.sim.now - (task.started_at or self.sim.now)

    # --- the mechanism ---------------------------------------------------------------------------

    def _arm_clocks(self, row: int) -> None:
        name = self.sim.state.instances[row].instance_type.name
        for entry in self._clocks:
            if entry.instance_type is None or entry.instance_type == name:
                self._arm(entry, row)

    def _arm(self, entry: FaultTarget, row: int) -> None:
        assert entry.mtbf is not None
        t = self.sim.now + float(self.rng.exponential(entry.mtbf))
        if t < self.sim.duration:
            self.sim.at(t, self._clock_strike, entry, row)

    def _strikable(self, entry: FaultTarget, inst: ContainerInstance) -> bool:
        """An ACTIVE instance of the entry's type that the kind can strike."""
        return (inst.status == "ACTIVE"
                and (entry.instance_type is None or inst.instance_type.name == entry.instance_type)
                and by_plan()[type(entry)].strikable(self.sim.state, inst.index))

    def _clock_strike(self, entry: FaultTarget, row: int) -> None:
        instances = self.sim.state.instances
        if instances[row].status == "INACTIVE":
            return  # the clock dies with its instance
        if self._strikable(entry, instances[row]):
            self._hit(entry, row)
        if instances[row].status != "INACTIVE":
            self._arm(entry, row)

    def _strike(self, entry: FaultTarget) -> None:
        """A fault at a fixed time: it strikes one matching instance, chosen at random."""
        rows = [i.index for i in self.sim.state.instances if self._strikable(entry, i)]
        if rows:
            self._hit(entry, rows[int(self.rng.integers(len(rows)))])

    def _hit(self, entry: FaultTarget, row: int) -> None:
        kind = by_plan()[type(entry)]
        self.counts[kind.key] += 1
        kind.hit(self, entry, row)
