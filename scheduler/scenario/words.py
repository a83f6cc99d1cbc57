"""Small words for one-line messages: how a value, a file path or an exception reads in an error, and a
field path's parts written as users write them (``workloads[1].arrivals.rate``, ``task_definitions["a b"]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from scheduler.errors import show_value

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _path_part(part: int | str, *, first: bool = False) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    if _IDENTIFIER.fullmatch(part):
        return part if first else f".{part}"
    escaped = part.replace("\\", "\\\\").replace('"', '\\"')
    return f'["{escaped}"]'


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return f"the text {show_value(value)}"
    if isinstance(value, int | float):
        return f"the number {show_value(value)}"
    return f"a {type(value).__name__}"


def _exists(path: Path) -> bool:
    """Whether anything is at ``path`` (a FIFO or a directory too: the reader says what is wrong with it);
    False, not OSError, for a name too long for the file system."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _path_text(path: Path) -> str:
    text = str(path)
    return text if text.isprintable() else repr(text)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
