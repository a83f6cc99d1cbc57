"""Instance failures: the instance fails its EC2 health checks and dies."""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.sim.faults.base import FaultKind, FaultTarget, Striking


@dataclass(frozen=True)
class InstanceFailure(FaultTarget):
    """The instance dies: its tasks stop with stop code `InfrastructureHealth`, it leaves the cluster; an Auto
    Scaling group launches a replacement."""


class InstanceFailures(FaultKind):
    key = "instance_failures"
    plan = InstanceFailure
    label = "instance failures"
    order = 10

    def hit(self, faults: Striking, entry: InstanceFailure, row: int) -> None:
        sim = faults.sim
        sim.recorder.event(sim.now, "fault", f"{sim.state.instances[row].ec2_instance_id} failed its EC2 health checks")
        sim.lose_instance(row, "InfrastructureHealth", "Task stopped: the container instance failed "
                          "(EC2 instance health check)")


KIND = InstanceFailures()
