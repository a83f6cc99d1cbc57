"""ECS agent disconnects: the container agent loses its connection for a while."""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduler.placement.state import ClusterState
from scheduler.sim.faults.base import FaultKind, FaultPort, FaultTarget, Striking, param


@dataclass(frozen=True)
class AgentDisconnect(FaultTarget):
    """The agent is disconnected for `duration`: no new placements there (`AGENT`), running tasks go on."""

    duration: float = field(metadata=param("step", "How long an agent stays disconnected.", "5m"))


class AgentDisconnects(FaultKind):
    key = "agent_disconnects"
    plan = AgentDisconnect
    label = "agent disconnects"
    order = 30

    def strikable(self, state: ClusterState, row: int) -> bool:
        return state.instances[row].agent_connected

    def hit(self, faults: Striking, entry: AgentDisconnect, row: int) -> None:
        sim = faults.sim
        sim.state.set_agent_connected(row, False)
        sim.recorder.event(sim.now, "fault", f"agent on {sim.state.instances[row].ec2_instance_id} disconnected")
        sim.at(sim.now + entry.duration, reconnect, sim, row)


def reconnect(sim: FaultPort, row: int) -> None:
    """The agent of instance ``row`` is back (unless the instance has left meanwhile)."""
    if sim.state.instances[row].status != "INACTIVE":
        sim.state.set_agent_connected(row, True)
        sim.agent_reconnected(row)


KIND = AgentDisconnects()
