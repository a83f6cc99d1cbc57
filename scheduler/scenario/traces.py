"""Trace workloads: each CSV file read into a table of RunTask calls (``submit`` and ``duration`` in
seconds, ``task_definition``), sorted by submit time, with every bad file, column or cell one
ScenarioError naming the file, the line and the column."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from scheduler.errors import show_name, show_value
from scheduler.files import UnreadableFile, read_bounded
from scheduler.scenario.context import _Context
from scheduler.scenario.limits import MAX_TRACE_BYTES
from scheduler.scenario.models import Scenario
from scheduler.scenario.words import _exists, _first_line, _path_text
from scheduler.scenario.workloads import RunTaskWorkload, TraceArrivals
from scheduler.units import parse_duration


def _load_traces(model: Scenario, context: _Context) -> dict[str, pd.DataFrame]:
    traces = {}
    for i, workload in enumerate(model.workloads):
        if isinstance(workload, RunTaskWorkload) and isinstance(workload.arrivals, TraceArrivals):
            traces[workload.name] = _load_trace(workload, f"workloads[{i}].arrivals", model, context)
    return traces


def _load_trace(workload: RunTaskWorkload, where: str, model: Scenario, context: _Context) -> pd.DataFrame:
    arrivals = workload.arrivals
    assert isinstance(arrivals, TraceArrivals)
    file = context.base / arrivals.file
    if not _exists(file):
        raise context.error(f"{where}.file", f"trace file not found: {_path_text(file)}")
    try:
        raw = read_bounded(file, MAX_TRACE_BYTES)
    except (FileNotFoundError, UnreadableFile) as exc:
        problem = "not found" if isinstance(exc, FileNotFoundError) else str(exc)
        raise context.error(f"{where}.file", f"{_path_text(file)}: {problem}") from None
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8")
    except UnicodeDecodeError:
        raise context.error(f"{where}.file", f"{file}: not UTF-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise context.error(f"{where}.file", f"{file}: cannot read the CSV: {_first_line(exc)}") from None
    frame.columns = [str(c).strip() for c in frame.columns]

    def column(name: str, option: str) -> pd.Series:
        if name not in frame.columns:
            raise context.error(f"{where}.{option}", f"{file} has no column {name!r}{_columns(frame.columns)}")
        return frame[name]

    submit = _seconds(column(arrivals.time_column, "time_column"), file, arrivals.time_column, where, context)
    if workload.duration is None:
        durations = _seconds(column(arrivals.duration_column, "duration_column"), file,
                             arrivals.duration_column, where, context)
    else:
        durations = np.full(len(frame), np.nan)
    if len(frame) == 0:
        raise context.error(f"{where}.file", f"{file} has no rows")
    if arrivals.task_definition_column in frame.columns:
        names = frame[arrivals.task_definition_column].str.strip()
        names = names.mask(names == "", workload.task_definition)
        unknown = ~names.isin(list(model.task_definitions))
        if unknown.any():
            row = int(np.argmax(unknown.to_numpy()))
            raise context.error(f"{where}.file", f"{file}: line {row + 2}: column "
                                f"{arrivals.task_definition_column!r}: unknown task definition "
                                f"{show_value(names.iloc[row])}; task_definitions has "
                                f"{', '.join(model.task_definitions)}")
        task_definitions = names.to_numpy(dtype=object)
    else:
        task_definitions = np.full(len(frame), workload.task_definition, dtype=object)
    table = pd.DataFrame({"submit": submit, "duration": durations, "task_definition": task_definitions})
    return table.sort_values("submit", kind="stable").reset_index(drop=True)


def _columns(names: pd.Index) -> str:
    """The columns a trace has, for an error: named only when each is a short name (a line of another file
    read as a header is not echoed) and there are few."""
    shown = [show_name(name) for name in names]
    if len(shown) > 20 or None in shown:
        return f" (its header line has {len(shown)} cells, not the column names of a trace)"
    return f" (columns: {', '.join(str(name) for name in names)})"


def _seconds(cells: pd.Series, file: Path, name: str, where: str, context: _Context) -> np.ndarray:
    """Seconds from a column of numbers or durations ("90s"); refuses blanks and negatives."""
    numbers = np.array(pd.to_numeric(cells, errors="coerce"), dtype=float)
    for row in np.flatnonzero(~np.isfinite(numbers) | (numbers < 0)):
        text = str(cells.iloc[row]).strip()
        try:
            if not text:
                raise ValueError("is empty")
            numbers[row] = parse_duration(text)
        except ValueError as exc:
            raise context.error(f"{where}.file", f"{file}: line {row + 2}: column {name!r}: {exc}") from None
    return numbers
