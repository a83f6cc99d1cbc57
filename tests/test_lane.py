"""The stream lane (scheduler.sim.lane) against the plain path, the reference: for the same scenario and
seed both give identical results (summary but wall seconds, tasks, timeline, events, DescribeTasks,
DescribeContainerInstances), and the lane's loop uncompiled (its ``py_func``) gives what it gives compiled."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.placement import kernel
from scheduler.scenario import load_scenario, scenario_from_mapping
from scheduler.sim import lane, metrics
from scheduler.sim.engine import Results, Simulation

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
BENCH = ROOT / "benchmarks" / "simulation.yaml"

pytest.importorskip("numba")


def _run(scenario, path: str, *, until: float | None = None, compiled: bool = True,
         sink: Path | None = None) -> Results:
    return Simulation(scenario, until=until, path=path, lane_compiled=compiled, task_sink=sink).run()


def _run_lane(scenario, *, until: float | None = None, compiled: bool = True) -> tuple[Results, dict[str, int]]:
    """A run with ``--path fast``, and how many tasks the lane placed itself, by workload (none: no lane)."""
    sim = Simulation(scenario, until=until, path="fast", lane_compiled=compiled)
    res = sim.run()
    return res, ({} if sim.lane is None else dict(sim.lane.tasks_run))


def _assert_same(plain: Results, fast: Results) -> None:
    assert dataclasses.replace(plain.summary, wall_seconds=0.0) == dataclasses.replace(fast.summary, wall_seconds=0.0)
    if plain.tasks is not None:
        assert plain.tasks.equals(fast.tasks)
        assert list(plain.tasks.dtypes) == list(fast.tasks.dtypes)
    assert plain.timeline.equals(fast.timeline)
    assert plain.events == fast.events
    assert json.dumps(plain.describe_tasks, default=str) == json.dumps(fast.describe_tasks, default=str)
    assert (json.dumps(plain.describe_container_instances, default=str)
            == json.dumps(fast.describe_container_instances, default=str))


# the bundled scenarios the lane runs, with the workloads it runs (the others run plain, for the reason given)
LANE_RUNS = {"diurnal-inf2.yaml": {"inference"}, "managed-neuron-mi.yaml": {"managed-jobs"},
             "mixed-cluster.yaml": {"inf2-inference", "gpu-jobs"}, "asg-inf2-diurnal.yaml": {"inference"},
             "faults-inf2-spot.yaml": {"batch-embeddings"}, "mi-neuron-mix.yaml": {"managed-jobs"}}


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.glob("*.yaml")))
def test_every_bundled_scenario_gives_the_same_results_through_both_paths(name: str) -> None:
    """The scenarios the lane runs, over their whole duration (the lane places tasks of each of its
    workloads, start-up models included), compiled and uncompiled; the others for 15 minutes."""
    loaded = load_scenario(SCENARIOS / name)
    until = None if name in LANE_RUNS else 900.0
    plain = _run(loaded, "plain", until=until)
    fast, ran = _run_lane(loaded, until=until)
    assert plain.path == "plain"
    if name in LANE_RUNS:
        assert fast.path == "fast", fast.path_note
        assert set(ran) == LANE_RUNS[name] and min(ran.values()) > 0, ran
        slow, ran_slow = _run_lane(loaded, until=until, compiled=False)
        assert ran_slow == ran
        _assert_same(fast, slow)
    else:  # a feature the lane does not model: the reason is stated
        assert fast.path == "plain" and fast.path_note and not ran
    _assert_same(plain, fast)


def test_the_benchmark_scenario_runs_in_the_lane_and_agrees_compiled_and_uncompiled(monkeypatch) -> None:
    """Against the plain path deciding on the Python placement path (the reference of the kernel too)."""
    loaded = load_scenario(BENCH)
    with monkeypatch.context() as m:
        m.setattr(kernel, "cache_is_warm", lambda: False)  # 5,000 instances: "auto" keeps to Python then
        sim = Simulation(loaded, until=1200.0, path="plain")
        plain = sim.run()
        assert sim.state._live is None
    fast = _run(loaded, "fast", until=1200.0)
    slow = _run(loaded, "fast", until=1200.0, compiled=False)
    assert fast.path == slow.path == "fast"
    assert len(plain.tasks) > 5000
    _assert_same(plain, fast)
    _assert_same(fast, slow)


def test_streamed_task_tables_are_byte_identical_across_chunks(tmp_path: Path, monkeypatch) -> None:
    """Chunks of the streamed Parquet file fall where the plain path's do (rows in stop order)."""
    monkeypatch.setattr(metrics, "CHUNK_ROWS", 997)
    loaded = load_scenario(BENCH)
    _run(loaded, "plain", until=900.0, sink=tmp_path / "plain.parquet")
    fast = _run(loaded, "fast", until=900.0, sink=tmp_path / "fast.parquet")
    assert fast.path == "fast"
    assert (tmp_path / "plain.parquet").read_bytes() == (tmp_path / "fast.parquet").read_bytes()


def test_plain_is_chosen_with_the_reason() -> None:
    loaded = load_scenario(SCENARIOS / "llama-inf2.yaml")
    res = _run(loaded, "fast", until=60.0)
    assert res.path == "plain" and "device sets" in res.path_note
    assert lane.choose(Simulation(loaded), "plain") == ("plain", "the plain path was asked for")
    with pytest.raises(ValueError, match="path must be"):
        lane.choose(Simulation(loaded), "quick")


def test_the_lane_records_its_warm_cache_as_the_kernel_does(tmp_path, monkeypatch) -> None:
    """The lane's loop is "warm" only after it was compiled (or loaded) for these sources: a fresh cache
    directory has no marker, loading the loop writes one, and a marker for other sources says nothing."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert not lane.cache_is_warm()
    lane.functions(compiled=False)  # the uncompiled loop records nothing
    assert not lane.cache_is_warm()
    lane.functions(compiled=True)
    assert lane.cache_is_warm()
    assert not kernel.cache_is_warm("lane", ("scheduler.sim.lane",))  # another source: another marker


def test_an_edited_kernel_empties_the_lanes_cached_loop(monkeypatch) -> None:
    """numba checks only the loop's own file; the lane empties the loop's cache index when a kernel source is
    newer than it (and leaves it alone otherwise)."""
    from scheduler.sim import _lane_impl as li

    lane.functions(compiled=True)
    flushed: list[bool] = []
    monkeypatch.setattr(li.step._cache, "flush", lambda: flushed.append(True))
    lane._drop_stale_loop(li.step)
    assert flushed == []
    index = li.step._cache._cache_file._index_path
    stamp = Path(index).stat().st_mtime
    with monkeypatch.context() as m:  # the kernel's source a second newer than the loop's cache index
        m.setattr(os.path, "getmtime", lambda p: stamp + 1 if str(p).endswith("_kernel_impl.py") else stamp)
        lane._drop_stale_loop(li.step)
    assert flushed == [True]


def test_auto_takes_the_lane_cold_only_for_a_large_run(monkeypatch) -> None:
    monkeypatch.setattr(lane, "cache_is_warm", lambda: False)
    small = Simulation(load_scenario(SCENARIOS / "diurnal-inf2.yaml"))  # a few thousand tasks a day
    assert small.path == "plain" and "small run" in small.path_note
    assert 0 < lane.expected_tasks(small) < lane.AUTO_MIN_TASKS
    services = Simulation(load_scenario(SCENARIOS / "trn1-per-chip-services.yaml"), path="fast")  # no stream
    assert services.path == "plain" and "no RunTask workload" in services.path_note
    assert lane.expected_tasks(services) == 0
    big = Simulation(load_scenario(BENCH))  # about 1,000,000 tasks a day
    assert 900_000 < lane.expected_tasks(big) < 1_100_000 and big.path == "fast"


def test_auto_takes_the_warm_lane_only_where_it_saves_its_start(monkeypatch) -> None:
    """A warm start still loads the compiled loop: a bundled scenario of a few thousand tasks stays plain, a run of
    tens of thousands takes the lane."""
    monkeypatch.setattr(lane, "cache_is_warm", lambda: True)
    small = Simulation(load_scenario(SCENARIOS / "faults-inf2-spot.yaml"))
    assert small.path == "plain" and "small run" in small.path_note
    assert 0 < lane.expected_tasks(small) < lane.AUTO_WARM_MIN_TASKS
    busier = Simulation(load_scenario(BENCH), until=3600.0)  # about 40,000 tasks in the hour
    assert lane.AUTO_WARM_MIN_TASKS < lane.expected_tasks(busier) < lane.AUTO_MIN_TASKS and busier.path == "fast"


# ---------------------------------------------------------------- generated RunTask scenarios
TASKDEFS = {"chip0": "taskdefs/inf2-chip-0.json", "trn0": "taskdefs/trn1-chip-00.json",
            "trn1": "taskdefs/trn1-chip-01.json", "web": "taskdefs/cpu-sidecar.json", "gpu": "taskdefs/g5-gpu.json",
            "big": "taskdefs/inf2-24xlarge-2chip.json"}
STRATEGIES = [[], [{"type": "random"}], [{"type": "binpack", "field": "memory"}],
              [{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "binpack", "field": "cpu"}],
              [{"type": "spread", "field": "attribute:ecs.availability-zone"}]]


STARTUPS = [{"image_pull": "40s", "image_pull_cached": "2s", "start": "15s"},
            {"image_pull": {"type": "lognormal", "median": "30s", "sigma": 0.4},
             "start": {"type": "exponential", "mean": "20s"}},
            {"start": {"type": "empirical", "values": ["1s", "5s", "1m"]}}]
# what sends one RunTask workload to the plain path beside the lane: a request the compiled kernel does not decide
BESIDE = [{"placement_constraints": [{"type": "distinctInstance"}]},
          {"placement_strategy": [{"type": "spread", "field": "instanceId"}]}]


@st.composite
def runtask_scenarios(draw) -> dict:
    fleets = [{"instance_type": t, "count": draw(st.integers(1, 3))}
              for t in draw(st.lists(st.sampled_from(["inf2.xlarge", "trn1.32xlarge", "c6i.2xlarge", "g5.xlarge",
                                                      "inf2.24xlarge"]), min_size=1, max_size=4, unique=True))]
    workloads = []
    for k in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):  # interval arrivals and fixed durations: ties at equal times
            arrivals = {"type": "interval", "every": f"{draw(st.sampled_from([5, 10, 30, 60]))}s"}
            if draw(st.booleans()):
                arrivals["jitter"] = "3s"
            duration = {"type": "fixed", "value": f"{draw(st.sampled_from([10, 30, 60, 120, 600]))}s"}
        else:
            arrivals = draw(st.sampled_from([
                {"type": "poisson", "rate": f"{draw(st.sampled_from([0.05, 0.2, 1.0]))}/s"},
                {"type": "once", "at": "2m", "calls": 5},
                {"type": "diurnal", "peak_rate": "0.5/s", "trough_rate": "0.05/s", "peak_at": "10m", "period": "30m"},
                {"type": "bursty", "base_rate": "0.05/s", "burst_rate": "2/s", "mean_burst": "20s", "mean_gap": "3m"}]))
            duration = draw(st.sampled_from([
                {"type": "exponential", "mean": f"{draw(st.sampled_from([30, 120, 600]))}s"},
                {"type": "lognormal", "median": "60s", "sigma": 0.6},
                {"type": "empirical", "values": ["10s", "60s", "5m"], "weights": [1, 2, 1]}, "10h"]))
        w = {"name": f"w{k}", "kind": "run_task", "task_definition": draw(st.sampled_from(sorted(TASKDEFS))),
             "arrivals": arrivals, "count": draw(st.integers(1, 3)),
             "on_no_capacity": draw(st.sampled_from(["fail", "wait"])),
             "placement_strategy": draw(st.sampled_from(STRATEGIES))}
        w["duration"] = duration  # 10h: every task still runs at the end
        if draw(st.integers(0, 2)) == 0:  # PENDING from placement while images are pulled and containers start
            w["startup"] = draw(st.sampled_from(STARTUPS))
        if k > 0 and draw(st.integers(0, 3)) == 0:  # on the plain path beside the lane (the first one stays in it)
            w.update(draw(st.sampled_from(BESIDE)))
        if draw(st.booleans()):
            w["start"] = f"{draw(st.sampled_from([0, 15, 60]))}s"
        if draw(st.integers(0, 3)) == 0:
            w["max_calls"] = draw(st.integers(1, 20))
        workloads.append(w)
    if draw(st.booleans()):  # a REPLICA service alongside, scaled up and down (it stops its own tasks)
        steps = [{"at": f"{at}s", "count": n} for at, n in zip((0, 300, 900), draw(
            st.lists(st.integers(0, 4), min_size=3, max_size=3)), strict=True)]
        workloads.append({"name": "svc", "kind": "service", "task_definition": draw(st.sampled_from(sorted(TASKDEFS))),
                          "schedule": steps, "placement_strategy": draw(st.sampled_from(STRATEGIES))})
    if draw(st.booleans()):  # a DAEMON service: its task waits on its own instance for what lane tasks hold
        workloads.append({"name": "daemon", "kind": "service", "scheduling_strategy": "DAEMON",
                          "task_definition": draw(st.sampled_from(["web", "chip0", "trn0"]))})
    return {"name": "gen", "seed": draw(st.integers(0, 2**31)), "duration": "30m", "sample_interval": "5m",
            "task_definitions": dict(TASKDEFS), "cluster": {"fleets": fleets}, "workloads": workloads}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=runtask_scenarios(), compiled=st.booleans())
def test_generated_runtask_scenarios_give_the_same_results_through_both_paths(data: dict, compiled: bool) -> None:
    """Start-up models, and workloads on the plain path beside the lane, included; the lane's loop compiled or
    uncompiled (its ``py_func``)."""
    loaded = scenario_from_mapping(data, path=SCENARIOS / "gen.yaml")
    plain = _run(loaded, "plain")
    fast, _ = _run_lane(loaded, compiled=compiled)
    assert fast.path == "fast", fast.path_note
    beside = tuple(w["name"] for w in data["workloads"] if any(w.get(key) == value for b in BESIDE
                                                                for key, value in b.items()))
    assert fast.plain_beside == beside
    _assert_same(plain, fast)


def test_run_writes_byte_identical_files_through_both_paths(tmp_path: Path, capsys) -> None:
    """``neuron-sim run --path plain`` and ``--path fast``: every file of the results folder byte for byte
    (summary.json but its wall seconds; the reports, which print them, left out)."""
    from scheduler.cli import main

    folders = {}
    for path in ("plain", "fast"):
        out = tmp_path / path
        assert main(["run", str(BENCH), "--until", "10m", "--path", path, "--out", str(out), "--no-report",
                     "--json"]) == 0
        folders[path] = out
    assert "plain path ran" not in capsys.readouterr().err
    _assert_same_files(folders["plain"], folders["fast"])


def _assert_same_files(plain: Path, fast: Path) -> None:
    """Every file of two results folders byte for byte (summary.json but its wall seconds)."""
    names = sorted(p.name for p in plain.iterdir())
    assert names == sorted(p.name for p in fast.iterdir())
    assert "tasks.parquet" in names and "describe_tasks.json" in names
    for name in names:
        a, b = plain / name, fast / name
        if name == "summary.json":
            ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
            ja.pop("wall_seconds")
            jb.pop("wall_seconds")
            assert ja == jb
        else:
            assert a.read_bytes() == b.read_bytes(), name


def test_workloads_the_lane_cannot_run_go_plain_beside_it(tmp_path: Path, capsys) -> None:
    """A trace replay and a request the kernel does not decide run on the plain path beside the lane's stream
    (start-up model included); ``run --path fast`` names them with their reasons, and the files are the plain
    path's byte for byte."""
    from scheduler.cli import main

    (tmp_path / "taskdefs").mkdir()
    for name in ("cpu-sidecar.json", "inf2-chip-0.json"):
        (tmp_path / "taskdefs" / name).write_text((SCENARIOS / "taskdefs" / name).read_text())
    rows = "".join(f"{t},{40 + t % 70}s\n" for t in range(0, 1500, 7))
    (tmp_path / "jobs.csv").write_text("submit,duration\n" + rows)
    every = {"type": "exponential", "mean": "90s"}
    scenario = {"name": "beside", "seed": 11, "duration": "30m", "sample_interval": "5m",
                "task_definitions": {"web": "taskdefs/cpu-sidecar.json", "chip": "taskdefs/inf2-chip-0.json"},
                "cluster": {"fleets": [{"instance_type": "c6i.2xlarge", "count": 2},
                                       {"instance_type": "inf2.xlarge", "count": 8}]},
                "workloads": [
                    {"name": "stream", "kind": "run_task", "task_definition": "chip", "duration": every,
                     "arrivals": {"type": "poisson", "rate": "0.05/s"}, "on_no_capacity": "wait",
                     "startup": {"image_pull": "30s", "image_pull_cached": "1s", "start": "20s"}},
                    {"name": "replay", "kind": "run_task", "task_definition": "web",
                     "arrivals": {"type": "trace", "file": "jobs.csv"}, "on_no_capacity": "wait"},
                    {"name": "apart", "kind": "run_task", "task_definition": "web", "duration": every,
                     "arrivals": {"type": "interval", "every": "20s"}, "count": 2,
                     "placement_constraints": [{"type": "distinctInstance"}]},
                    {"name": "web", "kind": "service", "task_definition": "web", "desired_count": 2}]}
    path = tmp_path / "beside.yaml"
    path.write_text(json.dumps(scenario))
    sim = Simulation(load_scenario(path), path="fast")
    res = sim.run()
    assert res.path == "fast" and res.plain_beside == ("replay", "apart")
    assert sim.lane is not None and sim.lane.tasks_run["stream"] > 10 and set(sim.lane.tasks_run) == {"stream"}
    assert (res.path_note == "RunTask streams in the compiled stream lane: stream; on the plain path beside it: "
            "replay (replays a trace), apart (distinctInstance depends on the tasks running: decided on the "
            "Python path)")
    stream = res.tasks[res.tasks["workload"] == "stream"]
    started = stream["startup_s"].dropna()
    assert len(started) > 10 and (started >= 21.0).all() and set(stream["pull_s"].dropna().round(6)) == {1.0, 30.0}
    for run in ("plain", "fast"):
        assert main(["run", str(path), "--path", run, "--out", str(tmp_path / run), "--no-report", "--json"]) == 0
        err = capsys.readouterr().err
        assert ("notice: RunTask streams in the compiled stream lane: stream" in err) == (run == "fast")
    _assert_same_files(tmp_path / "plain", tmp_path / "fast")


def test_run_says_when_the_plain_path_ran_instead(tmp_path: Path, capsys) -> None:
    from scheduler.cli import main

    assert main(["run", str(SCENARIOS / "static-paths-blind.yaml"), "--until", "1m", "--path", "fast", "--out",
                 str(tmp_path / "r"), "--no-report", "--json"]) == 0
    assert "the plain path ran this scenario: device_mode ecs-blind" in capsys.readouterr().err


@settings(max_examples=100, deadline=None)
@given(keys=st.lists(st.tuples(st.sampled_from([0.0, 1.0, 1.5, 2.0, 7.25]), st.integers(0, 10**6)), max_size=60,
                     unique_by=lambda k: k[1]))
def test_the_lane_heap_pops_in_simpy_order(keys: list[tuple[float, int]]) -> None:
    """(time, eid), as simpy's heap orders events of one priority; the uncompiled and compiled heaps agree."""
    import numpy as np

    from scheduler.sim import _lane_impl as li

    for push, pop in ((li.heap_push, li.heap_pop), (li.heap_push.py_func, li.heap_pop.py_func)):
        C = np.zeros(li.NC, np.int64)
        HT, HE, HP = np.zeros(64), np.zeros(64, np.int64), np.zeros(64, np.int64)
        for t, e in keys:
            push(HT, HE, HP, C, t, e, e % 7)
        out = []
        while C[li.C_HEAP]:
            out.append((float(HT[0]), int(HE[0]), int(HP[0])))
            pop(HT, HE, HP, C)
        assert out == [(t, e, e % 7) for t, e in sorted(keys)]


def test_a_daemon_waiting_for_what_lane_tasks_hold_starts_when_one_exits() -> None:
    """The lane's release on an instance a daemon task waits on is the waiting room's: the daemon starts then."""
    data = {"name": "d", "seed": 3, "duration": "20m", "sample_interval": "5m",
            "task_definitions": {"web": "taskdefs/cpu-sidecar.json", "gpu": "taskdefs/g5-gpu.json"},
            "cluster": {"fleets": [{"instance_type": "c6i.2xlarge", "count": 1}, {"instance_type": "g5.xlarge",
                                                                                  "count": 1}]},
            "workloads": [{"name": "a", "kind": "run_task", "task_definition": "web",
                           "arrivals": {"type": "interval", "every": "90s"},
                           "duration": {"type": "exponential", "mean": "60s"}, "count": 10},
                          {"name": "b", "kind": "run_task", "task_definition": "gpu",
                           "arrivals": {"type": "interval", "every": "10s"}, "duration": "30s",
                           "on_no_capacity": "wait"},
                          {"name": "d", "kind": "service", "scheduling_strategy": "DAEMON", "task_definition": "web"}]}
    loaded = scenario_from_mapping(data, path=SCENARIOS / "d.yaml")
    plain, fast = _run(loaded, "plain"), _run(loaded, "fast")
    assert fast.path == "fast"
    daemon_starts = sorted(fast.tasks[fast.tasks["workload"] == "d"]["start"])
    assert daemon_starts[0] == 0.0 and daemon_starts[1] > 0.0  # one waited for a lane task to exit
    _assert_same(plain, fast)


@given(times=st.lists(st.tuples(st.floats(0, 1e5), st.floats(0, 100), st.floats(0, 100)), max_size=20))
def test_the_slo_tally_takes_columns_as_it_takes_tasks(times: list[tuple[float, float, float]]) -> None:
    from types import SimpleNamespace

    from scheduler.sim.slo import SLOTally

    one, many = SLOTally({"w": "run_task"}), SLOTally({"w": "run_task"})
    for created, wait, startup in times:
        task = SimpleNamespace(workload="w", created_at=created, placed_at=created + wait - startup,
                               started_at=created + wait, last_status="STOPPED", stopped_at=None, stop_code=None,
                               seeded=False)
        one.record(task, 0.0)
    many.record_started("w", [(c + w) - c for c, w, _ in times], [(c + w) - (c + w - s) for c, w, s in times])
    assert one.section({}) == many.section({})


def test_an_interrupted_run_gives_the_same_partial_results_through_both_paths() -> None:
    """Ctrl-C between two events (here: asked for at the sample at 10 minutes) stops both paths at the same
    event (just after the sample at 15 min), with the same partial results."""
    loaded = load_scenario(BENCH)
    out = {}
    for path in ("plain", "fast"):
        sim = Simulation(loaded, until=1800.0, path=path)

        def stop_at(t: float, _end: float, sim: Simulation = sim) -> None:
            if t >= 600.0:
                sim.clock.interrupted = True

        sim.progress = stop_at
        out[path] = sim.run()
    assert out["fast"].path == "fast"
    assert out["plain"].summary.partial and 900.0 <= out["plain"].summary.sim_seconds < 1800.0  # 15 min samples
    _assert_same(out["plain"], out["fast"])
    for path in ("plain", "fast"):  # stopped before the first event (a signal while the run was being built)
        sim = Simulation(loaded, until=1800.0, path=path)
        sim.clock.interrupted = True
        out[path] = sim.run()
    assert out["fast"].summary.sim_seconds == 0.0 and out["fast"].summary.instances.peak == 5000
    _assert_same(out["plain"], out["fast"])


def test_an_interrupted_run_with_tasks_starting_gives_the_same_partial_results() -> None:
    """Stopped between two events while lane tasks are PENDING (pulling images, starting containers): both
    paths end at the same event with the same rows, start-up tallies and DescribeTasks views."""
    loaded = load_scenario(SCENARIOS / "diurnal-inf2.yaml")
    out = {}
    for path in ("plain", "fast"):
        sim = Simulation(loaded, path=path)

        def stop_at(t: float, _end: float, sim: Simulation = sim) -> None:
            if t >= 9 * 3600.0:
                sim.clock.interrupted = True

        sim.progress = stop_at
        out[path] = sim.run()
    assert out["fast"].path == "fast" and out["fast"].summary.partial
    assert (out["fast"].tasks["final_state"] == "PENDING").sum() > 0
    _assert_same(out["plain"], out["fast"])


def test_the_lanes_total_indices_are_the_cores() -> None:
    """The compiled lane changes the cluster totals by index: they must be placement.state's."""
    from scheduler.placement import state
    from scheduler.sim import _lane_impl as li

    lane_indices = (li.USED_CPU, li.USED_MEMORY, li.HELD_CHIPS, li.NL)
    assert lane_indices == (state.USED_CPU, state.USED_MEMORY, state.HELD_CHIPS, len(state.Totals._fields))


# ---------------------------------------------------------------- faults, Spot and capacity providers
@st.composite
def faulty_scenarios(draw) -> dict:
    """Generated RunTask scenarios on instances that faults, Spot notices and a scaling Auto Scaling group
    take away while lane tasks run on them (fast clocks: several strikes in 30 minutes)."""
    data = draw(runtask_scenarios())
    for fleet in data["cluster"]["fleets"]:
        fleet["spot"] = draw(st.booleans())
    faults: dict = {}
    if draw(st.booleans()):
        faults["instance_failures"] = [{"mtbf": draw(st.sampled_from(["20m", "1h"]))}]
    if draw(st.booleans()):
        faults["chip_failures"] = [{"mtbf": "15m"}]
    if draw(st.booleans()):
        faults["agent_disconnects"] = [{"mtbf": "30m", "duration": "3m"}]
    if draw(st.booleans()):
        faults["instance_retirements"] = [{"at": ["7m", "19m"], "notice": draw(st.sampled_from(["0s", "2m"]))}]
    if draw(st.booleans()):
        faults["spot_interruptions"] = {"rate": "4/h", "notice": "2m"}
    data["faults"] = faults
    strategy = False
    if draw(st.booleans()):  # Auto Scaling groups that scale in under the lane's tasks (no protection)
        data["cluster"]["capacity_providers"] = [{
            "name": name, "type": "EC2_AUTOSCALING", "instance_types": ["inf2.xlarge", "c6i.2xlarge"],
            "min_size": 0, "max_size": 6, "desired_capacity": draw(st.integers(0, 3)), "launch_time": "30s",
            "spot": spot, "managed_scaling": {"target_capacity": draw(st.sampled_from([80, 100])),
                                              "instance_warmup_period": 60}}
            for name, spot in (("on-demand", False), ("spot", True))]
        data["cluster"]["provisioning_timeout"] = "5m"
        strategy = draw(st.booleans())
        if strategy:  # a base on one provider, then weights: each task's provider as ECS's strategy says
            data["cluster"]["default_capacity_provider_strategy"] = [
                {"capacity_provider": "on-demand", "base": draw(st.integers(0, 3)), "weight": draw(st.integers(0, 2))},
                {"capacity_provider": "spot", "weight": draw(st.integers(1, 3))}]
    for w in data["workloads"]:
        if not strategy or draw(st.booleans()):
            w["launch_type"] = "EC2"  # placed on any EC2 instance, never PROVISIONING
    return data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=faulty_scenarios())
def test_faults_spot_and_scaling_stop_lane_tasks_as_they_stop_plain_ones(data: dict) -> None:
    loaded = scenario_from_mapping(data, path=SCENARIOS / "gen.yaml")
    plain = _run(loaded, "plain")
    fast = _run(loaded, "fast")
    assert fast.path == "fast", fast.path_note
    _assert_same(plain, fast)


def test_a_lost_instance_and_a_failed_chip_stop_the_lane_tasks_there() -> None:
    """Lane tasks on an instance retired at 5 minutes, and on chips that fail, are stopped by the plain
    lifecycle with the fault's stop code, at the same times and in the same order as on the plain path."""
    data = {"name": "f", "seed": 5, "duration": "30m", "sample_interval": "5m",
            "task_definitions": {"web": "taskdefs/cpu-sidecar.json", "chip0": "taskdefs/inf2-chip-0.json"},
            "cluster": {"fleets": [{"instance_type": "c6i.2xlarge", "count": 2},
                                   {"instance_type": "inf2.xlarge", "count": 3}]},
            "workloads": [{"name": "web", "kind": "run_task", "task_definition": "web", "launch_type": "EC2",
                           "arrivals": {"type": "interval", "every": "20s"}, "duration": "10h", "max_calls": 6},
                          {"name": "chips", "kind": "run_task", "task_definition": "chip0", "launch_type": "EC2",
                           "arrivals": {"type": "interval", "every": "30s"}, "duration": "4m",
                           "on_no_capacity": "wait"}],
            "faults": {"instance_retirements": [{"instance_type": "c6i.2xlarge", "at": ["5m"], "notice": "0s"}],
                       "chip_failures": [{"at": ["6m", "12m"]}]}}
    loaded = scenario_from_mapping(data, path=SCENARIOS / "f.yaml")
    plain, fast = _run(loaded, "plain"), _run(loaded, "fast")
    assert fast.path == "fast", fast.path_note
    codes = fast.tasks["stop_code"].value_counts()
    assert codes.get("TerminationNotice", 0) >= 1 and codes.get("InfrastructureHealth", 0) >= 1
    assert fast.summary.faults.tasks_stopped == codes["TerminationNotice"] + codes["InfrastructureHealth"]
    _assert_same(plain, fast)


def test_a_snapshots_tasks_and_lane_tasks_share_the_cluster() -> None:
    """RunTask streams added to a real cluster's snapshot (its tasks running from time 0, its capacity
    providers): the lane runs them beside the snapshot's tasks, the same as the plain path."""
    import yaml

    data = yaml.safe_load((SCENARIOS / "what-if-on-snapshot.yaml").read_text())
    data["task_definitions"]["web"] = "taskdefs/cpu-sidecar.json"
    data["duration"] = "40m"
    data["workloads"] += [
        {"name": "jobs", "kind": "run_task", "task_definition": "embed-chip-0", "launch_type": "EC2",
         "arrivals": {"type": "poisson", "rate": "0.1/s"}, "duration": {"type": "exponential", "mean": "5m"},
         "on_no_capacity": "wait"},
        {"name": "web", "kind": "run_task", "task_definition": "web", "launch_type": "EC2",
         "arrivals": {"type": "poisson", "rate": "0.3/s"}, "duration": {"type": "exponential", "mean": "3m"}}]
    loaded = scenario_from_mapping(data, path=SCENARIOS / "snap.yaml")
    plain, fast = _run(loaded, "plain"), _run(loaded, "fast")
    assert fast.path == "fast", fast.path_note
    assert (fast.tasks["workload"] == "snapshot").sum() > 0 and (fast.tasks["workload"] == "web").sum() > 100
    _assert_same(plain, fast)


def test_the_waiting_rooms_retry_passes_run_in_the_lane_as_in_python() -> None:
    """A saturated cluster where tasks of three request classes wait: the retry pass after a lane task's exit
    runs in the loop while every head would fail again (setting a head's reason when its failure changed),
    and in Python once a head can be placed; the same tasks, waits and reasons as the plain path."""
    data = {"name": "w", "seed": 9, "duration": "2h", "sample_interval": "10m",
            "task_definitions": {"web": "taskdefs/cpu-sidecar.json", "chip0": "taskdefs/inf2-chip-0.json",
                                 "gpu": "taskdefs/g5-gpu.json"},
            "cluster": {"fleets": [{"instance_type": "c6i.2xlarge", "count": 2},
                                   {"instance_type": "inf2.xlarge", "count": 3},
                                   {"instance_type": "g5.xlarge", "count": 1}]},
            "workloads": [{"name": "web", "kind": "run_task", "task_definition": "web", "on_no_capacity": "wait",
                           "arrivals": {"type": "poisson", "rate": "0.2/s"},
                           "duration": {"type": "exponential", "mean": "40s"}},
                          {"name": "chips", "kind": "run_task", "task_definition": "chip0", "on_no_capacity": "wait",
                           "arrivals": {"type": "poisson", "rate": "0.05/s"},
                           "duration": {"type": "exponential", "mean": "70s"}},
                          {"name": "gpu", "kind": "run_task", "task_definition": "gpu", "on_no_capacity": "wait",
                           "arrivals": {"type": "poisson", "rate": "0.02/s"},
                           "duration": {"type": "exponential", "mean": "60s"}}]}
    loaded = scenario_from_mapping(data, path=SCENARIOS / "w.yaml")
    plain = _run(loaded, "plain")
    assert (plain.tasks["wait_s"] > 0).sum() > 50  # saturated: many tasks waited
    for compiled in (True, False):
        sim = Simulation(loaded, path="fast", lane_compiled=compiled)
        fast = sim.run()
        assert sim.lane is not None and sim.lane.C[sim.lane.li.C_PASSES] > 100 and sim.lane.notes > 0
        _assert_same(plain, fast)
