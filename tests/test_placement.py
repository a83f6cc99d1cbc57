"""The placement core: chips per device path, managed vs manual, resources, reasons, release."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.catalog import default_catalog
from scheduler.ecs.taskspec import ContainerSpec, NeuronMode, Strategy, TaskSpec
from scheduler.errors import PlacementError
from scheduler.placement.devices import DeviceMode
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure, Placement, StartFailure
from scheduler.placement.state import ClusterState

CAT = default_catalog()
MI = "MANAGED_INSTANCES"


def manual(chips: tuple[int, ...], cpu: int = 1024, memory: int = 2048, family: str = "neuron",
           compat: frozenset[str] = frozenset({"EC2", MI})) -> TaskSpec:
    return TaskSpec(family=family, cpu=cpu, memory=memory, neuron_mode=NeuronMode.MANUAL, chips=chips,
                    chip_count=len(chips), compatibilities=compat,
                    containers=(ContainerSpec("c", chips=chips),))


def managed(cpu: int = 8192, memory: int = 16384) -> TaskSpec:
    return TaskSpec(family="managed", cpu=cpu, memory=memory, neuron_mode=NeuronMode.MANAGED,
                    compatibilities=frozenset({MI}), network_mode="awsvpc",
                    containers=(ContainerSpec("c", neuron_all=True),))


def cpu_task(cpu: int = 256, memory: int = 512, ports: tuple[int, ...] = ()) -> TaskSpec:
    return TaskSpec(family="sidecar", cpu=cpu, memory=memory, tcp_ports=ports,
                    containers=(ContainerSpec("c"),))


def cluster(*types: tuple[str, str], mode: DeviceMode = DeviceMode.AWARE) -> tuple[ClusterState, Placer]:
    state = ClusterState("t")
    for name, lt in types:
        state.add_instance(CAT.get(name), launch_type=lt)
    return state, Placer(state, device_mode=mode)


def test_trn1_takes_16_per_chip_tasks_and_refuses_a_17th_naming_a_held_chip() -> None:
    state, placer = cluster(("trn1.32xlarge", "EC2"))
    for c in range(16):
        out = placer.place(manual((c,), cpu=7168, memory=28000), task_id=f"chip{c}")
        assert isinstance(out, Placement) and out.chips == (c,)
    assert int(state.chips_free[0]) == 0
    again = placer.place(manual((3,), cpu=1024, memory=1024), task_id="extra")
    assert isinstance(again, Failure)
    assert again.reason == "RESOURCE:NEURON_DEVICES"
    assert "/dev/neuron3" in again.detail and "in use" in again.detail
    assert state.chip_holder(0, 7) == "chip7"


def test_manual_path_missing_on_type_never_places() -> None:
    _state, placer = cluster(("inf2.xlarge", "EC2"), ("inf2.24xlarge", "EC2"))
    out = placer.place(manual((5,)))
    assert isinstance(out, Placement) and out.instance == 1  # only inf2.24xlarge has /dev/neuron5
    out = placer.place(manual((7,)))
    assert isinstance(out, Failure) and "/dev/neuron7 does not exist" in out.detail


def test_one_task_per_chip_many_per_instance() -> None:
    state, placer = cluster(("inf2.48xlarge", "EC2"))
    assert isinstance(placer.place(manual((0,))), Placement)
    assert isinstance(placer.place(manual((0,))), Failure)
    assert isinstance(placer.place(manual((1, 2))), Placement)
    assert isinstance(placer.place(manual((2, 3))), Failure)
    assert np.bitwise_count(state.chips_free[0]) == 12 - 3


def test_managed_only_on_managed_instances_and_one_per_instance() -> None:
    _state, placer = cluster(("trn1.32xlarge", "EC2"), ("trn1.32xlarge", MI))
    first = placer.place(managed())
    assert isinstance(first, Placement) and first.instance == 1 and first.chips == tuple(range(16))
    second = placer.place(managed())
    assert isinstance(second, Failure) and second.reason == "RESOURCE:NEURON_DEVICES"
    # CPU-only work may still use the managed instance's CPU and memory
    side = placer.place(cpu_task(), launch_type=MI)
    assert isinstance(side, Placement) and side.instance == 1


def test_managed_refused_where_a_manual_task_holds_a_chip() -> None:
    _state, placer = cluster(("inf2.24xlarge", MI))
    assert isinstance(placer.place(manual((0,)), launch_type=MI), Placement)
    out = placer.place(managed(cpu=1024, memory=1024))
    assert isinstance(out, Failure) and "one Neuron task per instance" in out.detail


def test_managed_on_ec2_only_cluster_has_no_instance_of_its_launch_type() -> None:
    _state, placer = cluster(("trn1.32xlarge", "EC2"))
    out = placer.place(managed())
    assert isinstance(out, Failure) and out.reason == "NO ACTIVE INSTANCES"
    assert "MANAGED_INSTANCES" in out.detail


def test_inf1_cannot_be_a_managed_instance() -> None:
    state = ClusterState("t")
    with pytest.raises(PlacementError, match=r"inf1\.xlarge is not offered with launch type MANAGED_INSTANCES"):
        state.add_instance(CAT.get("inf1.xlarge"), launch_type=MI)


@pytest.mark.parametrize(("spec", "reason"), [
    (cpu_task(cpu=999_999), "RESOURCE:CPU"),
    (cpu_task(memory=10_000_000), "RESOURCE:MEMORY"),
    (TaskSpec(family="g", cpu=256, memory=512, gpus=1), "RESOURCE:GPU"),
    (cpu_task(ports=(22,)), "RESOURCE:PORTS"),
])
def test_resource_failures_use_ecs_reasons(spec: TaskSpec, reason: str) -> None:
    _state, placer = cluster(("c6i.large", "EC2"), ("m6i.xlarge", "EC2"))
    out = placer.place(spec)
    assert isinstance(out, Failure) and out.reason == reason
    assert out.explanation is not None and out.explanation.closest is not None
    assert out.instance == out.explanation.closest


def test_explanation_names_the_closest_instance_in_ecs_event_words() -> None:
    _state, placer = cluster(("c6i.large", "EC2"), ("c6i.2xlarge", "EC2"))
    out = placer.place(cpu_task(cpu=8192, memory=20_000))
    assert isinstance(out, Failure)
    exp = out.explanation
    assert exp is not None
    assert exp.closest == 1  # c6i.2xlarge has the CPU, lacks only memory
    assert exp.lacks == ("memory",)
    assert exp.phrase == "has insufficient memory available"  # ECS's words; the views add the instance id
    assert exp.event.endswith("The closest matching container-instance has insufficient memory available.")
    assert [s.name for s in exp.steps][-2:] == ["cpu", "memory"]
    assert exp.steps[-2].removed == 1 and exp.steps[-1].removed == 1


def test_static_host_ports_allow_one_copy_per_instance() -> None:
    _state, placer = cluster(("inf1.xlarge", "EC2"))
    spec = cpu_task(cpu=0, memory=1000, ports=(8500, 8501))
    assert isinstance(placer.place(spec, task_id="a"), Placement)
    assert isinstance(placer.place(spec), Failure)
    placer.release("a")
    assert isinstance(placer.place(spec), Placement)


def test_gpu_ids_assigned_and_returned() -> None:
    _state, placer = cluster(("g5.12xlarge", "EC2"))
    spec = TaskSpec(family="g", cpu=1024, memory=1024, gpus=2)
    a = placer.place(spec, task_id="a")
    b = placer.place(spec, task_id="b")
    assert isinstance(a, Placement) and isinstance(b, Placement)
    assert len(set(a.gpu_ids) | set(b.gpu_ids)) == 4
    assert isinstance(placer.place(spec), Failure)
    placer.release("a")
    c = placer.place(spec, task_id="c")
    assert isinstance(c, Placement) and set(c.gpu_ids) == set(a.gpu_ids)


def test_ecs_blind_places_on_cpu_and_fails_at_start_naming_the_path() -> None:
    state, placer = cluster(("trn1.32xlarge", "EC2"), mode=DeviceMode.BLIND)
    outs = [placer.place(manual((0,)), task_id=f"t{k}") for k in range(4)]
    assert all(isinstance(o, Placement) for o in outs)
    assert outs[0].ok and outs[0].chips == (0,)
    for o in outs[1:]:
        assert not o.ok and o.start_failure == StartFailure(StartFailure.IN_USE, 0, "t0")
        assert o.start_failure.device_path == "/dev/neuron0"
    assert len(state.allocations) == 1  # a failed start holds nothing


def test_ecs_blind_missing_path_fails_at_start() -> None:
    _state, placer = cluster(("inf2.xlarge", "EC2"), mode=DeviceMode.BLIND)
    out = placer.place(manual((3,)))
    assert isinstance(out, Placement) and not out.ok
    assert out.start_failure == StartFailure(StartFailure.MISSING, 3)  # inf2.xlarge has /dev/neuron0 only


def test_draining_and_disconnected_instances_get_nothing() -> None:
    state, placer = cluster(("c6i.large", "EC2"), ("c6i.large", "EC2"))
    state.set_status(0, "DRAINING")
    state.set_agent_connected(1, False)
    out = placer.place(cpu_task())
    assert isinstance(out, Failure) and out.reason == "AGENT"
    state.set_agent_connected(1, True)
    assert placer.place(cpu_task()).instance == 1


def test_release_unknown_task_is_an_error() -> None:
    _, placer = cluster(("c6i.large", "EC2"))
    with pytest.raises(PlacementError):
        placer.release("nope")


def test_more_than_ten_constraints_rejected() -> None:
    from scheduler.ecs.taskspec import Constraint

    _, placer = cluster(("c6i.large", "EC2"))
    many = tuple(Constraint("memberOf", "attribute:ecs.os-type == linux") for _ in range(11))
    with pytest.raises(PlacementError, match="at most 10"):
        placer.place(cpu_task(), constraints=many)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize(("chain", "words"), [
    ((Strategy("rand"),), "unknown strategy type 'rand'"),
    ((Strategy("spread", "zone"),), "spread field must be instanceId, host or attribute:NAME"),
    ((Strategy("binpack", "disk"),), "binpack field must be cpu or memory"),
    ((Strategy("random"),) * 6, "at most 5 placement strategies"),
])
def test_a_strategy_chain_ecs_rejects_is_an_error_on_either_path(chain, words: str, compiled: bool) -> None:
    """``placer.place`` checks the chain as RunTask does (at most five rules, known types and fields), the
    same on the compiled and the Python path, and nothing is taken."""
    state = ClusterState("t")
    for _ in range(3):
        state.add_instance(CAT.get("c6i.large"))
    placer = Placer(state, compiled=compiled)
    for _ in range(2):  # a second call with the same (cached) request is refused as well
        with pytest.raises(PlacementError, match=re.escape(words)):
            placer.place(cpu_task(), strategies=chain)
    assert not state.allocations
    assert isinstance(placer.place(cpu_task(), strategies=(Strategy("spread", "host"),)), Placement)


@pytest.mark.parametrize("compiled", [True, False])
def test_an_empty_task_id_gets_a_generated_one_on_either_path(compiled: bool) -> None:
    state = ClusterState("t")
    state.add_instance(CAT.get("c6i.large"))
    placer = Placer(state, compiled=compiled)
    placed = placer.place(cpu_task(cpu=16, memory=16), task_id="")
    assert isinstance(placed, Placement) and placed.task_id == "task-1" and "task-1" in state.allocations


# ---------------------------------------------------------------- property tests
TYPES = [("trn1.32xlarge", "EC2"), ("inf2.24xlarge", MI), ("inf2.xlarge", "EC2"), ("c6i.2xlarge", "EC2"),
         ("g5.12xlarge", "EC2"), ("trn1.32xlarge", MI)]

task_specs = st.one_of(
    st.builds(lambda chips, cpu, mem: manual(tuple(sorted(chips)), cpu, mem),
              st.sets(st.integers(0, 15), min_size=1, max_size=4), st.integers(0, 20_000),
              st.integers(1, 60_000)),
    st.builds(lambda cpu, mem: managed(cpu, mem), st.integers(0, 9000), st.integers(1, 20_000)),
    st.builds(lambda cpu, mem, g: TaskSpec(family="x", cpu=cpu, memory=mem, gpus=g),
              st.integers(0, 9000), st.integers(1, 40_000), st.integers(0, 2)),
    st.builds(lambda k: TaskSpec(family="topo", cpu=512, memory=1024, neuron_mode=NeuronMode.TOPOLOGY,
                                 chip_count=k, compatibilities=frozenset({"EC2", MI})),
              st.sampled_from([1, 2, 3, 4, 8])),
)


def check_invariants(state: ClusterState) -> None:
    assert (state.cpu_free >= 0).all() and (state.mem_free >= 0).all() and (state.gpu_free >= 0).all()
    for inst in state.instances:
        i = inst.index
        held = 0
        for chip, task in inst.chip_holders.items():
            assert not (held >> chip) & 1, "chip held twice"
            held |= 1 << chip
            assert (state.allocations[task].chips >> chip) & 1, "holder does not hold the chip"
        assert held & int(state.chips_free[i]) == 0
        assert held | int(state.chips_free[i]) == int(state.chips_all[i])
    # every allocation's chips are disjoint from every other's on the same instance
    seen: dict[int, int] = {}
    for alloc in state.allocations.values():
        assert seen.get(alloc.instance, 0) & alloc.chips == 0, "chip held twice"
        seen[alloc.instance] = seen.get(alloc.instance, 0) | alloc.chips


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), task_specs, st.integers(0, 1000)), min_size=1, max_size=60),
       blind=st.booleans())
def test_random_place_release_never_double_books_and_restores_empty(ops, blind) -> None:
    state, placer = cluster(*TYPES, mode=DeviceMode.BLIND if blind else DeviceMode.AWARE)
    live: list[str] = []
    for k, (do_place, spec, pick) in enumerate(ops):
        if do_place or not live:
            out = placer.place(spec, task_id=f"t{k}", launch_type=None)
            if isinstance(out, Placement) and out.ok:
                live.append(out.task_id)
        else:
            placer.release(live.pop(pick % len(live)))
        check_invariants(state)
    for task in live:
        placer.release(task)
    assert state.is_empty()


ops = st.lists(st.one_of(
    st.tuples(st.just("place"), task_specs, st.integers(0, 1000)),
    st.tuples(st.just("release"), st.integers(0, 1000), st.integers(0, 1000)),
    st.tuples(st.just("register"), st.integers(0, len(TYPES) - 1), st.integers(0, 1000)),
    st.tuples(st.sampled_from(["drain", "activate", "deregister", "disconnect"]), st.integers(0, 1000),
              st.integers(0, 1000)),
    st.tuples(st.just("remove_chip"), st.integers(0, 1000), st.integers(0, 63)),
    st.tuples(st.just("set_registered"), st.integers(0, 1000), st.integers(0, 200_000)),
), min_size=1, max_size=50)


def used_by_allocations(state: ClusterState) -> tuple[int, int, int]:
    """CPU, MiB and chips the tasks hold, summed over the allocations (a third count, beside the columns)."""
    allocs = state.allocations.values()
    return (sum(a.cpu for a in allocs), sum(a.memory for a in allocs), sum(a.chips.bit_count() for a in allocs))


@settings(max_examples=80, deadline=None)
@given(ops=ops, compiled=st.booleans(), blind=st.booleans())
def test_cluster_totals_equal_a_recount_after_any_stream_of_changes(ops, compiled, blind) -> None:
    """The totals kept O(1) by every change equal a recount from the columns and the allocations, after
    each place (Python or compiled path), release, register, drain, deregister, chip removal and
    re-registration; an INACTIVE instance counts nothing."""
    state = ClusterState("t")
    placer = Placer(state, device_mode=DeviceMode.BLIND if blind and not compiled else DeviceMode.AWARE,
                    compiled=compiled)
    state.add_instance(CAT.get(TYPES[0][0]), launch_type=TYPES[0][1])
    live: list[str] = []
    for k, (op, a, b) in enumerate(ops):
        row = a % len(state) if isinstance(a, int) else 0
        inst = state.instances[row]
        if op == "place":
            out = placer.place(a, task_id=f"t{k}", launch_type=None)
            if isinstance(out, Placement) and out.ok:
                live.append(out.task_id)
        elif op == "release" and live:
            placer.release(live.pop(a % len(live)))
        elif op == "register":
            name, lt = TYPES[a]
            state.add_instance(CAT.get(name), launch_type=lt)
        elif op == "drain" and inst.status != "INACTIVE":
            state.set_status(row, "DRAINING")
        elif op == "activate":  # DRAINING back to ACTIVE; an INACTIVE row registers again
            state.set_status(row, "ACTIVE")
        elif op == "deregister":
            for task in sorted(inst.tasks):
                placer.release(task)
                live.remove(task)
            state.set_status(row, "INACTIVE")
        elif op == "disconnect":
            state.set_agent_connected(row, not inst.agent_connected)
        elif op == "remove_chip" and inst.instance_type.chips and b % inst.instance_type.chips not in inst.chip_holders:
            state.remove_chip(row, b % inst.instance_type.chips)
        elif op == "set_registered" and not inst.tasks:
            state.set_registered(row, cpu=b // 10, memory=b)
        totals = state.totals()
        assert totals == state.recount_totals(), op
        assert (totals.cpu_used, totals.memory_used, totals.chips_held) == used_by_allocations(state), op
    for task in live:
        placer.release(task)
    assert state.totals()[1::2] == (0, 0, 0)


def test_instances_registered_later_become_candidates() -> None:
    state, placer = cluster(("inf2.xlarge", "EC2"))
    spec = manual((0,), cpu=3072, memory=12288)
    assert isinstance(placer.place(spec, task_id="a"), Placement)
    assert isinstance(placer.place(spec, task_id="b"), Failure)
    state.add_instance(CAT.get("inf2.xlarge"), availability_zone="us-east-1b", capacity_provider="asg")
    out = placer.place(spec, task_id="c", capacity_providers=["asg"], launch_type="EC2")
    assert isinstance(out, Placement) and out.instance == 1
    placer.release("a")
    state.add_instance(CAT.get("inf2.xlarge"), capacity_provider="asg")
    assert placer.place(spec, task_id="d", capacity_providers=["asg"]).instance == 2
    assert placer.place(spec, task_id="e").instance == 0


def test_status_changes_and_new_rows_keep_decisions_right() -> None:
    """Instances come and go (scale-out, scale-in): the candidates follow, whatever the core caches."""
    state, placer = cluster(*[("inf2.xlarge", "EC2")] * 4)
    spec = manual((0,), cpu=3072, memory=12288)
    rng = np.random.default_rng(0)
    live: list[str] = []
    for step in range(60):
        if step % 7 == 3:
            for i in state.instances:
                if i.status == "ACTIVE" and not i.tasks:
                    state.set_status(i.index, "INACTIVE")
                    break
        if step % 5 == 0:
            state.add_instance(CAT.get("inf2.xlarge"), capacity_provider="asg")
        if live and step % 3 == 0:
            placer.release(live.pop(0))
        expect = bool(placer.feasible(spec).any())
        out = placer.place(spec, task_id=f"t{step}", strategies=(Strategy("random"),), rng=rng)
        assert isinstance(out, Placement) == expect, (step, out)
        if isinstance(out, Placement):
            assert state.instances[out.instance].status == "ACTIVE"
            live.append(out.task_id)


def topo(k: int) -> TaskSpec:
    return TaskSpec(family=f"topo{k}", cpu=1024, memory=1024, neuron_mode=NeuronMode.TOPOLOGY, chip_count=k,
                    compatibilities=frozenset({"EC2", MI}), containers=(ContainerSpec("c"),))


def test_topology_aware_four_chip_blocks_on_trn1() -> None:
    _state, placer = cluster(("trn1.32xlarge", "EC2"))
    blocks = []
    for k in range(4):
        out = placer.place(topo(4), task_id=f"b{k}")
        assert isinstance(out, Placement)
        blocks.append(out.chips)
    assert sorted(blocks) == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15)]  # the torus rows
    fifth = placer.place(topo(4))
    assert isinstance(fifth, Failure) and fifth.reason == "RESOURCE:NEURON_DEVICES"
    assert "contiguous" in fifth.detail
    placer.release("b1")
    seven = placer.place(topo(7))
    assert isinstance(seven, Failure) and "does not support requests for 7 devices" in seven.detail


def test_topology_aware_three_neighbours_on_the_inf2_ring() -> None:
    _state, placer = cluster(("inf2.48xlarge", "EC2"))
    out = placer.place(topo(3))
    assert isinstance(out, Placement) and len(out.chips) == 3
    a, b, c = sorted(out.chips)
    ring = {(a, b), (b, c)} <= {(i, (i + 1) % 12) for i in range(12)} or sorted(out.chips) in ([0, 1, 11],
                                                                                                [0, 10, 11])
    assert ring


def test_empty_cluster_and_static_host_ports_fail_cleanly() -> None:
    """Issue 18 item 1: a fleet of count 0 and a task with static host ports raised IndexError."""
    placer = Placer(ClusterState("empty"))
    out = placer.place(cpu_task(ports=(8080,)))
    assert isinstance(out, Failure) and out.reason == "NO ACTIVE INSTANCES"
