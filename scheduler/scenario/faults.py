"""Faults injected into a run: instance and chip failures, agent disconnects, instance retirements and
Spot interruptions, each at given times or at random with a mean time between failures."""

from __future__ import annotations

from pydantic import Field, model_validator

from scheduler.scenario.fields import Duration, Step, StepRate, _Model


class _FaultTarget(_Model):
    """Which instances a fault strikes: every instance, or those of one type; at given times, or at random
    with a mean time between failures per instance."""

    instance_type: str | None = None
    mtbf: Step | None = Field(None, description="mean time between failures of one instance")
    at: list[Duration] = []

    @model_validator(mode="after")
    def _when(self) -> _FaultTarget:
        if self.mtbf is None and not self.at:
            raise ValueError("give mtbf (a mean time between failures) or at (a list of times)")
        return self


class InstanceFailure(_FaultTarget):
    """The instance dies: its tasks stop (InfrastructureHealth) and it leaves the cluster."""


class ChipFailure(_FaultTarget):
    """One Neuron chip fails: it leaves the instance's NEURON_DEVICES and the task holding it stops."""


class AgentDisconnect(_FaultTarget):
    """The ECS agent loses its connection for ``duration``: no new placements there; tasks run on."""

    duration: Step = "5m"


class InstanceRetirement(_FaultTarget):
    """EC2 schedules the instance for retirement: it is drained at once (service tasks move) and terminated
    after ``notice``; tasks still there stop with TerminationNotice."""

    notice: Duration = Field("1h", ge=0)


class SpotInterruptions(_Model):
    """EC2 reclaims Spot instances at ``rate`` per instance; a two-minute notice drains the instance first."""

    rate: StepRate
    notice: Duration = Field("2m", ge=0)


class Faults(_Model):
    """Faults injected into the run (all optional)."""

    instance_failures: list[InstanceFailure] = []
    chip_failures: list[ChipFailure] = []
    agent_disconnects: list[AgentDisconnect] = []
    instance_retirements: list[InstanceRetirement] = []
    spot_interruptions: SpotInterruptions | None = None
