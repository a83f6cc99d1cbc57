"""Task start-up (image pull, per-instance image cache, container start) and service deployments (minimum
healthy and maximum percent, draining that replaces first, rolling deployments, AZ rebalancing)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.catalog import default_catalog
from scheduler.errors import ScenarioError
from scheduler.scenario import load_scenario
from scheduler.scenario.snapshot import read_snapshot
from scheduler.sim.deployments import HEALTHY_AFTER_S
from scheduler.sim.engine import Simulation
from scheduler.sim.startup import IMAGE_CLEANUP_INTERVAL_S, TASK_CLEANUP_WAIT_S, ImageCache

ROOT = Path(__file__).resolve().parents[1]
TASKDEFS = ROOT / "scenarios" / "taskdefs"


def _taskdef(family: str, image: str, cpu: int = 1024, memory: int = 2048) -> str:
    return (f'{{family: {family}, requiresCompatibilities: [EC2], containerDefinitions: [{{name: app, '
            f'image: "{image}", essential: true, cpu: {cpu}, memory: {memory}}}]}}')


def run(tmp_path: Path, text: str, **overrides: object) -> tuple[Simulation, object]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    sim = Simulation(load_scenario(path, overrides=overrides or None))
    return sim, sim.run()


# --- start-up ----------------------------------------------------------------------------------------------

STARTUP = f"""
name: startup
duration: 3h
sample_interval: 10s
task_definitions: {{chip: {TASKDEFS / "inf2-chip-0.json"}}}
cluster: {{fleets: [{{instance_type: inf2.xlarge, count: 1}}]}}
workloads:
  - name: llm
    kind: service
    task_definition: chip
    desired_count: 1
    task_duration: 1h
    startup: {{image_pull: 90s, image_pull_cached: 2s, start: 30s}}
"""


def test_a_task_is_pending_holding_its_chip_while_it_pulls_and_loads_then_pulls_from_the_cache(
        tmp_path: Path) -> None:
    _, res = run(tmp_path, STARTUP)
    tasks = res.tasks.sort_values("submit").reset_index(drop=True)
    first, second = tasks.iloc[0], tasks.iloc[1]
    assert first["submit"] == 0 and first["startup_s"] == 120 and first["start"] == 120
    assert first["wait_s"] == 120  # the wait ends at RUNNING, not at placement
    # the replacement lands on the same instance, which has the image: a 2 s pull
    assert second["instance_id"] == first["instance_id"]
    assert second["startup_s"] == 32 and second["wait_s"] == 32
    star = res.timeline[res.timeline["instance_type"] == "*"].set_index("time")
    at_60 = star.loc[60.0]
    assert (at_60["pending"], at_60["running"], at_60["chips_held"]) == (1, 0, 1)  # held from placement
    assert star.loc[130.0, "running"] == 1
    # the service counts a task only once RUNNING: short from 0 to 120 s, then 32 s per replacement
    replacements = int((tasks["start"] > 120).sum())
    expected = (120 + 32 * replacements) / 3600
    assert res.summary.service_shortfall_task_hours["llm"] == pytest.approx(expected, abs=1e-6)


def test_describe_tasks_shows_the_pull_and_start_times(tmp_path: Path) -> None:
    _, res = run(tmp_path, STARTUP, duration="100s")
    (task,) = [t for t in res.describe_tasks["tasks"] if t["lastStatus"] == "PENDING"]
    assert task["pullStartedAt"] < task["pullStoppedAt"]
    assert "startedAt" not in task
    _, res = run(tmp_path, STARTUP, duration="10m")
    (task,) = [t for t in res.describe_tasks["tasks"] if t["lastStatus"] == "RUNNING"]
    assert task["pullStartedAt"] < task["pullStoppedAt"] < task["startedAt"]


def test_start_up_draws_are_seeded(tmp_path: Path) -> None:
    text = STARTUP.replace("start: 30s", "start: {type: lognormal, median: 30s, sigma: 0.5}")
    frames = [run(tmp_path, text, seed=seed)[1].tasks for seed in (4, 4, 5)]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert list(frames[0]["startup_s"]) != list(frames[2]["startup_s"])


def test_a_task_stopped_while_pending_gives_back_what_it_held(tmp_path: Path) -> None:
    text = STARTUP.replace("count: 1}]", "count: 1}]").replace("desired_count: 1", "schedule: [{at: 0, count: 1}, "
                                                                 "{at: 60s, count: 0}]")
    sim, res = run(tmp_path, text)
    task = res.tasks.iloc[0]
    assert task["final_state"] == "STOPPED" and task["end"] == 60 and pd.isna(task["start"])
    assert int(sim.state.chips_free[0]) == int(sim.state.chips_all[0])
    assert sim.conservation_ok()


def test_the_image_cache_forgets_an_unused_image_at_the_first_cleanup_cycle_after_the_wait() -> None:
    cache = ImageCache()
    cache.register(0, now=0.0)
    images = ("repo/image:tag",)
    assert not cache.has(0, images, 0.0)
    cache.acquire(0, images, 0.0)
    cache.acquire(0, images, 10.0)
    cache.release(0, images, 100.0)
    assert cache.has(0, images, 100.0 + 10 * TASK_CLEANUP_WAIT_S)  # still in use by the second task
    cache.release(0, images, 200.0)
    unused = 200.0 + TASK_CLEANUP_WAIT_S
    cycle = math.ceil(unused / IMAGE_CLEANUP_INTERVAL_S) * IMAGE_CLEANUP_INTERVAL_S
    assert cache.has(0, images, cycle - 1)
    assert not cache.has(0, images, cycle)
    assert not ImageCache().has(1, images, 0.0)
    assert ImageCache(cleanup=False).has(0, (), 0.0)


# --- draining -------------------------------------------------------------------------------------------

def _retiring(room: bool, min_healthy: int = 100, max_percent: int = 200, startup: str = "") -> str:
    fleets = "[{instance_type: inf2.xlarge, count: 2}]" if room else "[{instance_type: inf2.xlarge, count: 1}]"
    return f"""
name: drain
duration: 3h
task_definitions: {{chip: {TASKDEFS / "inf2-chip-0.json"}}}
cluster: {{fleets: {fleets}}}
workloads:
  - name: llm
    kind: service
    task_definition: chip
    desired_count: 1
    minimum_healthy_percent: {min_healthy}
    maximum_percent: {max_percent}
    placement_strategy: [{{type: binpack, field: memory}}]
    {startup}
faults:
  instance_retirements: [{{instance_type: inf2.xlarge, at: [1h], notice: 30m}}]
"""


def test_a_drained_task_runs_until_its_replacement_is_running_and_healthy(tmp_path: Path) -> None:
    startup = "startup: {image_pull: 2m, start: 3m}"
    # with the fault striking the instance the task runs on; two instances, so a replacement has room
    for seed in range(6):
        _, res = run(tmp_path, _retiring(room=True, startup=startup), seed=seed)
        tasks = res.tasks.sort_values("submit").reset_index(drop=True)
        old = tasks.iloc[0]
        if old["stop_code"] != "ServiceSchedulerInitiated":
            continue  # the retirement struck the other, empty instance
        new = tasks.iloc[1]
        assert new["submit"] == 3600 and new["start"] == 3600 + 300
        assert old["end"] == new["start"] + HEALTHY_AFTER_S
        assert "draining" in old["stop_reason"]
        # the service never ran short after its first start: 1 task short for the first 5 minutes only
        assert res.summary.service_shortfall_task_hours["llm"] == pytest.approx(300 / 3600, abs=1e-6)
        messages = [e["message"] for e in res.events]
        assert f"(service llm) has started 1 tasks: (task {new['task_id']})." in messages
        assert f"(service llm) has stopped 1 running tasks: (task {old['task_id']})." in messages
        assert "(service llm) has reached a steady state." in messages
        return
    pytest.fail("no seed struck the instance holding the task")


def test_with_no_room_for_a_replacement_the_old_task_runs_until_the_instance_goes(tmp_path: Path) -> None:
    _, res = run(tmp_path, _retiring(room=False))
    tasks = res.tasks.sort_values("submit").reset_index(drop=True)
    old = tasks.iloc[0]
    assert (old["stop_code"], old["end"]) == ("TerminationNotice", 5400)
    # a replacement was asked for at the notice and waits; the service ran its task until the termination
    assert tasks.iloc[1]["submit"] == 3600
    assert res.summary.service_shortfall_task_hours["llm"] == pytest.approx(1.5)


def test_minimum_healthy_zero_lets_the_drained_task_go_at_once(tmp_path: Path) -> None:
    _, res = run(tmp_path, _retiring(room=False, min_healthy=0, max_percent=100))
    old = res.tasks.sort_values("submit").iloc[0]
    assert (old["stop_code"], old["end"]) == ("ServiceSchedulerInitiated", 3600)
    assert res.summary.service_shortfall_task_hours["llm"] == pytest.approx(2.0)


# --- rolling deployments ----------------------------------------------------------------------------------

def _deploying(desired: int, min_healthy: int, max_percent: int, instances: int = 3, startup: str = "1m") -> str:
    return f"""
name: deploy
duration: 4h
task_definitions:
  v1: {_taskdef("web", "repo/web:1")}
  v2: {_taskdef("web2", "repo/web:2")}
cluster: {{fleets: [{{instance_type: m6i.4xlarge, count: {instances}, availability_zones: [us-east-1a]}}]}}
workloads:
  - name: web
    kind: service
    task_definition: v1
    desired_count: {desired}
    minimum_healthy_percent: {min_healthy}
    maximum_percent: {max_percent}
    startup: {{image_pull: 30s, image_pull_cached: 1s, start: {startup}}}
    deployments: [{{at: 1h, task_definition: v2}}]
"""


def _levels(tasks: pd.DataFrame, since: float) -> tuple[int, int]:
    """(most tasks placed at once, fewest RUNNING and healthy at once) from ``since`` on."""
    placed_at = tasks["start"].fillna(tasks["end"]) - tasks["startup_s"].fillna(0)
    placed_at = placed_at.where(tasks["placed"], np.nan)
    times = sorted({since, *[t for t in pd.concat([placed_at, tasks["start"], tasks["end"],
                                                    tasks["start"] + HEALTHY_AFTER_S]).dropna() if t >= since]})
    end = tasks["end"].fillna(math.inf)
    most, fewest = 0, 10**9
    for t in times:
        live = int(((placed_at <= t) & (end > t)).sum())
        healthy = int(((tasks["start"] + HEALTHY_AFTER_S <= t) & (end > t)).sum())
        most, fewest = max(most, live), min(fewest, healthy)
    return most, fewest


def test_a_rolling_deployment_replaces_every_task_within_the_bounds(tmp_path: Path) -> None:
    _, res = run(tmp_path, _deploying(desired=4, min_healthy=50, max_percent=150))
    tasks = res.tasks
    running = tasks[tasks["final_state"] == "RUNNING"]
    assert len(running) == 4 and set(running["family"]) == {"web2"}
    old = tasks[tasks["family"] == "web"]
    assert (old["stop_reason"].str.contains("deployment ecs-svc/")).all()
    most, fewest = _levels(tasks, since=3600)
    assert most <= 6 and fewest >= 2
    messages = [e["message"] for e in res.events]
    assert any(m.startswith("(service web) (deployment ecs-svc/") and m.endswith("deployment completed.")
               for m in messages)
    # the new image was pulled uncached on every instance it reached first, then from the cache
    assert set(tasks.loc[tasks["family"] == "web2", "startup_s"]) <= {90.0, 61.0}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(desired=st.integers(1, 6), min_healthy=st.sampled_from([0, 25, 50, 75, 100]),
       max_percent=st.sampled_from([100, 125, 150, 200]), instances=st.integers(1, 3))
def test_a_deployment_never_exceeds_maximum_percent_nor_drops_below_minimum_healthy(
        tmp_path: Path, desired: int, min_healthy: int, max_percent: int, instances: int) -> None:
    _, res = run(tmp_path, _deploying(desired, min_healthy, max_percent, instances=instances))
    tasks = res.tasks
    alive = tasks["end"].isna() | (tasks["end"] >= 3600)
    healthy_before = int((alive & (tasks["start"] + HEALTHY_AFTER_S <= 3600)).sum())
    most, fewest = _levels(tasks, since=3600)
    assert most <= max(desired * max_percent // 100, healthy_before)
    assert fewest >= min(math.ceil(desired * min_healthy / 100), healthy_before)


# --- AZ rebalancing ---------------------------------------------------------------------------------------

def _zones(rebalancing: str = "") -> str:
    return f"""
name: zones
duration: 2h
task_definitions: {{web: {_taskdef("web", "repo/web:1")}}}
cluster: {{fleets: [{{instance_type: m6i.4xlarge, count: 2, availability_zones: [us-east-1a, us-east-1b]}}]}}
workloads:
  - name: web
    kind: service
    task_definition: web
    desired_count: 4
    placement_strategy: [{{type: binpack, field: memory}}]
    {rebalancing}
"""


def test_az_rebalancing_moves_tasks_to_the_emptiest_zone_when_enabled(tmp_path: Path) -> None:
    _, res = run(tmp_path, _zones("availability_zone_rebalancing: ENABLED"))
    running = res.tasks[res.tasks["final_state"] == "RUNNING"]
    assert sorted(running["availability_zone"].value_counts().tolist()) == [2, 2]
    messages = [e["message"] for e in res.events]
    assert ("service (web) is not AZ balanced with 4 tasks in us-east-1a and 0 tasks in us-east-1b. AZ "
            "Rebalancing in progress." in messages) != ("service (web) is not AZ balanced with 0 tasks in "
                                                        "us-east-1a and 4 tasks in us-east-1b. AZ Rebalancing "
                                                        "in progress." in messages)
    assert "service (web) is AZ balanced with 2 tasks in us-east-1a and 2 tasks in us-east-1b." in messages


def test_az_rebalancing_is_off_by_default_with_binpack(tmp_path: Path) -> None:
    _, res = run(tmp_path, _zones())
    running = res.tasks[res.tasks["final_state"] == "RUNNING"]
    assert running["availability_zone"].value_counts().tolist() == [4]
    assert not any("AZ balanced" in e["message"] for e in res.events)


# --- validation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "path"), [
    ("minimum_healthy_percent: 150", "workloads[0].minimum_healthy_percent"),
    ("maximum_percent: 50", "workloads[0].maximum_percent"),
    ("deployments: [{at: 1h, task_definition: v3}]", "workloads[0].deployments[0].task_definition"),
    ("startup: {image_pull: -5s}", "workloads[0].startup.image_pull"),
    ("availability_zone_rebalancing: maybe", "workloads[0].availability_zone_rebalancing"),
])
def test_bad_deployment_and_startup_fields_name_their_path(tmp_path: Path, change: str, path: str) -> None:
    text = _zones(change)
    file = tmp_path / "s.yaml"
    file.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(file)
    assert path in str(caught.value) and "\n" not in str(caught.value)


def test_a_daemon_rejects_a_maximum_percent_other_than_100(tmp_path: Path) -> None:
    text = _zones().replace("desired_count: 4\n    placement_strategy: [{type: binpack, field: memory}]",
                            "scheduling_strategy: DAEMON\n    maximum_percent: 200")
    file = tmp_path / "s.yaml"
    file.write_text(text)
    with pytest.raises(ScenarioError, match=r"workloads\[0\]\.maximum_percent.*DAEMON"):
        load_scenario(file)


def test_a_deployment_to_a_task_definition_the_launch_type_cannot_run_is_refused(tmp_path: Path) -> None:
    text = _deploying(2, 100, 200).replace("requiresCompatibilities: [EC2], containerDefinitions: [{name: app, "
                                           "image: \"repo/web:2\"",
                                           "requiresCompatibilities: [MANAGED_INSTANCES], networkMode: awsvpc, "
                                           "containerDefinitions: [{name: app, image: \"repo/web:2\"")
    assert "MANAGED_INSTANCES" in text
    file = tmp_path / "s.yaml"
    file.write_text(text)
    with pytest.raises(ScenarioError, match=r"workloads\[0\]\.deployments\[0\]\.task_definition.*EC2"):
        load_scenario(file)


def test_a_daemon_deployment_replaces_the_task_on_every_instance(tmp_path: Path) -> None:
    text = _deploying(1, 100, 200, instances=2).replace("desired_count: 1\n    minimum_healthy_percent: 100\n"
                                                        "    maximum_percent: 200",
                                                        "scheduling_strategy: DAEMON")
    assert "DAEMON" in text
    _, res = run(tmp_path, text)
    running = res.tasks[res.tasks["final_state"] == "RUNNING"]
    assert len(running) == 2 and set(running["family"]) == {"web2"}
    assert running["instance_id"].nunique() == 2
    old = res.tasks[res.tasks["family"] == "web"]
    assert len(old) == 2 and (old["end"] == 3600).all()


def test_az_rebalancing_with_maximum_100_stops_first_within_minimum_healthy(tmp_path: Path) -> None:
    text = _zones("availability_zone_rebalancing: ENABLED\n    minimum_healthy_percent: 75\n"
                  "    maximum_percent: 100")
    _, res = run(tmp_path, text)
    tasks = res.tasks
    running = tasks[tasks["final_state"] == "RUNNING"]
    assert sorted(running["availability_zone"].value_counts().tolist()) == [2, 2]
    most, _ = _levels(tasks, since=0.0)
    assert most <= 4  # never more than maximum_percent of 4
    # once the four first ran and were healthy, at least 3 (75 %) stayed healthy while they moved
    _, after_first = _levels(tasks, since=float(tasks["start"].min()) + HEALTHY_AFTER_S)
    assert after_first >= 3


def test_the_pull_column_tells_cached_pulls_from_uncached(tmp_path: Path) -> None:
    _, res = run(tmp_path, STARTUP)
    pulls = res.tasks.sort_values("submit")["pull_s"].tolist()
    assert pulls[0] == 90 and set(pulls[1:]) == {2}


def test_a_snapshot_service_keeps_its_deployment_configuration(tmp_path: Path) -> None:
    folder = tmp_path / "snap"
    shutil.copytree(ROOT / "scenarios" / "snapshots" / "mixed-trn1-inf2", folder)
    doc = json.loads((folder / "describe-services.json").read_text())
    doc["services"][0]["deploymentConfiguration"] = {"minimumHealthyPercent": 50, "maximumPercent": 150}
    doc["services"][0]["availabilityZoneRebalancing"] = "ENABLED"
    doc["services"][1].pop("availabilityZoneRebalancing", None)
    (folder / "describe-services.json").write_text(json.dumps(doc))
    snapshot = read_snapshot(folder, default_catalog())
    first, second = (s.workload for s in snapshot.services[:2])
    assert (first["minimum_healthy_percent"], first["maximum_percent"]) == (50, 150)
    assert first["availability_zone_rebalancing"] == "ENABLED"
    assert second.get("availability_zone_rebalancing", "DISABLED") == "DISABLED"  # an existing service
