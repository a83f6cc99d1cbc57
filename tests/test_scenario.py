"""Scenario files and human units: valid scenarios, every kind of bad input, overrides and the schema."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.ecs.taskspec import NeuronMode, Strategy
from scheduler.errors import ScenarioError
from scheduler.scenario import (
    AZ_ATTRIBUTE,
    MAX_FILE_BYTES,
    AutoScalingCapacityProvider,
    DiurnalArrivals,
    EmpiricalDuration,
    ExponentialDuration,
    FixedDuration,
    LoadedScenario,
    LognormalDuration,
    ManagedInstancesCapacityProvider,
    OnceArrivals,
    RunTaskWorkload,
    ServiceWorkload,
    apply_overrides,
    load_scenario,
    scenario_from_mapping,
    scenario_json_schema,
)
from scheduler.units import DURATION_PATTERN, RATE_PATTERN, format_duration, parse_duration, parse_rate

# --- task definitions and scenarios written under tmp_path ----------------------------------------------

INF2_MANUAL = {  # one chip by device path, EC2 (what the ECS Neuron guide shows)
    "family": "bert-inf2",
    "requiresCompatibilities": ["EC2"],
    "containerDefinitions": [{
        "name": "app", "image": "public.ecr.aws/neuron/bert:latest", "cpu": 2048, "memory": 4096,
        "essential": True,
        "linuxParameters": {"devices": [
            {"hostPath": "/dev/neuron0", "containerPath": "/dev/neuron0", "permissions": ["read", "write"]}]},
    }],
}
MANAGED_ALL = {  # every chip of a Managed Instances host
    "family": "llama-mi",
    "requiresCompatibilities": ["MANAGED_INSTANCES"],
    "networkMode": "awsvpc",
    "cpu": "8192",
    "memory": "16384",
    "containerDefinitions": [{
        "name": "app", "image": "public.ecr.aws/neuron/llama:latest", "essential": True,
        "resourceRequirements": [{"type": "NeuronDevice", "value": "ALL"}],
    }],
}
SIDECAR = {
    "family": "logger",
    "containerDefinitions": [{"name": "log", "image": "busybox", "cpu": 256, "memory": 512}],
}


def minimal() -> dict[str, Any]:
    return {
        "name": "minimal",
        "duration": "1h",
        "task_definitions": {"bert": "taskdefs/bert.json"},
        "cluster": {"fleets": [{"instance_type": "inf2.xlarge", "count": 2}]},
        "workloads": [{
            "kind": "run_task", "name": "bert", "task_definition": "bert",
            "arrivals": {"type": "poisson", "rate": "10/h"}, "duration": "15m",
        }],
    }


def full() -> dict[str, Any]:
    return {
        "name": "full",
        "description": "every feature once",
        "seed": 7,
        "duration": "2d",
        "sample_interval": "30s",
        "device_mode": "ecs-blind",
        "catalog": "my-catalog.yaml",
        "catalog_additions": [{"name": "inf2.xlarge", "price_per_hour": 0.5}],
        "task_definitions": {"bert": "taskdefs/bert.json", "llama": "taskdefs/llama.json", "log": SIDECAR},
        "cluster": {
            "name": "neuron-prod",
            "fleets": [
                {"instance_type": "inf2.xlarge", "count": 3, "availability_zones": ["az1", "az2"],
                 "attributes": {"rack": 3, "team": "ml"}, "capacity_provider": "asg-inf2"},
                {"instance_type": "lab1.xlarge", "count": 1, "spot": True},
                {"instance_type": "trn1.32xlarge", "count": 0, "launch_type": "MANAGED_INSTANCES"},
            ],
            "capacity_providers": [
                {"name": "asg-inf2", "type": "EC2_AUTOSCALING",
                 "instance_types": ["inf2.xlarge", "inf2.8xlarge"],
                 "min_size": 1, "max_size": 10, "launch_time": "2m",
                 "managed_scaling": {"status": "ENABLED", "target_capacity": 90,
                                     "instance_warmup_period": "5m"},
                 "managed_termination_protection": "ENABLED"},
                {"name": "mi-neuron", "type": "MANAGED_INSTANCES",
                 "instance_requirements": {"vCpuCount": {"min": 8}, "memoryMiB": {"min": 16384},
                                           "acceleratorManufacturers": ["amazon-web-services"],
                                           "acceleratorNames": ["inferentia2", "trainium"],
                                           "allowedInstanceTypes": ["inf2.*", "trn1.*"]},
                 "scale_in_after": "10m", "max_instances": 20, "spot": True},
            ],
            "default_capacity_provider_strategy": [{"capacity_provider": "asg-inf2", "base": 2}],
            "provisioning_timeout": "20m",
        },
        "workloads": [
            {"kind": "run_task", "name": "steady", "task_definition": "bert",
             "arrivals": {"type": "poisson", "rate": "1200/d"}, "count": 3,
             "duration": {"type": "lognormal", "median": "10m", "sigma": 0.5},
             "placement_strategy": [{"type": "spread", "field": AZ_ATTRIBUTE},
                                    {"type": "binpack", "field": "memory"}],
             "placement_constraints": [
                 {"type": "distinctInstance"},
                 {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ inf2.*"}],
             "group": "batch", "start": "1h", "stop": "1d", "max_calls": 500, "on_no_capacity": "wait"},
            {"kind": "run_task", "name": "ticks", "task_definition": "bert", "launch_type": "EC2",
             "arrivals": {"type": "interval", "every": "5m", "jitter": "30s"},
             "duration": {"type": "exponential", "mean": "2m"}},
            {"kind": "run_task", "name": "daily", "task_definition": "bert",
             "arrivals": {"type": "diurnal", "peak_rate": "60/h", "trough_rate": 0},
             "duration": {"type": "empirical", "values": ["1m", 120, "3m"], "weights": [1, 2, 1]}},
            {"kind": "run_task", "name": "burst", "task_definition": "bert",
             "arrivals": {"type": "once", "at": "10m", "calls": 40}, "duration": 600},
            {"kind": "run_task", "name": "replay", "task_definition": "bert",
             "arrivals": {"type": "trace", "file": "traces/jobs.csv"}},
            {"kind": "service", "name": "llama", "task_definition": "llama",
             "schedule": [{"at": 0, "count": 2}, {"at": "8h", "count": 6}],
             "task_duration": {"type": "fixed", "value": "6h"},
             "capacity_provider_strategy": [{"capacity_provider": "mi-neuron"}]},
            {"kind": "service", "name": "logs", "task_definition": "log", "scheduling_strategy": "DAEMON"},
            {"kind": "service", "name": "web", "task_definition": "log", "desired_count": 4,
             "placement_strategy": [{"type": "random"}], "start": "5m"},
        ],
    }


CATALOG_FILE = [{"name": "lab1.xlarge", "vcpus": 4, "memory_mib": 16384, "chips": 1, "cores_per_chip": 2,
                 "launch_types": "EC2"}]
TRACE = "submit,duration,task_definition\n10,90s,\n0,60,bert\n5.5,2m,log\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A folder with the task definitions, a user catalog and a trace the scenarios refer to."""
    (tmp_path / "taskdefs").mkdir()
    (tmp_path / "taskdefs" / "bert.json").write_text(json.dumps(INF2_MANUAL))
    (tmp_path / "taskdefs" / "llama.json").write_text(json.dumps(MANAGED_ALL))
    (tmp_path / "my-catalog.yaml").write_text(yaml.safe_dump(CATALOG_FILE))
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "jobs.csv").write_text(TRACE)
    return tmp_path


def write(home: Path, content: dict[str, Any] | str | bytes, name: str = "scenario.yaml") -> Path:
    path = home / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


def failure(path: Path, overrides: dict[str, object] | None = None) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, overrides=overrides)
    error = caught.value
    assert error.file == str(path)
    assert "\n" not in str(error)
    return error


# --- units -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    (0, 0.0), (45, 45.0), (2.5, 2.5), ("45s", 45.0), ("90m", 5400.0), ("1h30m", 5400.0), ("7d", 604800.0),
    ("2w", 1209600.0), ("1.5h", 5400.0), ("500ms", 0.5), ("90", 90.0), (" 1 hour 30 minutes ", 5400.0),
    ("1d 6h", 108000.0), ("2 days", 172800.0), ("10 sec", 10.0), (".5m", 30.0),
])
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert re.fullmatch(DURATION_PATTERN, str(text))


@pytest.mark.parametrize(("text", "message"), [
    ("5 parsecs", "unknown unit 'parsecs' in '5 parsecs': expected a duration such as 90s, 15m, 2h or 7d"),
    ("-5s", "must not be negative"),
    ("-5", "must not be negative"),
    (-1, "must not be negative"),
    ("1h30", "expected a duration such as 90s, 15m, 2h or 7d"),
    ("1M", "units are lowercase"),
    ("", "expected a duration"),
    (True, "expected a duration"),
    (None, "expected a duration"),
    ([1], "expected a duration"),
    (float("nan"), "not a finite number"),
    (10**400, "not a finite number"),
    ("9" * 400 + "s", "too large"),
])
def test_bad_durations(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(text)


@pytest.mark.parametrize(("text", "per_second"), [
    ("10/h", 10 / 3600), ("2/m", 2 / 60), ("0.5/s", 0.5), ("1200/d", 1200 / 86400),
    ("10 per hour", 10 / 3600),
    ("3 per 15m", 3 / 900), ("7/1h30m", 7 / 5400), (4, 4.0), (0.25, 0.25), ("0.5", 0.5), ("5 / min", 5 / 60),
])
def test_parse_rate(text: object, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)
    assert re.fullmatch(RATE_PATTERN, str(text))


@pytest.mark.parametrize(("text", "message"), [
    ("-3/h", "must be positive"), ("-2", "must be positive"), (-1, "must be positive"),
    (0, "must be positive"), ("0/h", "must be positive"),
    ("10/5", "needs a unit"), ("10/0s", "positive time span"),
    ("ten per hour", "expected a rate such as 10/h"),
    ("10/parsec", "expected a rate"), (False, "expected a rate"), ("inf", "expected a rate"),
])
def test_bad_rates(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_rate(text)


def test_zero_rate_only_where_allowed() -> None:
    assert parse_rate(0, allow_zero=True) == 0.0
    assert parse_rate("0/h", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="zero or positive"):
        parse_rate("-1/h", allow_zero=True)


@pytest.mark.parametrize(("seconds", "text"), [
    (5400, "1h30m"), (0, "0s"), (0.5, "500ms"), (90, "1m30s"), (86400, "1d"), (604800, "7d"),
    (61.5, "1m1.5s"),
    (3600.25, "1h0.25s"), (-30, "-30s"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_format_then_parse_is_identity_to_the_millisecond(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000, abs=1e-9)


@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none(), st.booleans()))
def test_units_fail_only_with_value_error(value: object) -> None:
    for parse in (parse_duration, parse_rate):
        try:
            result = parse(value)
        except ValueError:
            continue
        assert math.isfinite(result) and result >= 0


# --- valid scenarios -------------------------------------------------------------------------------------

def test_minimal_scenario_and_its_defaults(home: Path) -> None:
    loaded = load_scenario(write(home, minimal()))
    assert isinstance(loaded, LoadedScenario)
    model = loaded.model
    assert (model.seed, model.duration, model.sample_interval) == (0, 3600.0, 60.0)
    assert model.device_mode == "device-aware"
    fleet = model.cluster.fleets[0]
    assert (fleet.launch_type, fleet.availability_zones, fleet.spot) == ("EC2", ["us-east-1a", "us-east-1b",
                                                                             "us-east-1c"], False)
    assert model.cluster.name == "default" and model.cluster.provisioning_timeout == 900.0
    workload = model.workloads[0]
    assert isinstance(workload, RunTaskWorkload)
    assert workload.arrivals.rate == pytest.approx(10 / 3600)
    assert workload.duration == FixedDuration(type="fixed", value=900.0)
    assert (workload.count, workload.start, workload.stop, workload.on_no_capacity) == (1, 0.0, None, "fail")
    assert workload.effective_strategy() == (Strategy("random"),)
    assert loaded.launch_of(workload).launch_type == "EC2"
    assert loaded.group_of(workload) == "family:bert-inf2"
    assert loaded.task_specs["bert"].device_paths == ("/dev/neuron0",)
    assert loaded.path == (home / "scenario.yaml").resolve()
    assert loaded.traces == {}


def test_full_scenario(home: Path) -> None:
    loaded = load_scenario(write(home, full()))
    model = loaded.model
    assert (model.seed, model.duration, model.sample_interval) == (7, 172800.0, 30.0)
    assert model.device_mode == "ecs-blind"
    assert loaded.catalog.get("lab1.xlarge").chips == 1
    assert loaded.catalog.get("inf2.xlarge").price_per_hour == 0.5
    assert loaded.catalog.get("inf2.xlarge").vcpus == 4  # unchanged fields keep the bundled values

    cluster = model.cluster
    assert cluster.fleets[0].attributes == {"rack": "3", "team": "ml"}
    assert cluster.fleets[0].availability_zones == ["az1", "az2"]
    asg, mi = cluster.capacity_providers
    assert isinstance(asg, AutoScalingCapacityProvider) and isinstance(mi, ManagedInstancesCapacityProvider)
    assert (asg.desired_capacity, asg.launch_time, asg.managed_termination_protection) == (1, 120.0, True)
    assert (asg.managed_scaling.target_capacity, asg.managed_scaling.instance_warmup_period) == (90, 300.0)
    scaling = asg.managed_scaling
    assert (scaling.minimum_scaling_step_size, scaling.maximum_scaling_step_size) == (1, 10000)
    assert (mi.scale_in_after, mi.max_instances, mi.spot, mi.launch_time) == (600.0, 20, True, 90.0)
    assert cluster.default_capacity_provider_strategy[0].weight == 1
    assert cluster.provisioning_timeout == 1200.0

    steady, ticks, daily, burst, replay, llama, logs, web = model.workloads
    assert isinstance(steady.duration, LognormalDuration) and steady.duration.median == 600.0
    assert steady.effective_strategy() == (Strategy("spread", AZ_ATTRIBUTE), Strategy("binpack", "memory"))
    assert [c.type for c in steady.runtime_constraints()] == ["distinctInstance", "memberOf"]
    assert (steady.start, steady.stop, steady.max_calls, steady.count) == (3600.0, 86400.0, 500, 3)
    assert loaded.group_of(steady) == "batch"
    assert loaded.launch_of(steady).strategy == tuple(cluster.default_capacity_provider_strategy)
    assert loaded.launch_of(ticks).launch_type == "EC2" and loaded.launch_of(ticks).strategy == ()
    assert (ticks.arrivals.every, ticks.arrivals.jitter) == (300.0, 30.0)
    assert isinstance(ticks.duration, ExponentialDuration) and ticks.duration.mean == 120.0
    assert isinstance(daily.arrivals, DiurnalArrivals) and daily.arrivals.peak_at == 14 * 3600.0
    assert isinstance(daily.duration, EmpiricalDuration) and daily.duration.values == [60.0, 120.0, 180.0]
    assert isinstance(burst.arrivals, OnceArrivals)
    assert (burst.arrivals.at, burst.arrivals.calls) == (600.0, 40)
    assert burst.duration == FixedDuration(type="fixed", value=600.0)
    assert replay.duration is None
    assert isinstance(llama, ServiceWorkload)
    assert llama.desired_count is None and [(s.at, s.count) for s in llama.schedule] == [(0, 2), (28800.0, 6)]
    assert llama.effective_strategy() == (Strategy("spread", AZ_ATTRIBUTE), Strategy("spread", "instanceId"))
    assert loaded.group_of(llama) == "service:llama"
    assert loaded.task_specs["llama"].neuron_mode is NeuronMode.MANAGED
    assert (logs.desired_count, logs.schedule, logs.effective_strategy()) == (None, None, ())
    assert (web.desired_count, web.start, web.effective_strategy()) == (4, 300.0, (Strategy("random"),))

    trace = loaded.traces["replay"]
    assert list(trace.columns) == ["submit", "duration", "task_definition"]
    assert trace["submit"].tolist() == [0.0, 5.5, 10.0]  # sorted by submit time
    assert trace["duration"].tolist() == [60.0, 120.0, 90.0]
    assert trace["task_definition"].tolist() == ["bert", "log", "bert"]  # a blank cell: the workload's own


def test_service_desired_count_defaults_to_one(home: Path) -> None:
    data = minimal()
    data["workloads"] = [{"kind": "service", "name": "svc", "task_definition": "bert"}]
    service = load_scenario(write(home, data)).model.workloads[0]
    assert service.desired_count == 1 and service.schedule is None


def test_workload_duration_replaces_trace_durations(home: Path) -> None:
    (home / "times.csv").write_text("t\n30\n1m\n")
    data = minimal()
    data["workloads"][0]["arrivals"] = {"type": "trace", "file": "times.csv", "time_column": "t"}
    trace = load_scenario(write(home, data)).traces["bert"]
    assert trace["submit"].tolist() == [30.0, 60.0]
    assert trace["duration"].isna().all()
    assert trace["task_definition"].tolist() == ["bert", "bert"]


def test_diurnal_rate_peaks_at_peak_at() -> None:
    arrivals = DiurnalArrivals(type="diurnal", peak_rate="100/h", trough_rate="20/h", peak_at="14h")
    assert arrivals.rate_at(14 * 3600) == pytest.approx(100 / 3600)
    assert arrivals.rate_at(2 * 3600) == pytest.approx(20 / 3600)
    assert arrivals.rate_at(8 * 3600) == pytest.approx(60 / 3600)
    assert arrivals.rate_at(38 * 3600) == pytest.approx(100 / 3600)


def test_cluster_default_strategy_applies_to_workloads_without_launch(home: Path) -> None:
    data = minimal()
    data["cluster"]["capacity_providers"] = [{"name": "asg", "type": "EC2_AUTOSCALING",
                                             "instance_types": ["inf2.xlarge"], "max_size": 4}]
    data["cluster"]["default_capacity_provider_strategy"] = [{"capacity_provider": "asg", "weight": 2}]
    loaded = load_scenario(write(home, data))
    launch = loaded.launch_of(loaded.model.workloads[0])
    assert launch.launch_type is None
    assert [(i.capacity_provider, i.weight) for i in launch.strategy] == [("asg", 2)]


def test_inline_task_definition(home: Path) -> None:
    data = minimal()
    data["task_definitions"]["bert"] = INF2_MANUAL
    assert load_scenario(write(home, data)).task_specs["bert"].family == "bert-inf2"


REPO = Path(__file__).resolve().parent.parent


def test_task_definition_by_absolute_path(home: Path) -> None:
    data = minimal()
    data["task_definitions"]["bert"] = str(REPO / "scenarios" / "taskdefs" / "inf2-chip-0.json")
    spec = load_scenario(write(home, data)).task_specs["bert"]
    assert spec.neuron_mode is NeuronMode.MANUAL and spec.device_paths == ("/dev/neuron0",)


def test_the_example_scenarios_load() -> None:
    examples = sorted((REPO / "scenarios").glob("*.yaml"))
    assert examples
    for path in examples:
        loaded = load_scenario(path)
        generated = {name for blocks in loaded.device_sets.values() for _, name in blocks}  # device_sets'
        assert loaded.model.workloads and set(loaded.task_specs) == set(loaded.model.task_definitions) | generated


DOCS = REPO / "docs" / "scenarios.md"


def test_the_documented_example_loads() -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = re.search(r"## A complete example.*?```yaml\n(.*?)```", text, re.DOTALL)
    assert example is not None
    loaded = scenario_from_mapping(yaml.safe_load(example.group(1)), path=REPO / "scenarios" / "example.yaml")
    assert [w.name for w in loaded.model.workloads] == ["inference", "nightly-batch", "trn1-chip0",
                                                        "managed-llm", "log-router"]
    assert loaded.launch_of(loaded.model.workloads[0]).strategy[0].capacity_provider == "inf2-asg"


def test_every_field_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    schema = scenario_json_schema()
    models = [schema, *schema["$defs"].values()]
    # a field is documented as `name`, or inside a dotted path such as `managed_scaling.status`
    missing = sorted({name for model in models for name in model["properties"]
                      if not re.search(rf"`([a-z_]+\.)?{name}(\.[a-z_]+)?`", text)})
    assert missing == []


# --- bad input: every case names the file and the field path ---------------------------------------------

def _set(data: dict[str, Any], dotted: str, value: object) -> dict[str, Any]:
    return apply_overrides(data, {dotted: value})


BAD_FIELDS = [
    # (dotted path to set, value, expected error path, expected words)
    ("cluster.fleets.0.instance_type", "inf2.xlarg", "cluster.fleets[0].instance_type",
     "unknown instance type 'inf2.xlarg'; did you mean inf2.xlarge"),
    ("cluster.fleets.0.instance_type", "inf1.xlarge", None, None),  # valid on EC2 ...
    ("workloads.0.arrivals.rate", "-3/h", "workloads[0].arrivals.rate", "a rate must be positive"),
    ("workloads.0.arrivals.rate", 0, "workloads[0].arrivals.rate", "a rate must be positive"),
    ("duration", "5 parsecs", "duration", "expected a duration such as 90s, 15m, 2h or 7d"),
    ("sedd", 3, "sedd", "unknown key 'sedd'; did you mean 'seed'?"),
    ("workloads.0.arrivals.rat", 3, "workloads[0].arrivals.rat", "did you mean 'rate'?"),
    ("cluster.fleets.0.cuont", 3, "cluster.fleets[0].cuont", "did you mean 'count'?"),
    ("task_definitions.bert", "missing.json", "task_definitions.bert", "task-definition file not found"),
    ("workloads.0.count", 10**30, "workloads[0].count", "less than or equal to 10"),
    ("workloads.0.count", 11, "workloads[0].count", "less than or equal to 10"),
    ("workloads.0.count", True, "workloads[0].count", "expected a number"),
    ("cluster.fleets.0.count", 10**12, "cluster.fleets[0].count", "less than or equal to 100000"),
    ("cluster.fleets.0.count", -1, "cluster.fleets[0].count", "greater than or equal to 0"),
    ("seed", -1, "seed", "greater than or equal to 0"),
    ("workloads.0.arrivals.type", "poison", "workloads[0].arrivals", "did you mean 'poisson'?"),
    ("workloads.0.kind", "job", "workloads[0]", "unknown 'kind' 'job'"),
    ("workloads.0.duration", "forever", "workloads[0].duration.value", "expected a duration"),
    ("workloads.0.duration", {"type": "lognormal", "median": "1m"}, "workloads[0].duration.sigma",
     "is required"),
    ("workloads.0.task_definition", "berta", "workloads[0].task_definition",
     "unknown task definition 'berta'; did you mean 'bert'?"),
    ("workloads.0.launch_type", "FARGATE", "workloads[0].launch_type", "got 'FARGATE'"),
    ("workloads.0.launch_type", "MANAGED_INSTANCES", "workloads[0].launch_type",
     "task definition 'bert' does not support MANAGED_INSTANCES"),
    ("workloads.0.placement_constraints",
     [{"type": "memberOf", "expression": "attribute:ecs.instance-type =="}],
     "workloads[0].placement_constraints[0].expression", "column 31"),
    ("workloads.0.placement_constraints", [{"type": "memberOf"}],
     "workloads[0].placement_constraints[0].expression", "memberOf needs an expression"),
    ("workloads.0.placement_constraints", [{"type": "distinctInstance", "expression": "x"}],
     "workloads[0].placement_constraints[0].expression", "distinctInstance takes no expression"),
    ("workloads.0.placement_constraints", [{"type": "distinctInstance"}] * 11,
     "workloads[0].placement_constraints", "may have at most 10 entries, got 11"),
    ("workloads.0.placement_strategy", [{"type": "binpack", "field": "disk"}],
     "workloads[0].placement_strategy[0].field", "binpack needs field cpu or memory"),
    ("workloads.0.placement_strategy", [{"type": "spread"}], "workloads[0].placement_strategy[0].field",
     "spread needs field"),
    ("workloads.0.placement_strategy", [{"type": "random", "field": "cpu"}],
     "workloads[0].placement_strategy[0].field", "random takes no field"),
    ("workloads.0.placement_strategy", [{"type": "random"}] * 6, "workloads[0].placement_strategy",
     "may have at most 5 entries, got 6"),
    ("workloads.0.capacity_provider_strategy", [{"capacity_provider": "nope"}],
     "workloads[0].capacity_provider_strategy[0].capacity_provider", "unknown capacity provider 'nope'"),
    ("workloads.0.stop", "0s", "workloads[0].stop", "must be after start"),
    ("workloads.0.group", "", "workloads[0].group", "at least 1 character"),
    ("workloads.0.name", "has space", "workloads[0].name", "letters, digits, hyphens and underscores"),
    ("workloads.0.on_no_capacity", "retry", "workloads[0].on_no_capacity", "'fail' or 'wait'"),
    ("sample_interval", "1ms", "sample_interval", "the limit is 1,000,000"),
    ("device_mode", "aware", "device_mode", "'device-aware', 'ecs-blind' or 'topology-aware'"),
    ("task_definitions", {}, "task_definitions", "needs at least 1 entry, got 0"),
    ("task_definitions.bert", 3, "task_definitions.bert", "task-definition JSON file or an inline"),
    ("workloads", [], "workloads", "needs at least 1 entry, got 0"),
    ("cluster.fleets.0.availability_zones", [], "cluster.fleets[0].availability_zones", "needs at least 1"),
    ("cluster.fleets.0.count", 2.5, "cluster.fleets[0].count", "fractional part (2.5)"),
    ("workloads", "all of them", "workloads", "must be a list"),
    ("cluster", [], "cluster", "must be a mapping of fields, not a list"),
    ("cluster.fleets", [], "cluster", "needs at least one fleet or capacity provider"),
    ("cluster.fleets.0.availability_zones", ["a", "a"], "cluster.fleets[0].availability_zones",
     "listed twice"),
    ("cluster.fleets.0.attributes", {"bad name!": "x"}, 'cluster.fleets[0].attributes["bad name!"]',
     "attribute name"),
    ("cluster.fleets.0.capacity_provider", "asg", "cluster.fleets[0].capacity_provider",
     "unknown capacity provider 'asg'; the cluster has none"),
    ("cluster.name", "my cluster", "cluster.name", "letters, digits, hyphens and underscores"),
    ("catalog", "missing.csv", "catalog", "catalog file not found"),
    ("catalog_additions", [{"name": "x1.big", "vcpus": 4}], "catalog_additions[0]", "memory_mib"),
    ("catalog_additions", [{"name": "inf2.xlarge", "chipz": 4}], "catalog_additions[0]", "unknown field"),
]


@pytest.mark.parametrize(("dotted", "value", "path", "words"), BAD_FIELDS)
def test_bad_field(home: Path, dotted: str, value: object, path: str | None, words: str | None) -> None:
    scenario = write(home, _set(minimal(), dotted, value))
    if path is None:
        load_scenario(scenario)
        return
    error = failure(scenario)
    assert error.path == path
    assert words in error.message


def test_launch_type_the_instance_type_does_not_allow(home: Path) -> None:
    data = _set(minimal(), "cluster.fleets.0.instance_type", "inf1.xlarge")
    error = failure(write(home, _set(data, "cluster.fleets.0.launch_type", "MANAGED_INSTANCES")))
    assert error.path == "cluster.fleets[0].instance_type"
    assert error.message == "inf1.xlarge does not support MANAGED_INSTANCES (it runs on EC2 only)"


def test_several_problems_are_counted_in_one_line(home: Path) -> None:
    data = _set(_set(minimal(), "seed", "x"), "duration", "5 parsecs")
    error = failure(write(home, data))
    assert error.path == "seed" and error.message.endswith("(and 1 more problem)")


def test_broken_task_definition_file(home: Path) -> None:
    broken = copy.deepcopy(INF2_MANUAL)
    broken["containerDefinitions"][0]["cpu"] = "lots"
    (home / "taskdefs" / "broken.json").write_text(json.dumps(broken))
    error = failure(write(home, _set(minimal(), "task_definitions.bert", "taskdefs/broken.json")))
    assert error.path == "task_definitions.bert"
    assert str(home / "taskdefs" / "broken.json") in error.message
    assert "$.containerDefinitions[0].cpu" in error.message
    assert str(error).startswith(f"{home / 'scenario.yaml'}: task_definitions.bert: task definition 'bert'")


def test_task_definition_that_is_not_json(home: Path) -> None:
    (home / "taskdefs" / "junk.json").write_text("{not json")
    error = failure(write(home, _set(minimal(), "task_definitions.bert", "taskdefs/junk.json")))
    assert error.path == "task_definitions.bert" and "not valid JSON" in error.message


def test_too_many_constraints_with_the_task_definition(home: Path) -> None:
    td = copy.deepcopy(INF2_MANUAL)
    td["placementConstraints"] = [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}] * 2
    (home / "taskdefs" / "c.json").write_text(json.dumps(td))
    data = _set(minimal(), "task_definitions.bert", "taskdefs/c.json")
    data = _set(data, "workloads.0.placement_constraints", [{"type": "distinctInstance"}] * 9)
    error = failure(write(home, data))
    assert error.path == "workloads[0].placement_constraints" and "here 2 + 9" in error.message


def test_task_definition_incompatible_with_the_default_launch_type(home: Path) -> None:
    (home / "taskdefs" / "llama.json").write_text(json.dumps(MANAGED_ALL))
    error = failure(write(home, _set(minimal(), "task_definitions.bert", "taskdefs/llama.json")))
    assert error.path == "workloads[0].task_definition"
    assert "does not support EC2" in error.message and "no launch_type" in error.message


def test_launch_type_and_strategy_together(home: Path) -> None:
    data = _set(minimal(), "cluster.capacity_providers", [
        {"name": "asg", "type": "EC2_AUTOSCALING", "instance_types": ["inf2.xlarge"], "max_size": 2}])
    data = _set(data, "workloads.0.launch_type", "EC2")
    data = _set(data, "workloads.0.capacity_provider_strategy", [{"capacity_provider": "asg"}])
    error = failure(write(home, data))
    assert error.path == "workloads[0].capacity_provider_strategy" and "not both" in error.message


@pytest.mark.parametrize(("strategy", "words"), [
    ([{"capacity_provider": "asg", "weight": 0}], "weight above 0"),
    ([{"capacity_provider": "asg", "base": 1}, {"capacity_provider": "asg2", "base": 1}], "at most one"),
    ([{"capacity_provider": "asg"}, {"capacity_provider": "asg"}], "listed twice"),
    ([{"capacity_provider": "asg"}, {"capacity_provider": "mi"}], "one kind of capacity provider"),
    ([{"capacity_provider": "asg", "weight": 1001}], "less than or equal to 1000"),
])
def test_bad_capacity_provider_strategies(home: Path, strategy: list[dict[str, Any]], words: str) -> None:
    data = _set(minimal(), "cluster.capacity_providers", [
        {"name": "asg", "type": "EC2_AUTOSCALING", "instance_types": ["inf2.xlarge"], "max_size": 2},
        {"name": "asg2", "type": "EC2_AUTOSCALING", "instance_types": ["inf2.xlarge"], "max_size": 2},
        {"name": "mi", "type": "MANAGED_INSTANCES"}])
    error = failure(write(home, _set(data, "cluster.default_capacity_provider_strategy", strategy)))
    assert error.path.startswith("cluster.default_capacity_provider_strategy") and words in error.message


@pytest.mark.parametrize(("provider", "path", "words"), [
    ({"max_size": 2, "min_size": 3}, "max_size", "at least min_size (3)"),
    ({"max_size": 2, "desired_capacity": 5}, "desired_capacity", "between min_size (0) and max_size (2)"),
    ({"max_size": 2, "instance_types": ["inf1.xlarge", "inf1.xlarge"]}, "instance_types", "listed twice"),
    ({"max_size": 2, "instance_types": ["trn9.huge"]}, "instance_types[0]", "unknown instance type"),
    ({"max_size": 2, "managed_scaling": {"target_capacity": 0}}, "managed_scaling.target_capacity",
     "greater than or equal to 1"),
    ({"max_size": 2, "managed_scaling": {"minimum_scaling_step_size": 5, "maximum_scaling_step_size": 2}},
     "managed_scaling.maximum_scaling_step_size", "at least minimum_scaling_step_size"),
    ({"max_size": 2, "managed_scaling": {"status": "DISABLED"}, "managed_termination_protection": True},
     "managed_termination_protection", "needs managed_scaling.status ENABLED"),
    ({"max_size": 2, "name": "ecs-mine"}, "name", "may not start with aws, ecs or fargate"),
    ({"max_size": 2, "type": "FARGATE"}, "", "unknown 'type' 'FARGATE'"),
    ({"instance_types": ["inf2.xlarge"]}, "max_size", "is required"),
])
def test_bad_auto_scaling_provider(home: Path, provider: dict[str, Any], path: str, words: str) -> None:
    base = {"name": "asg", "type": "EC2_AUTOSCALING", "instance_types": ["inf2.xlarge"]}
    data = _set(minimal(), "cluster.capacity_providers", [base | provider])
    error = failure(write(home, data))
    assert error.path == f"cluster.capacity_providers[0]{'.' + path if path else ''}".replace(".[", "[")
    assert words in error.message


@pytest.mark.parametrize(("provider", "path", "words"), [
    ({"instance_requirements": {"vCpuCount": {"min": 4}}}, "instance_requirements", "memoryMiB"),
    ({"instance_requirements": {"vCpuCount": {"min": "x"}, "memoryMiB": {"min": 1}}}, "instance_requirements",
     "vCpuCount.min: expected integer"),
    ({"instance_requirements": {"vCpuCount": {"min": 4}, "memoryMiB": {"min": 1},
                                "acceleratorNames": ["tpu"]}},
     "instance_requirements", "'tpu' is not one of"),
    ({"instance_requirements": {"vCpuCount": {"min": 4}, "memoryMiB": {"min": 1},
                                "allowedInstanceTypes": ["inf1.*"]}},
     "instance_requirements.allowedInstanceTypes", "supports Managed Instances"),
    ({"scale_in_after": "2h"}, "scale_in_after", "at most 1h"),
    ({"max_instances": 0}, "max_instances", "greater than or equal to 1"),
])
def test_bad_managed_instances_provider(home: Path, provider: dict[str, Any], path: str, words: str) -> None:
    data = _set(minimal(), "cluster.capacity_providers",
                [{"name": "mi", "type": "MANAGED_INSTANCES"} | provider])
    error = failure(write(home, data))
    assert error.path == f"cluster.capacity_providers[0].{path}" and words in error.message


def test_scale_in_after_can_be_disabled(home: Path) -> None:
    data = _set(minimal(), "cluster.capacity_providers",
                [{"name": "mi", "type": "MANAGED_INSTANCES", "scale_in_after": "disabled"}])
    assert load_scenario(write(home, data)).model.cluster.capacity_providers[0].scale_in_after == -1.0


@pytest.mark.parametrize(("service", "path", "words"), [
    ({"desired_count": 2, "schedule": [{"at": 0, "count": 1}]}, "schedule", "not both"),
    ({"scheduling_strategy": "DAEMON", "desired_count": 2}, "desired_count", "takes no desired_count"),
    ({"scheduling_strategy": "DAEMON", "schedule": [{"at": 0, "count": 1}]}, "schedule", "takes no schedule"),
    ({"scheduling_strategy": "DAEMON", "placement_strategy": [{"type": "random"}]}, "placement_strategy",
     "no placement strategy"),
    ({"schedule": [{"at": "1h", "count": 1}, {"at": "30m", "count": 2}]}, "schedule", "in time order"),
    ({"task_duration": {"type": "exponential", "mean": 0}}, "task_duration.mean", "at least 1ms"),
])
def test_bad_service(home: Path, service: dict[str, Any], path: str, words: str) -> None:
    data = _set(minimal(), "workloads",
                [{"kind": "service", "name": "svc", "task_definition": "bert"} | service])
    error = failure(write(home, data))
    assert error.path == f"workloads[0].{path}" and words in error.message


@pytest.mark.parametrize(("arrivals", "path", "words"), [
    ({"type": "interval", "every": 0}, "every", "at least 1ms"),
    ({"type": "diurnal", "peak_rate": "1/h", "trough_rate": "2/h"}, "trough_rate",
     "must not exceed peak_rate"),
    ({"type": "once", "calls": 0}, "calls", "greater than or equal to 1"),
    ({"type": "poisson"}, "rate", "is required"),
])
def test_bad_arrivals(home: Path, arrivals: dict[str, Any], path: str, words: str) -> None:
    error = failure(write(home, _set(minimal(), "workloads.0.arrivals", arrivals)))
    assert error.path == f"workloads[0].arrivals.{path}" and words in error.message


def test_name_is_one_line(home: Path) -> None:
    data = minimal()
    data["name"] = "two\nlines"
    error = failure(write(home, data))
    assert error.path == "name" and "single line" in error.message


def test_duplicate_workload_names(home: Path) -> None:
    data = minimal()
    data["workloads"].append(copy.deepcopy(data["workloads"][0]))
    error = failure(write(home, data))
    assert error.path == "workloads[1].name" and "already used by workloads[0]" in error.message


def test_empirical_weights_must_match(home: Path) -> None:
    data = _set(minimal(), "workloads.0.duration",
                {"type": "empirical", "values": ["1m", "2m"], "weights": [1]})
    error = failure(write(home, data))
    assert error.path == "workloads[0].duration.weights" and "2 values, 1 weights" in error.message


def test_duration_is_required_without_a_trace(home: Path) -> None:
    data = minimal()
    del data["workloads"][0]["duration"]
    error = failure(write(home, data))
    assert error.path == "workloads[0].duration" and "is required" in error.message


# --- traces ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("csv", "path", "words"), [
    ("submit,duration\n-1,60\n", "file", "line 2: column 'submit': a duration must not be negative"),
    ("submit,duration\n5,soon\n", "file", "line 2: column 'duration': expected a duration"),
    ("submit,duration\n5,\n", "file", "line 2: column 'duration': is empty"),
    ("submit,duration,task_definition\n5,60,gpt\n", "file", "unknown task definition 'gpt'"),
    ("time,duration\n5,60\n", "time_column", "has no column 'submit' (columns: time, duration)"),
    ("submit\n5\n", "duration_column", "has no column 'duration'"),
    ("submit,duration\n", "file", "has no rows"),
    ("", "file", "cannot read the CSV"),
])
def test_bad_traces(home: Path, csv: str, path: str, words: str) -> None:
    (home / "bad.csv").write_text(csv)
    data = minimal()
    del data["workloads"][0]["duration"]
    data["workloads"][0]["arrivals"] = {"type": "trace", "file": "bad.csv"}
    error = failure(write(home, data))
    assert error.path == f"workloads[0].arrivals.{path}" and words in error.message


@pytest.mark.parametrize("where", ["catalog", "task_definition", "trace"])
def test_file_names_with_a_nul_byte(home: Path, where: str) -> None:
    data = minimal()
    if where == "catalog":
        data["catalog"] = "my\x00catalog.yaml"
    elif where == "task_definition":
        data["task_definitions"]["bert"] = "bert\x00.json"
    else:
        data["workloads"][0]["arrivals"] = {"type": "trace", "file": "jobs\x00.csv"}
    with pytest.raises(ScenarioError) as caught:
        scenario_from_mapping(data, path=home / "s.yaml")
    assert "not found: " in caught.value.message and "\\x00" in caught.value.message


def test_missing_and_non_utf8_traces(home: Path) -> None:
    data = minimal()
    data["workloads"][0]["arrivals"] = {"type": "trace", "file": "nope.csv"}
    assert "trace file not found" in failure(write(home, data)).message
    (home / "latin.csv").write_bytes(b"submit,duration\n5,60\n\xe9,1\n")
    data["workloads"][0]["arrivals"]["file"] = "latin.csv"
    assert "not UTF-8" in failure(write(home, data)).message


# --- the YAML itself -------------------------------------------------------------------------------------

BOMB = "\n".join([
    'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
    *(f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]" for a, b in zip("abcde", "bcdef", strict=True)),
    "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]",
])


@pytest.mark.parametrize(("text", "path", "words"), [
    ("name: x\nduration: [1h\n", "line 3, column 1", "not valid YAML"),
    ("name: x\n  bad: indent\n", "line 2, column 6", "not valid YAML: mapping values are not allowed"),
    ("name: x\nname: y\n", "line 2, column 1", "duplicate key 'name'"),
    ("name: x\n---\nname: y\n", "line 2, column 1", "more than one YAML document"),
    (BOMB, None, "more than 100,000 values once aliases are expanded"),
    ("a: &a [1, *a]\n", "line 1, column 11", "refers to a collection that contains it"),
    ("a: *nothing\n", "line 1, column 4", "has no anchor"),
    ("x: " + "[" * 5000 + "]" * 5000, None, "depth"),
    ("".join(" " * i + "a:\n" for i in range(100)), "line 65, column 65", "nested more than 64 levels"),
    ("name: x\nseed: " + "9" * 5000 + "\n", None, "not valid YAML"),
    ("name: x\nduration: 2001-13-45\n", None, "not valid YAML"),
    ("a: !!python/object/apply:os.system ['true']\n", "line 1, column 4",
     "could not determine a constructor"),
    ("name: x\x00\n", None, "not valid YAML"),
    ("", None, "the file is empty"),
    ("# only a comment\n", None, "the file is empty"),
    ("- 1\n- 2\n", None, "top level must be a mapping"),
    ("just text\n", None, "top level must be a mapping"),
])
def test_bad_yaml(home: Path, text: str, path: str | None, words: str) -> None:
    error = failure(write(home, text))
    if path is not None:
        assert error.path == path
    assert words in error.message


def test_non_utf8_bytes(home: Path) -> None:
    error = failure(write(home, b"name: caf\xe9\n"))
    assert error.path == "line 1, column 10" and "not UTF-8" in error.message


def test_file_too_large(home: Path) -> None:
    path = home / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    assert "may be at most" in failure(path).message


def test_missing_file_and_directory(home: Path) -> None:
    assert failure(home / "nope.yaml").message == "scenario file not found"
    assert "directory" in failure(home / "taskdefs").message
    with pytest.raises(ScenarioError, match="null byte"):
        load_scenario(home / "nul\x00.yaml")


def test_aliases_are_fine_below_the_limit(home: Path) -> None:
    text = yaml.safe_dump(minimal(), sort_keys=False).replace(
        "fleets:\n  - instance_type: inf2.xlarge\n    count: 2\n",
        "fleets:\n  - &f {instance_type: inf2.xlarge, count: 2}\n  - *f\n")
    loaded = load_scenario(write(home, text))
    assert [f.count for f in loaded.model.cluster.fleets] == [2, 2]


# --- overrides -------------------------------------------------------------------------------------------

def test_overrides(home: Path) -> None:
    path = write(home, full())
    loaded = load_scenario(path, overrides={
        "seed": 3, "cluster.fleets.0.count": "4", "workloads.0.arrivals.rate": "20/h",
        "workloads[1].arrivals.every": "10m", "cluster.capacity_providers[1].max_instances": 5,
        "workloads.7.placement_strategy": "[{type: binpack, field: cpu}]", "description": "",
        "cluster.fleets.1.attributes.zone": "blue",
    })
    model = loaded.model
    assert model.seed == 3 and model.cluster.fleets[0].count == 4
    assert model.workloads[0].arrivals.rate == pytest.approx(20 / 3600)
    assert model.workloads[1].arrivals.every == 600.0
    assert model.cluster.capacity_providers[1].max_instances == 5
    assert model.workloads[7].effective_strategy() == (Strategy("binpack", "cpu"),)
    assert model.description == ""
    assert model.cluster.fleets[1].attributes == {"zone": "blue"}


def test_overrides_do_not_touch_the_input_or_shared_aliases() -> None:
    shared = {"instance_type": "inf2.xlarge", "count": 2}
    data = {"cluster": {"fleets": [shared, shared]}}
    result = apply_overrides(data, {"cluster.fleets.0.count": "5"})
    assert [f["count"] for f in result["cluster"]["fleets"]] == [5, 2]
    assert shared["count"] == 2


@pytest.mark.parametrize(("key", "value", "words"), [
    ("cluster.fleets.3.count", 1, "has 1 entry"),
    ("cluster.fleets.first.count", 1, "must be an index"),
    ("name.first", 1, "is the text 'minimal', not a mapping or list"),
    ("seed.", 1, "ends with a dot"),
    ("", 1, "needs a dotted field path"),
    ("cluster..fleets", 1, "cannot read the override path"),
    ("seed", "[1, 2", "not valid YAML"),
])
def test_bad_overrides(home: Path, key: str, value: object, words: str) -> None:
    error = failure(write(home, minimal()), overrides={key: value})
    assert words in error.message


def test_override_value_errors_point_at_the_field(home: Path) -> None:
    error = failure(write(home, minimal()), overrides={"workloads.0.arrivals.rate": "-5/h"})
    assert error.path == "workloads[0].arrivals.rate"


# --- the JSON Schema -------------------------------------------------------------------------------------

def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _patterns(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


def test_schema_structure() -> None:
    schema = scenario_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "neuron-sim scenario" and schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "duration", "task_definitions", "cluster", "workloads"}
    optional = {"seed", "sample_interval", "device_mode", "catalog", "catalog_additions"}
    assert optional <= set(schema["properties"])
    definitions = schema["$defs"]
    refs = _refs(schema)
    assert refs and all(r.startswith("#/$defs/") and r.removeprefix("#/$defs/") in definitions for r in refs)
    workloads = schema["properties"]["workloads"]["items"]
    assert workloads["discriminator"]["propertyName"] == "kind"
    assert set(workloads["discriminator"]["mapping"]) == {"run_task", "service"}
    for model in definitions.values():
        assert model["type"] == "object" and model["additionalProperties"] is False
    for pattern in _patterns(schema):
        re.compile(pattern)
    assert json.loads(json.dumps(schema)) == schema


def test_schema_patterns_agree_with_the_parsers() -> None:
    for good in ("90s", "1h30m", "7d", "500ms"):
        assert re.fullmatch(DURATION_PATTERN, good)
    for bad in ("5 parsecs", "-5s", "1h30"):
        assert not re.fullmatch(DURATION_PATTERN, bad)
    assert not re.fullmatch(RATE_PATTERN, "ten per hour")


# --- anything in, a LoadedScenario or a ScenarioError out ------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                     st.sampled_from(["1h", "10/h", "inf2.xlarge", "bert", "run_task", "service", "poisson",
                                      "EC2", "MANAGED_INSTANCES", "taskdefs/bert.json", "-1", "1e999"]))
_trees = st.recursive(_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=4)), max_leaves=20)
_keys = st.sampled_from(["name", "seed", "duration", "sample_interval", "device_mode", "catalog",
                         "catalog_additions", "task_definitions", "cluster", "workloads", "description"])


def _leaves(node: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*prefix, str(k)))] or [prefix]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*prefix, str(i)))] or [prefix]
    return [prefix]


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.one_of(_trees, st.dictionaries(_keys, _trees, max_size=8)))
def test_random_mappings_load_or_fail_cleanly(home: Path, data: object) -> None:
    try:
        assert isinstance(scenario_from_mapping(data, path=home / "fuzz.yaml"), LoadedScenario)
    except ScenarioError as error:
        assert "\n" not in str(error)


@FUZZ
@given(st.text(max_size=200))
def test_random_text_loads_or_fails_cleanly(home: Path, text: str) -> None:
    try:
        load_scenario(write(home, text, "fuzz.yaml"))
    except ScenarioError as error:
        assert error.file == str(home / "fuzz.yaml")


@FUZZ
@given(st.data())
def test_changing_any_field_of_a_valid_scenario_loads_or_fails_cleanly(home: Path,
                                                                        data: st.DataObject) -> None:
    scenario = full()
    leaf = data.draw(st.sampled_from(_leaves(scenario)))
    value = data.draw(_trees)
    try:
        loaded = scenario_from_mapping(scenario, path=home / "s.yaml", overrides={".".join(leaf): value})
    except ScenarioError as error:
        assert error.file == str(home / "s.yaml") and "\n" not in str(error)
    else:
        assert np.isfinite(loaded.model.duration)
