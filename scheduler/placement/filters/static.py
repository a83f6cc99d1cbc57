"""Filters that read only the instances' registration: launch type, status, architecture, constraints.

Each gives a mask over instance rows. Their answers change only when instances register, change status
or attributes, so callers cache them per distinct request (``state.static_masks``).
"""

from __future__ import annotations

import numpy as np

from scheduler.ecs import cql
from scheduler.ecs.taskspec import Constraint
from scheduler.errors import PlacementError
from scheduler.placement.filters.base import Filter, Request, always
from scheduler.placement.state import LAUNCH_CODES

# Query subjects that differ from one instance to the next even among identical ones: a constraint that
# reads them cannot be answered per class of identical instances (nor by the compiled kernel).
PER_INSTANCE_SUBJECTS = frozenset({"ec2InstanceId", "registeredAt"})


def launch_type_mask(req: Request, _: Constraint | None = None) -> np.ndarray:
    """Instances of a launch type the task allows (or the one asked for), and of the capacity providers."""
    st = req.state
    allowed = {req.launch_type} if req.launch_type else set(req.spec.compatibilities)
    codes = [LAUNCH_CODES[lt] for lt in allowed if lt in LAUNCH_CODES]
    mask = np.isin(st.launch_code, codes)
    if req.capacity_providers is not None:
        wanted = set(req.capacity_providers)
        mask &= np.fromiter((i.capacity_provider in wanted for i in st.instances), bool, len(st))
    return mask


def status_mask(req: Request, _: Constraint | None = None) -> np.ndarray:
    """ACTIVE instances whose agent is connected."""
    return req.state.schedulable


def architecture_mask(req: Request, _: Constraint | None = None) -> np.ndarray:
    """Instances of the task's runtimePlatform.cpuArchitecture (any when unset)."""
    arch = req.spec.cpu_architecture
    if not arch:
        return np.ones(len(req.state), bool)
    return req.state.attribute_column("ecs.cpu-architecture") == arch.lower()


def member_of_mask(req: Request, c: Constraint | None) -> np.ndarray:
    """Instances for which the constraint's query-language expression holds."""
    assert c is not None
    st = req.state
    return cql.parse(c.expression or "", req.cql_options).evaluate(st, st.static_masks)


def distinct_instance_mask(req: Request, _: Constraint | None = None) -> np.ndarray:
    """Instances running no task of the request's group."""
    return req.state.group_counts(req.group) == 0


LAUNCH_TYPE = Filter("launch type", "NO ACTIVE INSTANCES", "", True, True, ("compatibilities",), always,
                     launch_type_mask,
                     lambda r: ("launch type", r.launch_type, r.spec.compatibilities, r.capacity_providers))
STATUS = Filter("status", "NO ACTIVE INSTANCES", "", True, True, (), always, status_mask, lambda r: ("status",))
ARCHITECTURE = Filter("cpu architecture", "ATTRIBUTE", "is missing an attribute required by your task", True, True,
                      ("cpu_architecture",), always, architecture_mask, lambda r: ("arch", r.spec.cpu_architecture))
MEMBER_OF = Filter("memberOf", "MemberOf placement constraint unsatisfied", "", True, True, ("constraints",),
                   always, member_of_mask)
DISTINCT_INSTANCE = Filter("distinctInstance", "DistinctInstance placement constraint unsatisfied", "", False, True,
                           ("constraints", "family"), always, distinct_instance_mask)

STATIC = (LAUNCH_TYPE, STATUS, ARCHITECTURE)
CONSTRAINTS = {"memberOf": MEMBER_OF, "distinctInstance": DISTINCT_INSTANCE}


def steps_for(req: Request) -> list[tuple[Filter, Constraint | None]]:
    """The static steps of a request in ECS order: launch type, status, architecture, each constraint."""
    out: list[tuple[Filter, Constraint | None]] = [(f, None) for f in STATIC]
    for c in req.constraints:
        f = CONSTRAINTS.get(c.type)
        if f is None:
            raise PlacementError(f"unknown placement constraint type {c.type!r}")
        out.append((f, c))
    return out
