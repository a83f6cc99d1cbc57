"""The metrics recorder: per-task rows, a sampled timeline, exact time integrals, and the summary.

Rows are kept as columns of plain Python lists (cheap to append, one DataFrame at the end); for long runs
they stream to a Parquet file in chunks instead, so memory stays flat however many tasks run. Utilization
is integrated exactly between events (level x time), not estimated from samples: the levels are the
placement core's cluster totals (``ClusterState.totals``), read after each change, never a copy kept by
hand. Stranded chips are sampled, since deciding whether an instance can still take Neuron work costs a
placement check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scheduler.results.tables import (  # noqa: F401  (RESOURCE_COLUMNS: the engine imports it from here)
    CAPACITY_RESERVATION_COLUMNS,
    RESOURCE_COLUMNS,
    SCALING_EVENT_COLUMNS,
    TASK_COLUMNS,
    TASK_SCHEMA,
    TIMELINE_COLUMNS,
)

CHUNK_ROWS = 100_000


class TaskTableWriter:
    """Appends chunks of task rows to one Parquet file (the schema fixed up front)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.writer = pq.ParquetWriter(self.path, TASK_SCHEMA)
        self.rows = 0

    def write(self, rows: dict[str, list]) -> None:
        table = pa.Table.from_pydict(rows, schema=TASK_SCHEMA)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self.writer.close()


@dataclass
class Integrals:
    """Time integrals (amount x seconds) of the cluster totals, in ``placement.state.Totals`` order."""

    cpu: float = 0.0
    cpu_used: float = 0.0
    memory: float = 0.0
    memory_used: float = 0.0
    chips: float = 0.0
    chips_held: float = 0.0


def _no_cluster() -> Sequence[int]:
    return (0, 0, 0, 0, 0, 0)


@dataclass
class Recorder:
    """Collects what a run produced.

    ``levels`` reads the cluster totals now (``ClusterState.totals_values``). The rule: call ``advance(t)``
    after every change to them at time ``t`` (several changes at one time: after each, or once after the
    last), and once at the end of the run. ``advance`` integrates the totals read at the previous call over
    ``[last_t, t)`` and reads them anew, so each interval is integrated with the level it had.

    ``held_chip_cost`` is the price-weighted integral of held chips (USD per hour x seconds), added by
    ``chips_released`` when a task gives chips back; with ``chip_removals`` (row, time) it lets the summary
    derive the cost of idle chips (``scheduler.sim.summarize``) without a price-weighted level kept by hand.
    """

    rows: dict[str, list] = field(default_factory=lambda: {c: [] for c in TASK_COLUMNS})
    timeline: dict[str, list] = field(default_factory=lambda: {c: [] for c in TIMELINE_COLUMNS})
    levels: Callable[[], Sequence[int]] = _no_cluster
    integrals: Integrals = field(default_factory=Integrals)
    last_t: float = 0.0
    held_chip_cost: float = 0.0
    chip_removals: list[tuple[int, float]] = field(default_factory=list)
    stranded_chip_seconds: float = 0.0
    failures: Counter = field(default_factory=Counter)
    events: list[dict] = field(default_factory=list)
    scaling: list[dict] = field(default_factory=list)
    reservations: list[dict] = field(default_factory=list)

    def advance(self, t: float) -> None:
        """The totals changed at ``t`` (or the run ends): integrate the previous level over [last_t, t),
        then read the level from ``t`` on."""
        dt = t - self.last_t
        if dt > 0:
            cpu, cpu_used, memory, memory_used, chips, chips_held = self._level
            acc = self.integrals
            acc.chips += chips * dt
            acc.chips_held += chips_held * dt
            acc.cpu += cpu * dt
            acc.cpu_used += cpu_used * dt
            acc.memory += memory * dt
            acc.memory_used += memory_used * dt
            self.last_t = t
        self._level = self.levels()

    def chips_released(self, price_per_chip_hour: float, chips: int, held_seconds: float) -> None:
        """A task gave back ``chips`` it held for ``held_seconds`` on an instance of this price per chip."""
        self.held_chip_cost += price_per_chip_hour * chips * held_seconds

    def chip_removed(self, row: int, t: float) -> None:
        """A chip left row ``row``'s NEURON_DEVICES at ``t`` (it failed): it costs nothing idle from then on."""
        self.chip_removals.append((row, t))

    sink: TaskTableWriter | None = None

    def __post_init__(self) -> None:
        self._level = self.levels()
        self._appenders = [self.rows[c].append for c in TASK_COLUMNS]

    def task_row(self, *values: object) -> None:
        """One row, values in TASK_COLUMNS order."""
        for append, value in zip(self._appenders, values, strict=True):
            append(value)
        if self.sink is not None and len(self.rows["task_id"]) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write the rows held so far to the sink and forget them."""
        if self.sink is not None and self.rows["task_id"]:
            self.sink.write(self.rows)
            self.rows = {c: [] for c in TASK_COLUMNS}
            self._appenders = [self.rows[c].append for c in TASK_COLUMNS]

    def sample(self, rows: list[dict]) -> None:
        for row in rows:
            for column in TIMELINE_COLUMNS:
                self.timeline[column].append(row.get(column, 0))

    def event(self, t: float, kind: str, message: str, **extra: object) -> None:
        self.events.append({"time": t, "kind": kind, "message": message, **extra})

    # ---------------------------------------------------------------- results
    def tasks_frame(self) -> pd.DataFrame:
        """The per-task table, typed exactly as the streamed Parquet file reads back."""
        return pa.Table.from_pydict(self.rows, schema=TASK_SCHEMA).to_pandas()

    def timeline_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.timeline, columns=list(TIMELINE_COLUMNS))

    def scaling_frame(self) -> pd.DataFrame:
        columns = list(SCALING_EVENT_COLUMNS)
        return pd.DataFrame([{c: e.get(c) for c in columns} for e in self.scaling], columns=columns)

    def reservation_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.reservations, columns=list(CAPACITY_RESERVATION_COLUMNS))


def ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


