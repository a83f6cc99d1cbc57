"""The field types the scenario models are made of, with their validators and JSON Schema.

Numbers that refuse YAML booleans (``Int``, ``Number``), human durations and rates (``Duration``,
``Rate``), ECS names, attribute names and values, availability zones, task-definition sources and
``scaleInAfter``; the small validators the models share (``_unique``, ``_one_line``); and ``_Model``, the
frozen, closed base of every scenario model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
)

from scheduler.errors import show_value
from scheduler.scenario.limits import MAX_RATE, MIN_STEP_S
from scheduler.units import DURATION_PATTERN, RATE_PATTERN, parse_duration, parse_rate

_DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}],
    "description": "seconds, or a string such as 90s, 15m, 2h, 1h30m, 7d, 500ms",
}
_RATE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": RATE_PATTERN}],
    "description": "per second, or a string such as 10/h, 2/m, 0.5/s, 1200/d, '10 per hour', '3 per 15m'",
}


def _not_bool(value: object) -> object:
    # pydantic reads True as 1; in a scenario `count: yes` is a slip, not a number.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Number = Annotated[float, BeforeValidator(_not_bool)]
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
BARE_RATES = "bare_rates"  # validation-context key: where (field, value) of rates given as bare numbers go


def _rate(value: object, info: ValidationInfo, *, allow_zero: bool = False) -> float:
    """A rate, noting in the validation context when a bare number was read as per second."""
    rate = parse_rate(value, allow_zero=allow_zero)
    bare = isinstance(value, int | float) and not isinstance(value, bool)
    if bare and rate > 0 and isinstance(info.context, dict) and BARE_RATES in info.context:
        info.context[BARE_RATES].append((info.field_name, value))
    return rate


Rate = Annotated[float, BeforeValidator(_rate), WithJsonSchema(_RATE_SCHEMA)]
RateOrZero = Annotated[float, BeforeValidator(partial(_rate, allow_zero=True)), WithJsonSchema(_RATE_SCHEMA)]


def _at_least_step(seconds: float) -> float:
    if seconds < MIN_STEP_S:
        raise ValueError(f"must be at least {MIN_STEP_S * 1000:g}ms, the shortest time step a scenario may ask "
                         f"for (closer events would stall the simulated clock), got {seconds:g} s")
    return seconds


def _at_most_step_rate(rate: float) -> float:
    if rate > MAX_RATE:
        raise ValueError(f"must be at most {MAX_RATE:g}/s, one event per {MIN_STEP_S * 1000:g}ms, the shortest "
                         f"time step a scenario may ask for (closer events would stall the simulated clock), "
                         f"got {rate:g}/s")
    return rate


_STEP_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number", "minimum": MIN_STEP_S}, _DURATION_SCHEMA["anyOf"][1]],
    "description": f"{_DURATION_SCHEMA['description']}; at least {MIN_STEP_S * 1000:g}ms",
}
_STEP_RATE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_RATE}, _RATE_SCHEMA["anyOf"][1]],
    "description": f"{_RATE_SCHEMA['description']}; at most {MAX_RATE:g}/s",
}
# How often something happens, or how long a task runs: refused below the shortest time step, so that every
# run's events advance the clock (see limits.MIN_STEP_S).
Step = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_at_least_step),
                 WithJsonSchema(_STEP_SCHEMA)]
StepRate = Annotated[float, BeforeValidator(_rate), AfterValidator(_at_most_step_rate),
                     WithJsonSchema(_STEP_RATE_SCHEMA)]

_ECS_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
_ECS_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_./\\-]{1,128}")
_ATTRIBUTE_VALUE = re.compile(r"[A-Za-z0-9_./\\@: -]{1,128}")


def _ecs_name(value: str) -> str:
    if not _ECS_NAME.fullmatch(value):
        raise ValueError(f"use 1-255 letters, digits, hyphens and underscores, got {show_value(value)}")
    return value


def _provider_name(value: str) -> str:
    _ecs_name(value)
    if value.lower().startswith(("aws", "ecs", "fargate")):
        raise ValueError(f"capacity provider names may not start with aws, ecs or fargate, got {value!r}")
    return value


def _attribute_name(value: str) -> str:
    if not _ATTRIBUTE_NAME.fullmatch(value):
        raise ValueError(f"an attribute name is 1-128 letters, digits or - _ / \\ . ; got {show_value(value)}")
    return value


def _attribute_value(value: object) -> str:
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, int | float):
        if isinstance(value, int) and abs(value) >= 10**128:  # too long anyway, and str() may refuse it
            raise ValueError(f"an attribute value is 1-128 characters, got {show_value(value)}")
        value = str(value)  # `rack: 3` in YAML is a number; ECS attribute values are strings
    if not isinstance(value, str):
        raise ValueError(f"an attribute value is text, got {show_value(value)}")
    if not _ATTRIBUTE_VALUE.fullmatch(value) or value != value.strip():
        raise ValueError("an attribute value is 1-128 letters, digits, spaces or - _ / \\ . @ : "
                         f"without leading or trailing spaces; got {show_value(value)}")
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value


def _unique(what: str) -> Callable[[list[Any]], list[Any]]:
    def check(items: list[Any]) -> list[Any]:
        seen: set[Any] = set()
        for item in items:
            if item in seen:
                raise ValueError(f"{what} {item!r} is listed twice")
            seen.add(item)
        return items
    return check


def _taskdef_source(value: object) -> str | dict[str, Any]:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return dict(value)
    raise ValueError("must be the path of an ECS task-definition JSON file or an inline task-definition "
                     f"object, got {show_value(value)}")


def _scale_in_after(value: object) -> float | None:
    if value is None:
        return None
    if value == "disabled" or (type(value) in (int, float) and value == -1):
        return -1.0
    seconds = parse_duration(value)
    if seconds > 3600:
        raise ValueError(f"must be at most 1h (3600 s) as in ECS, or 'disabled'; got {show_value(value)}")
    return seconds


_NAME_SCHEMA = {"type": "string", "pattern": _ECS_NAME_PATTERN}
EcsName = Annotated[str, AfterValidator(_ecs_name), WithJsonSchema(_NAME_SCHEMA)]
ProviderName = Annotated[str, AfterValidator(_provider_name), WithJsonSchema(_NAME_SCHEMA)]
AttributeName = Annotated[str, AfterValidator(_attribute_name)]
AttributeValue = Annotated[str, PlainValidator(_attribute_value),
                           WithJsonSchema({"type": ["string", "number"]})]
AvailabilityZones = Annotated[list[Annotated[str, AfterValidator(_attribute_value)]], Field(min_length=1),
                              AfterValidator(_unique("availability zone"))]
TaskDefinitionSource = Annotated[str | dict[str, Any], PlainValidator(_taskdef_source), WithJsonSchema({
    "anyOf": [{"type": "string", "description": "path of a task-definition JSON file"},
              {"type": "object", "description": "an inline RegisterTaskDefinition object"}]})]
ScaleInAfter = Annotated[float | None, PlainValidator(_scale_in_after), WithJsonSchema({
    "anyOf": [{"type": "null"}, {"const": "disabled"}, {"const": -1}, *_DURATION_SCHEMA["anyOf"]],
    "description": "ECS infrastructureOptimization.scaleInAfter: null = ECS default, "
                   "'disabled' (-1), or 0-1h"})]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
