"""Instance types as data: the bundled catalog, user overrides, lookup and EC2 wildcard matching."""

from scheduler.catalog.catalog import (
    Catalog,
    TopologySpec,
    catalog_rows,
    default_catalog,
    load_catalog,
    parse_topology,
)
from scheduler.catalog.model import LAUNCH_EC2, LAUNCH_MANAGED, NEURON_ACCELERATORS, InstanceType

__all__ = [
    "LAUNCH_EC2",
    "LAUNCH_MANAGED",
    "NEURON_ACCELERATORS",
    "Catalog",
    "InstanceType",
    "TopologySpec",
    "catalog_rows",
    "default_catalog",
    "load_catalog",
    "parse_topology",
]
