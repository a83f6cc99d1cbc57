"""The column view the filters read: the same names over instance rows and over classes of identical rows.

A filter is written once against this view. ``RowView`` exposes one entry per container instance;
``ClassView`` one entry per class of interchangeable instances (``state.InstanceClasses``), where every
row of a class has the same free resources and the same static signature, so a filter's answer for the
class is its answer for each of its rows. ``size`` weighs an entry by the rows it stands for (1 for a
row) and ``first`` is its lowest row: the explanation counts rows and names the lowest closest one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scheduler.placement.state import ClusterState


class ColumnView:
    """What a filter may read, one entry per item (a row or a class). Arrays are read-only to filters."""

    state: ClusterState
    cpu: np.ndarray        # free CPU units
    mem: np.ndarray        # free MiB
    gpu: np.ndarray        # free GPUs
    eni: np.ndarray        # free ENI attachment slots (awsvpc tasks)
    chips: np.ndarray      # bitmask of free Neuron chips
    size: np.ndarray       # rows per item
    first: np.ndarray      # lowest row per item

    # Static per item (read through the signature for classes)
    @property
    def launch(self) -> np.ndarray: ...
    @property
    def type_code(self) -> np.ndarray: ...
    @property
    def n_chips(self) -> np.ndarray: ...
    @property
    def chips_all(self) -> np.ndarray: ...
    @property
    def gpu_all(self) -> np.ndarray: ...

    def ports_free(self, tcp: tuple[int, ...], udp: tuple[int, ...]) -> np.ndarray:
        """True where none of the host ports is reserved."""
        raise NotImplementedError


class RowView(ColumnView):
    """The columns of every container instance row."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.cpu, self.mem, self.gpu = state.cpu_free, state.mem_free, state.gpu_free
        self.eni, self.chips = state.eni_free, state.chips_free
        self.size = np.ones(len(state), np.int64)
        self.first = np.arange(len(state))

    @property
    def launch(self) -> np.ndarray:
        return self.state.launch_code

    @property
    def type_code(self) -> np.ndarray:
        return self.state.type_code

    @property
    def n_chips(self) -> np.ndarray:
        return self.state.n_chips

    @property
    def chips_all(self) -> np.ndarray:
        return self.state.chips_all

    @property
    def gpu_all(self) -> np.ndarray:
        return self.state.gpu_registered

    def ports_free(self, tcp: tuple[int, ...], udp: tuple[int, ...]) -> np.ndarray:
        mask = self.state.ports_free_mask(tcp, udp)
        return np.ones(len(self.state), bool) if mask is None else mask


class ClassView(ColumnView):
    """The columns of the live classes of identical instances (free slots are never read: callers pass
    only classes whose signature passed the static filters)."""

    def __init__(self, state: ClusterState) -> None:
        ix = state.classes()
        self.state, self.ix = state, ix
        self.cpu, self.mem, self.gpu, self.eni, self.chips = ix.c_cpu, ix.c_mem, ix.c_gpu, ix.c_eni, ix.c_chips
        self.size, self.first = ix.c_size, ix.c_first

    def _sig(self, k: int) -> np.ndarray:
        return self.ix.signature_columns()[k][self.ix.c_sig]

    @property
    def launch(self) -> np.ndarray:
        return self._sig(0)

    @property
    def type_code(self) -> np.ndarray:
        return self._sig(1)

    @property
    def n_chips(self) -> np.ndarray:
        return self._sig(2)

    @property
    def chips_all(self) -> np.ndarray:
        return self._sig(3)

    @property
    def gpu_all(self) -> np.ndarray:
        return self._sig(4)

    def ports_free(self, tcp: tuple[int, ...], udp: tuple[int, ...]) -> np.ndarray:
        t, u = set(tcp), set(udp)
        ok = [not (t & a or u & b) for a, b in self.ix.port_sets]
        # at least one entry: free class slots hold port id 0 even before any port set exists (no instance)
        return np.array(ok or [False], bool)[self.ix.c_port]
