"""A pydantic ValidationError turned into one ScenarioError line: the field path as users write it (union
tags dropped, ``workloads[1].arrivals.rate``), a message in the scenario's words, "did you mean" hints
for unknown keys and tags, and a count of the further problems."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping, Sized
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from scheduler.errors import ScenarioError, show_value
from scheduler.scenario.models import _TAGGED, Scenario
from scheduler.scenario.words import _kind, _path_part


def _from_validation_error(exc: ValidationError, label: str) -> ScenarioError:
    errors = exc.errors(include_url=False)
    first = _misspelt_required(errors) or errors[0]
    path, fields = _describe_location(first["loc"])
    message = _error_message(first, fields)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ScenarioError(message, file=label, path=path or None)


def _misspelt_required(errors: list[Any]) -> Any:
    """An unknown key that is a near miss of a required key missing beside it (``arival:`` for
    ``arrivals:``): reported first, since its "did you mean" explains the missing key too."""
    missing: dict[tuple[Any, ...], list[str]] = {}
    for error in errors:
        if error["type"] == "missing" and error["loc"]:
            missing.setdefault(tuple(error["loc"][:-1]), []).append(str(error["loc"][-1]))
    for error in errors:
        if error["type"] == "extra_forbidden" and error["loc"]:
            beside = missing.get(tuple(error["loc"][:-1]), [])
            if difflib.get_close_matches(str(error["loc"][-1]), beside, n=1, cutoff=0.6):
                return error
    return None


def _describe_location(loc: tuple[int | str, ...]) -> tuple[str, tuple[str, ...]]:
    """The field path as users write it (union tags dropped) and the fields of the model holding the
    last part (for "did you mean" hints)."""
    text = ""
    current: Any = Scenario
    parent_fields: tuple[str, ...] = ()
    for part in loc:
        current = _unwrap(current)
        if _is_union(current) and isinstance(part, str) and part in _TAGGED:
            current = _TAGGED[part]
            continue
        if part == "[key]":  # pydantic's marker for "the key itself is wrong", after the key
            continue
        parent_fields = _fields_of(current)
        text += _path_part(part, first=not text)
        current = _child_type(current, part)
    return text, parent_fields


def _unwrap(tp: Any) -> Any:
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
        elif _is_union(tp):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _fields_of(tp: Any) -> tuple[str, ...]:
    return tuple(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else ()


def _child_type(tp: Any, part: int | str) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = tp.model_fields.get(part) if isinstance(part, str) else None
        return None if info is None else info.annotation
    origin = typing.get_origin(tp)
    if origin is list and isinstance(part, int):
        return typing.get_args(tp)[0]
    if origin is dict:
        return typing.get_args(tp)[1]
    return None


def _error_message(error: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = error["loc"][-1]
        close = difflib.get_close_matches(str(key), fields, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else (f"; expected one of {', '.join(fields)}"
                                                               if fields else "")
        return f"unknown key {show_value(key)}{hint}"
    if kind == "union_tag_invalid":
        expected = ctx.get("expected_tags", "")
        close = difflib.get_close_matches(str(ctx.get("tag")), re.findall(r"'([^']*)'", expected), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        tag = show_value(ctx.get("tag"))
        return f"unknown {ctx.get('discriminator', 'kind')} {tag}: expected one of {expected}{hint}"
    if kind == "union_tag_not_found":
        tag = str(ctx.get("discriminator", "type"))
        keys = [str(k) for k in value] if isinstance(value, Mapping) else []
        close = difflib.get_close_matches(tag.strip("'\""), keys, n=1, cutoff=0.6)
        hint = f"; did you mean {tag} for {close[0]!r}?" if close else ""
        return f"needs a {tag} key saying which kind it is{hint}"
    if kind in ("value_error", "assertion_error"):
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("model_type", "model_attributes_type"):
        return f"must be a mapping of fields, not {_kind(value)}"
    if kind == "dict_type":
        return f"must be a mapping, not {_kind(value)}"
    if kind == "list_type":
        return f"must be a list, not {_kind(value)}"
    if kind in ("too_short", "too_long") and isinstance(value, Sized) and not isinstance(value, str):
        limit = ctx.get("min_length" if kind == "too_short" else "max_length")
        entries = "entry" if limit == 1 else "entries"
        bound = "needs at least" if kind == "too_short" else "may have at most"
        return f"{bound} {limit} {entries}, got {len(value)}"
    message = str(error["msg"]).replace("Input should be", "must be").replace("Value should", "must")
    if isinstance(value, Mapping | list):
        return f"{message}, not {_kind(value)}"
    if "got " in message:  # pydantic already says what it got, in words
        return f"{message} ({show_value(value)})"
    return f"{message}, got {show_value(value)}"
