"""The free-column block in huge-page memory (``placement.pages``): the same zeros, and a cluster whose
block lives there decides, copies and pickles exactly as one in ordinary numpy memory."""

from __future__ import annotations

import copy
import mmap
import pickle

import numpy as np
import pytest

from benchmarks.mix import CHAIN, build_cluster, task_kinds
from scheduler.placement import pages
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure

KINDS = task_kinds()
REQUESTS = [(k.spec, c, CHAIN) for k in KINDS for c in ((), (k.constraint,))]
MAPPED = hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap, "MAP_ANONYMOUS")


@pytest.mark.parametrize("shape", [(7, 50_000), (3, 100_003), (1, 262_144)])
def test_large_blocks_are_zeroed_writable_aligned_and_their_own(shape: tuple[int, int]) -> None:
    a, b = pages.zeros(shape), pages.zeros(shape)
    assert a.shape == shape and a.dtype == np.int64 and a.flags.c_contiguous and a.flags.writeable
    assert not a.any()
    a[-1, -1] = 5
    a[0, 0] = -3
    assert b[-1, -1] == 0 and b[0, 0] == 0 and not np.shares_memory(a, b)
    if MAPPED:
        assert a.ctypes.data % pages.HUGE_PAGE == 0


def test_small_blocks_are_plain_numpy_arrays() -> None:
    a = pages.zeros((7, 100))
    assert a.base is None and a.shape == (7, 100) and not a.any()


def test_a_cluster_in_huge_page_memory_decides_copies_and_pickles_as_in_plain_memory(monkeypatch) -> None:
    """With the huge-page threshold lowered, a small cluster's block takes the mapped path: its compiled
    decisions equal those of the same cluster in ordinary memory, its pickle carries the same columns,
    and its deepcopy the same columns, deciding alike."""
    plain = build_cluster(80, np.random.default_rng(8))
    monkeypatch.setattr(pages, "HUGE_PAGE", 4096)
    mapped = build_cluster(80, np.random.default_rng(8))
    pickled = pickle.loads(pickle.dumps(mapped))
    assert np.array_equal(pickled._cols, mapped._cols) and np.shares_memory(pickled._mem_free, pickled._cols)
    if MAPPED:
        assert mapped._cols.base is not None and plain._cols.base is None
    a, b = Placer(plain, compiled=True), Placer(mapped, compiled=True)
    ra, rb = np.random.default_rng(9), np.random.default_rng(9)
    placed = []
    for i in range(160):
        spec, constraints, chain = REQUESTS[i % len(REQUESTS)]
        out = a.place(spec, constraints=constraints, strategies=chain, rng=ra, task_id=f"t{i}")
        assert out == b.place(spec, constraints=constraints, strategies=chain, rng=rb, task_id=f"t{i}")
        if not isinstance(out, Failure):
            placed.append(f"t{i}")
        if i % 3 == 2 and placed:
            gone = placed.pop(len(placed) // 2)
            a.release(gone)
            b.release(gone)
    assert np.array_equal(plain._cols[1:6, :80], mapped._cols[1:6, :80])
    for twin in (copy.deepcopy(mapped),):
        assert np.array_equal(twin._cols[1:6, :80], mapped._cols[1:6, :80])
        assert np.shares_memory(twin._cpu_free, twin._cols) and not np.shares_memory(twin._cols, mapped._cols)
        c, d = Placer(mapped, compiled=True), Placer(twin, compiled=True)
        rc, rd = np.random.default_rng(10), np.random.default_rng(10)
        for i in range(60):
            spec, constraints, chain = REQUESTS[(7 * i) % len(REQUESTS)]
            out = c.place(spec, constraints=constraints, strategies=chain, rng=rc, task_id=f"u{i}")
            assert out == d.place(spec, constraints=constraints, strategies=chain, rng=rd, task_id=f"u{i}")
            if not isinstance(out, Failure):
                c.release(f"u{i}")
                d.release(f"u{i}")


def test_the_streams_task_records_each_sit_in_one_cache_line() -> None:
    """The compiled stream's task records (64 bytes each) start on a cache-line boundary, so that a release
    reading one record at random touches one line, not two."""
    from scheduler.placement.stream import CompiledStream

    kinds = task_kinds()
    cs = CompiledStream(build_cluster(20, np.random.default_rng(1)), [(kinds[0].spec, (), CHAIN)])
    assert cs.T.strides[0] == 64 and cs.T.ctypes.data % 64 == 0
