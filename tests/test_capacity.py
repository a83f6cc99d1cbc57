"""Capacity providers: instanceRequirements matching, strategies, ASG managed scaling, Managed Instances, cost."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from scheduler.catalog import default_catalog
from scheduler.ecs.capacity import StrategySplitter, matching_types
from scheduler.scenario import load_scenario
from scheduler.sim.engine import Simulation

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
CORPUS = Path(__file__).resolve().parent / "corpus"
CAT = default_catalog()


def names(requirements: dict | None) -> set[str]:
    return {t.name for t in matching_types(requirements, CAT.values())}


def test_inf_and_trn_wildcards_never_select_inf1() -> None:
    got = names({"vCpuCount": {"min": 1}, "memoryMiB": {"min": 0}, "allowedInstanceTypes": ["inf*", "trn*"]})
    assert got == {t.name for t in CAT.values() if t.family.startswith(("inf2", "trn"))}
    assert not any(n.startswith("inf1") for n in got)


def test_accelerator_names_trainium_selects_trn1_only() -> None:
    got = names({"vCpuCount": {"min": 1}, "memoryMiB": {"min": 0}, "acceleratorNames": ["trainium"]})
    assert got == {"trn1.2xlarge", "trn1.32xlarge", "trn1n.32xlarge"}


def test_corpus_requirements() -> None:
    v2 = json.loads((CORPUS / "023_apex_skills_mi_neuron_instance_requirements.json").read_text())
    req = v2["capacity_provider"]["variant_2"]["instanceRequirements"]
    assert names(req) == {"inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge", "trn1.2xlarge",
                          "trn1.32xlarge"}  # trn1.* does not match trn1n
    # CDK integ test: Intel CPU and an NVIDIA accelerator -> p4d in our catalog (g5 has AMD CPUs)
    assert names({"vCpuCount": {"min": 1}, "memoryMiB": {"min": 2048}, "cpuManufacturers": ["intel"],
                  "acceleratorManufacturers": ["nvidia"]}) == {"p4d.24xlarge"}


def test_no_requirements_means_general_purpose_types() -> None:
    got = names(None)
    assert got and all(CAT.get(n).chips == 0 and CAT.get(n).gpus == 0 for n in got)


def test_price_protection_drops_expensive_matches() -> None:
    req = {"vCpuCount": {"min": 1}, "memoryMiB": {"min": 0}, "allowedInstanceTypes": ["c6i.*"],
           "onDemandMaxPricePercentageOverLowestPrice": 100}
    assert names(req) == {"c6i.large", "c6i.xlarge"}  # 0.34 is more than twice 0.085


def test_strategy_base_then_weights() -> None:
    items = [SimpleNamespace(capacity_provider="a", weight=1, base=2),
             SimpleNamespace(capacity_provider="b", weight=4, base=0)]
    split = StrategySplitter(items)
    picks = [split.next() for _ in range(52)]
    assert picks[:2] == ["a", "a"]
    rest = Counter(picks[2:])
    assert rest == {"a": 10, "b": 40}


def run(name: str, **overrides: object):
    loaded = load_scenario(SCENARIOS / name, overrides=overrides or None)
    sim = Simulation(loaded)
    return sim, sim.run()


BURST = {
    "duration": "3h",
    "cluster.capacity_providers.0.desired_capacity": 0,
    "cluster.capacity_providers.0.max_size": 60,
    "workloads.0.arrivals": {"type": "once", "at": "0s", "calls": 5},
    "workloads.0.count": 10,
    "workloads.0.duration": "2h",
}


def test_asg_from_zero_launches_two_first_then_converges() -> None:
    _sim, res = run("asg-inf2-diurnal.yaml", **BURST)
    launches = res.extra_tables["scaling_events"]
    launches = launches[launches["action"] == "launch"]
    first_minute = launches["time"].min()
    assert launches.loc[launches["time"] == first_minute, "count"].sum() == 2  # CPR 200 with no instance
    cpr = res.extra_tables["capacity_reservation"]
    assert cpr["cpr"].iloc[0] == 200.0
    # then it converges: all 50 tasks run, on ceil(50 / 0.8) = 63 -> capped at max_size 60 instances
    assert res.summary.tasks.placed == 50
    assert res.summary.instances.peak == 60
    placed = (res.tasks["start"] - res.tasks["startup_s"]).dropna()  # RUNNING minus the start-up
    assert placed.max() < 20 * 60  # within the provisioning timeout


def test_asg_target_80_keeps_a_fifth_spare() -> None:
    overrides = {**BURST, "cluster.capacity_providers.0.max_size": 100}
    overrides["workloads.0.arrivals"] = {"type": "once", "at": "0s", "calls": 4}
    _sim, res = run("asg-inf2-diurnal.yaml", **overrides)
    tl = res.timeline[res.timeline["instance_type"] == "inf2.xlarge"]
    steady = tl[(tl["time"] > 3600) & (tl["time"] < 7000)]
    assert (steady["running"] == 40).all()
    assert (steady["instances"] == 50).all()  # 40 busy / 0.8 = 50: a fifth spare


def test_asg_scale_in_waits_15_minutes_below_target() -> None:
    overrides = {**BURST, "workloads.0.duration": "30m", "duration": "3h"}
    _sim, res = run("asg-inf2-diurnal.yaml", **overrides)
    events = res.extra_tables["scaling_events"]
    terminations = events[events["action"] == "terminate"]
    assert len(terminations) > 0
    cpr = res.extra_tables["capacity_reservation"].set_index("time")["cpr"]
    for t in terminations["time"]:
        last_15 = cpr[(cpr.index > t - 15 * 60) & (cpr.index <= t)]
        assert len(last_15) == 15 and (last_15 < 80).all()
    first = terminations["time"].min()
    before = cpr[cpr.index < first - 14 * 60]
    assert before.iloc[-1] >= 80 or len(before) == 0 or (cpr[cpr.index <= first].tail(16) < 80).sum() == 15


def test_asg_results_agree_with_and_without_the_class_index() -> None:
    out = []
    for by_class in (True, False):
        loaded = load_scenario(SCENARIOS / "asg-inf2-diurnal.yaml", overrides={"duration": "1d"})
        sim = Simulation(loaded)
        sim.placer.by_class = by_class
        res = sim.run()
        assert not any("RESOURCE:*" in k for k in res.summary.tasks.failed)
        out.append(res.tasks)
    pd.testing.assert_frame_equal(out[0], out[1])


MANAGED_ONLY = {"workloads": [{"name": "managed-jobs", "kind": "run_task", "task_definition": "managed",
                               "arrivals": {"type": "once", "at": "0s"}, "count": 3, "duration": "1h"}],
                "duration": "3h"}


def test_managed_task_gets_the_cheapest_neuron_type_that_fits_never_inf1() -> None:
    _sim, res = run("mi-neuron-mix.yaml", **MANAGED_ONLY)
    placed = res.tasks[res.tasks["start"].notna()]
    assert len(placed) == 3
    assert set(placed["instance_type"]) == {"trn1.2xlarge"}  # cheapest MI Neuron type with 8 vCPU
    assert res.summary.instances.launched == 3  # one Neuron task per instance


def test_accelerator_names_trainium_launches_trn1() -> None:
    _sim, res = run("mi-neuron-mix.yaml", **MANAGED_ONLY,
                   **{"cluster.capacity_providers.0.instance_requirements.acceleratorNames": ["trainium"],
                      "cluster.capacity_providers.0.instance_requirements.vCpuCount": {"min": 16}})
    placed = res.tasks[res.tasks["start"].notna()]
    assert set(placed["instance_type"]) == {"trn1.32xlarge"}


def test_mi_packs_small_tasks_on_the_cheapest_type_and_consolidates_idle() -> None:
    _sim, res = run("mi-neuron-mix.yaml")
    tasks = res.tasks
    manual = tasks[(tasks["workload"] == "chip-inference") & tasks["start"].notna()]
    # MI launches inf2.xlarge, the cheapest fit, for them; a few land on a trn1.2xlarge (one chip, also a fit)
    # launched for, or left idle by, a managed job, as ECS places on any instance that fits
    assert set(manual["instance_type"]) <= {"inf2.xlarge", "trn1.2xlarge"}
    assert (manual["instance_type"] == "inf2.xlarge").mean() >= 0.8
    events = res.extra_tables["scaling_events"]
    assert (events["action"] == "terminate").any()  # idle instances go after scale_in_after
    assert res.summary.tasks.failed == {} or all("timed out" in k for k in res.summary.tasks.failed)


def test_cost_is_instance_seconds_times_prices_with_scaling() -> None:
    sim, res = run("asg-inf2-diurnal.yaml", duration="12h")
    expected = 0.0
    for inst, t0, t1 in zip(sim.state.instances, sim.instance_start, sim.instance_end, strict=True):
        expected += ((sim.duration if t1 is None else t1) - t0) / 3600 * inst.instance_type.price_per_hour
    assert res.summary.costs.usd == pytest.approx(expected, abs=1e-5)
    assert res.summary.costs.usd > 0 and res.summary.costs.idle_chip_usd <= res.summary.costs.usd


def test_provisioning_timeout_stops_tasks_with_task_failed_to_start() -> None:
    overrides = {**BURST, "cluster.capacity_providers.0.max_size": 1, "cluster.provisioning_timeout": "10m"}
    _sim, res = run("asg-inf2-diurnal.yaml", **overrides)
    failed = res.tasks[res.tasks["stop_code"] == "TaskFailedToStart"]
    assert len(failed) == 49
    assert (failed["end"] - failed["submit"] == 600).all()
    assert failed["stop_reason"].str.contains("timed out waiting for capacity").all()


def test_provisioning_quota_rejects_tasks_past_500() -> None:
    overrides = {**BURST, "workloads.0.arrivals": {"type": "once", "at": "0s", "calls": 60},
                 "cluster.capacity_providers.0.max_size": 1, "duration": "30m"}
    _sim, res = run("asg-inf2-diurnal.yaml", **overrides)
    quota = [k for k in res.summary.tasks.failed if "PROVISIONING" in k]
    assert quota and res.summary.tasks.failed[quota[0]] == 600 - 500


def test_managed_instances_are_drained_after_14_days_and_service_tasks_move() -> None:
    overrides = {"duration": "15d", "sample_interval": "1h",
                 "workloads": [{"name": "chip-inference", "kind": "service", "task_definition": "inf2-manual",
                                "desired_count": 2}]}
    sim, res = run("mi-neuron-mix.yaml", **overrides)
    events = res.extra_tables["scaling_events"]
    drained = events[events["reason"] == "drained after 14 days"]
    assert drained["count"].sum() == 2
    assert (drained["time"] >= 14 * 86400).all()
    svc = res.tasks[res.tasks["workload"] == "chip-inference"]
    assert len(svc) == 4 and (svc["final_state"] == "RUNNING").sum() == 2
    moved = svc[svc["stop_code"] == "ServiceSchedulerInitiated"]
    assert len(moved) == 2 and moved["stop_reason"].str.contains("draining").all()
    for inst, t1 in zip(sim.state.instances, sim.instance_end, strict=True):
        assert (t1 is not None) or inst.registered_at >= 14 * 86400 - 600
