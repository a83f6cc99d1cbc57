"""Fault kinds (scheduler.sim.faults): one module per kind, found by a scan of the package, struck by one
mechanism; the scenario block, compile step, checks, summary counters and docs tables derive from them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scheduler.placement.state import ClusterState
from scheduler.scenario import faults as fault_models
from scheduler.scenario import load_scenario
from scheduler.sim import faults, plan
from scheduler.sim.engine import Simulation
from scheduler.sim.faults.agent_disconnects import AgentDisconnect
from scheduler.sim.faults.instance_failures import InstanceFailure

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "faults-inf2-spot.yaml"


def test_every_kind_has_its_own_key_plan_class_and_a_param_for_every_plan_field() -> None:
    kinds = faults.kinds()
    assert len({k.key for k in kinds}) == len({k.plan for k in kinds}) == len(kinds) >= 5
    for kind in kinds:
        assert kind.label and kind.doc
        assert all(p.doc for _, p in faults.params(kind.plan))
        assert issubclass(kind.plan, faults.FaultTarget) == kind.many


def test_the_scenario_block_has_one_key_per_kind() -> None:
    assert set(fault_models.Faults.model_fields) == {k.key for k in faults.kinds()}
    assert fault_models.InstanceFailure is fault_models.MODELS["instance_failures"]


@dataclasses.dataclass(frozen=True)
class Reboot(faults.FaultTarget):
    """A kind the engine has never seen: the instance reboots (here: only counted and logged)."""


class _Reboot(faults.FaultKind):
    key = "reboots"
    plan = Reboot
    label = "reboots"

    def strikable(self, state: ClusterState, row: int) -> bool:
        return state.instances[row].instance_type.chips > 0

    def hit(self, faults: faults.Striking, entry: Reboot, row: int) -> None:
        sim = faults.sim
        sim.recorder.event(sim.now, "fault", f"{sim.state.instances[row].ec2_instance_id} rebooted")


def test_the_mechanism_strikes_and_counts_any_registered_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.sim.faults import mechanism

    kinds = (*faults.kinds(), _Reboot())
    monkeypatch.setattr(mechanism, "by_plan", lambda: {k.plan: k for k in kinds})
    monkeypatch.setattr(mechanism, "counter_names", lambda: tuple(k.key for k in kinds))
    base = load_scenario(SCENARIO).plan()
    compiled = dataclasses.replace(base, faults=(Reboot(None, None, (600.0, 1200.0, 1800.0)),),
                                   spot_interruptions=None)
    out = Simulation(compiled, seed=1, until=3600).run()
    assert out.summary.faults.reboots == 3 and out.summary.to_json()["faults"]["reboots"] == 3
    assert sum("rebooted" in e["message"] for e in out.events) == 3
    assert out.summary.faults.instance_failures == 0


def test_fixed_time_faults_strike_once_each_and_stop_tasks() -> None:
    base = load_scenario(SCENARIO).plan()
    compiled = dataclasses.replace(base, faults=(InstanceFailure(None, None, (3600.0,)),
                                                 AgentDisconnect(None, None, (1800.0,), duration=600.0)),
                                   spot_interruptions=None)
    out = Simulation(compiled, seed=2, until=4 * 3600).run()
    counts = out.summary.faults
    assert (counts.instance_failures, counts.agent_disconnects) == (1, 1)
    assert counts.chip_failures == counts.instance_retirements == counts.spot_interruptions == 0
    assert any("disconnected" in e["message"] for e in out.events)


def test_the_compiled_plan_holds_each_kind_in_seconds() -> None:
    compiled = load_scenario(SCENARIO).plan()
    assert [type(e).__name__ for e in compiled.faults] == ["InstanceFailure", "ChipFailure", "AgentDisconnect",
                                                           "InstanceRetirement"]
    assert compiled.faults[2].duration == 15 * 60 and compiled.faults[3].at == (6 * 86400.0,)
    assert compiled.faults[3].notice == 7200.0 and compiled.faults[0].mtbf == 60 * 86400.0
    assert compiled.spot_interruptions == plan.SpotInterruptions(rate=1 / (7 * 86400), notice=120.0)
