"""ECS placement strategies as plain functions that narrow a set of candidate instances.

Strategies are applied in order as a lexicographic preference: each keeps only the candidates with the
best score for it; ``random`` picks one and ends the chain; a tie left after the last strategy is broken
by the seeded generator (or by the lowest row when none is given). ECS does not document tie-breaking;
this is the reading of https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-placement-strategies.html.

Beyond ECS, and marked as such wherever they are shown: ``binpack`` on ``neuronDevices`` (fewest free
chips that still fit) and on ``gpu``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scheduler.ecs.taskspec import Strategy
from scheduler.errors import PlacementError
from scheduler.placement.state import ClusterState, InstanceClasses

MAX_STRATEGIES = 5
BINPACK_FIELDS = ("cpu", "memory")
EXTENSION_BINPACK_FIELDS = ("neuronDevices", "gpu")  # beyond ECS

RUNTASK_DEFAULT: tuple[Strategy, ...] = (Strategy("random"),)
SERVICE_DEFAULT: tuple[Strategy, ...] = (
    Strategy("spread", "attribute:ecs.availability-zone"),
    Strategy("spread", "instanceId"),
)
# Managed Instances take no strategies: ECS spreads over AZs, then packs within an AZ.
MANAGED_INSTANCES_IMPLICIT: tuple[Strategy, ...] = (
    Strategy("spread", "attribute:ecs.availability-zone"),
    Strategy("binpack", "memory"),
)


def check_strategies(strategies: Sequence[Strategy]) -> None:
    """Raise PlacementError for a chain ECS would reject."""
    if len(strategies) > MAX_STRATEGIES:
        raise PlacementError(f"at most {MAX_STRATEGIES} placement strategies, got {len(strategies)}")
    for k, s in enumerate(strategies):
        where = f"placementStrategy[{k}]"
        if s.type == "binpack":
            if s.field not in BINPACK_FIELDS + EXTENSION_BINPACK_FIELDS:
                raise PlacementError(f"{where}: binpack field must be cpu or memory "
                                     f"(or the extensions neuronDevices, gpu), got {s.field!r}")
        elif s.type == "spread":
            if not s.field or not (s.field in ("instanceId", "host") or s.field.startswith("attribute:")):
                raise PlacementError(f"{where}: spread field must be instanceId, host or attribute:NAME, "
                                     f"got {s.field!r}")
        elif s.type == "random":
            pass
        else:
            raise PlacementError(f"{where}: unknown strategy type {s.type!r}; expected binpack, spread or random")


def is_extension(strategy: Strategy) -> bool:
    return strategy.type == "binpack" and strategy.field in EXTENSION_BINPACK_FIELDS


def _keep_min(cand: np.ndarray, score: np.ndarray) -> np.ndarray:
    return cand[score == score.min()]


def narrow(
    state: ClusterState,
    cand: np.ndarray,
    strategies: Sequence[Strategy],
    *,
    group: str | None,
    rng: np.random.Generator | None,
) -> int:
    """Pick one instance row out of the non-empty ``cand`` by the strategy chain."""
    for s in strategies:
        if len(cand) == 1:
            break
        if s.type == "random":
            return int(cand[rng.integers(len(cand))]) if rng is not None else int(cand[0])
        if s.type == "binpack":
            cand = _keep_min(cand, binpack_score(state, cand, s.field or "memory"))
        elif s.type == "spread":
            cand = _keep_min(cand, spread_score(state, cand, s.field or "instanceId", group))
    if len(cand) > 1 and rng is not None and strategies:
        return int(cand[rng.integers(len(cand))])
    return int(cand[0])


def binpack_score(state: ClusterState, cand: np.ndarray, field: str) -> np.ndarray:
    """Remaining amount of ``field`` on each candidate: less is better."""
    if field == "cpu":
        return state.cpu_free[cand]
    if field == "memory":
        return state.mem_free[cand]
    if field == "gpu":
        return state.gpu_free[cand]
    if field == "neuronDevices":
        return np.bitwise_count(state.chips_free[cand])
    raise PlacementError(f"unknown binpack field {field!r}")


def spread_score(state: ClusterState, cand: np.ndarray, field: str, group: str | None) -> np.ndarray:
    """Tasks of the group already on the candidate's value of ``field``: fewer is better.

    For ``attribute:NAME`` the count is over every instance with that value, candidate or not; instances
    without the attribute form a bucket of their own.
    """
    counts = state.group_counts(group) if group is not None else np.zeros(len(state), np.int32)
    if field in ("instanceId", "host"):
        return counts[cand]
    codes, values = state.attribute_codes(field.removeprefix("attribute:"))
    per_value = np.bincount(codes, weights=counts, minlength=len(values))
    return per_value[codes[cand]]


# ---------------------------------------------------------------- the same chain over classes of rows
def classes_can_narrow(strategies: Sequence[Strategy]) -> bool:
    """Whether every rule scores whole classes of identical instances alike (spread per instance does not)
    and names a known field (so that skipping it when one class is left changes nothing)."""
    for s in strategies:
        if s.type == "spread" and not (s.field or "").startswith("attribute:"):
            return False
        if s.type == "binpack" and (s.field or "memory") not in BINPACK_FIELDS + EXTENSION_BINPACK_FIELDS:
            return False
    return True


def narrow_classes(state: ClusterState, cls: np.ndarray, strategies: Sequence[Strategy], *,
                   group: str | None, rng: np.random.Generator | None) -> int:
    """``narrow`` over the candidate rows of the classes ``cls``, giving exactly the row ``narrow`` gives.

    Scores are read per class, and rows of one class score alike, so once one class is left only a
    random rule or the final tie-break can still choose. A tie among ``total`` rows draws
    ``rng.integers(total)`` and takes that row in row order, as ``narrow`` does over the listed rows.
    """
    ix = state.classes()
    for s in strategies:
        if s.type == "random":
            total = _rows_in(ix, cls)
            if total == 1:
                return ix.rows[int(cls[0])][0]
            return ix.kth_row(cls, int(rng.integers(total)) if rng is not None else 0)
        if len(cls) == 1:
            continue
        if s.type == "binpack":
            score = _class_binpack_score(ix, cls, s.field or "memory")
        elif s.type == "spread":
            name = (s.field or "").removeprefix("attribute:")
            if group is None:
                continue  # no counts: every candidate scores 0
            score = state.spread_counts(group, name)[state.signature_codes(name)[ix.c_sig[cls]]]
        else:
            continue
        cls = cls[score == score.min()]
    total = _rows_in(ix, cls)
    if total > 1 and rng is not None and strategies:
        return ix.kth_row(cls, int(rng.integers(total)))
    return int(ix.c_first[cls].min())


def _rows_in(ix: InstanceClasses, cls: np.ndarray) -> int:
    if len(cls) <= 8:
        rows = ix.rows
        return sum(len(rows[c]) for c in cls.tolist())
    return int(ix.c_size[cls].sum())


def _class_binpack_score(ix: InstanceClasses, cls: np.ndarray, field: str) -> np.ndarray:
    if field == "cpu":
        return ix.c_cpu[cls]
    if field == "memory":
        return ix.c_mem[cls]
    if field == "gpu":
        return ix.c_gpu[cls]
    if field == "neuronDevices":
        return np.bitwise_count(ix.c_chips[cls])
    raise PlacementError(f"unknown binpack field {field!r}")
