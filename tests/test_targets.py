"""Targets (``--target``): the parser, its one-line errors, and a sweep marking the points that meet one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.cli import main
from scheduler.readable import workload_column
from scheduler.sweep import MEETS_TARGET, Parameter, apply_target, point_labels, point_means, run_sweep
from scheduler.targets import OPERATORS, TargetError, parse_target, parse_targets

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
QUICK = SCENARIOS / "trn1-per-chip-services.yaml"
EXTRA = "svc-chip-03-extra"  # the 17th service: no chip for it on one trn1.32xlarge


def test_conditions_read_in_their_metrics_units() -> None:
    target = parse_target("wait_p99<60s, shortfall[llama]==0,cost<=$1200.5, utilization>=60%,wait_max[b]<2m")
    got = [(c.column, c.op, c.value) for c in target.conditions]
    assert got == [("wait_p99_s", "<", 60.0), ("shortfall_task_hours[llama]", "==", 0.0),
                   ("cost_usd", "<=", 1200.5), ("chip_utilization", ">=", 0.6), ("wait_max_s[b]", "<", 120.0)]
    assert parse_target("wait_p99_s<90").conditions[0].value == 90.0  # full names, bare seconds
    assert parse_target("shortfall==0").conditions[0].column == "service_shortfall_task_hours"


@pytest.mark.parametrize(("text", "words"), [
    ("", "one or more conditions"),
    ("wiat_p99<60s", "did you mean wait_p99"),
    ("wait_p99<soon", "not a duration"),
    ("wait_p99 60s", "METRIC[WORKLOAD] OP VALUE"),
    ("cost[llama]<5", "whole cluster"),
    ("wait_p99<60s,,failed==0", "empty condition"),
    ("wait_p99[]<60s", "empty workload"),
    ("utilization>=lots", "a share"),
    ("failed<inf", "finite"),
])
def test_a_bad_target_is_one_error(text: str, words: str) -> None:
    with pytest.raises(TargetError) as err:
        parse_target(text)
    assert words in str(err.value) and str(err.value).startswith("--target: ") and "\n" not in str(err.value)


def test_workloads_are_checked_against_the_scenario() -> None:
    kinds = {"llama": "service", "batch": "run_task"}
    parse_target("wait_p99[batch]<1m,shortfall[llama]==0").check_workloads(kinds)
    with pytest.raises(TargetError, match="no workload 'lama'"):
        parse_target("wait_p99[lama]<1m").check_workloads(kinds)
    with pytest.raises(TargetError, match="not a REPLICA service"):
        parse_target("shortfall[batch]==0").check_workloads(kinds)


@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from(list(OPERATORS)))
def test_a_condition_holds_exactly_as_its_operator(value: float, bound: float, op: str) -> None:
    condition = parse_target(f"failed{op}{bound!r}").conditions[0]
    assert condition.holds(value) == OPERATORS[op](value, float(repr(bound)))
    assert not condition.holds(math.nan) and not condition.holds(None)


def test_several_target_options_add_up() -> None:
    target = parse_targets(["wait_p99<1m", "failed==0"])
    assert target is not None and target.columns == ["wait_p99_s", "tasks_failed"]
    assert target.holds({"wait_p99_s": 10, "tasks_failed": 0}) and target.missed({"wait_p99_s": 90,
                                                                                 "tasks_failed": 0}) == ["wait_p99<1m"]
    assert parse_targets([]) is None


@pytest.fixture(scope="module")
def quick_sweep():
    return run_sweep(QUICK, [Parameter("cluster.fleets.0.count", (1, 2))], replications=2, workers=1, until=3600.0)


def test_sweep_rows_carry_the_fleet_and_plain_per_workload_numbers(quick_sweep) -> None:
    runs = quick_sweep.runs
    assert list(runs["fleet"]) == ["trn1.32xlarge x1"] * 2 + ["trn1.32xlarge x2"] * 2
    assert point_labels(quick_sweep) == {0: "trn1.32xlarge x1", 1: "trn1.32xlarge x2"}
    columns = [c for c in runs.columns if c.endswith(f"[{EXTRA}]")]
    assert workload_column("wait_p99_s", EXTRA) in columns and workload_column("shortfall_task_hours", EXTRA) in columns
    assert all(pd.api.types.is_numeric_dtype(runs[c]) for c in columns)
    one, two = runs[runs["point"] == 0].iloc[0], runs[runs["point"] == 1].iloc[0]
    assert one[f"wait_p99_s[{EXTRA}]"] == pytest.approx(3600 - 60) and one[f"shortfall_task_hours[{EXTRA}]"] > 0
    assert two[f"wait_p99_s[{EXTRA}]"] == 0 and two[f"shortfall_task_hours[{EXTRA}]"] == 0


@pytest.mark.parametrize(("text", "passing"), [
    (f"wait_p99[{EXTRA}]<5m,shortfall[{EXTRA}]==0", [1]),
    ("wait_p99[svc-chip-00]<5m", [0, 1]),
    ("shortfall==0,cost<$1", []),
])
def test_apply_target_marks_the_points_that_meet_it_and_the_cheapest(quick_sweep, text: str, passing: list[int]
                                                                     ) -> None:
    target = parse_target(text)
    apply_target(quick_sweep, target)
    means = point_means(quick_sweep, [*target.columns, "cost_usd"])
    assert [p for p, values in means.items() if target.holds(values)] == passing
    marked = quick_sweep.runs.groupby("point")[MEETS_TARGET].agg(["all", "any"])
    assert list(marked.index[marked["all"]]) == passing and list(marked.index[marked["any"]]) == passing
    cheapest = quick_sweep.meta["cheapest_meeting_target"]
    if passing:
        best = min(passing, key=lambda p: means[p]["cost_usd"])
        assert cheapest["point"] == best and cheapest["label"] == f"trn1.32xlarge x{best + 1}"
    else:
        assert cheapest is None


def test_sweep_target_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sw"
    code = main(["sweep", str(QUICK), "--set", "cluster.fleets.0.count=1,2", "--until", "1h", "--workers", "1",
                 "--out", str(out), "--target", f"wait_p99[{EXTRA}]<5m,shortfall[{EXTRA}]==0"])
    assert code == 0
    text = capsys.readouterr().out
    assert "trn1.32xlarge x1" in text and "count=1" not in text
    assert "1 of 2 grid points meet it" in text and "the cheapest is trn1.32xlarge x2" in text
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["cheapest_meeting_target"]["point"] == 1 and meta["points_meeting_target"] == [1]
    runs = pd.read_parquet(out / "sweep.parquet")
    assert list(runs.groupby("point")[MEETS_TARGET].first()) == [False, True]
    report = (out / "report.md").read_text()
    assert "the cheapest is trn1.32xlarge x2" in report and "| meets target |" in report


@pytest.mark.parametrize(("target", "words"), [("wait_p99[nope]<1m", "no workload 'nope'"),
                                               ("wait_p99<fast", "not a duration"),
                                               (f"latency_p99[{EXTRA}]<2s", "receives no requests")])
def test_a_bad_sweep_target_is_one_line_exit_2_and_no_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           target: str, words: str) -> None:
    out = tmp_path / "sw"
    assert main(["sweep", str(QUICK), "--until", "10m", "--out", str(out), "--target", target]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "--target" in err[0]
    assert not out.exists()


def test_the_frontier_stands_each_point_at_its_slowest_workload(quick_sweep) -> None:
    from scheduler.report import figures as fg
    from scheduler.report.document import frontier_waits

    quick_sweep.meta.pop("target", None)
    waits = frontier_waits(quick_sweep)
    assert len(waits) == 17 and workload_column("wait_p99_s", EXTRA) in waits
    means = point_means(quick_sweep, waits)
    figure = fg.frontier_figure(quick_sweep.summary, quick_sweep.parameter_paths, wait=waits,
                                labels=point_labels(quick_sweep))
    x = figure.axes[0].lines[0].get_xdata()  # the grid points, in the wait unit of the axis (min for 59 min)
    slowest = [max(values.values()) for values in means.values()]
    assert list(x) == pytest.approx([v / 60 for v in slowest])
    assert slowest[0] == pytest.approx(3600 - 60) and slowest[1] == 0
    assert "slowest workload" in figure.axes[0].get_xlabel()
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert any(t.startswith("trn1.32xlarge x1") and "short" in t for t in texts)


def test_a_fleet_label_sums_counts_per_type_and_names_capacity_providers() -> None:
    from scheduler.scenario.cluster import ClusterModel, fleet_label

    cluster = ClusterModel.model_validate({
        "fleets": [{"instance_type": "inf2.24xlarge", "count": 8}, {"instance_type": "trn1.32xlarge", "count": 4},
                   {"instance_type": "inf2.24xlarge", "count": 4}, {"instance_type": "inf2.xlarge", "count": 2,
                                                                    "spot": True}],
        "capacity_providers": [{"name": "asg", "type": "EC2_AUTOSCALING", "instance_types": ["inf2.xlarge"],
                                "min_size": 0, "max_size": 10}]})
    assert fleet_label(cluster) == "inf2.24xlarge x12, trn1.32xlarge x4, inf2.xlarge Spot x2, asg: inf2.xlarge 0-10"
    assert fleet_label(ClusterModel()) == "no instances"
