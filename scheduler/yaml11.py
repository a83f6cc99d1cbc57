"""Plain YAML scalars that PyYAML, a YAML 1.1 reader, turns into numbers unlike what they look like
(``1:30`` is 90 in base 60, ``010`` is 8 in octal; YAML 1.2 reads neither so). Every reader of a user's
YAML file refuses them at their line and column, asking for quotes or decimal."""

from __future__ import annotations

import re
from collections.abc import Iterator

import yaml

from scheduler.errors import show_value

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_OCTAL = re.compile(r"[-+]?0[0-7_]+")


def surprise(value: str) -> str | None:
    """Why a plain scalar that YAML 1.1 reads as a base-60 or octal number is refused, or None."""
    if _SEXAGESIMAL.fullmatch(value):
        kind = "a base-60 number"
    elif _OCTAL.fullmatch(value) and value.strip("+-0_"):
        kind = "an octal number"
    else:
        return None
    reads = f" (it reads as {yaml.load(value, Loader=_Loader):g})" if len(value) <= 30 else ""
    return (f"{show_value(value)} is {kind} in YAML 1.1{reads}; quote it, or write the number in decimal "
            "(a duration as 1m30s)")


def is_plain(event: yaml.ScalarEvent) -> bool:
    """A scalar written without quotes or tag, which YAML resolves by its look."""
    return bool(event.implicit[0]) and event.tag in (None, "!")


def surprises(text: str) -> Iterator[tuple[int, int, str]]:
    """(line, column, why) of every plain scalar in ``text`` that YAML 1.1 reads unlike its look; 1-based."""
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.ScalarEvent) and is_plain(event) and (why := surprise(event.value)):
            yield event.start_mark.line + 1, event.start_mark.column + 1, why
