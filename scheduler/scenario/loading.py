"""Loading a scenario: read the file, apply overrides, validate, cross-check and resolve, giving a
:class:`LoadedScenario` (the model with its catalog, task specs and trace tables) the simulation can
run. Every problem, from any step, is one ScenarioError."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from scheduler.catalog import Catalog
from scheduler.ecs import near_miss
from scheduler.ecs.taskspec import TaskSpec
from scheduler.errors import ScenarioError, show_value
from scheduler.nesting import first_problem
from scheduler.scenario.checks import (
    _check_cluster,
    _check_desired_count_steps,
    _check_faults,
    _check_workload_references,
    _check_workloads_against_specs,
    _load_task_definitions,
    _scenario_catalog,
)
from scheduler.scenario.compile import compile_plan
from scheduler.scenario.context import _Context
from scheduler.scenario.device_sets import resolve_device_sets
from scheduler.scenario.fields import BARE_RATES
from scheduler.scenario.models import Launch, Scenario, resolve_launch
from scheduler.scenario.overrides import apply_overrides
from scheduler.scenario.request_traces import _load_request_traces
from scheduler.scenario.snapshot import ClusterSnapshot, apply_snapshot, read_snapshot
from scheduler.scenario.traces import _load_traces
from scheduler.scenario.validation_errors import _from_validation_error
from scheduler.scenario.words import _kind, _path_part
from scheduler.scenario.workloads import RunTaskWorkload, ServiceWorkload
from scheduler.scenario.yaml_reader import _read_text, parse_yaml
from scheduler.sim.plan import Plan


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with everything it refers to loaded: the catalog (with the scenario's own
    additions), a TaskSpec per task definition and a table per trace workload.

    Each trace table has float columns ``submit`` and ``duration`` (seconds; ``duration`` is NaN where
    the workload's own ``duration`` applies) and a ``task_definition`` column of task_definitions keys,
    sorted by ``submit``.
    """

    model: Scenario
    path: Path
    catalog: Catalog
    task_specs: dict[str, TaskSpec]
    traces: dict[str, pd.DataFrame] = field(default_factory=dict)
    snapshot: ClusterSnapshot | None = None
    notices: tuple[str, ...] = ()  # readings worth telling the user, one line each (not errors)
    # workloads with device_sets: (block label, generated task-definition name) per block, in block order
    device_sets: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # the RegisterTaskDefinition input of each generated task definition, by name (its spec is in task_specs)
    generated_task_definitions: dict[str, dict] = field(default_factory=dict)
    # services with a requests trace: time (s from the first request), input_tokens, output_tokens
    request_traces: dict[str, pd.DataFrame] = field(default_factory=dict)

    def plan(self) -> Plan:
        """The simulation's plan of this scenario (:mod:`scheduler.scenario.compile`)."""
        return compile_plan(self)

    def launch_of(self, workload: RunTaskWorkload | ServiceWorkload) -> Launch:
        return resolve_launch(workload, self.model.cluster)

    def group_of(self, workload: RunTaskWorkload | ServiceWorkload) -> str:
        """The ECS task group: ``service:<name>`` for services; the RunTask ``group`` or
        ``family:<task-definition family>`` for standalone tasks."""
        if isinstance(workload, ServiceWorkload):
            return f"service:{workload.name}"
        if workload.group is not None:
            return workload.group
        return f"family:{self.task_specs[workload.task_definition].family}"


def load_scenario(path: str | Path, *, overrides: Mapping[str, object] | None = None) -> LoadedScenario:
    """Read, override, validate and resolve a scenario file; every problem is a ScenarioError."""
    label = str(path)
    text = _read_text(Path(path), label)
    try:
        data = parse_yaml(text, label)
    except ScenarioError:
        hint = near_miss.scenario_hint(near_miss.recognise_text(text), text)
        if hint is None:
            raise
        raise ScenarioError(hint, file=label) from None
    if data is None:
        raise ScenarioError("the file is empty; a scenario needs at least name, duration, task_definitions, "
                            "cluster and workloads", file=label)
    return scenario_from_mapping(data, path=path, overrides=overrides)


def scenario_from_mapping(data: object, *, path: str | Path,
                          overrides: Mapping[str, object] | None = None) -> LoadedScenario:
    """Validate and resolve already-parsed scenario data; ``path`` names it in errors and is where
    relative file references (task definitions, catalog, traces) are resolved from."""
    label = str(path)
    hint = near_miss.scenario_hint(near_miss.recognise(data), data)  # another kind of document?
    if hint is not None:
        raise ScenarioError(hint, file=label)
    if not isinstance(data, Mapping):
        # text is not quoted: a file that is not a scenario (say /etc/passwd) reads as one line of text
        kind = "a line of text" if isinstance(data, str) else _kind(data)
        raise ScenarioError(f"the top level must be a mapping of scenario fields (name, duration, ...), "
                            f"not {kind}", file=label)
    _check_tree(data, label)
    try:
        if overrides:
            data = apply_overrides(data, overrides, file=label)
            _check_tree(data, label)
        readings: dict[str, list] = {BARE_RATES: []}
        model = Scenario.model_validate(data, context=readings)
    except ValidationError as exc:
        raise _from_validation_error(exc, label) from None
    except RecursionError:
        raise ScenarioError("the document is nested too deeply", file=label) from None
    base = Path(path).parent
    context = _Context(label, base)
    catalog = _scenario_catalog(model, context)
    snapshot = None
    if model.snapshot is not None:
        snapshot = read_snapshot(_snapshot_folder(model.snapshot, context), catalog)
        model = apply_snapshot(model, snapshot)
    _check_cluster(model.cluster, catalog, context, snapshot_instances=len(snapshot.instances) if snapshot else 0)
    _check_faults(model.faults, catalog, context)
    _check_workload_references(model, context)
    documents: dict[str, dict] = {}
    specs, warnings = _load_task_definitions(model, context, documents=documents)
    _check_workloads_against_specs(model, specs, context)
    _check_desired_count_steps(model, context)
    device_sets, set_notices = resolve_device_sets(model, specs, documents, catalog, context)
    traces = _load_traces(model, context)
    notices = (_bare_rate_notice(readings[BARE_RATES], label) + tuple(f"{label}: {w}" for w in warnings)
               + tuple(set_notices))
    generated = {name: documents[name] for blocks in device_sets.values() for _, name in blocks}
    return LoadedScenario(model, Path(path).resolve(), catalog, specs, traces, snapshot, notices,
                          device_sets=device_sets, generated_task_definitions=generated,
                          request_traces=_load_request_traces(model, context))

def _snapshot_folder(value: str, context: _Context) -> Path:
    folder = context.base / value
    try:
        found = folder.is_dir()
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise context.error("snapshot", f"cannot use {show_value(value)} as a folder: {reason}") from None
    if not found:
        raise context.error("snapshot", f"not a folder: {show_value(value)} (a folder of `aws ecs describe-...` "
                            "outputs, relative to the scenario)")
    return folder


def _bare_rate_notice(bare: list[tuple[str | None, object]], label: str) -> tuple[str, ...]:
    """One line when rates were given as bare numbers, which mean events per second (``rate: 10`` is
    36,000 an hour): the first such field and how to say the unit."""
    if not bare:
        return ()
    name, value = bare[0]
    per_hour = float(value) * 3600  # type: ignore[arg-type]
    more = f" (and {len(bare) - 1} more bare rate{'s' if len(bare) > 2 else ''})" if len(bare) > 1 else ""
    return (f"{label}: {name}: {value} is read as {value} per second ({per_hour:,.0f} per hour); write "
            f"{value}/s to say so, or {value}/m, {value}/h{more}",)


def _check_tree(data: object, label: str) -> None:
    # Before pydantic: it cannot report these without tracebacks of its own on stderr.
    found = first_problem(data)
    if found is not None:
        keys, problem = found
        path = "".join(_path_part(key if isinstance(key, int | str) else show_value(key), first=not i)
                       for i, key in enumerate(keys))
        raise ScenarioError(problem, file=label, path=path or None)
