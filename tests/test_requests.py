"""Requests to an inference service: the queueing model against M/M/c closed forms, routing, the compiled
loop against the Python one, Service Auto Scaling driven by the simulated load, determinism, bad traces."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.scenario import load_scenario, scenario_from_mapping
from scheduler.sim.autoscaling import LOW_ALARM_DATAPOINTS, METRIC_PERIOD_S
from scheduler.sim.engine import Simulation
from scheduler.sim.requests import RequestConfig, RequestLoad, ServiceRequests
from scheduler.targets import TargetError, parse_target

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
TASKDEF = SCENARIOS / "taskdefs" / "inf2-chip-0.json"


def erlang_c_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C / (c mu - lambda))."""
    a = arrival_rate / service_rate
    rho = a / servers
    head = sum(a ** k / math.factorial(k) for k in range(servers))
    tail = a ** servers / (math.factorial(servers) * (1 - rho))
    return tail / (head + tail) / (servers * service_rate - arrival_rate)


def poisson_load(rate: float, mean_service: float, n: int, seed: int) -> RequestLoad:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / rate, n))
    service = rng.exponential(mean_service, n)
    tokens = np.ones(n, dtype=np.int64)
    return RequestLoad(arrival, tokens, tokens, service, service)


def served(load: RequestLoad, tasks: int, config: RequestConfig, *, compiled: bool = True) -> ServiceRequests:
    model = ServiceRequests(config, load, compiled=compiled)
    for k in range(tasks):
        model.add_task(0.0, f"task-{k}")
    model.advance(float(load.arrival[-1]) + 1e6)
    return model


@pytest.mark.parametrize(("tasks", "concurrency", "rate", "routing"), [
    (1, 1, 0.8, "least_outstanding_requests"),   # M/M/1 at 80%
    (2, 2, 3.0, "least_outstanding_requests"),   # M/M/4 at 75%
    (3, 2, 4.8, "round_robin"),                  # M/M/6 at 80%
])
def test_mean_wait_matches_erlang_c(tasks: int, concurrency: int, rate: float, routing: str) -> None:
    load = poisson_load(rate, 1.0, 400_000, seed=tasks * 10 + concurrency)
    model = served(load, tasks, RequestConfig(concurrency=concurrency, routing=routing))  # type: ignore[arg-type]
    wait = model.wait[20_000:]  # past the start, when the queue is empty
    assert np.isfinite(wait).all()
    expected = erlang_c_wait(rate, 1.0, tasks * concurrency)
    assert wait.mean() == pytest.approx(expected, rel=0.06)
    # Erlang C also gives the probability of waiting at all
    waited = (wait > 0).mean()
    a = rate
    c = tasks * concurrency
    head = sum(a ** k / math.factorial(k) for k in range(c))
    tail = a ** c / (math.factorial(c) * (1 - a / c))
    assert waited == pytest.approx(tail / (head + tail), rel=0.04)


def test_utilization_is_the_offered_load_per_slot() -> None:
    load = poisson_load(3.0, 1.0, 200_000, seed=3)
    model = ServiceRequests(RequestConfig(concurrency=2), load)
    for k in range(2):
        model.add_task(0.0, f"t{k}")
    figures = model.period(float(load.arrival[-1]))
    assert model.cpu_percent(figures) == pytest.approx(75.0, rel=0.02)  # lambda / (c mu) = 3 / 4


def _outstanding_at(start: np.ndarray, finish: np.ndarray, task: np.ndarray, tasks: int, t: float,
                    skip: int) -> np.ndarray:
    """Requests in flight on each task just before the arrival at ``t`` (a slot freeing at ``t`` is free)."""
    busy = (start <= t) & (finish > t)
    busy[skip] = False
    return np.bincount(task[busy], minlength=tasks)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**31 - 1), st.sampled_from([0.5, 1.0, 2.0]))
def test_least_outstanding_never_picks_a_busier_task(tasks: int, concurrency: int, seed: int, load: float) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    arrival = np.round(np.cumsum(rng.exponential(1 / (load * tasks * concurrency), n)), 3)
    service = np.round(rng.exponential(1.0, n), 3) + 0.001
    ones = np.ones(n, dtype=np.int64)
    model = served(RequestLoad(arrival, ones, ones, service, service), tasks, RequestConfig(concurrency=concurrency))
    start = arrival + model.wait
    finish = start + service
    for i in range(n):
        outstanding = _outstanding_at(start, finish, model.task, tasks, arrival[i], i)
        if model.wait[i] == 0:
            assert outstanding[model.task[i]] == outstanding.min() < concurrency
            # ties go to the task that has been RUNNING longest (the lowest index here)
            assert model.task[i] == int(np.argmin(outstanding))
        else:  # it queued: every slot was busy, or earlier requests were already waiting
            assert (outstanding >= concurrency).all() or (model.wait[:i][start[:i] > arrival[i]] > 0).any()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2**31 - 1),
       st.sampled_from(["least_outstanding_requests", "round_robin"]), st.sampled_from([None, 0, 3]),
       st.sampled_from([None, 0.5, 5.0]))
def test_compiled_loop_agrees_with_python(tasks: int, concurrency: int, seed: int, routing: str,
                                          limit: int | None, timeout: float | None) -> None:
    load = poisson_load(tasks * concurrency * 1.3, 1.0, 400, seed)
    config = RequestConfig(concurrency=concurrency, routing=routing, queue_limit=limit,  # type: ignore[arg-type]
                           timeout=timeout)
    runs = []
    for compiled in (True, False):
        model = ServiceRequests(config, load, compiled=compiled)
        model.add_task(0.0, "a")
        model.advance(50.0)
        for k in range(1, tasks):
            model.add_task(60.0 + k, f"t{k}")
        model.remove_task(150.0, "a")
        model.add_task(200.0, "late")
        model.advance(1e6)
        runs.append((model.wait, model.task, model.dropped_queue_full, model.dropped_timeout))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2:] == runs[1][2:]


def test_queue_limit_and_timeout_drop_requests() -> None:
    load = poisson_load(4.0, 1.0, 20_000, seed=5)  # four times what one slot serves
    limited = served(load, 1, RequestConfig(concurrency=1, queue_limit=5))
    assert limited.dropped_queue_full > 0 and limited.dropped_timeout == 0
    assert np.nanmax(limited.wait) < 30  # at most 5 ahead, each about a second
    timed = served(load, 1, RequestConfig(concurrency=1, timeout=3.0))
    assert timed.dropped_timeout > 0 and np.nanmax(timed.wait) <= 3.0
    assert np.isnan(timed.wait).sum() == timed.dropped_timeout


def test_a_stopped_task_takes_no_new_requests_and_a_new_one_drains_the_queue() -> None:
    load = poisson_load(2.0, 1.0, 2_000, seed=9)
    model = ServiceRequests(RequestConfig(concurrency=1), load)
    model.add_task(0.0, "a")
    model.remove_task(100.0, "a")
    model.advance(200.0)
    assert model.queued > 0
    arrival = load.arrival
    assert (model.task[(arrival > 101) & (arrival < 200)] == -1).all()
    model.add_task(200.0, "b")
    model.advance(1e6)
    later = (arrival > 100.0) & (arrival < 200.0)
    assert (model.task[later] == 1).all()  # the waiting requests went to b, first come first served
    started = arrival[later] + model.wait[later]
    assert (np.diff(started) >= 0).all()


# --- through the engine ---------------------------------------------------------------------------------

def step_trace(path: Path) -> Path:
    """1 request/s for 10 minutes, 4/s for 20 minutes, then 1/s again for an hour."""
    times = np.concatenate([np.arange(0, 600, 1.0), np.arange(600, 1800, 0.25), np.arange(1800, 5400, 1.0)])
    lines = ["time,input,output"] + [f"{t:.3f},100,10" for t in times]
    path.write_text("\n".join(lines) + "\n")
    return path


def step_scenario(tmp_path: Path) -> dict:
    trace = step_trace(tmp_path / "steps.csv")
    (tmp_path / "td.json").write_text(TASKDEF.read_text())
    return {
        "name": "steps", "seed": 3, "duration": "90m", "sample_interval": "1m",
        "task_definitions": {"td": "td.json"},
        "cluster": {"name": "c", "fleets": [{"instance_type": "inf2.xlarge", "count": 12}]},
        "workloads": [{
            "name": "chat", "kind": "service", "task_definition": "td", "desired_count": 2,
            "requests": {"arrivals": {"type": "trace", "file": trace.name, "time_column": "time",
                                      "input_tokens_column": "input", "output_tokens_column": "output"},
                         "service_time": {"type": "fixed", "mean": 1.0}, "concurrency": 1},
            "auto_scaling": {"min_capacity": 1, "max_capacity": 10, "target_tracking": [
                {"metric": "ECSServiceAverageCPUUtilization", "target": 60, "scale_in_cooldown": 0}]},
        }],
    }


def test_a_load_step_scales_out_after_three_high_datapoints_and_in_after_fifteen_low(tmp_path: Path) -> None:
    data = step_scenario(tmp_path)
    res = Simulation(scenario_from_mapping(data, path=tmp_path / "steps.yaml")).run()
    rows = res.extra_tables["scaling_events"]
    rows = rows[rows["service"] == "chat"]
    first = rows.iloc[0]
    # 2 tasks at 1/s of 1 s requests: 50% CPU, under the target; at 600 s the load quadruples: 100%
    assert first["time"] > 600 and first["count"] > 2
    assert first["time"] <= 600 + 3 * METRIC_PERIOD_S + METRIC_PERIOD_S  # the 3 of 3 high alarm, +1 partial period
    scale_in = rows[rows["count"] < rows["old"]]
    assert len(scale_in) and scale_in.iloc[0]["time"] >= 1800 + LOW_ALARM_DATAPOINTS * METRIC_PERIOD_S
    load = res.extra_tables["service_load"]
    assert (load["desired"].diff().fillna(0) != 0).sum() >= 2
    events = [e for e in res.events if "desired count" in e.get("message", "")]
    assert len(events) == len(rows)
    chat = res.summary.workloads["chat"]
    assert chat.requests.arrived == 600 + 4800 + 3600  # every row of the trace, the last at 5399 s
    assert chat.scaling_activities == len(rows)


def test_runs_are_deterministic() -> None:
    def once() -> tuple:
        res = Simulation(load_scenario(SCENARIOS / "llm-chat-trace.yaml", overrides={"duration": "3h"})).run()
        return res.summary.workloads["chat"], res.extra_tables["service_load"]

    (a, ta), (b, tb) = once(), once()
    assert a == b
    assert ta.equals(tb)
    assert a.requests.served > 10_000 and a.requests.latency.p99_s > a.requests.latency.p50_s > 0


@pytest.mark.parametrize(("change", "expected"), [
    (lambda w, p: p.write_text("time,output\n1,3\n"), "has no column 'input'"),
    (lambda w, p: p.write_text("time,input,output\n1,abc,3\n"), "line 2: column 'input'"),
    (lambda w, p: p.write_text("time,input,output\nsoon,1,3\n"), "line 2: column 'time'"),
    (lambda w, p: p.unlink(), "trace file not found"),
    (lambda w, p: w["requests"].update(sizes={"input_tokens": 3}), "sizes applies to generated arrivals only"),
])
def test_bad_request_input_is_one_line_exit_2(tmp_path: Path, change, expected: str) -> None:
    data = copy.deepcopy(step_scenario(tmp_path))
    change(data["workloads"][0], tmp_path / "steps.csv")
    path = tmp_path / "steps.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "scheduler", "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and expected in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    assert "workloads[0].requests" in proc.stderr or "workloads.0.requests" in proc.stderr


def test_request_latency_is_a_per_service_target() -> None:
    target = parse_target("latency_p99[chat]<2s, ttft_p95[chat] <= 500ms, cost_per_million_tokens[chat] < $3")
    assert target.columns == ["latency_p99_s[chat]", "ttft_p95_s[chat]", "cost_per_million_tokens_usd[chat]"]
    assert [c.value for c in target.conditions] == [2.0, 0.5, 3.0]
    assert target.holds({"latency_p99_s[chat]": 1.9, "ttft_p95_s[chat]": 0.5, "cost_per_million_tokens_usd[chat]": 2})
    assert not target.holds({"latency_p99_s[chat]": 2.1, "ttft_p95_s[chat]": 0.1,
                             "cost_per_million_tokens_usd[chat]": 2})
    for text in ("latency_p99<2s", "latency_p99_s < 2s"):
        with pytest.raises(TargetError, match="name the service in brackets"):
            parse_target(text)


def test_bursty_arrivals_keep_the_mean_rate_of_their_two_levels() -> None:
    from scheduler.sim.plan import BurstyArrivals
    from scheduler.sim.workloads import arrival_times

    spec = BurstyArrivals(base_rate=1.0, burst_rate=20.0, mean_burst=60.0, mean_gap=240.0)
    times = np.fromiter(arrival_times(spec, np.random.default_rng(4), start=0.0, stop=200_000.0), float)
    assert (np.diff(times) >= 0).all() and times[0] >= 0 and times[-1] < 200_000
    expected = (1.0 * 4 + 20.0 * 1) / 5  # time-weighted by the mean spell lengths
    assert len(times) / 200_000 == pytest.approx(expected, rel=0.05)
    per_minute = np.bincount((times // 60).astype(int))
    assert per_minute.var() > 5 * per_minute.mean()  # far burstier than Poisson (variance = mean)


@pytest.mark.parametrize("drop", ["auto_scaling", "requests"])
def test_device_sets_take_neither_requests_nor_auto_scaling(tmp_path: Path, drop: str) -> None:
    from scheduler.errors import ScenarioError

    data = step_scenario(tmp_path)
    workload = data["workloads"][0]
    workload["device_sets"] = "auto"
    del workload[drop]
    kept = "requests" if drop == "auto_scaling" else "auto_scaling"
    with pytest.raises(ScenarioError, match=rf"workloads\[0\]\.{kept}: .*not modelled for a service split into device"):
        scenario_from_mapping(data, path=tmp_path / "steps.yaml")


def test_the_run_table_of_requests_lists_only_services_that_had_requests() -> None:
    from scheduler.readable import REQUEST_ROWS, request_table
    from scheduler.results.summary import Percentiles, RequestFigures, RunSummary, WorkloadSummary

    requests = RequestFigures(arrived=10, served=9, dropped=1, latency=Percentiles(p50_s=0.5, p99_s=2.5),
                              ttft=Percentiles(p99_s=0.25), queue_wait=Percentiles(p99_s=0.0),
                              output_tokens_per_second=12.0, cost_per_million_tokens_usd=3.5)
    summary = RunSummary("s", 1, "device-aware", 60.0, workloads={
        "chat": WorkloadSummary("service", requests=requests), "batch": WorkloadSummary("run_task", tasks_submitted=4)})
    columns, rows = request_table(summary)
    assert len(columns) == 1 + len(REQUEST_ROWS)
    assert [row[0] for row in rows] == ["chat"]
    assert rows[0][1:3] == ("9", "1")
    batch_only = RunSummary("s", 1, "device-aware", 60.0, workloads={"batch": WorkloadSummary("run_task")})
    assert request_table(batch_only)[1] == []


def test_memory_utilization_follows_the_busy_fraction_and_drives_a_memory_policy(tmp_path: Path) -> None:
    data = step_scenario(tmp_path)
    chat = data["workloads"][0]
    chat["requests"].update(idle_memory_percent=40, busy_memory_percent=90)
    chat["auto_scaling"]["target_tracking"] = [{"metric": "ECSServiceAverageMemoryUtilization", "target": 70,
                                                "scale_in_cooldown": 0}]
    res = Simulation(scenario_from_mapping(data, path=tmp_path / "steps.yaml")).run()
    load = res.extra_tables["service_load"]
    live = load[load["running"] > 0]
    assert live["memory_utilization"].between(40, 90).all()
    # the model: idle + (busy - idle) x the busy fraction, the same fraction CPU reads (busy_cpu_percent 100)
    expected = 40 + 50 * live["cpu_utilization"] / 100
    assert np.allclose(live["memory_utilization"], expected)
    rows = res.extra_tables["scaling_events"]
    assert len(rows[rows["service"] == "chat"]) > 0  # 2 tasks at full load use 90% > 70%: it scales out
    # without the two figures memory is not modelled: no datapoint, a memory policy never scales
    del chat["requests"]["idle_memory_percent"], chat["requests"]["busy_memory_percent"]
    res = Simulation(scenario_from_mapping(data, path=tmp_path / "steps.yaml")).run()
    assert res.extra_tables["service_load"]["memory_utilization"].isna().all()
    assert len(res.extra_tables.get("scaling_events", [])) == 0 or not (
        res.extra_tables["scaling_events"]["service"] == "chat").any()
