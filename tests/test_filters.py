"""Filters as data: every TaskSpec field is read or set aside, GPU=ALL and fractional GPUs, ENI slots."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from scheduler.catalog import default_catalog
from scheduler.ecs.taskspec import ContainerSpec, TaskSpec
from scheduler.placement import devices, filters
from scheduler.placement import placer as placer_module
from scheduler.placement.enis import TRUNK_TASK_LIMITS, eni_slots
from scheduler.placement.filters import pipeline, resources, static
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure, Placement
from scheduler.placement.state import ClusterState

CAT = default_catalog()


def cluster(*names: str, trunking: bool = False) -> tuple[ClusterState, Placer]:
    state = ClusterState("t", awsvpc_trunking=trunking)
    for name in names:
        state.add_instance(CAT.get(name) if isinstance(name, str) else name)
    return state, Placer(state)


def test_every_taskspec_field_is_read_by_a_filter_or_set_aside_with_a_reason() -> None:
    fields = {f.name for f in dataclasses.fields(TaskSpec)}
    declared = {name for f in filters.ALL for name in f.reads}
    assert declared <= fields, declared - fields
    # the filters, the device rules the neuron filter applies, and the placer that builds the request
    # (the task definition's constraints and family reach the filters as Request.constraints and .group)
    source = "".join(inspect.getsource(m) for m in (static, resources, pipeline, devices, placer_module))
    for name in declared:
        assert f"spec.{name}" in source, f"{name} is declared read but no filter reads spec.{name}"
    assert not declared & set(filters.NOT_PLACEMENT_RELEVANT)
    assert all(len(why) > 20 for why in filters.NOT_PLACEMENT_RELEVANT.values())
    assert fields == declared | set(filters.NOT_PLACEMENT_RELEVANT), fields ^ (declared | set(
        filters.NOT_PLACEMENT_RELEVANT))


def test_every_filter_has_an_ecs_reason_and_the_resource_ones_an_event_phrase() -> None:
    for f in filters.ALL:
        assert f.reason, f.name
        if not f.static:
            assert f.phrase, f.name
    assert filters.REASONS["eni"] == "RESOURCE:ENI"


def gpu_all_task() -> TaskSpec:
    return TaskSpec(family="all-gpus", cpu=256, memory=512, gpus_all=True,
                    containers=(ContainerSpec("c", gpus_all=True),))


@pytest.mark.parametrize("by_class", [True, False])
def test_gpu_all_never_lands_without_gpus_and_takes_every_gpu(by_class: bool) -> None:
    state, placer = cluster("m6i.xlarge", "g5.12xlarge")
    placer.by_class = by_class
    out = placer.place(gpu_all_task(), task_id="a")
    assert isinstance(out, Placement) and out.instance == 1 and len(out.gpu_ids) == 4
    again = placer.place(gpu_all_task(), task_id="b")
    assert isinstance(again, Failure) and again.reason == "RESOURCE:GPU" and "GPU=ALL" in again.detail
    placer.release("a")
    assert state.is_empty()


def test_gpu_all_on_a_cpu_only_cluster_fails_with_resource_gpu() -> None:
    _state, placer = cluster("m6i.xlarge", "m6i.xlarge")
    out = placer.place(gpu_all_task())
    assert isinstance(out, Failure) and out.reason == "RESOURCE:GPU"
    assert out.explanation is not None and out.explanation.lacks == ("gpu",)


def fractional(value: float) -> TaskSpec:
    return TaskSpec(family="frac", cpu=256, memory=512, gpu_fraction=value,
                    containers=(ContainerSpec("c", gpu_fraction=value),))


def test_fractional_gpu_places_only_on_its_partition_type() -> None:
    g5 = CAT.get("g5.xlarge")
    g6f_large = dataclasses.replace(g5, name="g6f.large")
    g6f_2x = dataclasses.replace(g5, name="g6f.2xlarge")
    _state, placer = cluster("m6i.xlarge", g5, g6f_2x, g6f_large)
    out = placer.place(fractional(0.125), task_id="f")
    assert isinstance(out, Placement) and out.instance == 3
    assert isinstance(placer.place(fractional(0.125)), Failure)  # the one partition is taken
    quarter = placer.place(fractional(0.25))
    assert isinstance(quarter, Placement) and quarter.instance == 2
    whole = placer.place(TaskSpec(family="w", cpu=256, memory=512, gpus=1))
    assert isinstance(whole, Placement) and whole.instance == 1  # integers never use a partition type


def test_fractional_gpu_without_a_partition_type_fails() -> None:
    _state, placer = cluster("m6i.xlarge", "g5.xlarge")
    out = placer.place(fractional(0.5))
    assert isinstance(out, Failure) and out.reason == "RESOURCE:GPU" and "G6f" in out.detail


def awsvpc_task(cpu: int = 64) -> TaskSpec:
    return TaskSpec(family="vpc", cpu=cpu, memory=64, network_mode="awsvpc", containers=(ContainerSpec("c"),))


@pytest.mark.parametrize("by_class", [True, False])
def test_awsvpc_tasks_stop_at_the_eni_limit(by_class: bool) -> None:
    state, placer = cluster("c6i.large")  # 3 network interfaces: the primary and 2 for tasks
    placer.by_class = by_class
    assert eni_slots(CAT.get("c6i.large")) == 2
    for k in range(2):
        assert isinstance(placer.place(awsvpc_task(), task_id=f"t{k}"), Placement)
    out = placer.place(awsvpc_task())
    assert isinstance(out, Failure) and out.reason == "RESOURCE:ENI"
    assert out.explanation is not None and out.explanation.lacks == ("eni",)
    assert isinstance(placer.place(TaskSpec(family="bridge", cpu=64, memory=64)), Placement)  # bridge: no ENI
    placer.release("t0")
    assert isinstance(placer.place(awsvpc_task()), Placement)
    assert int(state.eni_free[0]) == 0


def test_trunking_raises_the_limit_where_published_and_keeps_it_elsewhere() -> None:
    c5 = dataclasses.replace(CAT.get("c6i.large"), name="c5.large")
    assert eni_slots(c5) == 2 and eni_slots(c5, trunking=True) == TRUNK_TASK_LIMITS["c5.large"] == 10
    assert eni_slots(CAT.get("c6i.large"), trunking=True) == 2
    _state, placer = cluster(c5, trunking=True)
    placed = 0
    while isinstance(placer.place(awsvpc_task(cpu=1)), Placement):
        placed += 1
    assert placed == 10
