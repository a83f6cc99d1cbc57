"""Writing a :class:`~scheduler.report.document.Report` as a self-contained HTML page (every figure a
base64 PNG inside it) and as Markdown that links the PNG files written beside it."""

from __future__ import annotations

import base64
import html

from scheduler.report.document import Report, TableBlock

FIGURES = "figures"

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
.subtitle { color: #555; margin-top: 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; }
nav a { margin-right: 0.8rem; }
"""


def _is_number(cell: str) -> bool:
    text = cell.replace(",", "").replace("$", "").replace("%", "").strip()
    try:
        float(text.split(" ")[0])
    except ValueError:
        return False
    return True


def _html_table(table: TableBlock) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(f'<td class="num">{html.escape(c)}</td>' if _is_number(c)
                        else f"<td>{html.escape(c)}</td>" for c in row)
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def to_html(report: Report) -> str:
    """One HTML page; figures are ``data:image/png;base64`` images, so the file stands alone."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(report.title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
             f"<h1>{html.escape(report.title)}</h1>",
             f'<p class="subtitle">{html.escape(report.subtitle)}</p>',
             "<nav>" + "".join(f'<a href="#{_anchor(s.title)}">{html.escape(s.title)}</a>'
                               for s in report.sections) + "</nav>"]
    for section in report.sections:
        parts.append(f'<h2 id="{_anchor(section.title)}">{html.escape(section.title)}</h2>')
        parts.extend(f"<p>{html.escape(text)}</p>" for text in section.paragraphs)
        parts.extend(_html_table(table) for table in section.tables)
        for chart in section.charts:
            data = base64.b64encode(chart.png).decode("ascii")
            parts.append(f'<figure id="fig-{chart.name}"><img src="data:image/png;base64,{data}" '
                         f'alt="{html.escape(chart.title, quote=True)}">'
                         f"<figcaption><strong>{html.escape(chart.title)}.</strong> "
                         f"{html.escape(chart.caption)}</figcaption></figure>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(table: TableBlock) -> str:
    lines = ["| " + " | ".join(_md_cell(c) for c in table.columns) + " |",
             "|" + "|".join("---:" if all(_is_number(r[i]) for r in table.rows) and table.rows else "---"
                            for i in range(len(table.columns))) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def to_markdown(report: Report) -> str:
    """Markdown with each figure as ``figures/<name>.png`` (written beside the report)."""
    parts = [f"# {report.title}", "", f"_{report.subtitle}_", ""]
    for section in report.sections:
        parts += [f"## {section.title}", ""]
        for text in section.paragraphs:
            parts += [text, ""]
        for table in section.tables:
            parts += [_md_table(table), ""]
        for chart in section.charts:
            parts += [f"![{chart.title}]({FIGURES}/{chart.name}.png)", "",
                      f"*{chart.title}.* {chart.caption}", ""]
    return "\n".join(parts).rstrip() + "\n"
