"""Placement strategies and constraints as the placer applies them (ECS developer guide: task placement
strategies and constraints)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.catalog import default_catalog
from scheduler.ecs.taskspec import Constraint, ContainerSpec, NeuronMode, Strategy, TaskSpec
from scheduler.errors import PlacementError
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure, Placement
from scheduler.placement.state import ClusterState
from scheduler.placement.strategies import check_strategies

CAT = default_catalog()
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
SPREAD_AZ = Strategy("spread", "attribute:ecs.availability-zone")


def build(types: list[str], azs: tuple[str, ...] = AZS, attrs: list[dict] | None = None) -> Placer:
    state = ClusterState("s")
    for k, name in enumerate(types):
        state.add_instance(CAT.get(name), availability_zone=azs[k % len(azs)],
                           attributes=(attrs[k] if attrs else None))
    return Placer(state)


def small(cpu: int = 1024, mem: int = 1024, family: str = "web") -> TaskSpec:
    return TaskSpec(family=family, cpu=cpu, memory=mem, containers=(ContainerSpec("c"),))


def test_spread_az_then_binpack_memory_gives_10_10_10_packed() -> None:
    placer = build(["c6i.2xlarge"] * 6)  # two per AZ, 8 vCPU each: 8 tasks of 1 vCPU fill one
    chain = (SPREAD_AZ, Strategy("binpack", "memory"))
    rng = np.random.default_rng(1)
    outs = [placer.place(small(), strategies=chain, rng=rng) for _ in range(30)]
    assert all(isinstance(o, Placement) for o in outs)
    st_ = placer.state
    per_az = Counter(st_.instances[o.instance].availability_zone for o in outs)
    assert per_az == {"us-east-1a": 10, "us-east-1b": 10, "us-east-1c": 10}
    per_instance = Counter(o.instance for o in outs)
    # packed within each AZ: one instance full (8), its neighbour holds the other 2
    for az in AZS:
        counts = sorted(per_instance[i.index] for i in st_.instances if i.availability_zone == az)
        assert counts == [2, 8]


def test_random_differs_by_seed_and_repeats_with_the_same_seed() -> None:
    def run(seed: int) -> list[int]:
        placer = build(["c6i.2xlarge"] * 6)
        rng = np.random.default_rng(seed)
        return [placer.place(small(), strategies=(Strategy("random"),), rng=rng).instance for _ in range(30)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_spread_instance_id_round_robins() -> None:
    placer = build(["m6i.4xlarge"] * 4)
    outs = [placer.place(small(), strategies=(Strategy("spread", "instanceId"),)).instance for _ in range(8)]
    assert Counter(outs) == {0: 2, 1: 2, 2: 2, 3: 2}


def test_spread_counts_only_the_same_group() -> None:
    placer = build(["m6i.4xlarge"] * 2, azs=("a", "b"))
    for _ in range(3):
        placer.place(small(family="other"), strategies=(SPREAD_AZ,))  # group family:other
    chain = (SPREAD_AZ,)
    outs = [placer.place(small(family="web"), strategies=chain).instance for _ in range(4)]
    assert Counter(outs) == {0: 2, 1: 2}


def test_binpack_cpu_prefers_least_remaining() -> None:
    placer = build(["c6i.large", "c6i.2xlarge", "c6i.xlarge"])
    out = placer.place(small(cpu=512), strategies=(Strategy("binpack", "cpu"),))
    assert out.instance == 0  # c6i.large has the least CPU left that still fits


def test_binpack_neuron_devices_extension_packs_chips() -> None:
    state = ClusterState("n")
    for _ in range(2):
        state.add_instance(CAT.get("inf2.48xlarge"))
    placer = Placer(state)
    spec0 = TaskSpec(family="a", cpu=0, memory=100, neuron_mode=NeuronMode.MANUAL, chips=(0,), chip_count=1)
    spec1 = TaskSpec(family="b", cpu=0, memory=100, neuron_mode=NeuronMode.MANUAL, chips=(1,), chip_count=1)
    first = placer.place(spec0, strategies=(Strategy("random"),), rng=np.random.default_rng(0))
    chain = (Strategy("binpack", "neuronDevices"),)
    second = placer.place(spec1, strategies=chain)
    assert second.instance == first.instance


def test_distinct_instance_per_group() -> None:
    placer = build(["m6i.4xlarge"] * 3)
    c = (Constraint("distinctInstance"),)
    outs = [placer.place(small(), constraints=c) for _ in range(4)]
    assert sorted(o.instance for o in outs[:3]) == [0, 1, 2]
    assert isinstance(outs[3], Failure) and outs[3].reason == "DistinctInstance placement constraint unsatisfied"
    # another group is not affected
    assert isinstance(placer.place(small(family="other"), constraints=c), Placement)


def test_member_of_instance_type_and_affinity() -> None:
    placer = build(["c6i.large", "inf2.xlarge", "m6i.xlarge"])
    c = (Constraint("memberOf", "attribute:ecs.instance-type =~ inf.*"),)
    assert placer.place(small(cpu=256, mem=256), constraints=c).instance == 1
    affinity = (Constraint("memberOf", "task:group == family:web"),)
    out = placer.place(small(cpu=256, mem=256, family="db"), constraints=affinity)
    assert out.instance == 1
    anti = (Constraint("memberOf", "not(task:group == family:web)"),)
    out = placer.place(small(cpu=256, mem=256, family="x"), constraints=anti, strategies=())
    assert out.instance in (0, 2)
    none = (Constraint("memberOf", "attribute:ecs.instance-type == p4d.24xlarge"),)
    fail = placer.place(small(), constraints=none)
    assert isinstance(fail, Failure) and fail.reason == "MemberOf placement constraint unsatisfied"


def test_running_tasks_count_constraint_is_live() -> None:
    placer = build(["m6i.4xlarge"] * 2)
    c = (Constraint("memberOf", "runningTasksCount == 0"),)
    assert placer.place(small(), constraints=c).instance == 0
    assert placer.place(small(), constraints=c).instance == 1
    assert isinstance(placer.place(small(), constraints=c), Failure)


def test_custom_attributes_and_missing_attribute() -> None:
    placer = build(["m6i.xlarge"] * 3, attrs=[{"stack": "prod"}, {"stack": "dev"}, {}])
    neq = (Constraint("memberOf", "attribute:stack != prod"),)
    outs = {placer.place(small(cpu=128, mem=128), constraints=neq).instance for _ in range(3)}
    assert outs == {1}  # the instance without `stack` does not match != (reference reading)


def test_managed_instances_ignore_the_given_chain() -> None:
    state = ClusterState("mi")
    for az in AZS:
        state.add_instance(CAT.get("m6i.4xlarge"), launch_type="MANAGED_INSTANCES", availability_zone=az)
    placer = Placer(state)
    spec = TaskSpec(family="w", cpu=256, memory=256, compatibilities=frozenset({"MANAGED_INSTANCES"}))
    outs = [placer.place(spec, strategies=(Strategy("binpack", "cpu"),)).instance for _ in range(6)]
    assert Counter(outs) == {0: 2, 1: 2, 2: 2}  # AZ spread, not binpack


@pytest.mark.parametrize("chain", [
    [Strategy("binpack", "disk")],
    [Strategy("spread", "zone")],
    [Strategy("shuffle")],
    [Strategy("random")] * 6,
])
def test_bad_strategy_chains_rejected(chain: list[Strategy]) -> None:
    with pytest.raises(PlacementError):
        check_strategies(chain)


# ---------------------------------------------------------------- properties
TYPES = ["c6i.large", "c6i.xlarge", "c6i.2xlarge", "m6i.xlarge", "m6i.4xlarge", "r6i.2xlarge"]


@settings(max_examples=40, deadline=None)
@given(types=st.lists(st.sampled_from(TYPES), min_size=3, max_size=9),
       tasks=st.lists(st.tuples(st.integers(128, 4096), st.integers(128, 8192)), min_size=1, max_size=40),
       field=st.sampled_from(["cpu", "memory"]))
def test_binpack_never_leaves_a_fitting_instance_with_less_remaining(types, tasks, field) -> None:
    placer = build(types)
    state = placer.state
    for cpu, mem in tasks:
        spec = small(cpu, mem)
        mask = placer.feasible(spec)
        before = (state.cpu_free if field == "cpu" else state.mem_free).copy()
        out = placer.place(spec, strategies=(Strategy("binpack", field),))
        if isinstance(out, Failure):
            assert not mask.any()
            continue
        assert mask[out.instance]
        assert before[out.instance] == before[mask].min()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), per_az=st.integers(1, 3))
def test_spread_keeps_counts_within_one_when_capacity_allows(n, per_az) -> None:
    placer = build(["m6i.4xlarge"] * (3 * per_az))
    counts: Counter = Counter()
    for _ in range(n):
        out = placer.place(small(cpu=128, mem=128), strategies=(SPREAD_AZ,), rng=np.random.default_rng(0))
        counts[placer.state.instances[out.instance].availability_zone] += 1
        values = [counts[a] for a in AZS]
        assert max(values) - min(values) <= 1


@settings(max_examples=40, deadline=None)
@given(types=st.lists(st.sampled_from([*TYPES, "inf2.xlarge", "trn1.2xlarge"]), min_size=2, max_size=8),
       expr=st.sampled_from(["attribute:ecs.instance-type =~ c6i.*", "attribute:ecs.availability-zone != us-east-1b",
                             "attribute:ecs.instance-type in [m6i.xlarge, inf2.xlarge]",
                             "not(attribute:ecs.instance-type == r6i.2xlarge) and runningTasksCount < 3"]),
       k=st.integers(1, 20), distinct=st.booleans())
def test_placements_never_violate_constraints(types, expr, k, distinct) -> None:
    placer = build(types)
    state = placer.state
    cons = [Constraint("memberOf", expr)] + ([Constraint("distinctInstance")] if distinct else [])
    from scheduler.ecs import cql

    query = cql.parse(expr)
    for _ in range(k):
        ok_before = query.evaluate(state)
        out = placer.place(small(cpu=128, mem=128), constraints=cons, strategies=(Strategy("random"),),
                           rng=np.random.default_rng(1))
        if isinstance(out, Placement):
            assert ok_before[out.instance]
    if distinct:
        assert int(state.group_counts("family:web").max(initial=0)) <= 1


def test_az_balanced_spread_preset() -> None:
    """The console's "AZ Balanced Spread": spread AZ, then spread instanceId."""
    placer = build(["m6i.4xlarge"] * 6)  # two per AZ
    chain = (SPREAD_AZ, Strategy("spread", "instanceId"))
    outs = [placer.place(small(cpu=256, mem=256), strategies=chain, rng=np.random.default_rng(5)).instance
            for _ in range(12)]
    assert Counter(outs) == dict.fromkeys(range(6), 2)


def test_binpack_memory_preset_fills_one_instance_first() -> None:
    placer = build(["m6i.xlarge"] * 3)
    outs = [placer.place(small(cpu=256, mem=2048), strategies=(Strategy("binpack", "memory"),)).instance
            for _ in range(7)]
    assert outs[:7] == [outs[0]] * 7  # 15974 MiB registered: seven 2 GiB tasks fit on the first
