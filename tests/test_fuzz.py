"""Fuzzing in CI: each target of fuzz_strategies for a few hundred derandomized cases (about 4,000 in all,
about a minute on two cores), and one regression test per bug the fuzzer found.

The contract every target checks: the input is accepted, or the project's own error comes out, naming the
file and the field in one printable line; never another exception, never a hang. The long campaign
(>= 100,000 cases per target) is tools/fuzz.py; docs/fuzzing.md has its command and results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fuzz_strategies import (
    TARGETS,
    BigInt,
    Deep,
    FuzzFailure,
    Hang,
    Plain,
    ScenarioFiles,
    Target,
    check_error,
    check_message,
    materialize,
    render_yaml,
    run_cli,
    scenario_seeds,
    watchdog,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.ecs import cql
from scheduler.ecs.taskdef import read_task_definition, validate_task_definition
from scheduler.errors import QueryError, ScenarioError
from scheduler.scenario import load_scenario, parse_yaml, scenario_from_mapping

# Cases per target: a few thousand in all, sized by what one case costs (a CLI run simulates a minute).
BUDGET = {"scenario-file": 600, "scenario-mapping": 500, "taskdef-file": 600, "taskdef-document": 800,
          "cql": 1500, "cli": 250}
DEADLINE_MS = {"cli": 20_000}  # per example; the others 5 s, far above their usual few milliseconds


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_the_budget_covers_every_target_with_a_few_thousand_cases() -> None:
    assert set(BUDGET) == set(TARGETS)
    assert sum(BUDGET.values()) >= 3000


def _fuzz(name: str):
    target = TARGETS[name]

    @settings(max_examples=BUDGET[name], derandomize=True, database=None,
              deadline=DEADLINE_MS.get(name, 5_000), suppress_health_check=list(HealthCheck))
    @given(case=target.strategy())
    def run(scratch: Path, case: Any) -> None:
        try:
            with watchdog(target.seconds):
                target.run(case, scratch / name)
        except Hang as exc:
            raise FuzzFailure(f"{name}: {exc}") from None

    return run


test_fuzz_scenario_files = _fuzz("scenario-file")
test_fuzz_scenario_mappings_and_overrides = _fuzz("scenario-mapping")
test_fuzz_task_definition_files = _fuzz("taskdef-file")
test_fuzz_task_definition_documents = _fuzz("taskdef-document")
test_fuzz_query_expressions = _fuzz("cql")
test_fuzz_command_line = _fuzz("cli")


# --- the checks themselves can fail -------------------------------------------------------------------

def test_the_checks_refuse_what_the_contract_forbids() -> None:
    with pytest.raises(FuzzFailure, match="unprintable"):
        check_message("a\nb", "x")
    with pytest.raises(FuzzFailure, match="Python internals"):
        check_message("use sys.set_int_max_str_digits() to increase the limit", "x")
    with pytest.raises(FuzzFailure, match="names no field"):
        check_error(ScenarioError("count must be positive", file="s.yaml"), "s.yaml", "x")
    with pytest.raises(FuzzFailure, match="does not name the file"):
        check_error(ScenarioError("bad", file="other.yaml", path="seed"), "s.yaml", "x")
    check_error(ScenarioError("bad", file="s.yaml", path="seed"), "s.yaml", "x")


def test_the_watchdog_stops_a_hang() -> None:
    with pytest.raises(Hang), watchdog(0.05):
        while True:
            pass


def test_a_traceback_python_could_not_raise_fails_the_case(tmp_path: Path) -> None:
    class Noisy:
        def __del__(self) -> None:
            raise RuntimeError("raised while being collected")

    def check(case: Any, folder: Path) -> str:
        Noisy()  # collected at once; Python can only print its exception
        return "accepted"

    target = Target("noisy", lambda: st.none(), check, 1)
    with pytest.raises(FuzzFailure, match="a traceback went to stderr: RuntimeError"):
        target.run(None, tmp_path)
    assert Target("quiet", lambda: st.none(), lambda case, folder: "refused", 1).run(None, tmp_path) == "refused"


def test_markers_build_what_they_stand_for_without_recursion() -> None:
    deep = Deep(10_000).build()
    depth = 0
    while isinstance(deep, list):
        deep, depth = deep[0], depth + 1
    assert depth == 10_000
    assert BigInt(5000).build() == 10**5000 - 1
    assert render_yaml({"a": Deep(2, "map"), "b": BigInt(3,
                                                         negative=True)}) == 'a: {"a": {"a": 1}}\nb: -999\n'
    assert render_yaml({"count": Plain("1:30")}) == "count: 1:30\n"
    assert materialize({"count": Plain("1:30"), "n": Plain("010")}) == {"count": 90, "n": 8}


# --- regressions: one per bug the fuzzer found ---------------------------------------------------------

def _taskdef(tmp_path: Path, text: str) -> str:
    path = tmp_path / "td.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


CPU_TASKDEF = {"family": "x", "containerDefinitions": [{"name": "a", "image": "b", "memory": 512}]}


def test_json_number_with_thousands_of_digits_is_an_issue_not_a_value_error(tmp_path: Path) -> None:
    validation = read_task_definition(_taskdef(tmp_path, '{"family": "x", "cpu": ' + "9" * 5000 + "}"))
    assert [(i.path, i.rule) for i in validation.errors] == [("$", "not-json")]
    assert "digits" in validation.errors[0].message


@pytest.mark.parametrize("field", ["cpu", "memory"])
def test_cpu_and_memory_strings_with_thousands_of_digits_are_refused(field: str) -> None:
    validation = validate_task_definition({**CPU_TASKDEF, field: "9" * 5000})
    assert [i.path for i in validation.errors] == [f"$.{field}"]
    assert "far more than any instance" in validation.errors[0].message
    assert len(validation.errors[0].message) < 200


def test_a_document_nested_ten_thousand_deep_is_refused_at_its_path() -> None:
    validation = validate_task_definition({**CPU_TASKDEF, "family": Deep(10_000).build()})
    assert [(i.path, i.rule) for i in validation.errors] == [("$.family" + "[0]" * 63, "too-deep")]


def test_a_long_enum_value_is_quoted_short() -> None:
    validation = validate_task_definition({**CPU_TASKDEF, "networkMode": "x" * 5000})
    assert any(i.path == "$.networkMode" and len(i.message) < 300 for i in validation.errors)


def test_control_characters_in_keys_and_names_stay_on_one_line() -> None:
    validation = validate_task_definition({"\n": None, **CPU_TASKDEF})
    unknown = [i for i in validation.errors if i.rule == "unknown-key"]
    assert unknown and all(i.path.isprintable() and i.message.isprintable() for i in unknown)
    named = validate_task_definition({"family": "x", "containerDefinitions": [{"name": "\x1f",
                                                                               "image": "b"}]})
    assert [i.rule for i in named.errors] == ["no-memory"]
    assert named.errors[0].message.isprintable() and "\\x1f" in named.errors[0].message


def test_a_query_error_quoting_a_newline_is_one_line() -> None:
    with pytest.raises(QueryError) as caught:
        cql.parse("attribute:ecs.instance-typeequals'a\nb'")
    assert str(caught.value).isprintable() and "\\n" in str(caught.value)


def test_top_level_number_with_thousands_of_digits_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match="the top level must be a mapping") as caught:
        scenario_from_mapping(10**5000, path="s.yaml")
    assert "5,000 digits" in str(caught.value)


def test_yaml_number_with_thousands_of_digits_names_its_line() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_yaml("name: x\nseed: " + "9" * 5000 + "\n", "s.yaml")
    assert caught.value.path == "line 2, column 7"
    assert "set_int_max_str_digits" not in str(caught.value)


def test_yaml_impossible_date_names_its_line() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_yaml("name: x\nduration: 2001-02-30\n", "s.yaml")
    assert caught.value.path == "line 2, column 11"
    assert "not a valid date" in caught.value.message


def test_override_index_in_unicode_digits_is_a_scenario_error() -> None:
    data = scenario_seeds()["mixed-cluster.yaml"]
    with pytest.raises(ScenarioError, match="must be an index") as caught:
        scenario_from_mapping(data, path="s.yaml", overrides={"cluster.fleets.².count": "4"})
    assert caught.value.path == "cluster.fleets.².count"


def test_task_definition_path_too_long_for_the_file_system_is_not_found(tmp_path: Path) -> None:
    data = json.loads(json.dumps(scenario_seeds()["mixed-cluster.yaml"]))
    data["task_definitions"]["gpu"] = "x" * 300 + ".json"
    path = ScenarioFiles(render_yaml(data).encode()).write(tmp_path)
    with pytest.raises(ScenarioError, match="task-definition file not found") as caught:
        load_scenario(path)
    assert caught.value.path == "task_definitions.gpu"


@pytest.mark.parametrize(("field", "value", "words"), [
    ("price_per_hour", 10**400, "must be a non-negative number"),
    ("vcpus", "9" * 5000, "must be a positive integer"),
], ids=["float-overflow", "digits-string"])
def test_catalog_additions_with_huge_or_deep_values_are_scenario_errors(field: str, value: object,
                                                                          words: str) -> None:
    data = json.loads(json.dumps(scenario_seeds()["mixed-cluster.yaml"]))
    data["catalog_additions"] = [{"name": "lab.big", "vcpus": 8, "memory_mib": 32768, field: value}]
    with pytest.raises(ScenarioError, match=words) as caught:
        scenario_from_mapping(data, path="s.yaml")
    assert caught.value.path == "catalog_additions[0]"
    check_error(caught.value, "s.yaml", "catalog_additions")


@pytest.mark.parametrize("kind", ["list", "map"])
@pytest.mark.parametrize("where", ["data", "override"])
def test_scenario_data_nested_ten_thousand_deep_is_refused_at_its_path_without_noise(
        kind: str, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by the long run: pydantic-core refused such data, but wrote "Exception ignored" tracebacks
    # from its RecursionError to stderr on the way. The depth is now checked first, with a loop.
    unraisable: list[object] = []
    monkeypatch.setattr("sys.unraisablehook", unraisable.append)
    data = json.loads(json.dumps(scenario_seeds()["mixed-cluster.yaml"]))
    overrides = None
    if where == "data":
        data["catalog_additions"] = [{"name": "lab.big", "vcpus": 8, "memory_mib": Deep(10_000, kind).build()}]
    else:
        overrides = {"catalog_additions": [{"name": "lab.big", "memory_mib": Deep(10_000, kind).build()}]}
    with pytest.raises(ScenarioError, match="nested more than 64 levels deep") as caught:
        scenario_from_mapping(data, path="s.yaml", overrides=overrides)
    step = "[0]" if kind == "list" else ".a"
    assert caught.value.path == "catalog_additions[0].memory_mib" + step * 61
    check_error(caught.value, "s.yaml", "deep scenario data")
    assert unraisable == []


@pytest.mark.parametrize("where", ["discriminator", "key", "catalog"])
def test_a_5000_digit_integer_in_scenario_data_is_refused_at_its_path_without_noise(
        where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by the long run: a 5,000-digit integer as a union's "type" made pydantic-core write an
    # "Exception ignored ... ValueError" traceback to stderr while it refused the data.
    unraisable: list[object] = []
    monkeypatch.setattr("sys.unraisablehook", unraisable.append)
    data = json.loads(json.dumps(scenario_seeds()["diurnal-inf2.yaml"]))
    if where == "discriminator":
        data["workloads"][0]["duration"]["type"] = 10**5000
        path = "workloads[0].duration.type"
    elif where == "key":
        data["workloads"][0]["duration"] = {10**5000: 1}
        path = "workloads[0].duration"
    else:
        data["catalog_additions"] = [{"name": "lab.big", "vcpus": -(10**5000), "memory_mib": 32768}]
        path = "catalog_additions[0].vcpus"
    with pytest.raises(ScenarioError, match="about 5,001 digits") as caught:
        scenario_from_mapping(data, path="s.yaml")
    assert caught.value.path == path
    check_error(caught.value, "s.yaml", "huge integer")
    assert unraisable == []


def test_scenario_data_nested_64_deep_is_read_and_65_is_not() -> None:
    data = json.loads(json.dumps(scenario_seeds()["mixed-cluster.yaml"]))
    data["name"] = Deep(63).build()  # with the top mapping, 64 collections deep
    with pytest.raises(ScenarioError, match="must be a valid string") as caught:
        scenario_from_mapping(data, path="s.yaml")
    assert caught.value.path == "name"
    data["name"] = Deep(64).build()
    with pytest.raises(ScenarioError, match="nested more than 64 levels deep") as caught:
        scenario_from_mapping(data, path="s.yaml")
    assert caught.value.path == "name" + "[0]" * 63


def test_validate_prints_each_issue_on_one_unwrapped_line(tmp_path: Path) -> None:
    folder = tmp_path / ("long-folder-name-" * 8)
    folder.mkdir()
    doc = {**CPU_TASKDEF, "networkMode": "awsvpc",
           "containerDefinitions": [{"name": "a", "image": "b", "memory": 512,
                                     "portMappings": [{"containerPort": 80, "hostPort": 8080}]}]}
    path = folder / "td.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = run_cli(["validate", str(path)])
    lines = result.stderr.splitlines()
    assert result.code == 2 and len(lines) == 2
    assert all(line.startswith(str(path)) for line in lines)
    assert lines[0].endswith("[awsvpc-host-port]")


def _trn1_scenario(folder: Path) -> Path:
    return ScenarioFiles(render_yaml(scenario_seeds()["trn1-per-chip-services.yaml"]).encode()).write(folder)


def test_run_with_a_negative_seed_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = _trn1_scenario(tmp_path)
    result = run_cli(["run", str(path), "--seed=-1", "--until=1m", "--out", str(tmp_path / "out"),
                      "--no-report"])
    assert result.code == 2
    assert result.stderr == "neuron-sim: --seed: a seed is an integer from 0 to 2**63 - 1, got -1\n"


@pytest.mark.parametrize("until", ["0", "0s", "-0"])
def test_run_until_zero_is_one_line_and_exit_2(tmp_path: Path, until: str) -> None:
    path = _trn1_scenario(tmp_path)
    result = run_cli(["run", str(path), f"--until={until}", "--out", str(tmp_path / "out"), "--no-report"])
    assert result.code == 2
    assert result.stderr == f"neuron-sim: --until: must be longer than 0, such as 30m or 2d; got {until!r}\n"


def test_a_map_key_with_a_control_character_gives_a_printable_path() -> None:
    doc = {**CPU_TASKDEF, "containerDefinitions": [
        {"name": "a", "image": "b", "memory": 512,
         "logConfiguration": {"logDriver": "awslogs", "options": {"\x1f": None}}}]}
    issues = validate_task_definition(doc).errors
    assert issues and all(i.path.isprintable() for i in issues)
    assert any(i.path.endswith(".options.\\x1f") for i in issues)


@pytest.mark.parametrize("value", [["device_1"], {"a": 1}, 10**5000], ids=["list", "map", "huge-int"])
def test_a_resource_requirement_value_of_any_type_is_an_issue(value: object) -> None:
    doc = {**CPU_TASKDEF, "containerDefinitions": [
        {"name": "a", "image": "b", "memory": 512,
         "resourceRequirements": [{"type": "InferenceAccelerator", "value": value}]}]}
    validation = validate_task_definition(doc)
    assert "unknown-inference-accelerator" in {i.rule for i in validation.errors}
    assert all(len(i.message) < 300 for i in validation.errors)


@pytest.mark.parametrize(("name", "text", "words"), [
    ("deep.yaml", "[" * 2000 + "]" * 2000, "nested too deeply"),
    ("digits.yaml", "- {name: lab.big, vcpus: " + "9" * 5000 + "}\n", "thousands of digits"),
    ("date.yaml", "- {name: lab.big, vcpus: 2, memory_mib: 2020-02-30}\n", "day is out of range"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("wide.csv", "name,vcpus\n" + "x" * 200_000 + ",1\n", "not valid CSV"),
])
def test_a_scenario_catalog_file_that_breaks_the_parser_is_a_scenario_error(
        tmp_path: Path, name: str, text: str, words: str) -> None:
    data = json.loads(json.dumps(scenario_seeds()["mixed-cluster.yaml"]))
    data["catalog"] = name
    (tmp_path / name).write_text(text, encoding="utf-8")
    path = ScenarioFiles(render_yaml(data).encode()).write(tmp_path)
    with pytest.raises(ScenarioError, match=words) as caught:
        load_scenario(path)
    assert caught.value.path == "catalog"
    check_error(caught.value, str(path), "catalog")


def test_an_instance_attribute_with_thousands_of_digits_is_a_scenario_error() -> None:
    data = json.loads(json.dumps(scenario_seeds()["mixed-cluster.yaml"]))
    data["cluster"]["fleets"][0]["attributes"] = {"rack": 10**5000}
    with pytest.raises(ScenarioError, match="about 5,001 digits") as caught:
        scenario_from_mapping(data, path="s.yaml")
    assert caught.value.path == "cluster.fleets[0].attributes.rack"
    check_error(caught.value, "s.yaml", "attributes")


@pytest.mark.parametrize(("tagged", "words"), [
    ("!!timestamp", "'' is not a valid date"),
    ("!!timestamp x", "'x' is not a valid date"),
    ("!!bool x", "'x' is not a valid boolean"),
    ("!!int", "'' is not a valid integer"),
    ("!!float .", "'.' is not a valid number"),
])
def test_a_yaml_tag_on_a_value_it_cannot_read_names_its_line(tagged: str, words: str) -> None:
    with pytest.raises(ScenarioError, match=words) as caught:
        parse_yaml(f"name: x\nseed: {tagged}\n", "s.yaml")
    assert caught.value.path == "line 2, column 7"


@pytest.mark.parametrize("tagged", ["!!timestamp x", "!!bool x", "!!int"])
def test_a_catalog_yaml_tag_it_cannot_read_is_a_scenario_error(tmp_path: Path, tagged: str) -> None:
    data = json.loads(json.dumps(scenario_seeds()["mixed-cluster.yaml"]))
    data["catalog"] = "tags.yaml"
    (tmp_path / "tags.yaml").write_text(f"- {{name: lab.big, vcpus: {tagged}}}\n", encoding="utf-8")
    path = ScenarioFiles(render_yaml(data).encode()).write(tmp_path)
    with pytest.raises(ScenarioError, match="not valid YAML") as caught:
        load_scenario(path)
    assert caught.value.path == "catalog"


@pytest.mark.parametrize("field", ["duration", "sample_interval"])
def test_a_duration_of_millions_of_characters_is_refused_before_it_is_read(field: str) -> None:
    data = {**scenario_seeds()["mixed-cluster.yaml"], field: "1h" * 2_500_000}
    with pytest.raises(ScenarioError, match="got a text of 5,000,000 characters") as caught:
        scenario_from_mapping(data, path="s.yaml")
    assert caught.value.path == field


def test_a_rate_of_millions_of_characters_is_refused_before_it_is_read() -> None:
    data = json.loads(json.dumps(scenario_seeds()["mixed-cluster.yaml"]))
    data["workloads"][2]["arrivals"]["rate"] = "1/" + "1h" * 2_500_000
    with pytest.raises(ScenarioError, match="got a text of 5,000,002 characters") as caught:
        scenario_from_mapping(data, path="s.yaml")
    assert caught.value.path == "workloads[2].arrivals.rate"


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 10**30, -(10**5000)],
                         ids=["2^31", "-2^31-1", "1e30", "huge"])
def test_an_integer_beyond_32_bits_is_out_of_range_not_a_crash(value: int) -> None:
    doc = {**CPU_TASKDEF, "containerDefinitions": [
        {"name": "a", "image": "b", "memory": value, "memoryReservation": 1024}]}
    validation = validate_task_definition(doc)
    memory = "$.containerDefinitions[0].memory"
    assert [(i.path, i.rule) for i in validation.errors] == [(memory, "out-of-range")]
    assert "32-bit" in validation.errors[0].message


def test_the_largest_32_bit_integer_is_in_range() -> None:
    doc = {**CPU_TASKDEF, "containerDefinitions": [{"name": "a", "image": "b", "memory": 2**31 - 1}]}
    assert validate_task_definition(doc).valid


def test_a_100000_character_value_gives_a_bounded_line_that_still_names_the_field() -> None:
    data = json.loads(json.dumps(scenario_seeds()["mixed-cluster.yaml"]))
    data["cluster"]["fleets"][0]["instance_type"] = "x" * 100_000
    with pytest.raises(ScenarioError, match="unknown instance type") as caught:
        scenario_from_mapping(data, path="s.yaml")
    line = str(caught.value)
    assert len(line) <= 1000
    assert line.startswith("s.yaml: cluster.fleets[0].instance_type: unknown instance type 'xxx")
    assert "characters cut" in line and line.endswith("`neuron-sim catalog` lists known types")
    check_error(caught.value, "s.yaml", "long value")
