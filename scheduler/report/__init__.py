"""Reports of results folders: a self-contained ``report.html`` and a ``report.md`` with PNG figures.

``build_report(folder)`` reads a folder written by ``neuron-sim run`` (summary, tasks, timeline) or by
``neuron-sim sweep`` (runs and per-point summary) and writes, each file to a temporary name and renamed:

- ``report.html``: one page, every figure embedded as a base64 PNG, readable offline;
- ``report.md`` and ``figures/*.png``: the same text and figures for a repository or a wiki.

Only a folder this tool marked as its results is written into; the files written join its manifest, and
a figure an earlier report wrote is removed only when the manifest lists it. Nothing in the folder is
followed when it is a symbolic link.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from scheduler.errors import NeuronSimError, one_line
from scheduler.report.document import Report, ReportError, build_document, folder_kind
from scheduler.report.render import FIGURES, to_html, to_markdown

__all__ = ["Report", "ReportError", "build_document", "build_report", "folder_kind", "to_html", "to_markdown"]

READ_FILES = ("summary.json", "tasks.parquet", "timeline.parquet", "sweep.json", "sweep.parquet",
              "sweep_summary.parquet")


def build_report(folder: str | Path, *, lock: bool = True) -> list[Path]:
    """Write the report of a run or sweep folder; returns the files written (PNGs, report.md, report.html).

    ``lock=False`` is for a staging folder its :class:`~scheduler.results_folder.ResultsFolder` holds.
    """
    from scheduler.results_folder import (
        OutputError,
        locked,
        open_folder,
        read_manifest,
        remove_file,
        subfolder,
        update_manifest,
        write_file,
    )

    folder = Path(folder)
    try:
        if not folder.is_dir():
            raise ReportError("no such results folder", file=str(folder))
        manifest = read_manifest(folder)
        if manifest is None:  # a summary.json alone may be anyone's: only a folder this tool marked is written
            folder_kind(folder)  # says what is missing when there are no results at all
            raise ReportError("holds no neuron-sim results (no .neuron-sim marker: these files were not written "
                              "by neuron-sim run or sweep)", file=str(folder))
        with locked(folder) if lock else _opened(folder, open_folder) as fd:
            for name in READ_FILES:
                if os.path.lexists(folder / name) and (folder / name).is_symlink():
                    raise OutputError(f"{name} is a symbolic link; refusing to read through it", file=str(folder))
            report = _document(folder)
            earlier = {f.split("/", 1)[1] for f in manifest.files if f.startswith(f"{FIGURES}/")}
            written: list[str] = []
            stale = earlier - {f"{chart.name}.png" for chart in report.charts}  # only what an earlier report wrote
            if report.charts or (stale and os.path.lexists(folder / FIGURES)):  # never an empty figures/
                with subfolder(fd, FIGURES, create=bool(report.charts), where=str(folder)) as charts:
                    for chart in report.charts:
                        write_file(charts, f"{chart.name}.png", chart.png)
                        written.append(f"{FIGURES}/{chart.name}.png")
                    for name in sorted(stale):
                        remove_file(charts, name)
            for name, text in (("report.md", to_markdown(report)), ("report.html", to_html(report))):
                write_file(fd, name, text.encode("utf-8"))
                written.append(name)
            update_manifest(folder, written, [f"{FIGURES}/{name}" for name in stale])
    except OSError as exc:
        raise OutputError(f"cannot write the report: {exc.strerror or exc}", file=str(folder)) from None
    return [folder / name for name in written]


@contextlib.contextmanager
def _opened(folder: Path, open_folder) -> Iterator[int]:
    fd = open_folder(folder, where=str(folder))
    try:
        yield fd
    finally:
        os.close(fd)


def _document(folder: Path) -> Report:
    """The report's document; a damaged folder (a truncated table, JSON that is not a run's) is one line."""
    try:
        return build_document(folder)
    except NeuronSimError:
        raise
    except Exception as exc:  # anything a damaged file makes pandas, pyarrow or json raise
        detail = one_line(" ".join(str(exc).split()))[:200]
        raise ReportError(f"the results are damaged and cannot be read ({type(exc).__name__}: {detail}); "
                          "run the scenario again to rewrite them", file=str(folder)) from None
