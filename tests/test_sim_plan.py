"""The simulation reads a typed plan, never the scenario's pydantic models.

``scheduler.scenario.compile`` turns a loaded scenario into :class:`scheduler.sim.plan.Plan` once; below
that line nothing imports ``scheduler.scenario`` and nothing reads a field with ``getattr(obj, name,
default)`` (a default copied from the schema). Both are checked on the source with ``ast``.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from scheduler.scenario import load_scenario
from scheduler.sim import plan
from scheduler.sim.engine import Simulation

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "scheduler" / "sim"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def _sources() -> list[tuple[str, ast.Module]]:
    return [(path.name, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(SIM.glob("*.py"))]


def test_sim_imports_nothing_from_scenario() -> None:
    found = []
    for name, tree in _sources():
        for node in ast.walk(tree):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{name}:{node.lineno} {m}" for m in modules if m.startswith("scheduler.scenario")]
    assert found == []


def _defaulted_reads(tree: ast.Module) -> list[int]:
    """Lines of ``getattr(obj, name, default)`` and ``hasattr(obj, name)``: reading a field that may be absent."""
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and ((node.func.id == "getattr" and len(node.args) == 3) or node.func.id == "hasattr")]


def test_sim_reads_no_field_with_a_getattr_default() -> None:
    assert [f"{name}:{line}" for name, tree in _sources() for line in _defaulted_reads(tree)] == []


def test_the_checks_above_would_see_a_violation() -> None:
    tree = ast.parse("from scheduler.scenario.models import Scenario\nx = getattr(m, 'period', 86400)\n")
    assert _defaulted_reads(tree) == [2]
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert imports[0].module.startswith("scheduler.scenario")


def test_every_plan_class_is_a_frozen_dataclass() -> None:
    classes = [obj for obj in vars(plan).values()
               if isinstance(obj, type) and obj.__module__ == plan.__name__ and dataclasses.is_dataclass(obj)]
    assert len(classes) > 20
    assert [c.__name__ for c in classes if not c.__dataclass_params__.frozen] == []


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_bundled_scenario_compiles_with_durations_in_seconds(path: Path) -> None:
    compiled = load_scenario(path).plan()
    assert isinstance(compiled, plan.Plan)
    assert compiled.duration > 0 and compiled.sample_interval > 0 and compiled.provisioning_timeout > 0
    assert 0 <= compiled.spot_discount < 1
    for w in compiled.workloads:
        assert isinstance(w, plan.RunTaskWorkload | plan.ServiceWorkload)
        assert all(b.task_definition in compiled.task_specs for b in w.blocks)
        assert isinstance(w.start, float)


def test_a_plan_and_its_loaded_scenario_run_the_same() -> None:
    loaded = load_scenario(ROOT / "scenarios" / "faults-inf2-spot.yaml")
    a = Simulation(loaded, seed=3, until=6 * 3600).run()
    b = Simulation(loaded.plan(), seed=3, until=6 * 3600).run()
    same = dataclasses.replace(b.summary, wall_seconds=a.summary.wall_seconds)
    assert a.summary == same and a.summary.tasks.submitted > 0
    assert a.tasks.equals(b.tasks)


def test_the_engine_takes_the_schema_defaults_through_the_plan() -> None:
    """provisioning_timeout and spot_discount: the schema's defaults reach the engine via the plan (the
    engine keeps no copy of its own)."""
    from scheduler.scenario.cluster import ClusterModel

    loaded = load_scenario(ROOT / "scenarios" / "faults-inf2-spot.yaml")
    assert not {"provisioning_timeout", "spot_discount"} & loaded.model.cluster.model_fields_set
    compiled = loaded.plan()
    assert compiled.spot_discount == ClusterModel.model_fields["spot_discount"].default
    assert compiled.provisioning_timeout == 15 * 60  # the schema's "15m", parsed once
    engine = Simulation(compiled, until=60)
    assert (engine.provisioning_timeout, engine.spot_discount) == (compiled.provisioning_timeout,
                                                                 compiled.spot_discount)
