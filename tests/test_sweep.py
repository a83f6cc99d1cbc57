"""Sweeps: grid expansion, seeding, executors (serial, process pool, Dask), failed runs, the summary."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from scheduler import sweep as sweep_module
from scheduler.cli import main
from scheduler.errors import ScenarioError
from scheduler.scenario import load_scenario
from scheduler.sim.engine import Simulation
from scheduler.sweep import (
    FAILED,
    OK,
    Parameter,
    SweepError,
    confidence_interval,
    grid_points,
    parse_set,
    read_sweep,
    replication_seed,
    run_sweep,
    summarize,
    wide_summary,
    write_sweep,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "inf1-docs-ec2.yaml"  # Poisson arrivals: runs differ by seed
UNTIL = 2 * 3600.0
COUNT = "cluster.fleets.0.count"
RATE = "workloads.0.arrivals.rate"
GRID = (Parameter(COUNT, (1, 2)), Parameter(RATE, ("6/h", "12/h")))
NONDETERMINISTIC = ["wall_seconds"]  # measured, not simulated


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=NONDETERMINISTIC)


@pytest.fixture(scope="module")
def serial() -> sweep_module.Sweep:
    return run_sweep(SCENARIO, GRID, replications=5, workers=1, until=UNTIL)


@pytest.fixture(scope="module")
def pooled() -> sweep_module.Sweep:
    return run_sweep(SCENARIO, GRID, replications=5, executor="local", workers=2, until=UNTIL)


# --- the grid and the seeds -------------------------------------------------------------------------

def test_parse_set_splits_values_but_not_inside_brackets_or_quotes() -> None:
    assert parse_set("cluster.fleets.0.count=2,4, 8") == Parameter("cluster.fleets.0.count", ("2", "4", "8"))
    zones = parse_set("cluster.fleets.0.availability_zones=[us-east-1a, us-east-1b],[us-east-1c]")
    assert zones.values == ("[us-east-1a, us-east-1b]", "[us-east-1c]")
    assert parse_set("name='a,b',c").values == ("'a,b'", "c")
    assert parse_set("device_mode=ecs-blind").values == ("ecs-blind",)


@pytest.mark.parametrize("text", ["no-equals", "=1,2", "a.b=1,,2", "a.b=[1,2", "a.b='x"])
def test_parse_set_refuses_malformed_options(text: str) -> None:
    with pytest.raises(SweepError):
        parse_set(text)


def test_grid_points_cover_the_product_first_parameter_slowest() -> None:
    points = grid_points([Parameter("a", (1, 2)), Parameter("b", ("x", "y", "z"))])
    assert points == [{"a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")]
    assert grid_points([]) == [{}]
    with pytest.raises(SweepError, match="swept twice"):
        grid_points([Parameter("a", (1,)), Parameter("a", (2,))])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**63 - 1), st.integers(0, 10_000))
def test_replication_seed_is_a_pure_function_in_the_scenario_seed_range(base: int, replication: int) -> None:
    seed = replication_seed(base, replication)
    assert seed == replication_seed(base, replication)
    assert 0 <= seed < 2**63
    assert seed != replication_seed(base, replication + 1)


def test_every_point_uses_the_same_seed_per_replication(serial: sweep_module.Sweep) -> None:
    runs = serial.runs
    base = load_scenario(SCENARIO).model.seed
    assert len(runs) == 4 * 5 and list(runs["run"]) == list(range(20))
    for _, row in runs.iterrows():
        assert row["run_seed"] == replication_seed(base, row["replication"])
    per_point = runs.groupby("point")["run_seed"].apply(tuple)
    assert per_point.nunique() == 1  # common random numbers across grid points
    assert runs["run_seed"].nunique() == 5


def test_a_row_holds_the_parameters_and_the_runs_own_summary(serial: sweep_module.Sweep) -> None:
    runs = serial.runs
    assert runs[COUNT].dtype.kind == "i" and list(runs[COUNT].unique()) == [1, 2]
    assert list(runs[RATE].unique()) == ["6/h", "12/h"]
    assert (runs["status"] == OK).all() and runs["error"].isna().all()
    row = runs.iloc[13]  # point 2 = (count 2, 6/h), replication 3
    assert (row["point"], row["replication"], row[COUNT], row[RATE]) == (2, 3, 2, "6/h")
    loaded = load_scenario(SCENARIO, overrides={COUNT: 2, RATE: "6/h"})
    summary = Simulation(loaded, seed=int(row["run_seed"]), until=UNTIL).run().summary
    expected_of = {"tasks_submitted": summary.tasks.submitted, "tasks_placed": summary.tasks.placed,
                   "wait_p99_s": summary.waits.p99_s, "chip_utilization": summary.utilization.chips,
                   "cost_usd": summary.costs.usd}
    for key, expected in expected_of.items():
        assert (row[key] == expected) or (expected is None and math.isnan(row[key])), key
    assert row["tasks_failed"] == sum(summary.tasks.failed.values())
    flat = sweep_module.summary_metrics(summary)
    assert {k.removeprefix("tasks_failed:"): v for k, v in flat.items() if k.startswith("tasks_failed:")
            and "[" not in k} == summary.tasks.failed
    assert not [k for k, v in flat.items() if isinstance(v, str)]  # plain numbers only, no JSON text
    for k, v in flat.items():  # ... and the row holds them (all but the run's own wall-clock time)
        if k == "wall_seconds":
            continue
        assert (row[k] == v) or (v is None and math.isnan(row[k])), k
    for name, value in summary.fault_metrics().items():  # numbers a sweep can average
        assert row[f"faults_{name}"] == value, name
    assert row["service_shortfall_task_hours"] == pytest.approx(sum(summary.service_shortfall_task_hours.values()))
    # the replications of a point differ: the seed matters
    assert runs.loc[runs["point"] == 2, "tasks_submitted"].nunique() > 1


# --- executors give the same rows -------------------------------------------------------------------

def test_a_process_pool_gives_exactly_the_serial_rows(serial: sweep_module.Sweep,
                                                      pooled: sweep_module.Sweep) -> None:
    pd.testing.assert_frame_equal(comparable(pooled.runs), comparable(serial.runs))
    pd.testing.assert_frame_equal(pooled.summary, serial.summary)


def test_dask_local_cluster_gives_exactly_the_local_executors_rows(pooled: sweep_module.Sweep) -> None:
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        on_dask = run_sweep(SCENARIO, GRID, replications=5, executor="dask",
                            scheduler=cluster.scheduler_address, until=UNTIL)
    assert on_dask.executor == "dask" and len(on_dask.runs) == 20
    pd.testing.assert_frame_equal(comparable(on_dask.runs), comparable(pooled.runs))
    pd.testing.assert_frame_equal(on_dask.summary, pooled.summary)


def test_the_dask_executor_without_distributed_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch
                                                                      ) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(SweepError, match=r"pip install -e \"\.\[dask\]\""):
        run_sweep(SCENARIO, GRID, executor="dask", until=UNTIL)


def test_an_unreachable_dask_scheduler_is_one_clear_error() -> None:
    with (pytest.raises(SweepError, match="cannot reach the Dask scheduler"),
          sweep_module.dask_client("tcp://127.0.0.1:9", timeout="1s")):
        pass


# --- failures ---------------------------------------------------------------------------------------

def test_a_grid_point_that_does_not_load_is_recorded_and_the_sweep_goes_on() -> None:
    done: list[tuple[int, int, int]] = []
    result = run_sweep(SCENARIO, [Parameter(COUNT, (1, -1, 2))], replications=2, workers=1, until=UNTIL,
                       progress=lambda *args: done.append(args))
    runs = result.runs
    bad = runs[runs[COUNT] == -1]
    assert list(bad["status"]) == [FAILED, FAILED]
    assert all("cluster.fleets[0].count" in e for e in bad["error"])
    assert (runs.loc[runs[COUNT] != -1, "status"] == OK).all()
    assert done[-1] == (6, 6, 2) and [d[0] for d in done] == list(range(1, 7))
    summary = result.summary
    assert set(summary.loc[summary[COUNT] == -1, "failed"]) == {2}
    assert summary.loc[summary[COUNT] == -1, "n"].eq(0).all()


def test_a_run_that_raises_is_recorded_with_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    unlucky = replication_seed(load_scenario(SCENARIO).model.seed, 1)
    real_run = Simulation.run

    def run(self: Simulation):  # type: ignore[no-untyped-def]
        if self.seed == unlucky:
            raise RuntimeError("boom\nsecond line")
        return real_run(self)

    monkeypatch.setattr(Simulation, "run", run)
    result = run_sweep(SCENARIO, [Parameter(COUNT, (1, 2))], replications=3, workers=1, until=UNTIL)
    failed = result.failed
    assert list(failed["replication"]) == [1, 1]
    assert set(failed["error"]) == {"RuntimeError: boom second line"}
    assert (result.runs.loc[result.runs["replication"] != 1, "status"] == OK).all()
    assert set(result.summary["n"]) == {2}


def test_a_sweep_where_no_point_loads_is_an_error() -> None:
    with pytest.raises(ScenarioError, match="no grid point"):
        run_sweep(SCENARIO, [Parameter("cluster.fleet.0.count", (1, 2))], workers=1, until=UNTIL)
    with pytest.raises(SweepError, match="replications"):
        run_sweep(SCENARIO, GRID, replications=0, workers=1)
    with pytest.raises(SweepError, match="executor"):
        run_sweep(SCENARIO, GRID, executor="threads")


# --- the summary ------------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=30))
def test_the_confidence_interval_is_students_t_around_the_mean(values: list[float]) -> None:
    mean, std, low, high = confidence_interval(np.array(values))
    assert mean == pytest.approx(np.mean(values), abs=1e-6)
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    assert high - mean == pytest.approx(half, rel=1e-9, abs=1e-9)
    assert mean - low == pytest.approx(half, rel=1e-9, abs=1e-9)
    assert low <= mean <= high and std >= 0


def test_one_value_has_no_interval_and_nans_are_left_out() -> None:
    mean, std, low, high = confidence_interval(np.array([3.0, np.nan]))
    assert mean == 3.0 and all(math.isnan(v) for v in (std, low, high))
    assert all(math.isnan(v) for v in confidence_interval(np.array([])))


def test_summarize_per_point_and_metric_leaves_failed_runs_out() -> None:
    runs = pd.DataFrame({"run": [0, 1, 2, 3], "point": [0, 0, 0, 1], "replication": [0, 1, 2, 0],
                         "run_seed": [7, 8, 9, 7], "n.x": [1, 1, 1, 2], "status": [OK, OK, FAILED, OK],
                         "error": [None, None, "E", None], "cost_usd": [10.0, 14.0, np.nan, 5.0],
                         "wall_seconds": [0.1, 0.2, 0.3, 0.4]})
    summary = summarize(runs, ["n.x"])
    assert set(summary["metric"]) == {"cost_usd"}  # wall_seconds is measured, not summarized
    first = summary[summary["point"] == 0].iloc[0]
    assert (first["runs"], first["failed"], first["n"], first["mean"]) == (3, 1, 2, 12.0)
    half = stats.t.ppf(0.975, 1) * np.std([10, 14], ddof=1) / math.sqrt(2)
    assert first["ci_high"] - 12.0 == pytest.approx(half)
    second = summary[summary["point"] == 1].iloc[0]
    assert second["mean"] == 5.0 and math.isnan(second["ci_low"])
    wide = wide_summary(summary, ["n.x"])
    assert list(wide.columns) == ["point", "n.x", "runs", "failed", "cost_usd_mean", "cost_usd_ci_low",
                                  "cost_usd_ci_high"]
    assert list(wide["cost_usd_mean"]) == [12.0, 5.0]


# --- the folder and the command ---------------------------------------------------------------------

def test_write_and_read_a_sweep_folder(serial: sweep_module.Sweep, tmp_path: Path) -> None:
    written = write_sweep(serial, tmp_path / "out")
    assert [p.name for p in written] == ["sweep.parquet", "sweep_summary.parquet", "sweep_summary.json",
                                         "sweep.json"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
    back = read_sweep(tmp_path / "out")
    pd.testing.assert_frame_equal(back.runs, serial.runs)
    assert back.parameter_paths == [COUNT, RATE] and back.replications == 5
    meta = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert meta["parameters"] == [{"path": COUNT, "values": [1, 2]},
                                  {"path": RATE, "values": ["6/h", "12/h"]}]
    assert meta["runs"] == 20 and meta["failed"] == 0
    records = json.loads((tmp_path / "out" / "sweep_summary.json").read_text())
    assert len(records) == len(serial.summary)


def test_the_sweep_command_writes_rows_summary_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    out = tmp_path / "sw"
    code = main(["sweep", str(SCENARIO), "--set", f"{COUNT}=1,2", "--replications", "2", "--workers", "1",
                 "--until", "2h", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "sweep of inf1-docs-ec2: 4 runs" in text and f"results in {out}/" in text
    assert {"sweep.parquet", "sweep_summary.parquet", "sweep.json", "report.html", "report.md"} <= {
        p.name for p in out.iterdir()}
    assert len(pd.read_parquet(out / "sweep.parquet")) == 4


def test_the_sweep_command_exits_1_when_runs_fail_and_2_on_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", str(SCENARIO), "--set", f"{COUNT}=1,-1", "--workers", "1", "--until", "1h",
                 "--out", str(tmp_path / "a"), "--no-report"])
    err = capsys.readouterr().err
    assert code == 1 and "1 of 2 runs failed" in err and "cluster.fleets[0].count" in err
    assert not (tmp_path / "a" / "report.html").exists()
    assert main(["sweep", str(SCENARIO), "--set", "nothing", "--out", str(tmp_path / "b")]) == 2
    assert "--set needs PATH=V1,V2" in capsys.readouterr().err


def test_a_point_label_names_the_fleet_and_only_the_values_it_does_not_say() -> None:
    values = [("cluster.fleets.0.count", 12), ("workloads.0.auto_scaling.target_tracking.0.target", 60)]
    assert sweep_module.point_label("inf2.24xlarge x12", values) == "inf2.24xlarge x12, target=60"
    assert sweep_module.point_label(None, values) == "count=12, target=60"
    assert sweep_module.point_label(None, []) == "as is"
