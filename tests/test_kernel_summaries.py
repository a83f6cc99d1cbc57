"""The compiled class index's per-signature summaries stay exact through a fill and churn
stream and its release: the scan skips signatures on them, so a stale summary would change decisions, but
only on streams where the skipped signature's classes mattered."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.mix import CHAIN, build_cluster, draws, task_kinds
from scheduler.placement import _kernel_impl as K
from scheduler.placement.stream import CompiledStream

KINDS = task_kinds()
REQUESTS = [(k.spec, c, CHAIN) for k in KINDS for c in ((), (k.constraint,))]


def assert_summaries_exact(X: np.ndarray) -> None:
    """Each signature's summary equals what its live classes say: most free memory, cpu and GPUs (-1: no
    class), union of free-chip masks."""
    _, _, _, _, _, SN, SO, V, _, _, _ = K._views(X)
    G = K._sigsum(X)
    for s in range(len(SN)):
        block = V[SO[s]: SO[s] + SN[s]]
        assert G[0, s] == (block[:, 1].max() if len(block) else -1)
        assert G[1, s] == (block[:, 0].max() if len(block) else -1)
        assert G[2, s] == (np.bitwise_or.reduce(block[:, 4]) if len(block) else 0)
        assert G[3, s] == (block[:, 2].max() if len(block) else -1)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(1, 120), churn=st.integers(1, 600))
def test_summaries_follow_fill_and_churn(seed: int, n: int, churn: int) -> None:
    rng = np.random.default_rng([seed, 1])
    stream = draws(KINDS, rng)
    ids = np.array([2 * d.kind + bool(d.constraints) for d in (next(stream) for _ in range(40 * n + churn))],
                   np.int64)
    cs = CompiledStream(build_cluster(n, np.random.default_rng([seed, 0])), REQUESTS)
    pick = np.random.default_rng([seed, 3])
    done, _, _ = cs.fill(ids, pick, window=50)
    assert_summaries_exact(cs.index.X)
    cs.churn(ids[done: done + churn], np.random.default_rng([seed, 2]).random(churn), pick, max(cs.running, 1))
    assert_summaries_exact(cs.index.X)
    cs.release_all()
    assert cs.is_empty()
    assert_summaries_exact(cs.index.X)
