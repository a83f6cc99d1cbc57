"""Scheduled instance retirements: EC2 retires the instance after a notice."""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduler.sim.faults.base import FaultKind, FaultTarget, Striking, param


@dataclass(frozen=True)
class InstanceRetirement(FaultTarget):
    """EC2 schedules the instance for retirement. It is drained at once (service tasks move), and terminated
    after `notice`; tasks still there stop with `TerminationNotice`, and an Auto Scaling group launches a
    replacement."""

    notice: float = field(metadata=param(
        "duration", "Time from the retirement notice to termination. EC2 gives days for a scheduled retirement; "
        "a shorter notice asks what happens when tasks outlast it.", "1h"))


class InstanceRetirements(FaultKind):
    key = "instance_retirements"
    plan = InstanceRetirement
    label = "scheduled retirements"
    order = 50

    def hit(self, faults: Striking, entry: InstanceRetirement, row: int) -> None:
        sim = faults.sim
        sim.recorder.event(sim.now, "fault", f"{sim.state.instances[row].ec2_instance_id} is scheduled for "
                           f"retirement in {entry.notice:g} s")
        sim.drain(row, "EC2 scheduled instance retirement")
        sim.at(sim.now + entry.notice, sim.lose_instance, row, "TerminationNotice",
               "Task stopped: the container instance was terminated after its retirement notice")


KIND = InstanceRetirements()
