"""The compiled kernel against the Python path and the plain reference, decision by decision; invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.mix import CHAIN, CLUSTER_MIX, build_cluster, draws, task_kinds
from benchmarks.reference import ReferencePlacer, core_decision
from scheduler.catalog import default_catalog
from scheduler.ecs.taskspec import Constraint, Strategy, TaskSpec
from scheduler.errors import PlacementError
from scheduler.placement import kernel
from scheduler.placement.kernel import Unsupported
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure, Placement
from scheduler.placement.state import ClusterState
from scheduler.placement.stream import CompiledStream

KINDS = task_kinds()
REQUESTS = [(k.spec, c, CHAIN) for k in KINDS for c in ((), (k.constraint,))]


def _take(live: list, u: float):
    i = int(u * len(live))
    live[i], live[-1] = live[-1], live[i]
    return live.pop()


def python_stream(state: ClusterState, ids: np.ndarray, us: np.ndarray, fill: int, seed: int,
                  reference: ReferencePlacer | None = None, requests: list | None = None,
                  compiled: bool = False) -> list:
    """The Python path (or the reference, or ``Placer(compiled=True)``) over the same fill + churn as
    ``CompiledStream``."""
    requests = requests or REQUESTS
    placer = reference or Placer(state, compiled=compiled)
    rng = np.random.default_rng(seed)
    live: list[str] = []
    out = []
    saturated = None
    for i, r in enumerate(ids.tolist()):
        if i == fill:
            saturated = len(live)
        if saturated is not None and len(live) >= saturated:
            placer.release(_take(live, us[i - fill]))
        spec, constraints, chain = requests[r]
        if reference is None:
            got = core_decision(placer.place(spec, constraints=constraints, strategies=chain, rng=rng,
                                             task_id=f"t{i}"))
        else:
            got = placer.place(spec, constraints=constraints, strategies=chain, rng=rng, task_id=f"t{i}")
        out.append((got.row, got.chips, got.reason))
        if got.row is not None:
            live.append(f"t{i}")
    return out


def compiled_stream(state: ClusterState, ids: np.ndarray, us: np.ndarray, seed: int,
                    requests: list | None = None) -> tuple[list, int]:
    cs = CompiledStream(state, requests or REQUESTS)
    rng = np.random.default_rng(seed)
    done, rows, tasks = cs.fill(ids, rng)
    out = [cs.decision(ids[i], rows[i], tasks[i]) for i in range(done)]
    rows, tasks = cs.churn(ids[done:], us, rng, cs.running)
    out += [cs.decision(ids[done + i], rows[i], tasks[i]) for i in range(len(rows))]
    return out, done


def stream_ids(seed: int, count: int, only: tuple[int, ...] | None = None) -> np.ndarray:
    it = draws(KINDS, np.random.default_rng([seed, 1]), only=only)
    return np.array([2 * d.kind + bool(d.constraints) for d in (next(it) for _ in range(count))], np.int64)


def small_mix(n: int, seed: int) -> ClusterState:
    """A second cluster mix: Neuron and GPU types only, in a seeded order, all in two AZs."""
    names = [(t, lt) for t, lt, _ in CLUSTER_MIX if t.startswith(("inf", "trn", "g5"))]
    rng = np.random.default_rng(seed)
    state = ClusterState("neuron-only", capacity=n)
    cat = default_catalog()
    for j in rng.integers(len(names), size=n).tolist():
        t, lt = names[j]
        state.add_instance(cat.get(t), launch_type=lt, availability_zone=("us-east-1a", "us-east-1b")[j % 2])
    return state


@pytest.mark.parametrize(("mix", "seed", "n"), [("bench", 3, 300), ("bench", 11, 120), ("neuron", 5, 150)])
def test_compiled_equals_python_equals_reference(mix: str, seed: int, n: int) -> None:
    def fresh() -> ClusterState:
        return build_cluster(n, np.random.default_rng([seed, 0])) if mix == "bench" else small_mix(n, seed)

    ids = stream_ids(seed, 12 * n + 4_000)
    compiled, fill = compiled_stream(fresh(), ids, np.random.default_rng([seed, 2]).random(len(ids)), seed)
    us = np.random.default_rng([seed, 2]).random(len(ids))
    python = python_stream(fresh(), ids, us, fill, seed)
    assert len(compiled) == len(python) == len(ids)
    first_bad = next((i for i, (a, b) in enumerate(zip(compiled, python, strict=True)) if a != b), None)
    assert first_bad is None, (first_bad, compiled[first_bad], python[first_bad])
    assert sum(r is None for r, _, _ in python) > 100  # failures are compared too
    assert len({r for r, _, _ in python if r is not None}) > n // 2
    limit = fill + 1_500  # the reference is slow: compare the fill and the start of the churn
    state = fresh()
    reference = python_stream(state, ids[:limit], us, fill, seed, ReferencePlacer.from_state(state))
    assert reference == python[:limit]


AZ = Strategy("spread", "attribute:ecs.availability-zone")
TYPE = Strategy("spread", "attribute:ecs.instance-type")
MEM, CPU, CHIPS = Strategy("binpack", "memory"), Strategy("binpack", "cpu"), Strategy("binpack", "neuronDevices")
# every shape the kernel's scans take: spreads ending in binpack(memory) (classes kept by free memory),
# spreads and one other binpack (one packed key), none or random (all fitting classes tie), two binpacks
CHAINS: tuple[tuple[Strategy, ...], ...] = (
    CHAIN, (MEM,), (AZ, TYPE, MEM), (CPU,), (AZ, CHIPS), (MEM, AZ), (AZ,), (Strategy("random"),), (),
    (MEM, CPU), (AZ, Strategy("random")), (TYPE, AZ, CPU),
)


def chain_requests(chains: tuple[tuple[Strategy, ...], ...]) -> list:
    return [(k.spec, c, chain) for k in KINDS for c in ((), (k.constraint,)) for chain in chains]


def wide_mix(n: int, seed: int) -> ClusterState:
    """The benchmark's types over three AZs in a seeded order, each type in both launch types where it
    can: small, but with many classes per signature once tasks run (as the large clusters have)."""
    cat = default_catalog()
    kinds = sorted({(t, lt) for t, lt, _ in CLUSTER_MIX} | {(t, "EC2") for t, _, _ in CLUSTER_MIX})
    rng = np.random.default_rng(seed)
    state = ClusterState("wide", capacity=n)
    azs = ("us-east-1a", "us-east-1b", "us-east-1c")
    for j in rng.integers(len(kinds), size=n).tolist():
        t, lt = kinds[j]
        state.add_instance(cat.get(t), launch_type=lt, availability_zone=azs[int(rng.integers(3))])
    return state


def three_ways(fresh, requests: list, ids: np.ndarray, seed: int) -> tuple[list, int]:
    """The compiled stream, ``Placer(compiled=True)`` and the Python path over one fill + churn: all
    decisions equal (failures and tie-breaks included)."""
    us = np.random.default_rng([seed, 2]).random(len(ids))
    stream, fill = compiled_stream(fresh(), ids, us, seed, requests)
    python = python_stream(fresh(), ids, us, fill, seed, requests=requests)
    placer = python_stream(fresh(), ids, us, fill, seed, requests=requests, compiled=True)
    assert len(stream) == len(python) == len(placer) == len(ids)
    for name, got in (("stream", stream), ("Placer(compiled=True)", placer)):
        bad = next((i for i, (a, b) in enumerate(zip(got, python, strict=True)) if a != b), None)
        assert bad is None, (name, bad, requests[ids[bad]][2], got[bad], python[bad])
    return python, fill


@pytest.mark.parametrize(("mix", "seed", "n"), [("wide", 7, 500), ("bench", 8, 250), ("neuron", 9, 160)])
def test_every_chain_shape_compiled_equals_python(mix: str, seed: int, n: int) -> None:
    """Long fill + churn streams mixing every chain shape: the stream's fast scans, the placer's explaining
    scan and the Python path decide alike."""
    def fresh() -> ClusterState:
        if mix == "wide":
            return wide_mix(n, seed)
        return build_cluster(n, np.random.default_rng([seed, 0])) if mix == "bench" else small_mix(n, seed)

    requests = chain_requests(CHAINS)
    ids = np.random.default_rng([seed, 1]).integers(len(requests), size=12 * n + 4_000)
    python, fill = three_ways(fresh, requests, ids, seed)
    assert sum(r is None for r, _, _ in python) > 100  # failures are compared too
    assert len({r for r, _, _ in python if r is not None}) > n // 2
    churn_chains = {CHAINS.index(requests[r][2]) for r in ids[fill:].tolist()}
    assert churn_chains == set(range(len(CHAINS)))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(20, 160), mix=st.sampled_from(("wide", "bench", "neuron")),
       chains=st.lists(st.sampled_from(CHAINS), min_size=1, max_size=4, unique=True))
def test_generated_mixes_compiled_equals_python(seed: int, n: int, mix: str, chains: list) -> None:
    """Hypothesis draws the cluster, its size and the chains; the three paths decide alike."""
    def fresh() -> ClusterState:
        if mix == "wide":
            return wide_mix(n, seed)
        return build_cluster(n, np.random.default_rng([seed, 0])) if mix == "bench" else small_mix(n, seed)

    requests = chain_requests(tuple(chains))
    ids = np.random.default_rng([seed, 1]).integers(len(requests), size=8 * n + 600)
    three_ways(fresh, requests, ids, seed)


def test_unsupported_requests_stay_on_the_python_path() -> None:
    state = build_cluster(20, np.random.default_rng(0))
    spec = TaskSpec(family="p", cpu=1, memory=1, tcp_ports=(80,))
    with pytest.raises(Unsupported, match="ports"):
        CompiledStream(state, [(spec, (), CHAIN)])
    with pytest.raises(Unsupported, match="distinctInstance"):
        CompiledStream(state, [(TaskSpec(family="d", cpu=1), (Constraint("distinctInstance"),), CHAIN)])
    with pytest.raises(Unsupported, match="per instance"):
        CompiledStream(state, [(TaskSpec(family="s", cpu=1), (), (Strategy("spread", "instanceId"),))])
    assert kernel.available()


# ---------------------------------------------------------------------- the public API, both paths
def extra_kinds() -> list[tuple[TaskSpec, tuple[Constraint, ...], tuple[Strategy, ...]]]:
    """Requests beyond the benchmark's mix: awsvpc (ENI slots), GPU=ALL and fractional GPUs, and some the
    kernel leaves to the Python path inside a compiled placer (host ports, distinctInstance, spread by
    instance, random), so that both paths change one cluster in turn."""
    return [
        (TaskSpec(family="vpc", cpu=256, memory=512, network_mode="awsvpc"), (), CHAIN),
        (TaskSpec(family="gpu-all", cpu=512, memory=1024, gpus_all=True), (), CHAIN),
        (TaskSpec(family="gpu-frac", cpu=256, memory=512, gpu_fraction=0.5), (), CHAIN),
        (TaskSpec(family="port", cpu=256, memory=256, tcp_ports=(8080,)), (), CHAIN),
        (TaskSpec(family="distinct", cpu=128, memory=128), (Constraint("distinctInstance"),), CHAIN),
        (TaskSpec(family="per-instance", cpu=128, memory=256), (), (Strategy("spread", "instanceId"),)),
        (TaskSpec(family="rand", cpu=128, memory=256), (), (Strategy("random"),)),
        (TaskSpec(family="cpu-bin", cpu=1024, memory=1024), (), (Strategy("binpack", "cpu"),)),
        (TaskSpec(family="first", cpu=64, memory=64), (), ()),
    ]


def public_stream(state: ClusterState, compiled: bool, seed: int, steps: int, extra: bool) -> tuple[list, Placer]:
    """Fill then churn through ``placer.place``/``release``: every outcome in full (placements with their
    chips and GPU ids, failures with reason, words, closest instance and explanation)."""
    placer = Placer(state, compiled=compiled)
    requests = list(REQUESTS) + (extra_kinds() if extra else [])
    pick = np.random.default_rng([seed, 5]).integers(len(requests), size=steps)
    us = np.random.default_rng([seed, 6]).random(steps)
    rng = np.random.default_rng(seed)
    live: list[str] = []
    out = []
    for i, r in enumerate(pick.tolist()):
        if i > steps // 3 and live and us[i] < 0.8:
            placer.release(_take(live, us[i] / 0.8))
        spec, constraints, chain = requests[r]
        got = placer.place(spec, constraints=constraints, strategies=chain, rng=rng, task_id=f"t{i}")
        out.append(got)
        if isinstance(got, Placement):
            live.append(f"t{i}")
    return out, placer


@pytest.mark.parametrize(("mix", "seed", "n", "extra"),
                         [("bench", 1, 200, False), ("bench", 2, 400, True), ("neuron", 4, 120, True),
                          ("gpu", 9, 80, True)])
def test_public_api_compiled_equals_python(mix: str, seed: int, n: int, extra: bool) -> None:
    """``Placer(compiled=True)`` gives exactly the Python path's outcomes, decision by decision, and leaves
    the same columns and allocations; the compiled index matches the rows at the end."""
    def fresh() -> ClusterState:
        if mix == "bench":
            return build_cluster(n, np.random.default_rng([seed, 0]))
        if mix == "gpu":
            return gpu_mix(n, seed)
        return small_mix(n, seed)

    steps = 10 * n + 1_500
    python, slow = public_stream(fresh(), False, seed, steps, extra)
    compiled, fast = public_stream(fresh(), True, seed, steps, extra)
    assert fast.state._live is not None and slow.state._live is None
    first_bad = next((i for i, (a, b) in enumerate(zip(python, compiled, strict=True)) if a != b), None)
    assert first_bad is None, (first_bad, python[first_bad], compiled[first_bad])
    failures = [f for f in python if isinstance(f, Failure)]
    assert len(failures) > 50 and len({f.reason for f in failures}) >= 3  # failures and their words compared
    a, b = slow.state, fast.state
    assert np.array_equal(a._cols[1:6, : len(a)], b._cols[1:6, : len(b)])
    assert a.allocations == b.allocations
    assert_index_matches(b)


def test_compiled_failure_words_are_built_when_read_and_stand_for_the_failure() -> None:
    """A failed compiled decision returns its words deferred (built on first read, from the details the
    kernel left then): later placements do not change them, and it reads, compares, hashes and pickles as
    the Python path's Failure for the same decision."""
    import pickle

    from scheduler.placement.results import DeferredFailure

    def run(compiled: bool) -> tuple[Failure, Placer]:
        state = small_mix(12, 3)
        placer = Placer(state, compiled=compiled)
        big = TaskSpec(family="big", cpu=4096, memory=8192)
        for i in range(400):
            got = placer.place(big, strategies=CHAIN, task_id=f"b{i}")
            if isinstance(got, Failure):
                break
        assert isinstance(got, Failure)
        for i in range(50):  # the cluster changes after the failure: its words must not
            placer.place(TaskSpec(family="small", cpu=16, memory=16), task_id=f"s{i}")
        return got, placer

    slow, _ = run(False)
    fast, _ = run(True)
    assert type(fast) is DeferredFailure and fast._made is None  # nothing built yet
    assert fast == slow and slow == fast and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert fast._made is not None and fast.reason == slow.reason and fast.explanation == slow.explanation
    back = pickle.loads(pickle.dumps(fast))
    assert type(back) is Failure and back == slow


def assert_index_matches(state: ClusterState) -> None:
    """Every row sits in the compiled class of its free columns; class sizes add up to the rows."""
    live = state._live
    X = live.X
    k = int(X[0])
    C = X[X[8]: X[8] + 11 * k].reshape(k, 11)
    n = len(state)
    slots = state._cols[6, :n]
    assert (C[slots, 0] == state._cols[0, :n]).all()
    assert (C[slots, 1:6] == state._cols[1:6, :n].T).all()
    used = C[: X[1]]
    assert used[used[:, 0] >= 0, 6].sum() == n
    from scheduler.placement import _kernel_impl as K

    C, _, _, P, SC, SN, SO, V, RP, _, _ = K._views(X)
    for c in np.flatnonzero(C[: X[1], K.C_SIG] >= 0):  # each class's rows: where their positions say
        rows = P[C[c, K.C_OFF]: C[c, K.C_OFF] + C[c, K.C_SIZE]]
        assert (RP[rows] == np.arange(len(rows))).all() and (slots[rows] == c).all()
        assert C[c, K.C_FIRST] == rows.min()
    for s in range(len(SN)):  # a signature's classes in ascending free memory, their records beside them
        block = slice(SO[s], SO[s] + SN[s])
        assert (np.diff(V[block, 1]) >= 0).all()
        assert (C[SC[block], K.C_POS] == np.arange(SN[s])).all()
        assert (V[block] == C[SC[block], 1:6]).all()


def gpu_mix(n: int, seed: int) -> ClusterState:
    """A third mix: GPU types (whole GPUs and G6f partitions) and ordinary ones."""
    cat = default_catalog()
    names = [t for t in ("g5.xlarge", "g5.12xlarge", "g6f.xlarge", "g6f.4xlarge", "c6i.xlarge", "m6i.xlarge")
             if t in cat.names()]
    rng = np.random.default_rng(seed)
    state = ClusterState("gpu", capacity=n)
    for j in rng.integers(len(names), size=n).tolist():
        state.add_instance(cat.get(names[j]), availability_zone=("us-east-1a", "us-east-1b", "us-east-1c")[j % 3])
    return state


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(1, 60), steps=st.integers(1, 400))
def test_compiled_invariants(seed: int, n: int, steps: int) -> None:
    """Through the public API on the compiled path: no chip held twice, nothing negative, the compiled
    index follows every change, and releasing every task restores the empty cluster."""
    state = build_cluster(n, np.random.default_rng([seed, 0]))
    placer = Placer(state, compiled=True)
    requests = list(REQUESTS) + extra_kinds()
    rng = np.random.default_rng(seed)
    pick = rng.integers(len(requests), size=steps)
    live: list[str] = []
    for i, r in enumerate(pick.tolist()):
        if live and rng.random() < 0.3:
            placer.release(_take(live, rng.random()))
        spec, constraints, chain = requests[r]
        if isinstance(placer.place(spec, constraints=constraints, strategies=chain, rng=rng, task_id=f"t{i}"),
                      Placement):
            live.append(f"t{i}")
    assert (state._cols[1:5, :n] >= 0).all()
    held = np.zeros(n, np.int64)
    for alloc in state.allocations.values():
        assert held[alloc.instance] & alloc.chips == 0  # no chip held twice
        held[alloc.instance] |= alloc.chips
    assert ((held & state._cols[5, :n]) == 0).all()
    assert ((held | state._cols[5, :n]) == state.chips_all.astype(np.int64)).all()
    assert_index_matches(state)
    assert state.totals() == state.recount_totals()
    for t in live:
        placer.release(t)
    assert state.is_empty()
    assert_index_matches(state)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(1, 120), churn=st.integers(0, 1_500),
       chains=st.lists(st.sampled_from(CHAINS), min_size=1, max_size=3, unique=True))
def test_stream_invariants(seed: int, n: int, churn: int, chains: list) -> None:
    """The compiled stream: nothing negative, no chip held twice, the index follows every change (classes
    by free memory, rows where their positions say), and releasing every task restores the empty cluster."""
    state = wide_mix(n, seed)
    requests = chain_requests(tuple(chains))
    cs = CompiledStream(state, requests)
    rng = np.random.default_rng(seed)
    ids = rng.integers(len(requests), size=10 * n + churn + 100)
    done, _, _ = cs.fill(ids, rng)
    cs.churn(ids[done: done + churn], rng.random(churn), rng, cs.running)
    assert (state._cols[1:5, :n] >= 0).all()
    held = np.zeros(n, np.int64)
    for t in cs.live[: cs.running].tolist():
        row, chips = int(cs.T[t, 0]), int(cs.T[t, 5])
        assert held[row] & chips == 0  # no chip held twice
        held[row] |= chips
    assert ((held & state._cols[5, :n]) == 0).all()
    assert ((held | state._cols[5, :n]) == state.chips_all.astype(np.int64)).all()
    assert_index_matches(state)
    assert state.totals() == state.recount_totals()  # the stream bypasses record/free: its totals follow
    cs.release_all()
    assert cs.is_empty()
    assert state.totals() == state.recount_totals() and state.totals().cpu_used == 0
    assert_index_matches(state)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(1, 80), churn=st.integers(1, 600))
def test_stream_restored_to_a_snapshot_decides_the_same_again(seed: int, n: int, churn: int) -> None:
    """A stream put back to a snapshot (as the benchmark's replays do) is the stream it was: the same churn,
    draws and generator state make the same decisions, and the index still follows the free columns."""
    state = wide_mix(n, seed)
    requests = chain_requests(tuple(CHAINS[:2]))
    cs = CompiledStream(state, requests)
    rng = np.random.default_rng(seed)
    ids = rng.integers(len(requests), size=10 * n + churn + 100)
    done, _, _ = cs.fill(ids, rng)
    saturated, us = cs.running, rng.random(churn)
    snap, drawn = cs.snapshot(), rng.bit_generator.state
    totals = state.totals()
    first = cs.churn(ids[done: done + churn], us, rng, saturated)
    cs.restore(snap)
    rng.bit_generator.state = drawn
    assert cs.running == saturated and state.totals() == totals
    assert_index_matches(state)
    again = cs.churn(ids[done: done + churn], us, rng, saturated)
    assert [a.tolist() for a in first] == [a.tolist() for a in again]
    cs.release_all()
    assert cs.is_empty()


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 400), min_size=2, max_size=6), seed=st.integers(0, 2**16))
def test_kth_row_is_the_kth_of_the_sorted_union(sizes: list[int], seed: int) -> None:
    """The kernel's k-th tied row is the k-th of the sorted union of the tied classes' rows."""
    from scheduler.placement import _kernel_impl as K

    rng = np.random.default_rng(seed)
    rows = rng.permutation(sum(sizes) * 3)[: sum(sizes)]
    C = np.zeros((len(sizes), K.NCF), np.int64)
    pool = np.zeros(sum(sizes) + 3 * len(sizes), np.int64)
    at = off = 0
    for c, size in enumerate(sizes):
        mine = rng.permutation(rows[at: at + size])  # a class's rows are kept in no order
        at += size
        pool[off: off + size] = mine
        C[c, K.C_SIZE], C[c, K.C_FIRST], C[c, K.C_OFF], C[c, K.C_CAP] = size, mine.min(), off, size + 3
        off += size + 3  # spare room, as the kernel keeps
    union = np.sort(rows)
    for n in {len(sizes), 1}:
        cand = np.arange(n, dtype=np.int64)
        want = np.sort(rows[: sizes[0]]) if n == 1 else union
        for k in {0, len(want) - 1, int(rng.integers(len(want)))}:
            assert K._kth_row(C, pool, cand, n, k, np.zeros(sum(sizes), np.int64)) == want[k]


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), totals=st.lists(st.integers(2, 2**32 - 2), min_size=1, max_size=20))
def test_draw_is_numpys_integers(seed: int, totals: list[int]) -> None:
    """The kernel's tie-break draw takes the same numbers from the caller's Generator as numpy does."""
    fn = kernel.functions()["draw"]
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    st_, next32 = kernel.generator_addresses(a)
    for total in totals:
        assert fn(st_, next32, total) == b.integers(total)
    assert a.random() == b.random()  # the two generators are still in step


def test_auto_uses_the_kernel_only_when_warm_or_large(tmp_path, monkeypatch) -> None:
    """"auto" on a small cluster with a cold cache stays on the Python path (no compile to wait for); a
    warm cache (recorded by a run that compiled) lets it decide in compiled code; False never does."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = TaskSpec(family="w", cpu=256, memory=256)
    small = build_cluster(20, np.random.default_rng(0))
    placer = Placer(small)
    assert not kernel.cache_is_warm()
    placer.place(spec)
    assert small._live is None
    first = build_cluster(20, np.random.default_rng(0))
    Placer(first, compiled=True).place(spec)  # compiles (or loads) and records the cache as warm
    assert first._live is not None and kernel.cache_is_warm()
    warm = build_cluster(20, np.random.default_rng(0))
    Placer(warm).place(spec)
    assert warm._live is not None
    off = build_cluster(20, np.random.default_rng(0))
    Placer(off, compiled=False).place(spec)
    assert off._live is None
    with pytest.raises(PlacementError, match="compiled"):
        Placer(off, compiled="sometimes")


def test_request_table_width_is_the_kernels() -> None:
    from scheduler.placement import _kernel_impl as K

    assert K.NQF == kernel.QUERY_FIELDS


def test_detached_index_is_rebuilt_and_decides_as_python() -> None:
    """A placer switched to the Python path and back (the index detached meanwhile) builds a fresh index
    from the rows and keeps deciding exactly as the Python path."""
    def run(switch: bool) -> list:
        state = build_cluster(60, np.random.default_rng(3))
        placer = Placer(state, compiled=switch)
        rng = np.random.default_rng(4)
        out = []
        for i in range(300):
            if switch and i == 100:
                state.attach(None)
                placer.compiled = False
            if switch and i == 200:
                placer.compiled = True
            spec, constraints, chain = REQUESTS[i % len(REQUESTS)]
            out.append(placer.place(spec, constraints=constraints, strategies=chain, rng=rng, task_id=f"t{i}"))
            if i % 3 == 0 and isinstance(out[-1], Placement):
                placer.release(f"t{i}")
        assert state._live is not None or not switch
        return out

    assert run(True) == run(False)


def test_a_copied_cluster_keeps_its_columns_one_block_and_decides_alike() -> None:
    """deepcopy (and pickle) of a cluster the kernel decided on: the copy's free columns are views of its
    own block again, it carries no compiled index, and it decides as the original does."""
    import copy

    state = build_cluster(80, np.random.default_rng(8))
    placer = Placer(state, compiled=True)
    rng = np.random.default_rng(9)
    for i in range(120):
        spec, constraints, chain = REQUESTS[i % len(REQUESTS)]
        placer.place(spec, constraints=constraints, strategies=chain, rng=rng, task_id=f"t{i}")
    twin = copy.deepcopy(state)
    assert twin._live is None and np.shares_memory(twin._cpu_free, twin._cols)
    assert np.shares_memory(twin._chips_free, twin._cols)
    a, b = Placer(state, compiled=True), Placer(twin, compiled=True)
    ra, rb = np.random.default_rng(10), np.random.default_rng(10)
    for i in range(200):
        spec, constraints, chain = REQUESTS[(7 * i) % len(REQUESTS)]
        assert (a.place(spec, constraints=constraints, strategies=chain, rng=ra, task_id=f"u{i}")
                == b.place(spec, constraints=constraints, strategies=chain, rng=rb, task_id=f"u{i}"))
    assert np.array_equal(state._cols[1:6, :80], twin._cols[1:6, :80])


def test_loading_the_kernel_skips_numbas_blas_probe() -> None:
    """A fresh process loading the kernel does not import scipy.linalg (numba's BLAS probe, most of a warm
    start), and numba's own probe is put back for the process's other numba code."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from scheduler.placement import kernel\n"
        "kernel.functions()\n"
        "from numba.np import arraymath, linalg\n"
        "assert 'scipy.linalg' not in sys.modules, 'scipy.linalg imported'\n"
        "assert not arraymath._HAVE_BLAS\n"
        "assert linalg.ensure_blas.__name__ == 'ensure_blas', linalg.ensure_blas\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=5), seed=st.integers(0, 2**16),
       spread=st.sampled_from([1, 3, 1000]), room=st.sampled_from([0, 64, 200]))
def test_kth_row_both_selections_agree_with_sorting(sizes: list[int], seed: int, spread: int, room: int) -> None:
    """The k-th tied row by radix rounds (scratch with room for the counters) and bit by bit (no room), on
    rows close together (several rounds, all in one bucket) and far apart: always the sorted union's k-th."""
    from scheduler.placement import _kernel_impl as K

    rng = np.random.default_rng(seed)
    total = sum(sizes)
    base = int(rng.integers(0, 1 << 20))
    rows = base + rng.permutation(total * spread)[:total]
    C = np.zeros((len(sizes), K.NCF), np.int64)
    pool = np.zeros(total + 2 * len(sizes), np.int64)
    at = off = 0
    for c, size in enumerate(sizes):
        pool[off: off + size] = rows[at: at + size]
        at += size
        C[c, K.C_SIZE], C[c, K.C_OFF], C[c, K.C_CAP] = size, off, size + 2
        off += size + 2
    union = np.sort(rows)
    for k in {0, total - 1, int(rng.integers(total))}:
        got = K._kth_row(C, pool, np.arange(len(sizes), dtype=np.int64), len(sizes), k,
                         np.zeros(total + room, np.int64))
        assert got == union[k]
