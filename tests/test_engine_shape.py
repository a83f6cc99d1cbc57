"""The engine split by job: each part reaches the simulation only through its narrow port.

Capacity providers (scheduler.sim.capacity), faults (scheduler.sim.faults) and the service scheduler
(scheduler.sim.services) each declare a Protocol of what they may use of the engine; parsed with ``ast``,
every ``<port>.name`` they read must be a member of that Protocol, so a new call into the engine shows up
as a change of the port.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scheduler.sim.capacity import ClusterPort
from scheduler.sim.engine import Simulation
from scheduler.sim.faults import FaultPort
from scheduler.sim.services import ServicePort

SIM = Path(__file__).resolve().parents[1] / "scheduler" / "sim"


def _members(port: type) -> set[str]:
    """The names a port offers, its bases' included (a part's port extends the engine's common one)."""
    out: set[str] = set()
    for cls in port.__mro__:
        if cls.__module__.startswith("scheduler."):
            out |= {name for name in vars(cls) if not name.startswith("_")}
            out |= set(vars(cls).get("__annotations__", {}))
    return out


def _port_reads(source: str, chains: tuple[str, ...]) -> set[str]:
    """Attribute names read on ``self.sim``/``sim``/``faults.sim`` (the chains given) in ``source``."""
    reads = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) in chains:
            reads.add(node.attr)
    return reads


@pytest.mark.parametrize(("module", "port", "chains"), [
    ("capacity.py", ClusterPort, ("self.sim",)),
    ("faults", FaultPort, ("self.sim", "faults.sim", "sim")),  # the package: the mechanism and every kind
    ("services.py", ServicePort, ("self.sim", "sim")),
])
def test_each_part_uses_only_its_port(module: str, port: type, chains: tuple[str, ...]) -> None:
    files = sorted((SIM / module).glob("*.py")) if (SIM / module).is_dir() else [SIM / module]
    reads = set().union(*(_port_reads(f.read_text(encoding="utf-8"), chains) for f in files))
    assert reads, f"{module} reads nothing through its port: the chains are wrong"
    assert reads - _members(port) == set()


@pytest.mark.parametrize("port", [ClusterPort, FaultPort, ServicePort])
def test_the_engine_implements_every_port(port: type) -> None:
    missing = [name for name in _members(port) if not hasattr(Simulation, name)
               and name not in Simulation.__init__.__code__.co_names]
    assert missing == []


def test_a_read_outside_the_port_is_seen() -> None:
    reads = _port_reads("def f(self):\n    self.sim._stop(1)\n    self.sim.now\n", ("self.sim",))
    assert reads - _members(ClusterPort) == {"_stop"}


def test_a_sample_reads_the_state_without_changing_it_and_its_cluster_row_sums_the_rest() -> None:
    from scheduler.scenario import load_scenario
    from scheduler.sim import sampling

    root = SIM.parents[1]
    sim = Simulation(load_scenario(root / "scenarios" / "mixed-cluster.yaml"), seed=1, until=2 * 3600)
    res = sim.run()
    before = (sim.state.cpu_free.copy(), sim.state.chips_free.copy())
    rows, stranded = sampling.sample(sim.state, sim.placer, sim._neuron_specs, sim.now, sim.counts,
                                     sim.submitted + sim.seeded)
    again, _ = sampling.sample(sim.state, sim.placer, sim._neuron_specs, sim.now, sim.counts,
                               sim.submitted + sim.seeded)
    assert rows == again and stranded >= 0
    assert (sim.state.cpu_free == before[0]).all() and (sim.state.chips_free == before[1]).all()
    *parts, cluster = rows
    for key in ("chips_total", "chips_held", "cpu_used", "memory_total"):
        assert cluster[key] == sum(r[key] for r in parts)
    assert cluster["running"] == sim.counts["RUNNING"] > 0
    last = res.timeline[res.timeline["instance_type"] == "*"].iloc[-1]
    assert int(last["cpu_total"]) == cluster["cpu_total"]


def test_the_clock_runs_calls_in_time_order_then_scheduling_order_and_stops_between_two() -> None:
    from scheduler.sim.clock import Clock

    clock = Clock()
    seen: list[tuple[float, str]] = []
    clock.at(5.0, lambda: seen.append((clock.now, "b")))
    clock.at(1.0, lambda: seen.append((clock.now, "a")))
    clock.at(5.0, lambda: seen.append((clock.now, "c")))
    clock.at(-3.0, lambda: seen.append((clock.now, "past")))  # a time that has passed runs now
    assert clock.run(until=10.0)
    assert seen == [(0.0, "past"), (1.0, "a"), (5.0, "b"), (5.0, "c")]

    stopping = Clock()
    ran: list[int] = []

    def first() -> None:
        ran.append(1)
        stopping.interrupted = True

    stopping.at(1.0, first)
    stopping.at(2.0, lambda: ran.append(2))
    assert not stopping.run(until=10.0)
    assert ran == [1] and stopping.now == 2.0  # at the next event, which did not run
