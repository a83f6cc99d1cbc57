"""Neuron device graphs and the contiguous chip blocks a topology-aware ("aware") request may take.

This is a what-if beyond ECS, modelled on the Kubernetes Neuron scheduler extension and DRA driver:

- Chips are numbered 0..N-1 as ``/dev/neuronN``; a set of chips is a bitmask (bit i = chip i).
- Edges: ``single`` none; ``line:N`` (i, i+1); ``ring:N`` (i, (i+1) % N); ``torus2d:RxC`` row-major
  (chip = C*row + col) with wrap on both axes. These match the neuron-ls tables.
- Allowed blocks of k chips: k == 1 and k == all chips always. On a line, windows {s..s+k-1}. On a ring,
  the same windows plus those that wrap (e.g. {11, 0} on ring:12): the end chips are neuron-ls
  neighbours, but whether the K8s extension allows them is unconfirmed, so ``wrap_rings=False`` gives
  the line rule. On a 4x4 torus only 4 (a row) and 8 (a half) besides 1 and 16; in general ``m`` whole,
  aligned rows where m divides R. Any other k on a torus has no blocks.

Every result is cached per topology string, so instance types sharing a topology share the work.
"""

from __future__ import annotations

import operator
from functools import lru_cache

import networkx as nx

from scheduler.catalog import InstanceType, TopologySpec, parse_topology
from scheduler.errors import CatalogError, PlacementError

_CACHE = 1 << 16  # distinct (topology, free mask, k) keys; 16 chips give 65,536 free masks


def device_graph(itype: InstanceType) -> nx.Graph:
    """The chips of ``itype`` and their NeuronLink edges, as a frozen (read-only) graph."""
    return _graph(_topology(itype))


def candidate_blocks(itype: InstanceType, k: int, *, wrap_rings: bool = True) -> tuple[int, ...]:
    """Every chip set of size ``k`` a request may take on ``itype``, as bitmasks; empty if none."""
    return _blocks(_topology(itype), k, wrap_rings)


def supported_block_sizes(itype: InstanceType, *, wrap_rings: bool = True) -> tuple[int, ...]:
    """The request sizes ``itype`` accepts at all, e.g. (1, 4, 8, 16) on trn1.32xlarge."""
    topology = _topology(itype)
    return tuple(k for k in range(1, itype.chips + 1) if _blocks(topology, k, wrap_rings))


def choose_block(itype: InstanceType, free_mask: int, k: int, *, wrap_rings: bool = True) -> int | None:
    """The candidate block inside ``free_mask`` that keeps the free chips best connected, or None.

    Best = the largest connected group of free chips left after taking it is biggest; then the fewest
    groups left; then the lowest bitmask.
    """
    topology = _topology(itype)
    free_mask = _check_mask(itype, free_mask)
    return _choose(topology, free_mask, k, wrap_rings)


def largest_free_block(itype: InstanceType, free_mask: int) -> int:
    """Number of chips in the largest connected group of free chips (0 when none is free)."""
    topology = _topology(itype)
    free_mask = _check_mask(itype, free_mask)
    return max(_component_sizes(topology, free_mask), default=0)


def stranded_chips(itype: InstanceType, free_mask: int, k: int, *, wrap_rings: bool = True) -> int:
    """Bitmask of free chips that belong to no fully free candidate block of size ``k``."""
    topology = _topology(itype)
    free_mask = _check_mask(itype, free_mask)
    return _stranded(topology, free_mask, k, wrap_rings)


def chip_mask(chips: tuple[int, ...] | list[int] | range) -> int:
    """The bitmask of a set of chip indices."""
    mask = 0
    for chip in chips:
        mask |= 1 << chip
    return mask


def mask_chips(mask: int) -> tuple[int, ...]:
    """The chip indices of a bitmask, ascending."""
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


# --- internals, cached per topology string ----------------------------------------------------------

def _topology(itype: InstanceType) -> str:
    """``itype.topology``, the cache key, once checked against the chip count."""
    try:
        spec = parse_topology(itype.topology)
    except ValueError as exc:
        raise CatalogError(f"topology: {exc}", path=itype.name) from None
    if spec.chips != itype.chips:
        raise CatalogError(f"topology: {spec} needs {spec.chips} chips, but chips is {itype.chips}",
                           path=itype.name)
    return itype.topology


def _check_mask(itype: InstanceType, free_mask: int) -> int:
    """``free_mask`` as a plain int (numpy integers are welcome), once checked against the chip count."""
    free_mask = operator.index(free_mask)
    if free_mask < 0 or free_mask >> itype.chips:
        raise PlacementError(f"free chip mask {free_mask:#x} names chips that {itype.name} "
                             f"({itype.chips} chips) does not have")
    return free_mask


def _edges(spec: TopologySpec) -> list[tuple[int, int]]:
    if spec.kind in ("none", "single"):
        return []
    if spec.kind == "line":
        return [(i, i + 1) for i in range(spec.dims[0] - 1)]
    if spec.kind == "ring":
        n = spec.dims[0]
        return [(i, (i + 1) % n) for i in range(n)]
    rows, cols = spec.dims
    edges = []
    for r in range(rows):
        for c in range(cols):
            chip = r * cols + c
            edges.append((chip, r * cols + (c + 1) % cols))
            edges.append((chip, ((r + 1) % rows) * cols + c))
    return edges


@lru_cache(maxsize=256)
def _graph(topology: str) -> nx.Graph:
    spec = parse_topology(topology)
    graph = nx.Graph(topology=topology)
    graph.add_nodes_from(range(spec.chips))
    graph.add_edges_from(_edges(spec))
    return nx.freeze(graph)


@lru_cache(maxsize=256)
def _neighbours(topology: str) -> tuple[int, ...]:
    """Per chip, the bitmask of its neighbours."""
    spec = parse_topology(topology)
    masks = [0] * spec.chips
    for a, b in _edges(spec):
        masks[a] |= 1 << b
        masks[b] |= 1 << a
    return tuple(masks)


@lru_cache(maxsize=4096)
def _blocks(topology: str, k: int, wrap_rings: bool) -> tuple[int, ...]:
    spec = parse_topology(topology)
    n = spec.chips
    if k < 1 or k > n:
        return ()
    if k == n:
        return ((1 << n) - 1,)
    if k == 1:
        return tuple(1 << i for i in range(n))
    window = (1 << k) - 1
    if spec.kind == "line" or (spec.kind == "ring" and not wrap_rings):
        return tuple(window << s for s in range(n - k + 1))
    if spec.kind == "ring":
        full = (1 << n) - 1
        return tuple(((window << s) | (window >> (n - s))) & full for s in range(n))
    rows, cols = spec.dims
    if spec.kind == "torus2d" and k % cols == 0 and rows % (k // cols) == 0:
        return tuple(window << s for s in range(0, n, k))
    return ()


@lru_cache(maxsize=_CACHE)
def _component_sizes(topology: str, mask: int) -> tuple[int, ...]:
    """Sizes of the connected groups of chips in ``mask``, largest first."""
    neighbours = _neighbours(topology)
    sizes = []
    left = mask
    while left:
        group = frontier = left & -left
        while frontier:
            reach = 0
            while frontier:
                low = frontier & -frontier
                reach |= neighbours[low.bit_length() - 1]
                frontier ^= low
            frontier = reach & left & ~group
            group |= frontier
        sizes.append(group.bit_count())
        left &= ~group
    return tuple(sorted(sizes, reverse=True))


@lru_cache(maxsize=_CACHE)
def _choose(topology: str, free_mask: int, k: int, wrap_rings: bool) -> int | None:
    best: int | None = None
    best_key: tuple[int, int, int] | None = None
    for block in _blocks(topology, k, wrap_rings):
        if block & free_mask != block:
            continue
        left = _component_sizes(topology, free_mask & ~block)
        key = (-(left[0] if left else 0), len(left), block)
        if best_key is None or key < best_key:
            best, best_key = block, key
    return best


@lru_cache(maxsize=_CACHE)
def _stranded(topology: str, free_mask: int, k: int, wrap_rings: bool) -> int:
    usable = 0
    for block in _blocks(topology, k, wrap_rings):
        if block & free_mask == block:
            usable |= block
    return free_mask & ~usable
