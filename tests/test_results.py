"""The results contract: RunSummary <-> summary.json, the table schemas, and who reads what.

- ``to_json`` gives the file a run writes, byte for byte, and ``from_json`` reads it back to an equal value
  (over bundled scenarios, and over any summary hypothesis builds);
- a file this version does not write (an unknown or missing field, a wrong type) is one line naming the
  file and the field, and exit code 2 at the command line;
- the tables of a real run have exactly the columns (and the task table the types) of the schemas;
- the report reads results only through the contract, never through the sweep runner.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import types
import typing
from pathlib import Path
from typing import Any, Union

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cli import main
from scheduler.output import json_text, write_results
from scheduler.results import ResultsError, RunSummary, codec
from scheduler.results.summary import Faults, Percentiles, WorkloadSummary
from scheduler.results.tables import RUN_TABLES, TASK_SCHEMA, run_metrics, split_workload_column
from scheduler.scenario import load_scenario
from scheduler.sim.engine import Simulation

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
# RunTask streams, services with device sets, faults and Spot, requests with Service Auto Scaling, a snapshot
SEVERAL = ("mixed-cluster.yaml", "trn1-per-chip-services.yaml", "faults-inf2-spot.yaml", "llm-chat-trace.yaml",
           "what-if-on-snapshot.yaml", "asg-inf2-diurnal.yaml")


def run_folder(tmp_path: Path, name: str, duration: str = "2h") -> tuple[Any, Path]:
    res = Simulation(load_scenario(SCENARIOS / name, overrides={"duration": duration})).run()
    out = tmp_path / Path(name).stem
    write_results(res, out)
    return res, out


# --- summary.json <-> RunSummary ------------------------------------------------------------------------

@pytest.mark.parametrize("name", SEVERAL)
def test_the_written_summary_reads_back_to_the_same_value_and_the_same_bytes(tmp_path: Path, name: str) -> None:
    res, out = run_folder(tmp_path, name)
    written = (out / "summary.json").read_bytes()
    assert written == json_text(res.summary.to_json()).encode()
    back = RunSummary.read(out / "summary.json")
    assert back == res.summary
    assert json_text(back.to_json()).encode() == written
    # every key the file has is one the contract knows, in the contract's order
    order = codec.keys(RunSummary)
    keys = list(json.loads(written))
    assert keys == [k for k in order if k in keys]
    for figures in json.loads(written)["workloads"].values():
        known = codec.keys(WorkloadSummary)
        assert list(figures) == [k for k in known if k in figures]


def _strategy(kind: Any) -> st.SearchStrategy[Any]:
    """Any value of a contract field's type (floats finite: JSON has no NaN; an int where a float may be)."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return st.builds(kind, **{f.name: _spread(kind, f) if f.metadata.get("spread") else _strategy(hints[f.name])
                                  for f in dataclasses.fields(kind)})
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        return st.one_of(*(st.none() if a is type(None) else _strategy(a) for a in args))
    if origin is dict:
        return st.dictionaries(st.text(max_size=12), _strategy(args[1]), max_size=3)
    if origin is tuple:
        return st.lists(_strategy(args[0]), max_size=3).map(tuple)
    return {bool: st.booleans(), int: st.integers(-(2**62), 2**62), str: st.text(max_size=20),
            float: st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**9), 10**9)}[kind]


def _spread(kind: Any, field: dataclasses.Field[Any]) -> st.SearchStrategy[Any]:
    """A mapping written key by key into its object: the declared figures, or fault counters under names no
    other field of the object has."""
    types = field.metadata["types"]
    if types is not None:
        return st.fixed_dictionaries({}, optional={k: _strategy(t) for k, t in types().items()})
    taken = set(codec.keys(kind))
    names = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True).filter(lambda k: k not in taken)
    return st.dictionaries(names, _strategy(typing.get_args(typing.get_type_hints(kind)[field.name])[1]), max_size=3)


@settings(max_examples=60, deadline=None)
@given(_strategy(RunSummary))
def test_any_summary_survives_json_and_back(summary: RunSummary) -> None:
    text = json_text(summary.to_json())
    back = RunSummary.from_json(json.loads(text))
    assert back == summary
    assert json_text(back.to_json()) == text


def test_percentiles_are_none_without_values_and_ordered_with_them() -> None:
    assert Percentiles.of([]) == Percentiles()
    p = Percentiles.of([3.0, 1.0, 2.0, 10.0])
    assert p.p50_s is not None and p.p95_s is not None and p.p99_s is not None
    assert p.p50_s <= p.p95_s <= p.p99_s <= p.max_s == 10.0


def test_instances_at_end_are_those_the_timeline_counts_at_the_end() -> None:
    res = Simulation(load_scenario(SCENARIOS / "asg-inf2-diurnal.yaml", overrides={"duration": "1d"})).run()
    cluster = res.timeline[res.timeline["instance_type"] == "*"]
    assert res.summary.instances.at_end == int(cluster["instances"].iloc[-1])
    assert res.summary.instances.at_end <= res.summary.instances.peak


# --- a file from another version -------------------------------------------------------------------------

def _document() -> dict[str, Any]:
    summary = RunSummary("s", 1, "device-aware", 60.0, workloads={"llama": WorkloadSummary("service")},
                         faults=Faults(struck={"instance_failures": 1, "chip_failures": 0}))
    return summary.to_json()


@pytest.mark.parametrize(("change", "path", "words"), [
    (lambda d: d.update(tasks_lost=3), "tasks_lost", "unknown field"),
    (lambda d: d["workloads"]["llama"].update(tail_p999_s=1.0), "workloads.llama.tail_p999_s", "unknown field"),
    (lambda d: d["faults"].update(chip_failures="2"), "faults.chip_failures", "expected a whole number"),
    (lambda d: d["faults"].pop("tasks_stopped"), "faults.tasks_stopped", "missing field"),
    (lambda d: d.pop("wait_p99_s"), "wait_p99_s", "missing field"),
    (lambda d: d.update(tasks_submitted="12"), "tasks_submitted", "expected a whole number"),
    (lambda d: d.update(tasks_failed=[1]), "tasks_failed", "expected an object"),
    (lambda d: d["workloads"].update(llama=3), "workloads.llama", "expected an object"),
    (lambda d: d.update(partial="yes"), "partial", "expected true or false"),
])
def test_a_summary_this_version_does_not_write_is_one_error_naming_the_field(change: Any, path: str,
                                                                             words: str) -> None:
    document = _document()
    change(document)
    with pytest.raises(ResultsError) as caught:
        RunSummary.from_json(document, file="old/summary.json")
    line = str(caught.value)
    assert line.startswith(f"old/summary.json: {path}: {words}") and "\n" not in line


def test_fault_counters_are_the_kinds_a_file_has_so_a_file_from_before_a_new_kind_still_loads() -> None:
    document = _document()
    assert list(document["faults"])[:2] == ["instance_failures", "chip_failures"]  # the counters come first
    document["faults"].pop("chip_failures")  # written before that kind existed
    summary = RunSummary.from_json(document, file="old/summary.json")
    assert summary.faults.struck == {"instance_failures": 1} and summary.faults.instance_failures == 1
    with pytest.raises(AttributeError):
        _ = summary.faults.chip_failures  # not a count of 0: the file does not say
    assert summary.to_json() == document


def test_a_summary_with_fault_counters_survives_pickling() -> None:
    summary = RunSummary.from_json(_document())
    assert pickle.loads(pickle.dumps(summary)) == summary


def test_report_on_a_summary_from_another_version_exits_2_with_one_line(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["run", str(SCENARIOS / "mixed-cluster.yaml"), "--set", "duration=30m", "--out", str(out),
                 "--no-report"]) == 0
    capsys.readouterr()
    document = json.loads((out / "summary.json").read_text())
    document["tasks_lost"] = 0
    (out / "summary.json").write_text(json.dumps(document))
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "summary.json: tasks_lost: unknown field" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


# --- tables -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["llm-chat-trace.yaml", "asg-inf2-diurnal.yaml"])
def test_a_runs_tables_have_the_schemas_columns(tmp_path: Path, name: str) -> None:
    _, out = run_folder(tmp_path, name)
    tables = {p.stem: p for p in out.glob("*.parquet")}
    assert {"tasks", "timeline", "scaling_events", "capacity_reservation"} <= set(tables) <= set(RUN_TABLES)
    for stem, path in tables.items():
        assert tuple(pd.read_parquet(path).columns) == RUN_TABLES[stem], stem
    # the types of the task table (a table written whole has large strings, a streamed one strings)
    written = pq.read_schema(tables["tasks"])
    assert [(f.name, "string" if pa.types.is_large_string(f.type) else str(f.type)) for f in written] == \
        [(f.name, str(f.type)) for f in TASK_SCHEMA]


def test_a_runs_sweep_row_is_flat_numbers_named_by_the_rule() -> None:
    res = Simulation(load_scenario(SCENARIOS / "llm-chat-trace.yaml", overrides={"duration": "1h"})).run()
    row = run_metrics(res.summary)
    assert all(v is None or isinstance(v, int | float) for v in row.values())
    for column in row:
        _, workload = split_workload_column(column)
        assert workload is None or workload in res.summary.workloads, column
    assert row["wait_p99_s"] == res.summary.waits.p99_s
    assert row["tasks_failed"] == res.summary.tasks.failed_total
    assert row["latency_p99_s[chat]"] == res.summary.workloads["chat"].requests.latency.p99_s


# --- who reads what ---------------------------------------------------------------------------------------

def test_the_report_reads_results_through_the_contract_not_the_sweep_runner() -> None:
    from tests.test_architecture import imports

    _, edges = imports(ROOT)
    assert [e.where() for e in edges if e.source.startswith("scheduler.report") and e.target == "scheduler.sweep"] == []
