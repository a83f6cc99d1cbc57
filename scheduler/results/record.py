"""What a summary figure is computed from (:mod:`scheduler.results.figure`): the run as its results
contract describes it, so a figure reads fields and columns, never the engine."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from scheduler.results.figure import figures
from scheduler.results.summary import RunSummary


@dataclass(frozen=True)
class RunRecord:
    """A finished run: its summary (every field but the declared figures), its timeline (one row per sample
    and group, :data:`scheduler.results.tables.TIMELINE_COLUMNS`; the cluster row's ``instance_type`` is
    ``*``) and its events (``time``, ``kind``, ``message``, as events.json holds them)."""

    summary: RunSummary
    timeline: pd.DataFrame
    events: Sequence[Mapping[str, Any]] = ()

    @property
    def cluster(self) -> pd.DataFrame:
        """The timeline's cluster rows, one per sample."""
        return self.timeline[self.timeline["instance_type"] == "*"]


def with_figures(record: RunRecord) -> RunSummary:
    """The run's summary with every declared figure computed from ``record``."""
    values = {}
    for figure in figures():
        value = figure.compute(record)
        if value is None and not figure.optional:
            raise ValueError(f"figure {figure.name} computed None but is not optional")
        values[figure.name] = None if value is None else figure.kind(value)
    return dataclasses.replace(record.summary, figures=values)
