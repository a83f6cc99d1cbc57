"""Request traces: each service's ``requests.arrivals`` trace CSV read into a table of ``time`` (seconds
from the first request), ``input_tokens`` and ``output_tokens``, sorted by time, with every bad file,
column or cell one ScenarioError naming the file, the field path and the line."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from scheduler.files import UnreadableFile, read_bounded
from scheduler.scenario.context import _Context
from scheduler.scenario.limits import MAX_TRACE_BYTES
from scheduler.scenario.models import Scenario
from scheduler.scenario.requests import RequestTrace
from scheduler.scenario.traces import _columns
from scheduler.scenario.words import _exists, _first_line, _path_text


def _load_request_traces(model: Scenario, context: _Context) -> dict[str, pd.DataFrame]:
    traces = {}
    for i, workload in enumerate(model.workloads):
        block = getattr(workload, "requests", None)
        if block is not None and isinstance(block.arrivals, RequestTrace):
            traces[workload.name] = _load(block.arrivals, f"workloads[{i}].requests.arrivals", context)
    return traces


def _load(arrivals: RequestTrace, where: str, context: _Context) -> pd.DataFrame:
    file = context.base / arrivals.file
    if not _exists(file):
        raise context.error(f"{where}.file", f"trace file not found: {_path_text(file)}")
    try:
        raw = read_bounded(file, MAX_TRACE_BYTES)
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, skipinitialspace=True,
                            encoding="utf-8")
    except (FileNotFoundError, UnreadableFile) as exc:
        problem = "not found" if isinstance(exc, FileNotFoundError) else str(exc)
        raise context.error(f"{where}.file", f"{_path_text(file)}: {problem}") from None
    except UnicodeDecodeError:
        raise context.error(f"{where}.file", f"{_path_text(file)}: not UTF-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise context.error(f"{where}.file", f"{_path_text(file)}: cannot read the CSV: {_first_line(exc)}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise context.error(f"{where}.file", f"{_path_text(file)} has no rows")

    def column(option: str) -> pd.Series:
        name = getattr(arrivals, option)
        if name not in frame.columns:
            raise context.error(f"{where}.{option}", f"{_path_text(file)} has no column {name!r}"
                                f"{_columns(frame.columns)}")
        return frame[name].str.strip()

    times = _times(column("time_column"), arrivals.time_column, file, where, context)
    inputs = _tokens(column("input_tokens_column"), arrivals.input_tokens_column, file, where, context)
    outputs = _tokens(column("output_tokens_column"), arrivals.output_tokens_column, file, where, context)
    order = np.argsort(times, kind="stable")
    times = times[order] - times[order][0]
    return pd.DataFrame({"time": times, "input_tokens": inputs[order], "output_tokens": outputs[order]})


def _bad(cells: pd.Series, bad: np.ndarray, name: str, file: object, where: str, context: _Context,
         what: str) -> None:
    if bad.any():
        row = int(np.argmax(bad))
        raise context.error(f"{where}.file", f"{_path_text(file)}: line {row + 2}: column {name!r}: "
                            f"{what}, got {str(cells.iloc[row])[:40]!r}")


def _times(cells: pd.Series, name: str, file: object, where: str, context: _Context) -> np.ndarray:
    """Seconds from numbers, or from date-times (``2023-11-16 18:15:46.68``)."""
    numbers = np.array(pd.to_numeric(cells, errors="coerce"), dtype=float)
    if np.isfinite(numbers).all():
        _bad(cells, numbers < 0, name, file, where, context, "a time must be at least 0")
        return numbers
    stamps = pd.to_datetime(cells, errors="coerce", format="mixed")
    _bad(cells, stamps.isna().to_numpy(), name, file, where, context, "expected seconds or a date-time")
    return (stamps - stamps.min()).dt.total_seconds().to_numpy(dtype=float)


def _tokens(cells: pd.Series, name: str, file: object, where: str, context: _Context) -> np.ndarray:
    numbers = np.array(pd.to_numeric(cells, errors="coerce"), dtype=float)
    bad = ~np.isfinite(numbers) | (numbers < 0) | (numbers != np.round(numbers)) | (numbers > 10_000_000)
    _bad(cells, bad, name, file, where, context, "expected a whole number of tokens (0 or more)")
    return numbers.astype(np.int64)
