"""Neuron chip failures: one chip of the instance fails and leaves it."""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.catalog.model import InstanceType
from scheduler.placement.state import ClusterState
from scheduler.sim.faults.base import FaultKind, FaultTarget, Striking


@dataclass(frozen=True)
class ChipFailure(FaultTarget):
    """One Neuron chip (chosen at random) fails: it leaves the instance's `NEURON_DEVICES` and the task holding
    it stops (`InfrastructureHealth`)."""


class ChipFailures(FaultKind):
    key = "chip_failures"
    plan = ChipFailure
    label = "Neuron chip failures"
    order = 20

    def type_problem(self, itype: InstanceType) -> str | None:
        return None if itype.chips else f"{itype.name} has no Neuron chips to fail"

    def strikable(self, state: ClusterState, row: int) -> bool:
        return bool(int(state.chips_all[row]))  # a chip is left to fail

    def hit(self, faults: Striking, entry: ChipFailure, row: int) -> None:
        present = int(faults.sim.state.chips_all[row])
        chips = [c for c in range(64) if present >> c & 1]
        faults.sim.fail_chip(row, chips[int(faults.rng.integers(len(chips)))])


KIND = ChipFailures()
