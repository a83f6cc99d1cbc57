"""Reading a scenario file and its YAML defensively: a size limit, UTF-8 with the line and column of a
bad byte, one document, a cap on nodes after alias expansion (no "billion laughs"), a depth limit, no
recursive aliases, no duplicate keys, and the scalars PyYAML would fail on without saying where (huge
integers, impossible dates, bad explicit tags). Every problem is one ScenarioError with its position."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from scheduler import yaml11
from scheduler.errors import ScenarioError, show_value
from scheduler.files import UnreadableFile, read_bounded
from scheduler.nesting import MAX_DEPTH
from scheduler.scenario.limits import MAX_FILE_BYTES, MAX_NODES
from scheduler.scenario.words import _first_line

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_text(path: Path, label: str) -> str:
    try:
        raw = read_bounded(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise ScenarioError("scenario file not found", file=label) from None
    except UnreadableFile as exc:
        raise ScenarioError(str(exc), file=label) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ScenarioError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded",
                            file=label, path=f"line {line}, column {column}") from None


def parse_yaml(text: str, label: str) -> object:
    """``yaml.safe_load`` with limits: one document, at most MAX_NODES nodes after expanding aliases,
    at most MAX_DEPTH levels, no recursive aliases and no duplicate keys. Raises ScenarioError."""
    try:
        _check_yaml_structure(text, label)
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        raise _from_yaml_error(exc, label) from None
    except (ValueError, OverflowError, LookupError, AttributeError, TypeError) as exc:
        # raised inside PyYAML's constructors, which report bad values this way (int("x"), !!bool x, ...)
        raise ScenarioError(f"not valid YAML: {_first_line(exc)}", file=label) from None
    except RecursionError:
        raise ScenarioError("not valid YAML: nested too deeply", file=label) from None


@dataclass
class _Open:
    """A collection being read: whether it is a mapping, its children so far, its keys, its anchor."""

    mapping: bool
    start: int
    anchor: str | None
    children: int = 0
    keys: set[tuple[str, bool]] = field(default_factory=set)


def _check_yaml_structure(text: str, label: str) -> None:
    nodes = 0
    sizes: dict[str, int] = {}   # anchor -> nodes it stands for
    stack: list[_Open] = []
    documents = 0

    def refuse(event: yaml.Event, message: str) -> ScenarioError:
        mark = event.start_mark
        return ScenarioError(message, file=label, path=f"line {mark.line + 1}, column {mark.column + 1}")

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise refuse(event, "the file holds more than one YAML document; a scenario is one document")
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            if done.anchor is not None:
                sizes[done.anchor] = nodes - done.start
            if stack:
                stack[-1].children += 1
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        parent = stack[-1] if stack else None
        if isinstance(event, yaml.AliasEvent):
            if any(frame.anchor == event.anchor for frame in stack):
                raise refuse(event, f"the alias *{event.anchor} refers to a collection that contains it")
            if event.anchor not in sizes:
                raise refuse(event, f"the alias *{event.anchor} has no anchor &{event.anchor} before it")
            nodes += sizes[event.anchor]
        else:
            nodes += 1
        if nodes > MAX_NODES:
            raise refuse(event, f"the document has more than {MAX_NODES:,} values once aliases are expanded; "
                         "refusing to load it")
        if (parent is not None and parent.mapping and parent.children % 2 == 0
                and isinstance(event, yaml.ScalarEvent) and event.value != "<<"):
            key = (event.value, bool(event.implicit[0]))
            if key in parent.keys:
                raise refuse(event, f"duplicate key {show_value(event.value)} (YAML would keep only the last one)")
            parent.keys.add(key)
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise refuse(event, f"nested more than {MAX_DEPTH} levels deep")
            stack.append(_Open(isinstance(event, yaml.MappingStartEvent), nodes - 1, event.anchor))
        else:
            if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
                sizes[event.anchor] = 1
            if isinstance(event, yaml.ScalarEvent) and (problem := _scalar_problem(event)) is not None:
                raise refuse(event, problem)
            if parent is not None:
                parent.children += 1


_YAML_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9_]*)")
_INT_TAG = "tag:yaml.org,2002:int"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_SCALAR_KINDS = {"tag:yaml.org,2002:int": "integer", "tag:yaml.org,2002:float": "number",
                 "tag:yaml.org,2002:bool": "boolean", _TIMESTAMP_TAG: "date"}
MAX_DIGITS = 1000  # no scenario value comes close; int() refuses more than 4,300 digits


def _scalar_problem(event: yaml.ScalarEvent) -> str | None:
    """What the YAML constructor would fail on without saying where: huge numbers, impossible dates,
    and explicitly tagged scalars such as ``!!bool x`` or ``!!timestamp`` (on which PyYAML's constructors
    raise KeyError, IndexError or AttributeError rather than a YAML error). Also the plain numbers that
    YAML 1.1 reads differently from how they look (and from YAML 1.2): ``1:30`` is 90, ``010`` is 8."""
    plain = yaml11.is_plain(event)
    value = event.value
    if plain and (surprise := yaml11.surprise(value)) is not None:
        return surprise
    if (plain or event.tag == _INT_TAG) and _YAML_DECIMAL.fullmatch(value):
        digits = len(value.replace("_", "").lstrip("+-"))
        if digits > MAX_DIGITS:
            return f"not valid YAML: a number with {digits:,} digits is far beyond anything a scenario takes"
    if plain:  # resolved by pattern: only a date can match its pattern and still be impossible
        tag = _TIMESTAMP_TAG if yaml.constructor.SafeConstructor.timestamp_regexp.match(value) else None
    else:
        tag = event.tag
    kind = _SCALAR_KINDS.get(tag or "")
    if kind is None:
        return None
    try:
        yaml.constructor.SafeConstructor.yaml_constructors[tag](yaml.constructor.SafeConstructor(),
                                                                 yaml.ScalarNode(tag, value))
    except yaml.YAMLError:
        return None  # the loader reports it, with its line
    except Exception as exc:  # whatever the constructor raises, the value is not a valid <kind>
        detail = f": {exc}" if isinstance(exc, ValueError) and kind == "date" else ""
        return f"not valid YAML: {show_value(value)} is not a valid {kind}{detail}"
    return None


def _from_yaml_error(exc: yaml.YAMLError, label: str) -> ScenarioError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem is None and isinstance(exc, yaml.reader.ReaderError):
        problem = f"unacceptable character {exc.character!r}: {exc.reason}"
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
    return ScenarioError(f"not valid YAML: {problem or _first_line(exc)}", file=label, path=where)
