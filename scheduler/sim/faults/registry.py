"""The fault kinds there are: every module of this package that sets ``KIND``, found by a scan of the
package (so adding a kind is adding its module). Read once, on first use."""

from __future__ import annotations

from functools import cache

from scheduler.declared import declared
from scheduler.readable import FAULT_COST_ROWS
from scheduler.results.codec import keys
from scheduler.results.summary import Faults
from scheduler.sim.faults.base import FaultKind

RESERVED = frozenset(keys(Faults))  # the faults' own fields (tasks_stopped, ...): no kind's counter


@cache
def kinds() -> tuple[FaultKind, ...]:
    """Every fault kind, in ``order`` (then by key)."""
    found: dict[str, FaultKind] = {}
    for module, kind in declared(__package__, "KIND"):
        if not isinstance(kind, FaultKind):
            raise TypeError(f"{module}.KIND is not a FaultKind")
        if kind.key in RESERVED:
            raise ValueError(f"{module}: the key {kind.key!r} is a field of summary.json's faults")
        if kind.key in found:
            raise ValueError(f"two fault kinds use the key {kind.key!r}: {module} and "
                             f"{type(found[kind.key]).__module__}")
        found[kind.key] = kind
    return tuple(sorted(found.values(), key=lambda k: (k.order, k.key)))


@cache
def by_plan() -> dict[type, FaultKind]:
    """Each kind by its plan class."""
    return {kind.plan: kind for kind in kinds()}


def counter_names() -> tuple[str, ...]:
    """The kinds' counters in summary.json's order."""
    return tuple(k.key for k in sorted(kinds(), key=lambda k: (k.counter_order, k.key)))


def fault_rows() -> tuple[tuple[str, str, str], ...]:
    """(key of summary.json's ``faults``, label, unit): each kind's counter in ``order``, then what they cost."""
    return (*((k.key, k.label, "") for k in kinds()), *FAULT_COST_ROWS)
