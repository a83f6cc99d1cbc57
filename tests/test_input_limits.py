"""Limits on input that used to crash or hang a run: each test holds the one-file reproducer of a defect
found by an outside attack (service back-off overflow, device numbers, weights, the shortest time step,
DAEMON retries, special files, sweep size, Dask addresses, lone surrogates, duplicate JSON keys, prices,
YAML 1.1 numbers, echoed file content)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fuzz_strategies import run_cli
from hypothesis import given
from hypothesis import strategies as st

from scheduler.catalog.catalog import MAX_CHIPS, MAX_PRICE_PER_HOUR, load_catalog
from scheduler.ecs.taskdef import MAX_FILE_BYTES as MAX_TASKDEF_BYTES
from scheduler.ecs.taskdef import read_task_definition, validate_task_definition
from scheduler.errors import CatalogError, ScenarioError
from scheduler.files import UnreadableFile, read_bounded
from scheduler.scenario import load_scenario, scenario_from_mapping
from scheduler.scenario.limits import MAX_RATE, MIN_STEP_S
from scheduler.sim.engine import Simulation
from scheduler.sim.services import SERVICE_BACKOFF_MAX_S, service_backoff
from scheduler.sweep import MAX_RUNS

ROOT = Path(__file__).resolve().parents[1]
TASKDEFS = ROOT / "scenarios" / "taskdefs"
SIDECAR = TASKDEFS / "cpu-sidecar.json"


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def one_job(every: str = "1m", duration: str = "1s", extra: str = "") -> str:
    return f"""
name: limits
duration: 1h
task_definitions: {{side: {SIDECAR}}}
cluster: {{fleets: [{{instance_type: m6i.4xlarge, count: 1}}]}}
workloads:
  - {{name: j, kind: run_task, task_definition: side, arrivals: {{type: interval, every: {every}}},
      duration: {duration}}}
{extra}"""


# --- item 2: the service back-off ------------------------------------------------------------------------

@given(st.integers(0, 10**6))
def test_the_service_back_off_doubles_up_to_fifteen_minutes_for_any_number_of_failed_starts(failed: int) -> None:
    delay = service_backoff(failed)
    assert 0.0 <= delay <= SERVICE_BACKOFF_MAX_S
    assert service_backoff(failed + 1) >= delay
    if failed >= 100:
        assert delay == SERVICE_BACKOFF_MAX_S


def test_a_service_that_wants_more_than_its_group_can_hold_runs_to_the_end(tmp_path: Path) -> None:
    # desired 30 on a group of at most one instance: past 1,025 failed starts, 2 ** n overflowed a float
    text = f"""
name: backoff
duration: 2d
task_definitions: {{chip: {TASKDEFS / "inf2-chip-0.json"}}}
cluster:
  capacity_providers:
    - {{name: asg, type: EC2_AUTOSCALING, instance_types: [inf2.xlarge], min_size: 1, max_size: 1,
        desired_capacity: 1}}
  default_capacity_provider_strategy: [{{capacity_provider: asg, weight: 1}}]
workloads:
  - {{name: s, kind: service, task_definition: chip, desired_count: 30}}
"""
    sim = Simulation(load_scenario(write(tmp_path, text)))
    res = sim.run()
    (svc,) = sim.services
    assert svc.failed_starts > 1100
    assert res.summary.sim_seconds == 2 * 86400 and not res.summary.partial
    assert sim.conservation_ok()
    assert svc.backoff_until - res.summary.sim_seconds <= SERVICE_BACKOFF_MAX_S


# --- item 3: device numbers ------------------------------------------------------------------------------

def _chip_taskdef(path: str) -> dict:
    doc = json.loads((TASKDEFS / "trn1-chip-00.json").read_text())
    device = doc["containerDefinitions"][0]["linuxParameters"]["devices"][0]
    device["hostPath"] = device["containerPath"] = path
    return doc


@pytest.mark.parametrize("number", [str(MAX_CHIPS), "64", "99999999999", "9" * 5000])
def test_a_device_number_beyond_the_catalog_is_one_clear_error(number: str) -> None:
    validation = validate_task_definition(_chip_taskdef(f"/dev/neuron{number}"))
    (issue,) = validation.errors
    assert issue.rule == "neuron-device-beyond-catalog"
    assert issue.path == "$.containerDefinitions[0].linuxParameters.devices[0].hostPath"
    assert f"at most {MAX_CHIPS} Neuron devices" in issue.message and len(issue.message) < 300


def test_the_last_device_the_catalog_allows_is_valid() -> None:
    validation = validate_task_definition(_chip_taskdef(f"/dev/neuron{MAX_CHIPS - 1}"))
    assert validation.valid and validation.spec is not None and validation.spec.chips == (MAX_CHIPS - 1,)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_validate_and_run_refuse_dev_neuron_64_with_exit_2(tmp_path: Path, command: str) -> None:
    taskdef = tmp_path / "td.json"
    taskdef.write_text(json.dumps(_chip_taskdef("/dev/neuron64")))
    if command == "validate":
        argv = ["validate", str(taskdef)]
    else:
        scenario = write(tmp_path, f"""
name: dev64
duration: 1h
task_definitions: {{chip: {taskdef}}}
cluster: {{fleets: [{{instance_type: trn1.32xlarge, count: 1}}]}}
workloads: [{{name: s, kind: service, task_definition: chip, desired_count: 1}}]
""")
        argv = ["run", str(scenario), "--out", str(tmp_path / "out"), "--no-report"]
    result = run_cli(argv)
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "/dev/neuron64" in result.stderr and "beyond every instance type" in result.stderr


# --- item 4: empirical weights ---------------------------------------------------------------------------

def test_empirical_weights_whose_sum_overflows_are_read_as_their_ratios(tmp_path: Path) -> None:
    text = one_job(every="10s", duration="{type: empirical, values: [1m, 2m], weights: [1.0e+308, 1.0e+308]}")
    res = Simulation(load_scenario(write(tmp_path, text))).run()
    ran = res.tasks.dropna(subset=["end"])
    lengths = (ran["end"] - ran["start"]).round()
    assert set(lengths) == {60.0, 120.0}  # both values drawn: the weights are equal


def test_empirical_weights_must_not_all_be_zero(tmp_path: Path) -> None:
    text = one_job(duration="{type: empirical, values: [1m, 2m], weights: [0, 0]}")
    with pytest.raises(ScenarioError, match="at least one weight must be above 0"):
        load_scenario(write(tmp_path, text))


# --- item 5: the shortest time step ----------------------------------------------------------------------

STEP_CASES = [
    ("interval", one_job(every="1.0e-12"), "workloads[0].arrivals.every"),
    ("interval zero", one_job(every="0"), "workloads[0].arrivals.every"),
    ("task duration", one_job(duration="0.5ms"), "workloads[0].duration.value"),
    ("empirical zero", one_job(duration="{type: empirical, values: [0]}"), "workloads[0].duration.values[0]"),
    ("exponential", one_job(duration="{type: exponential, mean: 1.0e-9}"), "workloads[0].duration.mean"),
    ("poisson", one_job().replace("{type: interval, every: 1m}", "{type: poisson, rate: 1001/s}"),
     "workloads[0].arrivals.rate"),
    ("diurnal", one_job().replace("{type: interval, every: 1m}",
                                  "{type: diurnal, peak_rate: 1.0e+12, trough_rate: 0}"),
     "workloads[0].arrivals.peak_rate"),
    ("service", one_job(extra="  - {name: s, kind: service, task_definition: side, desired_count: 1, "
                              "task_duration: 1.0e-12}"), "workloads[1].task_duration.value"),
    ("mtbf", one_job(extra="faults: {agent_disconnects: [{mtbf: 1.0e-12, duration: 1.0e-12}]}"),
     "faults.agent_disconnects[0].mtbf"),
    ("spot rate", one_job(extra="faults: {spot_interruptions: {rate: 5000/s}}"), "faults.spot_interruptions.rate"),
]


@pytest.mark.parametrize(("case", "text", "field"), STEP_CASES, ids=[c[0] for c in STEP_CASES])
def test_events_closer_than_the_shortest_step_are_refused(tmp_path: Path, case: str, text: str,
                                                          field: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert caught.value.path == field
    assert ("at least 1ms" in caught.value.message or f"at most {MAX_RATE:g}/s" in caught.value.message
            or "greater than 0" in caught.value.message)


def test_the_shortest_step_itself_is_accepted_and_runs(tmp_path: Path) -> None:
    assert MIN_STEP_S == 0.001 and MAX_RATE == 1000
    text = one_job(every="1ms", duration="1ms").replace("duration: 1h", "duration: 1s")
    res = Simulation(load_scenario(write(tmp_path, text))).run()
    assert res.summary.tasks.submitted == 1000


# --- item 6: a DAEMON service whose task fits no instance ------------------------------------------------

def _daemon_scenario(instances: int) -> str:
    return f"""
name: daemon
duration: 6h
task_definitions:
  side: {SIDECAR}
  big: {{family: big, requiresCompatibilities: [EC2], containerDefinitions: [{{name: c, image: x, cpu: 256,
        memory: 600000}}]}}
cluster: {{fleets: [{{instance_type: m6i.4xlarge, count: {instances}}}]}}
workloads:
  - {{name: d, kind: service, scheduling_strategy: DAEMON, task_definition: big}}
  - {{name: j, kind: run_task, task_definition: side, arrivals: {{type: poisson, rate: 1/m}},
      duration: {{type: exponential, mean: 10m}}}}
"""


@pytest.mark.parametrize("instances", [10, 40])
def test_a_daemon_that_fits_nowhere_is_retried_per_change_on_its_instance(tmp_path: Path, instances: int) -> None:
    sim = Simulation(load_scenario(write(tmp_path, _daemon_scenario(instances))))
    attempts = {"daemon": 0}
    place = sim.placer.place

    def counting(spec: object, **kwargs: object) -> object:
        if kwargs.get("only") is not None:
            attempts["daemon"] += 1
        return place(spec, **kwargs)

    sim.placer.place = counting  # type: ignore[method-assign]
    res = sim.run()
    ended = int(res.tasks["end"].notna().sum())
    # one first try per instance, then one per task that left an instance (it freed room there), never
    # one per instance on every change anywhere in the cluster
    assert attempts["daemon"] <= instances + ended
    daemon = res.tasks[res.tasks["workload"] == "d"]
    assert len(daemon) == instances and (daemon["final_state"] == "PROVISIONING").all()
    assert sim.conservation_ok()


def test_a_waiting_daemon_starts_when_its_own_instance_frees_room(tmp_path: Path) -> None:
    text = f"""
name: daemon-waits
duration: 2h
task_definitions:
  big: {{family: big, requiresCompatibilities: [EC2], containerDefinitions: [{{name: c, image: x, cpu: 256,
        memory: 40000}}]}}
  side: {SIDECAR}
cluster: {{fleets: [{{instance_type: m6i.4xlarge, count: 2}}]}}
workloads:
  - {{name: hog, kind: run_task, task_definition: big, count: 2, arrivals: {{type: once, at: 0}},
      duration: 30m, placement_constraints: [{{type: distinctInstance}}]}}
  - {{name: d, kind: service, scheduling_strategy: DAEMON, task_definition: big, start: 1m}}
"""
    res = Simulation(load_scenario(write(tmp_path, text))).run()
    daemon = res.tasks[res.tasks["workload"] == "d"]
    assert len(daemon) == 2 and (daemon["final_state"] == "RUNNING").all()
    assert (daemon["start"] == 1800).all()  # when the hog on each instance exited, not before, not later


# --- item 7: special files and size limits ---------------------------------------------------------------

def test_read_bounded_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="is a directory"):
        read_bounded(tmp_path, 10)
    with pytest.raises(UnreadableFile, match="is a character device"):
        read_bounded("/dev/null", 10)
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "missing", 10)
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * 10)
    assert read_bounded(exact, 10) == b"x" * 10
    with pytest.raises(UnreadableFile, match="11 bytes; it may be at most 10"):
        exact.write_bytes(b"x" * 11)
        read_bounded(exact, 10)


def test_a_task_definition_file_over_its_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * (MAX_TASKDEF_BYTES + 1))
    (issue,) = read_task_definition(path).errors
    assert issue.rule == "unreadable-file" and f"{MAX_TASKDEF_BYTES:,}" in issue.message


# FIFOs and endless devices need a separate process: a regression would block or fill the memory there,
# and the timeout turns it into a failure.
SPECIAL_FILE_CASES = {
    "scenario": lambda special, folder: ["run", str(special), "--out", str(folder / "out"), "--no-report"],
    "task definition": lambda special, folder: ["validate", str(special)],
    "catalog": lambda special, folder: ["catalog", "--catalog", str(special)],
    "trace": lambda special, folder: ["run", str(write(folder, f"""
name: trace
duration: 1h
task_definitions: {{side: {SIDECAR}}}
cluster: {{fleets: [{{instance_type: m6i.4xlarge, count: 1}}]}}
workloads:
  - {{name: j, kind: run_task, task_definition: side, arrivals: {{type: trace, file: {special}}}, duration: 1m}}
""")), "--out", str(folder / "out"), "--no-report"],
}


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
@pytest.mark.parametrize("role", sorted(SPECIAL_FILE_CASES))
def test_a_fifo_or_an_endless_device_is_refused_at_once(tmp_path: Path, role: str, special: str) -> None:
    if special == "fifo":
        path = tmp_path / ("input.csv" if role == "catalog" else "input")
        os.mkfifo(path)
    else:
        path = Path(special)
    argv = SPECIAL_FILE_CASES[role](path, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "scheduler", *argv], capture_output=True, text=True,
                          timeout=120, check=False, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.splitlines()[0]  # validate adds a verdict line
    assert "not a regular file" in line and "Traceback" not in proc.stderr


# --- item 8: sweep size, Dask address, lone surrogates -------------------------------------------------

def test_a_sweep_of_a_billion_runs_is_refused_before_any_run(tmp_path: Path) -> None:
    result = run_cli(["sweep", str(ROOT / "scenarios" / "mixed-cluster.yaml"), "--replications", "1000000000",
                      "--out", str(tmp_path / "sweep")])
    assert result.code == 2 and "--replications" in result.stderr and f"{MAX_RUNS:,}" in result.stderr
    assert not (tmp_path / "sweep").exists()


def test_a_grid_times_replications_over_the_limit_is_refused(tmp_path: Path) -> None:
    values = ",".join(str(n) for n in range(1, 101))
    result = run_cli(["sweep", str(ROOT / "scenarios" / "mixed-cluster.yaml"), "--set", f"seed={values}",
                      "--replications", str(MAX_RUNS // 100 + 1), "--out", str(tmp_path / "sweep")])
    assert result.code == 2 and "runs (grid points x --replications)" in result.stderr


@pytest.mark.parametrize("address", ["tcp://:::", "tcp://host:notaport", "foo://bar"])
def test_a_malformed_scheduler_address_is_one_line(tmp_path: Path, address: str) -> None:
    result = run_cli(["sweep", str(ROOT / "scenarios" / "mixed-cluster.yaml"), "--executor", "dask",
                      "--scheduler", address, "--until", "10m", "--out", str(tmp_path / "sweep")])
    assert result.code == 2
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("neuron-sim: --scheduler: not a Dask scheduler address") and "Traceback" not in line


def test_a_family_with_a_lone_surrogate_is_refused_and_printable(tmp_path: Path) -> None:
    doc = json.loads(SIDECAR.read_text())
    path = tmp_path / "td.json"
    path.write_text(json.dumps({**doc, "family": "log\ud800router"}))  # json.dumps writes the escape \ud800
    (issue,) = read_task_definition(path).errors
    assert (issue.rule, issue.path) == ("not-unicode", "$.family")
    result = run_cli(["validate", str(path)])
    assert result.code == 2 and "lone UTF-16 surrogate" in result.stderr
    result.stderr.encode("utf-8")  # printable on any UTF-8 terminal


def test_scenario_data_with_a_lone_surrogate_is_refused_at_its_path(tmp_path: Path) -> None:
    # YAML (and so an override) refuses the escape itself; data handed to the Python API can hold one
    data = yaml.safe_load(one_job())
    data["workloads"][0]["name"] = "j\ud800"
    with pytest.raises(ScenarioError, match="lone UTF-16 surrogate") as caught:
        scenario_from_mapping(data, path=tmp_path / "s.yaml")
    assert caught.value.path == "workloads[0].name"


# --- "Also": echoed content, duplicate keys, prices, YAML 1.1 --------------------------------------------

SECRET = "root:x:0:0:secret-line:/root:/bin/bash"


def test_a_trace_that_is_some_other_file_is_not_echoed(tmp_path: Path) -> None:
    other = tmp_path / "passwd"
    other.write_text(f"{SECRET}\nline two\n")
    text = one_job().replace("{type: interval, every: 1m}", f"{{type: trace, file: {other}}}")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert "has no column 'submit'" in str(caught.value) and "secret" not in str(caught.value)


def test_a_trace_with_named_columns_still_lists_them(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("time,duration\n5,60\n")
    text = one_job().replace("{type: interval, every: 1m}", f"{{type: trace, file: {trace}}}")
    with pytest.raises(ScenarioError, match=r"\(columns: time, duration\)"):
        load_scenario(write(tmp_path, text))


def test_a_scenario_that_is_some_other_file_is_not_echoed(tmp_path: Path) -> None:
    other = tmp_path / "passwd"
    other.write_text(f"{SECRET}\n")
    with pytest.raises(ScenarioError, match="not a line of text") as caught:
        load_scenario(other)
    assert "secret" not in str(caught.value)


def test_a_catalog_that_is_some_other_file_is_not_echoed(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text(f"{SECRET}\nline two\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(other)
    assert "not a field name" in str(caught.value) and "secret" not in str(caught.value)


def test_duplicate_json_keys_in_a_task_definition_warn_at_their_path(tmp_path: Path) -> None:
    text = SIDECAR.read_text().replace('"cpu": 256,', '"cpu": 512, "cpu": 256,')
    path = tmp_path / "td.json"
    path.write_text(text)
    validation = read_task_definition(path)
    assert validation.valid and validation.spec is not None and validation.spec.containers[0].cpu == 256
    assert [(w.rule, w.path) for w in validation.warnings] == [("duplicate-key", "$.containerDefinitions[0].cpu")]


def test_a_price_that_would_make_cost_infinite_is_refused(tmp_path: Path) -> None:
    extra = "catalog_additions: [{name: m6i.4xlarge, price_per_hour: 1.0e+308}]"
    with pytest.raises(ScenarioError, match="price_per_hour: must be at most") as caught:
        load_scenario(write(tmp_path, one_job(extra=extra)))
    assert caught.value.path == "catalog_additions[0]"
    top = one_job(extra=f"catalog_additions: [{{name: m6i.4xlarge, price_per_hour: {MAX_PRICE_PER_HOUR}}}]")
    res = Simulation(load_scenario(write(tmp_path, top))).run()
    assert res.summary.costs.usd == pytest.approx(MAX_PRICE_PER_HOUR)  # one instance for one hour


@pytest.mark.parametrize(("raw", "reads"), [("1:30", "90"), ("010", "8"), ("1:30:00", "5400")])
def test_a_yaml_1_1_number_that_does_not_look_like_itself_is_refused(tmp_path: Path, raw: str, reads: str) -> None:
    text = one_job().replace("count: 1}", f"count: {raw}}}")
    with pytest.raises(ScenarioError, match=f"reads as {reads}") as caught:
        load_scenario(write(tmp_path, text))
    assert caught.value.path is not None and caught.value.path.startswith("line 5,")  # the fleet line
    quoted = one_job().replace("count: 1}", f"count: '{raw}'}}")
    if raw == "010":  # quoted, it is the text "010", which a count reads as the decimal it looks like
        assert load_scenario(write(tmp_path, quoted)).model.cluster.fleets[0].count == 10
    else:
        with pytest.raises(ScenarioError, match="count"):  # quoted, it is text, and not a count
            load_scenario(write(tmp_path, quoted))


@pytest.mark.parametrize(("raw", "reads"), [("1:30", "90"), ("010", "8")])
def test_a_catalog_yaml_number_that_does_not_look_like_itself_is_refused(tmp_path: Path, raw: str, reads: str
                                                                        ) -> None:
    from scheduler.catalog import load_catalog
    from scheduler.errors import CatalogError

    path = tmp_path / "extra.yaml"
    path.write_text(f"- name: m9x.large\n  vcpus: {raw}\n  memory_mib: 8192\n")
    with pytest.raises(CatalogError, match=f"reads as {reads}") as caught:
        load_catalog(path)
    assert caught.value.path == "line 2, column 10"
    path.write_text("- name: m9x.large\n  vcpus: 2\n  memory_mib: 8192\n")
    assert load_catalog(path).get("m9x.large").vcpus == 2
