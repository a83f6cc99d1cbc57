"""The one family of errors that neuron-sim raises for bad input.

Every error names the file (when there is one), the field path inside it, and what is wrong, so that
the CLI can print one clear line and exit with code 2 instead of a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Issue:
    """One broken rule: where (a JSON-path-like field path) and what."""

    path: str
    message: str
    rule: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "rule": self.rule}


class NeuronSimError(Exception):
    """Base of every input error; ``str()`` gives the one line the CLI prints."""

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.path = path

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.path) if part)
        return bounded(one_line(f"{where}: {self.message}" if where else self.message))


MAX_LINE = 1000  # characters in one error line; a value quoted in full may be far longer


def bounded(line: str, limit: int = MAX_LINE) -> str:
    """``line``, or its start and end around a note of how much was cut when it is longer than ``limit``."""
    if len(line) <= limit:
        return line
    head, tail = limit * 3 // 4, limit // 5
    return f"{line[:head]} ... [{len(line) - head - tail:,} characters cut] ... {line[-tail:]}"


def one_line(text: str) -> str:
    """``text`` with control characters, line breaks and other unprintable characters escaped as repr
    writes them, so that a value quoted in a message cannot break the one-line report or the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def show_value(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut to ``limit`` characters, and safe for values
    whose repr fails (integers past Python's digit limit, structures nested too deeply)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits() digits has no repr
        if isinstance(value, int):
            return f"a number of about {int(value.bit_length() * 0.30103):,} digits"
        return f"a {type(value).__name__} holding a number too long to show"
    except RecursionError:
        return f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_NAME_LIKE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_. -]{0,63}")


def show_name(value: object) -> str | None:
    """A column or field name from a user's file as an error may quote it: the repr of a short name-like
    text, else None. A file read by mistake (a scenario may name any file) has a first line that is no
    name; it is not echoed, so that an error never shows more of a file than the field in error."""
    if isinstance(value, str) and _NAME_LIKE.fullmatch(value):
        return repr(value)
    return None


class CatalogError(NeuronSimError):
    """An unknown instance type or a malformed catalog file."""


class QueryError(NeuronSimError):
    """A cluster-query-language expression that does not parse or cannot be evaluated."""

    def __init__(self, message: str, *, expression: str = "", column: int | None = None,
                 file: str | None = None, path: str | None = None) -> None:
        self.expression = expression
        self.column = column
        text = message if column is None else f"column {column}: {message}"
        super().__init__(text, file=file, path=path)


class TaskDefinitionError(NeuronSimError):
    """A task definition that ECS would reject; carries every broken rule."""

    def __init__(self, issues: list[Issue], *, file: str | None = None) -> None:
        self.issues = list(issues)
        first = self.issues[0] if self.issues else Issue("", "invalid task definition")
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(first.message + more, file=file, path=first.path)


class ScenarioError(NeuronSimError):
    """A scenario file that cannot be loaded or is inconsistent."""


class PlacementError(NeuronSimError):
    """Misuse of the placement core (releasing an unknown task, a bad request)."""


def install_command(extra: str) -> str:
    """The one command that adds an optional extra, as README installs the project (from its checkout)."""
    return f'pip install -e ".[{extra}]"'
