"""Capacity provider vocabulary: which catalog types an ``instanceRequirements`` selects, and how tasks
are split over a capacity provider strategy (``base`` and ``weight``).

``instanceRequirements`` is EC2's attribute-based instance type selection as Managed Instances take it
(the ECS ``InstanceRequirementsRequest`` JSON). Readings where EC2 is silent, documented in
docs/modelling.md: Neuron chips count as accelerators of type ``inference`` (Inferentia and Trainium
alike); accelerator memory is per chip times chips; price protection applies only when the percentage is
given (EC2's default protection is not modelled); Managed Instances never take types with 1 vCPU, nor any
type whose catalog row lacks the MANAGED_INSTANCES launch type (so never Inf1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from scheduler.catalog.model import LAUNCH_MANAGED, InstanceType


def _in_range(value: float, bounds: Mapping[str, Any] | None) -> bool:
    if not bounds:
        return True
    low, high = bounds.get("min"), bounds.get("max")
    return (low is None or value >= low) and (high is None or value <= high)


def _wildcard(pattern: str, name: str) -> bool:
    return fnmatchcase(name.lower(), pattern.lower().replace("[", "[[]"))


def accelerator_type(itype: InstanceType) -> str | None:
    if itype.chips:
        return "inference"
    if itype.gpus:
        return "gpu"
    return None


def accelerator_count(itype: InstanceType) -> int:
    return itype.chips or itype.gpus


def matches(requirements: Mapping[str, Any] | None, itype: InstanceType) -> bool:
    """Does ``itype`` satisfy an InstanceRequirementsRequest (price protection aside)?"""
    if LAUNCH_MANAGED not in itype.launch_types or itype.vcpus <= 1:
        return False
    if requirements is None:
        # ECS picks cost-optimised general-purpose types when no requirements are given.
        return accelerator_type(itype) is None
    r = requirements
    if not _in_range(itype.vcpus, r.get("vCpuCount")) or not _in_range(itype.memory_mib, r.get("memoryMiB")):
        return False
    if not _in_range(itype.memory_mib / 1024 / itype.vcpus, r.get("memoryGiBPerVCpu")):
        return False
    if r.get("cpuManufacturers") and itype.cpu_manufacturer not in r["cpuManufacturers"]:
        return False
    if r.get("instanceGenerations") and itype.generation not in r["instanceGenerations"]:
        return False
    allowed = r.get("allowedInstanceTypes")
    if allowed and not any(_wildcard(p, itype.name) for p in allowed):
        return False
    if any(_wildcard(p, itype.name) for p in r.get("excludedInstanceTypes") or ()):
        return False
    kind = accelerator_type(itype)
    if r.get("acceleratorTypes") and kind not in r["acceleratorTypes"]:
        return False
    if not _in_range(accelerator_count(itype), r.get("acceleratorCount")):
        return False
    if r.get("acceleratorManufacturers") and itype.accelerator_manufacturer not in r["acceleratorManufacturers"]:
        return False
    if r.get("acceleratorNames") and itype.accelerator not in r["acceleratorNames"]:
        return False
    total_mib = accelerator_count(itype) * itype.accelerator_memory_gib * 1024
    return _in_range(total_mib, r.get("acceleratorTotalMemoryMiB"))


def matching_types(requirements: Mapping[str, Any] | None, types: Iterable[InstanceType]) -> list[InstanceType]:
    """The catalog types a Managed Instances provider may launch, price protection applied."""
    found = [t for t in types if matches(requirements, t)]
    pct = (requirements or {}).get("onDemandMaxPricePercentageOverLowestPrice")
    priced = [t.price_per_hour for t in found if t.price_per_hour]
    if pct is not None and priced:
        ceiling = min(priced) * (1 + pct / 100)
        found = [t for t in found if t.price_per_hour is None or t.price_per_hour <= ceiling]
    return found


@dataclass
class StrategySplitter:
    """Assigns tasks to the providers of a capacity provider strategy, as ECS does.

    The provider with a ``base`` gets the first ``base`` tasks; after that each task goes to the provider
    with the fewest tasks per unit of weight (ties by list order), which gives the weight ratios exactly.
    """

    items: Sequence[Any]  # objects with capacity_provider, weight, base
    placed: dict[str, int] = field(default_factory=dict)

    def next(self) -> str:
        for item in self.items:
            if item.base and self.placed.get(item.capacity_provider, 0) < item.base:
                return self._take(item.capacity_provider)
        weighted = [item for item in self.items if item.weight > 0]
        base_of = {item.capacity_provider: item.base for item in self.items}

        def load(item: Any) -> float:
            return (self.placed.get(item.capacity_provider, 0) - base_of[item.capacity_provider]) / item.weight

        best = min(weighted, key=load)
        return self._take(best.capacity_provider)

    def _take(self, name: str) -> str:
        self.placed[name] = self.placed.get(name, 0) + 1
        return name
