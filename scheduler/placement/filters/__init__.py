"""Placement filters as data: one small function per filter over a column view (rows or classes).

``static`` holds the filters that read registration (launch type, status, architecture, memberOf,
distinctInstance), ``resources`` those that read free capacity (cpu, memory, gpu, ports, eni, neuron
devices), ``pipeline`` runs them and keeps each step's survivors: they are the failure's explanation.
"""

from scheduler.placement.filters.base import Filter, Request
from scheduler.placement.filters.resources import RESOURCES
from scheduler.placement.filters.static import CONSTRAINTS, STATIC

ALL: tuple[Filter, ...] = (*STATIC, *CONSTRAINTS.values(), *RESOURCES)
REASONS = {f.name: f.reason for f in ALL}
EVENT_PHRASES = {f.name: f.phrase for f in ALL if f.phrase}

# TaskSpec fields no filter reads, and why (tests/test_filters.py checks that every field is one or the other).
NOT_PLACEMENT_RELEVANT = {
    "revision": "identifies the task definition revision; placement reads its requirements, not its version",
    "containers": "per-container detail for the ECS views; placement reads the task totals built from it",
}

__all__ = ["ALL", "EVENT_PHRASES", "NOT_PLACEMENT_RELEVANT", "REASONS", "Filter", "Request"]
