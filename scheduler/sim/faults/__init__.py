"""Faults injected into a run: one module per kind, one mechanism that strikes them.

Each kind is a module of this package (``instance_failures``, ``chip_failures``, ...) that declares
everything about it (:mod:`.base`): its plan dataclass with the fields' scenario units, defaults and
meaning, its scenario key (also its counter in summary.json's ``faults``), which instances it can strike
and what a strike does. :mod:`.registry` finds the kinds by scanning the package; the scenario schema,
compile step, checks, summary counters, terminal and report labels and the docs tables are derived from
them. Adding a kind is adding its module (and its test). :mod:`.mechanism` drives them all.
"""

from __future__ import annotations

from scheduler.sim.faults.base import (
    REQUIRED,
    UNITS,
    FaultKind,
    FaultPort,
    FaultTarget,
    Param,
    Striking,
    param,
    params,
)
from scheduler.sim.faults.mechanism import Faults
from scheduler.sim.faults.registry import by_plan, counter_names, fault_rows, kinds

__all__ = ["REQUIRED", "UNITS", "FaultKind", "FaultPort", "FaultTarget", "Faults", "Param", "Striking", "by_plan",
           "counter_names", "fault_rows", "kinds", "param", "params"]
