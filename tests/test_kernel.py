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
from scheduler.placement import kernel
from scheduler.placement.kernel import CompiledStream, Unsupported
from scheduler.placement.placer import Placer
from scheduler.placement.state import ClusterState

KINDS = task_kinds()
REQUESTS = [(k.spec, c, CHAIN) for k in KINDS for c in ((), (k.constraint,))]


def _take(live: list, u: float):
    i = int(u * len(live))
    live[i], live[-1] = live[-1], live[i]
    return live.pop()


def python_stream(state: ClusterState, ids: np.ndarray, us: np.ndarray, fill: int, seed: int,
                  reference: ReferencePlacer | None = None) -> list:
    """The Python path (or the reference) over the same fill + churn as ``CompiledStream``."""
    placer = reference or Placer(state)
    rng = np.random.default_rng(seed)
    live: list[str] = []
    out = []
    saturated = None
    for i, r in enumerate(ids.tolist()):
        if i == fill:
            saturated = len(live)
        if saturated is not None and len(live) >= saturated:
            placer.release(_take(live, us[i - fill]))
        spec, constraints, chain = REQUESTS[r]
        if reference is None:
            got = core_decision(placer.place(spec, constraints=constraints, strategies=chain, rng=rng,
                                             task_id=f"t{i}"))
        else:
            got = placer.place(spec, constraints=constraints, strategies=chain, rng=rng, task_id=f"t{i}")
        out.append((got.row, got.chips, got.reason))
        if got.row is not None:
            live.append(f"t{i}")
    return out


def compiled_stream(state: ClusterState, ids: np.ndarray, us: np.ndarray, seed: int) -> tuple[list, int]:
    cs = CompiledStream(state, REQUESTS)
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


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(1, 60), steps=st.integers(1, 600))
def test_kernel_invariants(seed: int, n: int, steps: int) -> None:
    """No chip held twice, nothing negative, and releasing every task restores the empty cluster."""
    state = build_cluster(n, np.random.default_rng([seed, 0]))
    cs = CompiledStream(state, REQUESTS)
    start = cs.R.copy()
    ids = stream_ids(seed, steps)
    us = np.random.default_rng(seed).random(steps)
    cs.churn(ids, us, np.random.default_rng(seed), max(1, n // 2) * 4)
    live = cs.live[: cs.running]
    assert (cs.R[1:5] >= 0).all()
    held = np.zeros(n, np.int64)
    for t in live.tolist():
        row, chips = cs.T[0, t], cs.T[5, t]
        assert held[row] & chips == 0  # no chip held twice
        held[row] |= chips
    assert ((held & cs.R[5]) == 0).all() and ((held | cs.R[5]) == start[5]).all()
    fn = kernel.functions()
    for t in live.tolist():
        fn["release"](cs.R, cs.C, cs.idx, cs.rows, cs.free, cs.M, cs.SA, cs.SP, cs.T, t)
    assert (cs.R[:6] == start[:6]).all() and not cs.SP.any()
    sizes = cs.C[6][cs.C[0] >= 0]
    assert sizes.sum() == n and (sizes > 0).all()


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 400), min_size=2, max_size=6), seed=st.integers(0, 2**16))
def test_kth_row_is_the_kth_of_the_sorted_union(sizes: list[int], seed: int) -> None:
    """Both ways the kernel finds the k-th tied row (partial sort when few, bisection when many)."""
    from numba.typed import List

    from scheduler.placement import _kernel_impl

    rng = np.random.default_rng(seed)
    rows = rng.permutation(sum(sizes) * 3)[: sum(sizes)]
    C = np.zeros((9, len(sizes)), np.int64)
    lists = List()
    at = 0
    for c, size in enumerate(sizes):
        mine = np.sort(rows[at: at + size])
        at += size
        lists.append(np.concatenate([mine, np.zeros(3, np.int64)]))  # spare room, as the kernel keeps
        C[6, c], C[7, c] = size, mine[0]
    union = np.sort(rows)
    cand = np.arange(len(sizes), dtype=np.int64)
    for k in {0, len(union) - 1, int(rng.integers(len(union)))}:
        assert _kernel_impl._kth_row(C, lists, cand, len(sizes), k) == union[k]
