"""Faults dispatched by type (scheduler.sim.faults): every kind of the plan has its hooks, and a new kind is
one plan class plus one FaultKind registered for it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scheduler.placement.state import ClusterState
from scheduler.scenario import load_scenario
from scheduler.sim import faults, plan
from scheduler.sim.engine import Simulation

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "faults-inf2-spot.yaml"


def test_every_fault_class_of_the_plan_has_a_kind() -> None:
    members = set(plan.Fault.__args__)  # type: ignore[attr-defined]
    assert members == set(faults.KINDS)
    assert len({kind.counter for kind in faults.KINDS.values()}) == len(faults.KINDS)


@dataclasses.dataclass(frozen=True)
class Reboot:
    """A kind the engine has never seen: the instance reboots (here: only counted and logged)."""

    instance_type: str | None
    mtbf: float | None
    at: tuple[float, ...]


class _Reboot(faults.FaultKind):
    counter = "reboots"

    def strikable(self, state: ClusterState, row: int) -> bool:
        return state.instances[row].instance_type.chips > 0

    def hit(self, faults: faults.Faults, entry: Reboot, row: int) -> None:
        sim = faults.sim
        sim.recorder.event(sim.now, "fault", f"{sim.state.instances[row].ec2_instance_id} rebooted")


def test_a_new_fault_kind_is_one_class_registered_for_its_plan_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(faults.KINDS, Reboot, _Reboot())
    base = load_scenario(SCENARIO).plan()
    compiled = dataclasses.replace(base, faults=(Reboot(None, None, (600.0, 1200.0, 1800.0)),),
                                   spot_interruptions=None)
    out = Simulation(compiled, seed=1, until=3600).run()
    assert out.summary.faults.other_kinds == {"reboots": 3}  # no field of its own yet
    assert sum("rebooted" in e["message"] for e in out.events) == 3
    assert out.summary.faults.instance_failures == 0


def test_fixed_time_faults_strike_once_each_and_stop_tasks() -> None:
    base = load_scenario(SCENARIO).plan()
    compiled = dataclasses.replace(base, faults=(plan.InstanceFailure(None, None, (3600.0,)),
                                                 plan.AgentDisconnect(None, None, (1800.0,), duration=600.0)),
                                   spot_interruptions=None)
    out = Simulation(compiled, seed=2, until=4 * 3600).run()
    counts = out.summary.faults
    assert (counts.instance_failures, counts.agent_disconnects) == (1, 1)
    assert counts.chip_failures == counts.instance_retirements == counts.spot_interruptions == 0
    assert any("disconnected" in e["message"] for e in out.events)
