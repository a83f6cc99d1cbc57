"""``neuron-sim plan``: the cheapest fleet that meets every workload's service level, found by search.

``plan(scenario, vary, target, ...)`` returns a :class:`PlanResult`; ``write_plan`` writes its folder
(plan.parquet, plan.json, the chosen scenario, a report). See docs/planning.md.
"""

from scheduler.plan.api import PlanError, PlanPoint, PlanResult, plan
from scheduler.plan.cache import RunCache
from scheduler.plan.space import Choice, Dimension, PlanInputError, parse_choose, parse_vary

__all__ = ["Choice", "Dimension", "PlanError", "PlanInputError", "PlanPoint", "PlanResult", "RunCache", "parse_choose",
           "parse_vary", "plan"]
