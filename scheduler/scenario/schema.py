"""The JSON Schema of a scenario file (draft 2020-12), for editors and ``neuron-sim schema``."""

from __future__ import annotations

from typing import Any

from scheduler.scenario.models import Scenario
from scheduler.units import DURATION_EXAMPLE


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, for editors and ``neuron-sim schema``."""
    schema = Scenario.model_json_schema(mode="validation")
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "neuron-sim scenario",
        "description": "A neuron-sim scenario: cluster, task definitions and workloads. "
                       f"Durations: {DURATION_EXAMPLE.removeprefix('expected ')}.",
        **schema,
    }
