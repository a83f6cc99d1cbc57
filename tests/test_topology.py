"""Neuron device graphs and contiguous chip blocks, checked against the neuron-ls tables and K8s rules."""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.catalog import InstanceType, default_catalog
from scheduler.errors import CatalogError, PlacementError
from scheduler.placement.topology import (
    candidate_blocks,
    chip_mask,
    choose_block,
    device_graph,
    largest_free_block,
    mask_chips,
    stranded_chips,
    supported_block_sizes,
)

CATALOG = default_catalog()
TRN1 = CATALOG["trn1.32xlarge"]
INF2_48 = CATALOG["inf2.48xlarge"]
INF2_24 = CATALOG["inf2.24xlarge"]
INF1_6 = CATALOG["inf1.6xlarge"]
NEURON = [itype for itype in CATALOG.values() if itype.is_neuron]

# neuron-ls "CONNECTED DEVICES" on trn1.32xlarge (identical on trn2.48xlarge), from the reference.
NEURON_LS_TORUS = """
0:[12,3,4,1]  1:[13,0,5,2]  2:[14,1,6,3]  3:[15,2,7,0]
4:[0,7,8,5]   5:[1,4,9,6]   6:[2,5,10,7]  7:[3,6,11,4]
8:[4,11,12,9] 9:[5,8,13,10] 10:[6,9,14,11] 11:[7,10,15,8]
12:[8,15,0,13] 13:[9,12,1,14] 14:[10,13,2,15] 15:[11,14,3,12]
"""
# neuron-ls on inf1.6xlarge: a chain, no 3-0 link.
NEURON_LS_INF1_6 = "0:[1] 1:[2,0] 2:[3,1] 3:[2]"


def parse_neuron_ls(table: str) -> dict[int, set[int]]:
    adjacency = {}
    for entry in table.split():
        device, linked = entry.split(":")
        adjacency[int(device)] = {int(x) for x in linked.strip("[]").split(",") if x}
    return adjacency


def adjacency(graph: nx.Graph) -> dict[int, set[int]]:
    return {node: set(graph[node]) for node in graph.nodes}


# --- graphs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["trn1.32xlarge", "trn1n.32xlarge", "trn2.48xlarge"])
def test_torus_matches_the_neuron_ls_table(name: str) -> None:
    graph = device_graph(CATALOG[name])
    assert adjacency(graph) == parse_neuron_ls(NEURON_LS_TORUS)
    assert graph.number_of_edges() == 32
    assert all(degree == 4 for _, degree in graph.degree)


def test_inf2_48xlarge_is_a_ring_of_12() -> None:
    graph = device_graph(INF2_48)
    assert adjacency(graph) == {i: {(i - 1) % 12, (i + 1) % 12} for i in range(12)}
    assert graph.has_edge(11, 0)


def test_inf1_6xlarge_is_a_line_without_the_3_0_link() -> None:
    graph = device_graph(INF1_6)
    assert adjacency(graph) == parse_neuron_ls(NEURON_LS_INF1_6)
    assert not graph.has_edge(3, 0)


def test_other_lines_singles_and_plain_types() -> None:
    assert set(device_graph(INF2_24).edges) == {(i, i + 1) for i in range(5)}
    assert device_graph(CATALOG["inf1.24xlarge"]).number_of_edges() == 15
    for name in ("inf1.xlarge", "inf2.8xlarge", "trn1.2xlarge", "trn2.3xlarge"):
        graph = device_graph(CATALOG[name])
        assert list(graph.nodes) == [0] and graph.number_of_edges() == 0
    assert device_graph(CATALOG["c6i.large"]).number_of_nodes() == 0
    assert device_graph(CATALOG["p4d.24xlarge"]).number_of_nodes() == 0


def test_graphs_are_shared_per_topology_and_read_only() -> None:
    assert device_graph(TRN1) is device_graph(CATALOG["trn2.48xlarge"])
    with pytest.raises(nx.NetworkXError):
        device_graph(TRN1).add_edge(0, 5)


def test_inconsistent_instance_type_is_refused() -> None:
    broken = dataclasses.replace(INF2_24, topology="ring:12")
    with pytest.raises(CatalogError, match="ring:12 needs 12 chips"):
        device_graph(broken)


# --- candidate blocks -------------------------------------------------------------------------------

def test_trn1_blocks_are_rows_halves_and_all() -> None:
    rows = [chip_mask(range(r, r + 4)) for r in (0, 4, 8, 12)]
    assert candidate_blocks(TRN1, 4) == tuple(rows)
    assert candidate_blocks(TRN1, 8) == (chip_mask(range(8)), chip_mask(range(8, 16)))
    assert candidate_blocks(TRN1, 16) == (0xFFFF,)
    assert candidate_blocks(TRN1, 1) == tuple(1 << i for i in range(16))
    assert supported_block_sizes(TRN1) == (1, 4, 8, 16)
    # The K8s doc marks these two as invalid.
    assert chip_mask([1, 2]) not in candidate_blocks(TRN1, 2)
    assert chip_mask([9, 10, 13, 14]) not in candidate_blocks(TRN1, 4)


@pytest.mark.parametrize("k", [2, 3, 5, 6, 7, 9, 12, 15])
def test_trn1_other_sizes_have_no_blocks(k: int) -> None:
    assert candidate_blocks(TRN1, k) == ()
    assert choose_block(TRN1, 0xFFFF, k) is None


def test_out_of_range_sizes_have_no_blocks() -> None:
    assert candidate_blocks(INF2_24, 0) == ()
    assert candidate_blocks(INF2_24, 7) == ()
    assert candidate_blocks(CATALOG["c6i.large"], 1) == ()


def test_line_windows_do_not_wrap() -> None:
    assert candidate_blocks(INF2_24, 2) == tuple(chip_mask([s, s + 1]) for s in range(5))
    assert supported_block_sizes(INF2_24) == (1, 2, 3, 4, 5, 6)


def test_ring_windows_wrap_unless_told_not_to() -> None:
    wrapped = candidate_blocks(INF2_48, 2)
    assert len(wrapped) == 12 and chip_mask([11, 0]) in wrapped
    plain = candidate_blocks(INF2_48, 2, wrap_rings=False)
    assert len(plain) == 11 and chip_mask([11, 0]) not in plain
    assert candidate_blocks(INF2_48, 12, wrap_rings=False) == (0xFFF,)


# --- choosing a block -------------------------------------------------------------------------------

def test_trn1_takes_four_rows_then_nothing() -> None:
    free = 0xFFFF
    taken = []
    for _ in range(4):
        block = choose_block(TRN1, free, 4)
        assert block is not None
        taken.append(block)
        free &= ~block
    assert sorted(taken) == [chip_mask(range(r, r + 4)) for r in (0, 4, 8, 12)]
    assert free == 0
    assert choose_block(TRN1, free, 4) is None


def test_trn1_four_chips_free_but_not_a_row() -> None:
    square = chip_mask([9, 10, 13, 14])
    assert choose_block(TRN1, square, 4) is None
    assert choose_block(TRN1, square, 1) == 1 << 9


def test_inf2_48_three_chips_are_ring_neighbours() -> None:
    block = choose_block(INF2_48, 0xFFF, 3)
    assert block is not None
    chips = mask_chips(block)
    assert len(chips) == 3 and nx.is_connected(device_graph(INF2_48).subgraph(chips))
    # Only the wrapping window {10, 11, 0} is free.
    only_wrap = chip_mask([0, 10, 11, 5])
    assert choose_block(INF2_48, only_wrap, 3) == chip_mask([10, 11, 0])
    assert choose_block(INF2_48, only_wrap, 3, wrap_rings=False) is None


def test_choose_block_keeps_the_big_free_block() -> None:
    # line:6, all free, 2 chips: an end keeps 4 contiguous chips; {2,3} would leave 2 + 2.
    assert choose_block(INF2_24, 0b111111, 2) == chip_mask([0, 1])
    # Chip 3 busy: {4, 5} leaves the run {0, 1, 2} whole; {0, 1} or {1, 2} would leave pieces of 1 and 2.
    assert choose_block(INF2_24, chip_mask([0, 1, 2, 4, 5]), 2) == chip_mask([4, 5])
    # Chip 4 busy: one chip goes into the hole at 5 rather than splitting the run 0-3.
    assert choose_block(INF2_24, chip_mask([0, 1, 2, 3, 5]), 1) == chip_mask([5])
    # Single chip on a ring with a gap: take from the end of the free run, not its middle.
    free = chip_mask([0, 1, 2, 3, 4])
    assert choose_block(INF2_48, free, 1) in (1 << 0, 1 << 4)


def test_numpy_masks_are_accepted() -> None:
    assert choose_block(TRN1, np.uint64(0xFF00), 4) == chip_mask(range(8, 12))
    assert largest_free_block(TRN1, np.uint64(0xF0F0)) == 4


def test_choose_block_refuses_masks_beyond_the_chips() -> None:
    with pytest.raises(PlacementError, match="does not have"):
        choose_block(INF2_24, 1 << 6, 1)
    with pytest.raises(PlacementError):
        largest_free_block(INF2_24, -1)


# --- fragmentation measures -------------------------------------------------------------------------

def test_largest_free_block() -> None:
    assert largest_free_block(INF2_48, chip_mask([11, 0, 1])) == 3  # wraps on the ring
    assert largest_free_block(INF2_24, chip_mask([0, 2, 3])) == 2
    assert largest_free_block(TRN1, 0xFFFF) == 16
    assert largest_free_block(TRN1, 0) == 0
    assert largest_free_block(TRN1, chip_mask([0, 5])) == 1


def test_stranded_chips() -> None:
    assert stranded_chips(INF2_24, chip_mask([0, 2, 3]), 2) == chip_mask([0])
    assert stranded_chips(TRN1, chip_mask([0, 1, 2, 3, 5]), 4) == chip_mask([5])
    assert stranded_chips(TRN1, 0xFFFF, 7) == 0xFFFF  # nothing of size 7 exists on a torus
    assert stranded_chips(INF2_48, chip_mask([11, 0]), 2) == 0
    assert stranded_chips(INF2_48, chip_mask([11, 0]), 2, wrap_rings=False) == chip_mask([11, 0])


def test_chip_mask_round_trip() -> None:
    assert mask_chips(chip_mask([3, 0, 7])) == (0, 3, 7)
    assert chip_mask([]) == 0 and mask_chips(0) == ()


# --- invariants -------------------------------------------------------------------------------------

@st.composite
def requests(draw: st.DrawFn) -> tuple[InstanceType, int, int, bool]:
    itype = draw(st.sampled_from(NEURON))
    free = draw(st.integers(min_value=0, max_value=(1 << itype.chips) - 1))
    k = draw(st.integers(min_value=1, max_value=itype.chips))
    return itype, free, k, draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(requests())
def test_chosen_block_is_free_connected_and_best(request: tuple[InstanceType, int, int, bool]) -> None:
    itype, free, k, wrap = request
    block = choose_block(itype, free, k, wrap_rings=wrap)
    fitting = [b for b in candidate_blocks(itype, k, wrap_rings=wrap) if b & free == b]
    if block is None:
        assert fitting == []
        assert stranded_chips(itype, free, k, wrap_rings=wrap) == free
        return
    assert block & free == block
    assert block.bit_count() == k
    graph = device_graph(itype)
    assert nx.is_connected(graph.subgraph(mask_chips(block)))

    # Cross-check the bitmask component search with networkx's own.
    def score(b: int) -> tuple[int, int, int]:
        parts = [len(c) for c in nx.connected_components(graph.subgraph(mask_chips(free & ~b)))]
        return (-max(parts, default=0), len(parts), b)

    assert score(block) == min(score(b) for b in fitting)
    assert stranded_chips(itype, free, k, wrap_rings=wrap) & block == 0


@settings(max_examples=200, deadline=None)
@given(requests())
def test_every_candidate_block_is_connected(request: tuple[InstanceType, int, int, bool]) -> None:
    itype, free, k, wrap = request
    graph = device_graph(itype)
    assert largest_free_block(itype, free) == max(
        (len(c) for c in nx.connected_components(graph.subgraph(mask_chips(free)))), default=0)
    for block in candidate_blocks(itype, k, wrap_rings=wrap):
        assert block.bit_count() == k
        assert nx.is_connected(graph.subgraph(mask_chips(block)))
