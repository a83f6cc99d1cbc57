"""Where the checks after validation report to: the scenario's label (its file) and the folder its
relative references (task definitions, catalog, traces) are resolved from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scheduler.errors import ScenarioError


@dataclass(frozen=True)
class _Context:
    file: str
    base: Path

    def error(self, path: str | None, message: str) -> ScenarioError:
        return ScenarioError(message, file=self.file, path=path)
