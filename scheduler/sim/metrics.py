"""The metrics recorder: per-task rows, a sampled timeline, exact time integrals, and the summary.

Rows are kept as columns of plain Python lists (cheap to append, one DataFrame at the end); for long runs
they stream to a Parquet file in chunks instead, so memory stays flat however many tasks run. Utilization
is integrated exactly between events (level x time), not estimated from samples; stranded chips are
sampled, since deciding whether an instance can still take Neuron work costs a placement check.
"""

from __future__ import annotations

from collections import Counter
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
class Levels:
    """Cluster-wide amounts that change at events; integrated over time for utilization."""

    chips_total: float = 0.0
    chips_held: float = 0.0
    cpu_total: float = 0.0
    cpu_used: float = 0.0
    mem_total: float = 0.0
    mem_used: float = 0.0
    idle_chip_cost: float = 0.0  # USD per hour of the chips no task holds (price share per chip)


@dataclass
class Recorder:
    """Collects what a run produced."""

    rows: dict[str, list] = field(default_factory=lambda: {c: [] for c in TASK_COLUMNS})
    timeline: dict[str, list] = field(default_factory=lambda: {c: [] for c in TIMELINE_COLUMNS})
    levels: Levels = field(default_factory=Levels)
    integrals: Levels = field(default_factory=Levels)
    last_t: float = 0.0
    stranded_chip_seconds: float = 0.0
    failures: Counter = field(default_factory=Counter)
    events: list[dict] = field(default_factory=list)
    scaling: list[dict] = field(default_factory=list)
    reservations: list[dict] = field(default_factory=list)

    def advance(self, t: float) -> None:
        """Accumulate every level over [last_t, t) before a change at ``t``."""
        dt = t - self.last_t
        if dt > 0:
            lv, acc = self.levels, self.integrals
            acc.chips_total += lv.chips_total * dt
            acc.chips_held += lv.chips_held * dt
            acc.cpu_total += lv.cpu_total * dt
            acc.cpu_used += lv.cpu_used * dt
            acc.mem_total += lv.mem_total * dt
            acc.mem_used += lv.mem_used * dt
            acc.idle_chip_cost += lv.idle_chip_cost * dt
            self.last_t = t

    sink: TaskTableWriter | None = None

    def __post_init__(self) -> None:
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


