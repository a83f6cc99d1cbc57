"""Dotted-path overrides (``cluster.fleets.0.count=4``, ``cluster.fleets[0].count``), as sweeps and the
command line apply them: a copy of the parsed scenario with each path set, string values read as YAML,
and every bad path or value one ScenarioError naming the override."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.errors import ScenarioError, show_value
from scheduler.scenario.words import _kind
from scheduler.scenario.yaml_reader import parse_yaml

_OVERRIDE_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, object], *, file: str = "<overrides>"
                    ) -> dict[str, Any]:
    """A copy of ``data`` with each dotted path (``cluster.fleets.0.count`` or ``cluster.fleets[0].count``)
    set to its value; string values are read as YAML ("4" -> 4, "20/h" stays a string)."""
    result = _tree_copy(data)
    for key, raw in overrides.items():
        parts = _override_parts(key, file)
        value = _override_value(key, raw, file)
        target: Any = result
        for depth, part in enumerate(parts[:-1]):
            target = _step_into(target, part, parts[: depth + 1], key, file)
        _assign(target, parts[-1], value, parts, key, file)
    return result


def _override_parts(key: object, file: str) -> list[str]:
    if not isinstance(key, str) or not key.strip():
        raise ScenarioError(f"an override needs a dotted field path such as cluster.fleets.0.count, "
                            f"got {show_value(key)}", file=file)
    parts: list[str] = []
    position = 0
    text = key.strip()
    while position < len(text):
        match = _OVERRIDE_PART.match(text, position)
        if match is None:
            raise ScenarioError(f"cannot read the override path {key!r}", file=file, path=key)
        parts.append(match.group(1) if match.group(1) is not None else match.group(2))
        position = match.end()
        if position < len(text) and text[position] == ".":
            position += 1
            if position == len(text):
                raise ScenarioError(f"the override path {key!r} ends with a dot", file=file, path=key)
    return parts


def _override_value(key: str, raw: object, file: str) -> object:
    if not isinstance(raw, str) or not raw.strip():
        return raw
    try:
        return parse_yaml(raw, file)
    except ScenarioError as exc:
        problem = exc.message.removeprefix("not valid YAML: ")
        raise ScenarioError(f"the override value {show_value(raw)} is not valid YAML: {problem}",
                            file=file, path=key) from None


def _step_into(target: Any, part: str, so_far: list[str], key: str, file: str) -> Any:
    if isinstance(target, list):
        index = _list_index(target, part, so_far, key, file)
        return target[index]
    if isinstance(target, dict):
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        elif not isinstance(child, dict | list):
            raise ScenarioError(f"cannot set {key}: {_dotted(so_far)} is {_kind(child)}, "
                                "not a mapping or list", file=file, path=key)
        return child
    raise ScenarioError(f"cannot set {key}: {_dotted(so_far[:-1])} is {_kind(target)}", file=file, path=key)


def _assign(target: Any, part: str, value: object, parts: list[str], key: str, file: str) -> None:
    if isinstance(target, list):
        target[_list_index(target, part, parts, key, file)] = value
    elif isinstance(target, dict):
        target[part] = value
    else:
        raise ScenarioError(f"cannot set {key}: {_dotted(parts[:-1])} is {_kind(target)}",
                            file=file, path=key)


def _list_index(items: list[Any], part: str, so_far: list[str], key: str, file: str) -> int:
    where = _dotted(so_far[:-1])
    if not (part.isascii() and part.isdigit()):
        raise ScenarioError(f"cannot set {key}: {where} is a list, so the next part must be an index, "
                            f"not {part!r}", file=file, path=key)
    index = int(part)
    if index >= len(items):
        entries = "1 entry" if len(items) == 1 else f"{len(items)} entries"
        raise ScenarioError(f"cannot set {key}: {where} has {entries} (indices from 0)", file=file, path=key)
    return index


def _tree_copy(value: Any) -> Any:
    # Unlike deepcopy, this does not keep YAML aliases shared, so an override changes one place only.
    if isinstance(value, Mapping):
        return {k: _tree_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tree_copy(v) for v in value]
    return value


def _dotted(parts: Sequence[str]) -> str:
    return ".".join(parts) or "the top level"
