"""A fixed set of requests decided as one stream of place and release in compiled code: the benchmark's
figure (a), the simulation's shape of decisions without Python between them. The same kernel and index as
``Placer(compiled=True)`` (``placement.kernel``), from the same seeds, so its decisions can be compared one
by one with the public API's.
"""

from __future__ import annotations

import numpy as np

from scheduler.placement import pages
from scheduler.placement.filters import REASONS
from scheduler.placement.kernel import RESOURCE_STEPS, Unsupported, generator_addresses
from scheduler.placement.placer import Placer
from scheduler.placement.state import HELD_CHIPS, USED_CPU, USED_MEMORY, chips_of


class CompiledStream:
    """A cluster (with no task yet) and a fixed set of requests, decided as one stream in compiled code.

    ``requests`` are (spec, constraints, strategies) triples; a request's group is ``family:<family>``.
    ``fill`` and ``churn`` run the benchmark's two phases in compiled code; ``decision`` gives an outcome
    in the Python path's comparable form (row, chips) or the failure reason.
    """

    def __init__(self, state, requests, *, max_tasks: int | None = None) -> None:
        if state.allocations:
            raise Unsupported("the stream starts from a cluster that runs no task")
        placer = Placer(state, compiled=True)
        self.index = placer.live()
        self.slots: list[int] = []
        self.reasons_static: list[str] = []
        for spec, constraints, chain in requests:
            entry = placer.prepared(spec, tuple(constraints), tuple(chain), f"family:{spec.family}", None, None)
            if entry.failure is None and entry.slot < 0:
                raise Unsupported(entry.why)
            self.slots.append(entry.slot)
            self.reasons_static.append(entry.failure.reason if entry.failure is not None else "")
        self.max_tasks = max_tasks or 1 << 20
        # a task's fields in one 64-byte cache line: numpy starts a large array 16 bytes past a page boundary,
        # which put every record across two lines (the release reads it at random); 2% less time at 50,000
        # instances, 1% at 500, measured on the same decisions
        self.T = pages.zeros((self.max_tasks + 1, 8), np.int64)
        self.live = np.zeros(self.max_tasks, np.int64)
        self.reasons = REASONS
        self._fn = self.index.fn

    def _ids(self, reqs: np.ndarray) -> np.ndarray:
        slots = np.array(self.slots, np.int64)
        return np.ascontiguousarray(slots[np.asarray(reqs, np.int64)], np.int64)

    def _run(self, reqs, us, rng, saturated, window, fail_share):
        reqs = np.asarray(reqs, np.int64)
        out_row = np.zeros(len(reqs), np.int64)
        out_task = np.zeros(len(reqs), np.int64)
        st, fn = generator_addresses(rng)
        ix = self.index
        done = self._fn["run"](ix.R, ix.X, ix.Z, self.T, self.live, self._ids(reqs), us, saturated, window,
                               fail_share, out_row, out_task, st, fn)
        self._sync_totals()
        return int(done), out_row[:done], out_task[:done]

    def _sync_totals(self) -> None:
        """The stream takes and gives back resources in compiled code, past ``record`` and ``free``: the
        cluster's used totals are what its running tasks hold, which ``run`` keeps in ``T[-1, 2:5]`` (O(1);
        registered totals do not move)."""
        totals = self.index.state.totals_block
        totals[USED_CPU], totals[USED_MEMORY], totals[HELD_CHIPS] = self.T[-1, 2:5]

    def fill(self, reqs: np.ndarray, rng: np.random.Generator, window: int = 500,
             fail_share: float = 0.5) -> tuple[int, np.ndarray, np.ndarray]:
        """Place ``reqs`` until more than ``fail_share`` of the last ``window`` failed (the benchmark's
        saturation); returns how many were decided and their (row or -1, task slot) outputs."""
        return self._run(reqs, np.zeros(len(reqs)), rng, -1, window, fail_share)

    def churn(self, reqs: np.ndarray, us: np.ndarray, rng: np.random.Generator,
              saturated: int) -> tuple[np.ndarray, np.ndarray]:
        """Release a random live task (at fraction ``us[i]`` of the live list) while ``saturated`` run,
        then place ``reqs[i]``; the outputs per decision."""
        _, rows, tasks = self._run(reqs, np.ascontiguousarray(us, np.float64), rng, saturated, 0, 0.0)
        return rows, tasks

    def snapshot(self) -> tuple[np.ndarray, ...]:
        """Copies of everything the stream's decisions read and write (the free columns, the class index,
        the requests' counts, the tasks), for ``restore``."""
        return tuple(a.copy() for a in self._arrays())

    def restore(self, snapshot: tuple[np.ndarray, ...]) -> None:
        """Put back the stream as ``snapshot`` found it, in place (the same arrays, so the same memory):
        from there the same requests, draws and generator state make the same decisions again."""
        for now, then in zip(self._arrays(), snapshot, strict=True):
            if now.shape != then.shape:
                raise ValueError("the stream's arrays were laid out again since the snapshot")
            np.copyto(now, then)
        self._sync_totals()

    def _arrays(self) -> tuple[np.ndarray, ...]:
        ix = self.index
        return ix.R, ix.X, ix.Z, self.T, self.live

    @property
    def running(self) -> int:
        return int(self.T[-1, 0])

    def decision(self, request: int, row: int, task: int) -> tuple[int | None, tuple[int, ...], str | None]:
        """(row, chips, None) for a placement, (None, (), reason) for a failure, as the Python path says."""
        if task >= 0:
            chips = int(self.T[task, 5])
            return row, chips_of(chips), None
        if task <= -100:
            return None, (), self.reasons_static[request]
        return None, (), self.reasons[RESOURCE_STEPS[-1 - task]]

    def release_all(self) -> None:
        """Release every running task (its row's free columns back, the row moved to its class)."""
        ix = self.index
        for t in self.live[: self.running].tolist():
            row = int(self.T[t, 0])
            ix.R[1:5, row] += self.T[t, 1:5]
            ix.R[5, row] |= self.T[t, 5]
            self._fn["relocate"](ix.R, ix.X, ix.Z, row, int(self.T[t, 6]), -1)
            self.T[t, 0] = -1
        self.T[-1, 0] = 0
        self.T[-1, 2:5] = 0
        self._sync_totals()

    def is_empty(self) -> bool:
        """No task running and every row back to its registered resources."""
        return self.running == 0 and self.index.state.is_empty()
