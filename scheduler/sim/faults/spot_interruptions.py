"""Spot interruptions: EC2 reclaims Spot instances, with a two-minute notice.

Not a targeted kind: a Spot instance draws its interruption when it registers (one clock per Spot
instance, at ``rate``); the notice drains it and the instance is lost when the notice runs out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduler.sim.faults.base import FaultKind, Striking, param


@dataclass(frozen=True)
class SpotInterruptions:
    """Each Spot instance (a fleet or provider with `spot: true`) is reclaimed at `rate`; after the notice
    (default `2m`, as EC2 gives) the instance is drained (service tasks move) and then terminated; tasks
    still there stop with `SpotInterruption`."""

    rate: float = field(metadata=param("step_rate", "Spot interruptions per instance per unit time, e.g. `0.02/h`."))
    notice: float = field(metadata=param("duration", "The interruption notice before termination.", "2m"))


class SpotInterruptionKind(FaultKind):
    key = "spot_interruptions"
    plan = SpotInterruptions
    label = "Spot interruptions"
    order = 40
    summary_order = 15  # summary.json has written it second since it was added; kept, so saved files compare
    many = False

    def instance_added(self, faults: Striking, entry: SpotInterruptions, row: int, *, spot: bool) -> None:
        if not spot:
            return
        sim = faults.sim
        t = sim.now + float(faults.rng.exponential(1.0 / entry.rate))
        if t < sim.duration:
            sim.at(t, self._notice, faults, row, entry.notice)

    def _notice(self, faults: Striking, row: int, notice: float) -> None:
        sim = faults.sim
        if sim.state.instances[row].status == "INACTIVE":
            return
        faults.counts[self.key] += 1
        sim.drain(row, "EC2 Spot interruption notice")
        sim.at(sim.now + notice, sim.lose_instance, row, "SpotInterruption", "Your Spot Task was interrupted.")


KIND = SpotInterruptionKind()
