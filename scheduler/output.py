"""Writing a run's results folder safely: every file to a temporary name in the folder, then renamed.

A folder is only written into when it is new, empty, or already holds results of this tool (marked by
``.neuron-sim``); anything else needs ``force``. A reader never sees a half-written file, and an
interrupted run leaves the previous complete files in place.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from scheduler.errors import NeuronSimError

MARKER = ".neuron-sim"


class OutputError(NeuronSimError):
    """The results folder cannot be written."""


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
    """Call ``writer(tmp)`` for a temporary file beside ``path``, then rename it over ``path``."""
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


def prepare_folder(out: Path, *, force: bool = False) -> Path:
    """Create or reuse a results folder, refusing one that holds something else unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError("exists and is not a folder", file=str(out))
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists() and not force:
        raise OutputError("the folder holds files that are not neuron-sim results; "
                          "choose another --out or pass --force", file=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("results of neuron-sim; safe to overwrite with another run\n")
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror or exc}", file=str(out)) from None
    return out


def _tasks_table(results: Any, path: Path) -> None:
    streamed = getattr(results, "tasks_path", None)
    if results.tasks is None and streamed is not None:
        os.replace(streamed, path)  # streamed during the run into the same folder: a rename is atomic
    else:
        write_parquet(path, results.tasks)


def write_results(results: Any, out: Path, *, force: bool = False) -> list[Path]:
    """Write every table and view of a run; returns the files written."""
    out = prepare_folder(out, force=force)
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
    try:
        for name, write in files.items():
            write(out / name)
            written.append(out / name)
        # the summary last: its presence says the folder is complete
        write_json(out / "summary.json", results.summary)
        written.append(out / "summary.json")
    except OSError as exc:
        raise OutputError(f"cannot write results: {exc.strerror or exc}", file=str(out)) from None
    return written
