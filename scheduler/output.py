"""Writing a run's tables and views into a results folder, each file to a temporary name then renamed.

:mod:`scheduler.results_folder` decides *where*: a run writes a fresh staging folder that replaces the
results folder as a whole at the end (see there); :func:`write_run_files` fills such a folder and
:func:`write_results` does both for callers that only want the folder written.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from scheduler.results_folder import MARKER, OutputError, ResultsFolder, safe_folder_name

__all__ = ["MARKER", "OutputError", "ResultsFolder", "atomic_write", "json_text", "safe_folder_name",
           "write_device_sets", "write_json", "write_parquet", "write_results", "write_run_files"]

TASK_SINK = ".tasks.parquet.partial"  # the per-task table streams here during a run, renamed when complete


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return _clean(value.item())
    return value


def json_text(payload: Any) -> str:
    """Deterministic JSON: NaN and infinities become null, numpy scalars plain numbers."""
    return json.dumps(_clean(payload), indent=2, allow_nan=False) + "\n"


def atomic_write(path: Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp)`` for a new temporary file beside ``path``, then rename it over ``path`` (a link
    at ``path`` is replaced, never followed)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, payload: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json_text(payload), encoding="utf-8"))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow"))


def _tasks_table(results: Any, path: Path) -> None:
    streamed = getattr(results, "tasks_path", None)
    if results.tasks is None and streamed is not None:
        try:
            os.replace(streamed, path)  # streamed during the run into the same folder: a rename
        except OSError:
            atomic_write(path, lambda tmp: shutil.copyfile(streamed, tmp))
    else:
        write_parquet(path, results.tasks)


def write_run_files(results: Any, folder: Path) -> list[Path]:
    """Write every table and view of a run into ``folder`` (a staging folder); returns the files written."""
    folder = Path(folder)
    files = {
        "tasks.parquet": lambda p: _tasks_table(results, p),
        "timeline.parquet": lambda p: write_parquet(p, results.timeline),
        "describe_tasks.json": lambda p: write_json(p, results.describe_tasks),
        "describe_container_instances.json": lambda p: write_json(p, results.describe_container_instances),
        "events.json": lambda p: write_json(p, results.events),
    }
    extra = getattr(results, "extra_tables", None) or {}
    for name, frame in extra.items():
        files[f"{name}.parquet"] = lambda p, frame=frame: write_parquet(p, frame)
    written = []
    for name, write in files.items():
        write(folder / name)
        written.append(folder / name)
    # the summary last: its presence says the folder is complete
    write_json(folder / "summary.json", results.summary.to_json())
    written.append(folder / "summary.json")
    return written


def write_results(results: Any, out: Path, *, force: bool = False) -> list[Path]:
    """Replace the results folder ``out`` with a run's files (see :class:`ResultsFolder`); returns them."""
    with ResultsFolder(out, "run", force=force) as folder:
        names = [p.name for p in write_run_files(results, folder.staging)]
        final = folder.commit()
    return [final / name for name in names]


def write_device_sets(documents: dict[str, dict], out: Path, *, force: bool = False) -> list[Path]:
    """Replace the folder ``out`` with one RegisterTaskDefinition JSON file per entry of ``documents``
    (``<name>.json``), staged and swapped in whole as a results folder is; returns the files."""
    with ResultsFolder(out, "device-sets", force=force) as folder:
        for name, document in documents.items():
            write_json(folder.staging / f"{name}.json", document)
        final = folder.commit()
    return [final / f"{name}.json" for name in documents]
