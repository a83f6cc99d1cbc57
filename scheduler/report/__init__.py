"""Reports of results folders: a self-contained ``report.html`` and a ``report.md`` with PNG figures.

``build_report(folder)`` reads a folder written by ``neuron-sim run`` (summary, tasks, timeline) or by
``neuron-sim sweep`` (runs and per-point summary) and writes, each file to a temporary name and renamed:

- ``report.html``: one page, every figure embedded as a base64 PNG, readable offline;
- ``report.md`` and ``figures/*.png``: the same text and figures for a repository or a wiki.
"""

from __future__ import annotations

from pathlib import Path

from scheduler.report.document import Report, ReportError, build_document, folder_kind
from scheduler.report.render import FIGURES, to_html, to_markdown

__all__ = ["Report", "ReportError", "build_document", "build_report", "folder_kind", "to_html", "to_markdown"]


def build_report(folder: str | Path) -> list[Path]:
    """Write the report of a run or sweep folder; returns the files written (PNGs, report.md, report.html)."""
    from scheduler.output import OutputError, atomic_write

    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError("no such results folder", file=str(folder))
    report = build_document(folder)
    written: list[Path] = []
    try:
        charts = folder / FIGURES
        charts.mkdir(exist_ok=True)
        for chart in report.charts:
            path = charts / f"{chart.name}.png"
            atomic_write(path, lambda tmp, png=chart.png: tmp.write_bytes(png))
            written.append(path)
        for stale in set(charts.glob("*.png")) - set(written):  # from an earlier report of this folder
            stale.unlink()
        for name, text in (("report.md", to_markdown(report)), ("report.html", to_html(report))):
            atomic_write(folder / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
            written.append(folder / name)
    except OSError as exc:
        raise OutputError(f"cannot write the report: {exc.strerror or exc}", file=str(folder)) from None
    return written
