"""Placement in a request: ECS placement strategies, placement constraints and capacity provider
strategies, each checked against the rules ECS applies when it receives them."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from scheduler.ecs import cql
from scheduler.ecs.taskspec import Constraint, Strategy
from scheduler.errors import QueryError, show_value
from scheduler.scenario.fields import Int, _Model, _unique
from scheduler.scenario.limits import AZ_ATTRIBUTE, MAX_CONSTRAINTS, MAX_PROVIDERS_PER_STRATEGY, MAX_STRATEGIES

_SPREAD_FIELD = re.compile(r"instanceId|host|attribute:[A-Za-z0-9_./\\-]{1,128}")


class PlacementStrategyItem(_Model):
    """One ECS ``PlacementStrategy`` rule: ``binpack`` (cpu|memory), ``spread`` (a field), ``random``.

    ``binpack`` on ``neuronDevices`` (fewest free chips) or ``gpu`` is a simulator extension beyond ECS;
    a run that uses one lists it under ``extensions`` in summary.json."""

    type: Literal["random", "spread", "binpack"]
    field: str | None = None

    @field_validator("field")
    @classmethod
    def _field_fits_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == "binpack" and value not in ("cpu", "memory", "neuronDevices", "gpu"):
            raise ValueError("binpack needs field cpu or memory (or, beyond ECS, neuronDevices or gpu), got "
                             f"{show_value(value)}")
        if kind == "spread" and (value is None or not _SPREAD_FIELD.fullmatch(value)):
            raise ValueError("spread needs field instanceId, host or attribute:<name> (such as "
                             f"{AZ_ATTRIBUTE}), got {show_value(value)}")
        if kind == "random" and value is not None:
            raise ValueError(f"random takes no field, got {show_value(value)}")
        return value

    def to_strategy(self) -> Strategy:
        return Strategy(self.type, self.field)


class PlacementConstraintItem(_Model):
    """One ECS ``PlacementConstraint``: ``distinctInstance``, or ``memberOf`` with a query expression."""

    type: Literal["distinctInstance", "memberOf"]
    expression: str | None = None

    @field_validator("expression")
    @classmethod
    def _expression_fits_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == "distinctInstance" and value is not None:
            raise ValueError("distinctInstance takes no expression")
        if kind == "memberOf":
            if value is None:
                raise ValueError("memberOf needs an expression, such as "
                                 "attribute:ecs.instance-type =~ inf2.*")
            try:
                cql.parse(value)
            except QueryError as exc:
                raise ValueError(exc.message) from None
        return value

    def to_constraint(self) -> Constraint:
        return Constraint(self.type, self.expression)


class CapacityProviderStrategyItem(_Model):
    """One ECS ``CapacityProviderStrategyItem``.

    ``weight`` defaults to 1, not to the API's 0: a provider listed without a weight is meant to get
    tasks, and in ECS a strategy whose weights are all 0 makes RunTask and CreateService fail. The ECS
    console uses 1 for the same reason. Write ``weight: 0`` explicitly for a base-only provider.
    """

    capacity_provider: str
    weight: Int = Field(1, ge=0, le=1000)
    base: Int = Field(0, ge=0, le=100_000)


def _strategy_rules(items: list[CapacityProviderStrategyItem]) -> list[CapacityProviderStrategyItem]:
    if not items:
        return items
    _unique("capacity provider")([item.capacity_provider for item in items])
    with_base = [item.capacity_provider for item in items if item.base > 0]
    if len(with_base) > 1:
        raise ValueError(f"at most one capacity provider may have a base, got {', '.join(with_base)}")
    if all(item.weight == 0 for item in items):
        raise ValueError("at least one capacity provider needs a weight above 0 "
                         "(ECS rejects all-zero weights)")
    return items


CapacityProviderStrategy = Annotated[list[CapacityProviderStrategyItem],
                                     Field(max_length=MAX_PROVIDERS_PER_STRATEGY),
                                     AfterValidator(_strategy_rules)]
PlacementStrategies = Annotated[list[PlacementStrategyItem], Field(max_length=MAX_STRATEGIES)]
PlacementConstraints = Annotated[list[PlacementConstraintItem], Field(max_length=MAX_CONSTRAINTS)]
