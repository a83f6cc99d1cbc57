"""Faults injected into a run, dispatched by type.

One mechanism drives every kind (simpy's shape: a small core specialised by small hooks). Each fault entry
of the plan strikes at its fixed times (one matching instance, chosen at random) and, with an MTBF, by an
exponential clock per matching instance that dies with its instance. What a strike does is the kind's
:class:`FaultKind`: which instances it can strike and what happens to one. A new fault kind is one plan
class (:mod:`scheduler.sim.plan`), one ``FaultKind`` registered in :data:`KINDS`, and its test.

Spot interruptions are the other clock: a Spot instance draws its interruption when it registers; the
notice drains it and the instance is lost when the notice runs out.

Every draw comes from the one fault generator, in the order the engine has always made them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol

import numpy as np

from scheduler.placement.state import ClusterState, ContainerInstance
from scheduler.results.summary import Faults
from scheduler.sim.plan import (
    AgentDisconnect,
    ChipFailure,
    Fault,
    InstanceFailure,
    InstanceRetirement,
    SpotInterruptions,
)
from scheduler.sim.ports import EnginePort

# the counts a run keeps: the results contract's whole-number fault fields (one list of names, there)
COUNTERS = tuple(f.name for f in dataclasses.fields(Faults) if f.type == "int")


class FaultPort(EnginePort, Protocol):
    """What faults do to the simulation (the engine implements it)."""

    def drain(self, row: int, reason: str) -> None: ...

    def lose_instance(self, row: int, stop_code: str, reason: str) -> None: ...

    def agent_reconnected(self, row: int) -> None: ...

    def fail_chip(self, row: int, chip: int) -> None: ...


class FaultKind:
    """The hooks of one kind of fault: ``strikable`` (beyond ACTIVE and of the entry's type) and ``hit``."""

    counter: ClassVar[str]

    def strikable(self, state: ClusterState, row: int) -> bool:
        return True

    def hit(self, faults: Faults, entry: Any, row: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _InstanceFailure(FaultKind):
    counter = "instance_failures"

    def hit(self, faults: Faults, entry: InstanceFailure, row: int) -> None:
        sim = faults.sim
        sim.recorder.event(sim.now, "fault", f"{sim.state.instances[row].ec2_instance_id} failed its EC2 health checks")
        sim.lose_instance(row, "InfrastructureHealth", "Task stopped: the container instance failed "
                          "(EC2 instance health check)")


class _ChipFailure(FaultKind):
    counter = "chip_failures"

    def strikable(self, state: ClusterState, row: int) -> bool:
        return bool(int(state.chips_all[row]))  # a chip is left to fail

    def hit(self, faults: Faults, entry: ChipFailure, row: int) -> None:
        present = int(faults.sim.state.chips_all[row])
        chips = [c for c in range(64) if present >> c & 1]
        faults.sim.fail_chip(row, chips[int(faults.rng.integers(len(chips)))])


class _AgentDisconnect(FaultKind):
    counter = "agent_disconnects"

    def strikable(self, state: ClusterState, row: int) -> bool:
        return state.instances[row].agent_connected

    def hit(self, faults: Faults, entry: AgentDisconnect, row: int) -> None:
        sim = faults.sim
        sim.state.set_agent_connected(row, False)
        sim.recorder.event(sim.now, "fault", f"agent on {sim.state.instances[row].ec2_instance_id} disconnected")
        sim.at(sim.now + entry.duration, faults.reconnect, row)


class _InstanceRetirement(FaultKind):
    counter = "instance_retirements"

    def hit(self, faults: Faults, entry: InstanceRetirement, row: int) -> None:
        sim = faults.sim
        sim.recorder.event(sim.now, "fault", f"{sim.state.instances[row].ec2_instance_id} is scheduled for "
                           f"retirement in {entry.notice:g} s")
        sim.drain(row, "EC2 scheduled instance retirement")
        sim.at(sim.now + entry.notice, sim.lose_instance, row, "TerminationNotice",
               "Task stopped: the container instance was terminated after its retirement notice")


KINDS: dict[type, FaultKind] = {
    InstanceFailure: _InstanceFailure(),
    ChipFailure: _ChipFailure(),
    AgentDisconnect: _AgentDisconnect(),
    InstanceRetirement: _InstanceRetirement(),
}


class Faults:
    """The faults of one run: their clocks, their counters and the work they cost."""

    def __init__(self, sim: FaultPort, entries: tuple[Fault, ...], spot: SpotInterruptions | None,
                 rng: np.random.Generator) -> None:
        self.sim = sim
        self.entries = entries
        self.spot = spot
        self.rng = rng
        self.counts = dict.fromkeys(COUNTERS, 0)
        for kind in KINDS.values():  # a kind added later counts under its own name, after these
            self.counts.setdefault(kind.counter, 0)
        self.task_seconds_lost = 0.0
        self._clocks: list[Fault] = []  # entries with an MTBF: a clock per matching instance, once started

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
        if spot and self.spot is not None:
            t = self.sim.now + float(self.rng.exponential(1.0 / self.spot.rate))
            if t < self.sim.duration:
                self.sim.at(t, self._spot_notice, row, self.spot.notice)
        self._arm_clocks(row)

    def task_stopped(self, task: Any, *, service: bool) -> None:
        """A fault stopped ``task``: a service replaces it (the cost shows as service shortfall); a RunTask
        task's work so far is lost."""
        self.counts["tasks_stopped"] += 1
        if service:
            self.counts["service_tasks_stopped"] += 1
        else:
            self.task_seconds_lost += self.sim.now - (task.started_at or self.sim.now)

    def reconnect(self, row: int) -> None:
        if self.sim.state.instances[row].status != "INACTIVE":
            self.sim.state.set_agent_connected(row, True)
            self.sim.agent_reconnected(row)

    # --- the mechanism ---------------------------------------------------------------------------

    def _arm_clocks(self, row: int) -> None:
        name = self.sim.state.instances[row].instance_type.name
        for entry in self._clocks:
            if entry.instance_type is None or entry.instance_type == name:
                self._arm(entry, row)

    def _arm(self, entry: Fault, row: int) -> None:
        assert entry.mtbf is not None
        t = self.sim.now + float(self.rng.exponential(entry.mtbf))
        if t < self.sim.duration:
            self.sim.at(t, self._clock_strike, entry, row)

    def _strikable(self, entry: Fault, inst: ContainerInstance) -> bool:
        """An ACTIVE instance of the entry's type that the kind can strike."""
        return (inst.status == "ACTIVE"
                and (entry.instance_type is None or inst.instance_type.name == entry.instance_type)
                and KINDS[type(entry)].strikable(self.sim.state, inst.index))

    def _clock_strike(self, entry: Fault, row: int) -> None:
        instances = self.sim.state.instances
        if instances[row].status == "INACTIVE":
            return  # the clock dies with its instance
        if self._strikable(entry, instances[row]):
            self._hit(entry, row)
        if instances[row].status != "INACTIVE":
            self._arm(entry, row)

    def _strike(self, entry: Fault) -> None:
        """A fault at a fixed time: it strikes one matching instance, chosen at random."""
        rows = [i.index for i in self.sim.state.instances if self._strikable(entry, i)]
        if rows:
            self._hit(entry, rows[int(self.rng.integers(len(rows)))])

    def _hit(self, entry: Fault, row: int) -> None:
        kind = KINDS[type(entry)]
        self.counts[kind.counter] += 1
        kind.hit(self, entry, row)

    def _spot_notice(self, row: int, notice: float) -> None:
        if self.sim.state.instances[row].status == "INACTIVE":
            return
        self.counts["spot_interruptions"] += 1
        self.sim.drain(row, "EC2 Spot interruption notice")
        self.sim.at(self.sim.now + notice, self.sim.lose_instance, row, "SpotInterruption",
                    "Your Spot Task was interrupted.")
