"""``neuron-sim plan``: the search agrees with the exhaustive grid on small problems, with far fewer
simulations; Dask and the local pool agree; a resumed plan repeats no run; bad input and infeasible
targets are one clear line with exit codes 2 and 1."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from scheduler.cli import main
from scheduler.plan import PlanInputError, RunCache, parse_choose, parse_vary, plan
from scheduler.plan.evaluate import judge
from scheduler.targets import parse_target

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "scenarios" / "plan-test.yaml"  # relative paths resolve from scenarios/
JOB = json.loads((ROOT / "scenarios" / "taskdefs" / "neuron-1chip-any.json").read_text())


def small(rate: str = "12/h", seed: int = 3, fleets: int = 2) -> dict:
    """Jobs holding one Neuron chip for 20 minutes on average, on two or three fixed fleets."""
    types = ["trn1.2xlarge", "inf2.8xlarge", "inf2.xlarge"][:fleets]
    return {"name": "plan-test", "seed": seed, "duration": "3h", "sample_interval": "30m",
            "task_definitions": {"job": JOB},
            "cluster": {"fleets": [{"instance_type": t, "count": 1} for t in types]},
            "workloads": [{"name": "jobs", "kind": "run_task", "task_definition": "job",
                           "arrivals": {"type": "poisson", "rate": rate},
                           "duration": {"type": "exponential", "mean": "20m"}, "on_no_capacity": "wait"}]}


def run_plan(scenario: dict, vary: list[str], target: str, **kw):
    return plan(scenario, vary, target, replications=3, workers=1, source=SOURCE, **kw)


CASES = [
    (small("12/h", 3), ["cluster.fleets.0.count=0..14", "cluster.fleets.1.count=0..14"], "wait_p99<10m"),
    (small("20/h", 8), ["cluster.fleets.0.count=0..14", "cluster.fleets.1.count=0..14"], "wait_p99[jobs]<5m"),
    (small("9/h", 5, fleets=3), ["cluster.fleets.0.count=0..7", "cluster.fleets.1.count=0..5",
                                 "cluster.fleets.2.count=0..5"], "wait_p95<15m,waiting==0"),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_search_finds_the_grids_cheapest_passing_point_with_far_fewer_runs(case: int) -> None:
    scenario, vary, target = CASES[case]
    found = run_plan(scenario, vary, target)
    grid = run_plan(scenario, vary, target, method="grid")
    assert grid.best is not None and found.best is not None
    assert found.grid_points >= 200
    cheapest = min(p.cost_usd[0] for p in grid.points if p.meets)
    assert found.best.cost_usd[0] == pytest.approx(cheapest)
    same = {p.label for p in grid.points if p.meets and p.cost_usd[0] == pytest.approx(cheapest)}
    assert found.best.label in same
    assert found.simulations < 0.25 * grid.simulations
    assert not found.violations


def test_every_point_uses_the_same_seeds_and_the_table_holds_every_run() -> None:
    scenario, vary, target = CASES[0]
    found = run_plan(scenario, vary, target)
    seeds = found.runs.groupby("replication")["run_seed"].nunique()
    assert (seeds == 1).all()  # common random numbers: replication r has one seed at every point
    assert len(found.runs) == found.simulations == sum(p.replications for p in found.points)


def test_a_resumed_plan_simulates_nothing_again() -> None:
    scenario, vary, target = CASES[0]
    cache = RunCache()
    first = run_plan(scenario, vary, target, cache=cache)
    again = run_plan(scenario, vary, target, cache=RunCache(cache.rows))
    assert first.simulated == first.simulations > 0
    assert again.simulated == 0
    pd.testing.assert_frame_equal(first.runs, again.runs)
    wider = run_plan(scenario, ["cluster.fleets.0.count=0..16", "cluster.fleets.1.count=0..14"], target,
                     cache=RunCache(cache.rows))
    assert wider.simulated < wider.simulations  # a widened plan reuses what it can


def test_dask_and_local_plans_write_the_same_table() -> None:
    scenario, vary, target = ROOT / "scenarios" / "inf1-docs-ec2.yaml", ["cluster.fleets.0.count=1..6"], "wait_p99<30m"
    local = plan(scenario, vary, target, replications=3, workers=2, until=7200.0)
    on_dask = plan(scenario, vary, target, replications=3, workers=2, until=7200.0, executor="dask")
    assert len(local.runs) > 0
    pd.testing.assert_frame_equal(local.runs, on_dask.runs)


class FakeEvaluator:
    """Points meet the target by a rule given here instead of by simulation (the search's logic alone)."""

    def __init__(self, meets) -> None:
        self.meets, self.points, self.order = meets, {}, []

    def evaluate(self, keys):
        from scheduler.plan.evaluate import PointResult

        for key in keys:
            if key not in self.points:
                x, y = (v for _, v in key)
                self.points[key] = PointResult(key, label=f"x{x} y{y}", price_per_hour=x + 2 * y,
                                               meets=self.meets(x, y), cost_usd=(x + 2 * y, 0, 0))
                self.order.append(key)
        return [self.points[k] for k in keys]


@pytest.mark.parametrize("rule, answer", [
    (lambda x, y: x + y >= 5, (5, 0)),                      # monotone: the staircase walk
    (lambda x, y: x + y >= 5 and x != 9, (5, 0)),           # x = 9 fails where x = 5 passes
    (lambda x, y: (x + y >= 5 and x < 9) or x == 3, (3, 0)),  # a point below the staircase passes
])
def test_the_search_on_a_known_feasible_set_and_its_monotonicity_check(rule, answer) -> None:
    from scheduler.plan.search import Search
    from scheduler.plan.space import Dimension

    dims = [Dimension("x", 0, 12), Dimension("y", 0, 6)]
    search = Search(FakeEvaluator(rule), dims, [], lambda key: key[0][1] + 2 * key[1][1], parallel=2)
    best = search.run()
    monotone = all(rule(x + dx, y + dy) >= rule(x, y) for x in range(12) for y in range(6)
                   for dx, dy in ((1, 0), (0, 1)))
    assert best is not None and tuple(v for _, v in best.key) == answer
    assert bool(search.violations) == bool(search.exhaustive)
    if monotone:
        assert not search.violations
        assert len(search.ev.points) < 13 * 7 // 3  # a fraction of the grid


def test_an_upper_bound_decides_a_less_than_target() -> None:
    condition = parse_target("wait_p99<60s").conditions[0]
    assert judge(condition, [10.0, 10.0, 10.0], 0.95).holds
    spread = judge(condition, [10.0, 50.0, 70.0], 0.95)
    assert spread.mean < 60 and not spread.holds and spread.straddles  # the mean passes, the bound does not
    assert not judge(condition, [100.0, 101.0, 102.0], 0.95).straddles
    assert not judge(condition, [float("nan"), 1.0], 0.95).holds


@pytest.mark.parametrize("text", ["cluster.fleets.0.count", "cluster.fleets.0.count=4", "x=9..3", "=1..2",
                                  "cluster.fleets.0.count=a..b", "x=-1..3"])
def test_bad_vary_is_refused(text: str) -> None:
    with pytest.raises(PlanInputError):
        parse_vary(text)


def test_choose_reads_the_sweeps_value_syntax() -> None:
    choice = parse_choose("cluster.fleets.0.instance_type=inf2.24xlarge, inf2.48xlarge")
    assert choice.values == ("inf2.24xlarge", "inf2.48xlarge")
    with pytest.raises(PlanInputError):
        parse_choose("cluster.fleets.0.instance_type=a,a")


LLAMA = ROOT / "scenarios" / "llama-inf2.yaml"


@pytest.mark.parametrize("options, message", [
    (["--vary", "cluster.fleets.0.count=9..3", "--target", "wait_p99<60s"], "--vary"),
    (["--vary", "cluster.fleets.0.count=1..3", "--target", "wait_p99[nope]<60s"], "nope"),
    (["--vary", "cluster.fleets.0.count=1..3", "--target", "wait_p99<<60s"], "--target"),
    (["--vary", "cluster.fleets.0.count=1..3", "--choose", "cluster.fleets.0.instance_type=", "--target",
      "wait_p99<60s"], "--choose"),
    (["--vary", "cluster.fleets.0.count=1..3"], "--target"),
    # a path the scenario lacks, or a value it refuses: one line before any simulation, not "nothing meets"
    (["--vary", "cluster.fleets.9.count=1..4", "--target", "shortfall==0"], "cluster.fleets.9.count=1"),
    (["--vary", "cluster.fleets.0.count=1..4", "--choose", "cluster.fleets.0.instance_type=inf2.24xlarge,bogus.type",
      "--target", "shortfall==0"], "bogus.type"),
    # a request figure of a workload that receives no requests can never be met
    (["--vary", "cluster.fleets.0.count=1..4", "--target", "latency_p99[llama]<2s"], "receives no requests"),
    (["--vary", "cluster.fleets.0.count=1..4", "--target", "shortfall==0", "--initial", "9", "--replications", "3"],
     "--initial"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str],
                                          message: str) -> None:
    code = main(["plan", str(LLAMA), "--out", str(tmp_path / "out"), *options])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_plan_command_writes_its_folder_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plan"
    args = ["plan", str(ROOT / "scenarios" / "inf1-docs-ec2.yaml"), "--vary", "cluster.fleets.0.count=1..6",
            "--target", "wait_p99<30m", "--replications", "2", "--until", "2h", "--workers", "1", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "cheapest meeting" in text and "simulations:" in text
    meta = json.loads((out / "plan.json").read_text())
    runs = pd.read_parquet(out / "plan.parquet")
    assert len(runs) == meta["simulations"] and meta["best"]["meets_target"]
    assert (out / "plan_scenario.yaml").is_file() and (out / "report.html").is_file()
    assert "duration: 7200s" in (out / "plan_scenario.yaml").read_text()  # judged on --until 2h: runs as judged
    chosen = tmp_path / "chosen"  # the written scenario runs, with the chosen count
    assert main(["run", str(out / "plan_scenario.yaml"), "--until", "10m", "--out", str(chosen), "--no-report"]) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert json.loads((out / "plan.json").read_text())["simulated_now"] == 0


def test_an_infeasible_plan_names_the_closest_target_and_exits_1(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", str(ROOT / "scenarios" / "inf1-docs-ec2.yaml"), "--vary", "cluster.fleets.0.count=1..2",
            "--target", "cost<$0.01,tasks_failed<=1000", "--replications", "2", "--until", "2h", "--workers", "1",
            "--out", str(tmp_path / "plan")]
    code = main(args)
    out = capsys.readouterr().out
    assert code == 1
    assert "no configuration in the ranges meets" in out and "cost<$0.01 fails closest" in out


def test_a_workloads_shortfall_sums_its_device_set_services() -> None:
    """llama runs as one service per chip block; shortfall[llama] (a plan's target) is their sum, not None."""
    from scheduler.scenario import load_scenario
    from scheduler.sim.engine import Simulation

    loaded = load_scenario(LLAMA, overrides={"cluster.fleets.0.count": 4})
    summary = Simulation(loaded, until=6 * 3600.0).run().summary
    by_service = summary.service_shortfall_task_hours
    assert len(by_service) == 3 and sum(by_service.values()) > 0
    assert summary.workloads["llama"].shortfall_task_hours == pytest.approx(sum(by_service.values()), abs=1e-5)


def test_a_plan_with_a_categorical_choice_finds_the_grids_answer() -> None:
    """``--choose`` enumerates the instance type of the second fleet; each choice is searched (or skipped when
    even its cheapest point costs more than the best found), and the answer is the grid's."""
    scenario = small("12/h", 4)
    vary = ["cluster.fleets.0.count=0..10", "cluster.fleets.1.count=0..10"]
    choose = ["cluster.fleets.1.instance_type=inf2.8xlarge,inf2.xlarge"]
    found = run_plan(scenario, vary, "wait_p99<10m", choose=choose)
    grid = run_plan(scenario, vary, "wait_p99<10m", choose=choose, method="grid")
    assert found.grid_points == grid.grid_points == 2 * 11 * 11
    cheapest = min(p.cost_usd[0] for p in grid.points if p.meets)
    assert found.best is not None and found.best.cost_usd[0] == pytest.approx(cheapest)
    assert found.simulations < 0.5 * grid.simulations
    assert {p.values["cluster.fleets.1.instance_type"] for p in found.points} <= {"inf2.8xlarge", "inf2.xlarge"}


def test_the_chosen_scenario_names_its_files_relative_to_the_output_folder(tmp_path: Path) -> None:
    """A scenario with a trace file and task definitions: the written answer finds them from --out."""
    import yaml

    from scheduler.plan.output import chosen_scenario
    from scheduler.scenario import load_scenario

    source = ROOT / "scenarios" / "llm-chat-trace.yaml"
    out = tmp_path / "deep" / "plan"
    out.mkdir(parents=True)
    text = chosen_scenario(source, {"workloads.0.auto_scaling.max_capacity": 12}, out, until=3600.0)
    (out / "plan_scenario.yaml").write_text(text)
    data = yaml.safe_load(text)
    assert data["duration"] == "3600s" and data["workloads"][0]["auto_scaling"]["max_capacity"] == 12
    trace = data["workloads"][0]["requests"]["arrivals"]["file"]
    assert (out / trace).resolve() == (source.parent / "traces/azure-llm-inference-2023/"
                                       "AzureLLMInferenceTrace_conv.csv").resolve()
    load_scenario(out / "plan_scenario.yaml")  # loads: every file it names is found
