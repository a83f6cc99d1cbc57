"""The cache of evaluated runs a plan keeps in its output folder (``plan_cache.jsonl``).

One JSON line per simulated run: its key and its row of metrics. The key is a hash of the scenario (its
validated form and the task-definition files it reads), the point's overrides, the run's seed and
``until``; a plan that is interrupted, or run again with wider ranges, reads the file first and simulates
only the runs it does not hold.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CACHE_FILE = "plan_cache.jsonl"


def scenario_hash(loaded: Any) -> str:
    """A fingerprint of a loaded scenario: its validated model and the bytes of the files it names."""
    digest = hashlib.sha256(loaded.model.model_dump_json().encode("utf-8"))
    base = Path(loaded.path).parent
    for name, ref in sorted(getattr(loaded.model, "task_definitions", {}).items()):
        if isinstance(ref, str) and (base / ref).is_file():
            digest.update(name.encode() + b"\0" + (base / ref).read_bytes())
    return digest.hexdigest()


def run_key(scenario: str, overrides: Mapping[str, Any], seed: int, until: float | None) -> str:
    """The cache key of one run."""
    text = json.dumps([scenario, sorted((k, str(v)) for k, v in overrides.items()), int(seed), until],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RunCache:
    """Rows of runs already simulated, by key; ``lines()`` is the file's new content."""

    def __init__(self, rows: Mapping[str, dict[str, Any]] | None = None) -> None:
        self.rows: dict[str, dict[str, Any]] = dict(rows or {})

    @classmethod
    def read(cls, folder: Path) -> RunCache:
        """The cache in ``folder`` (empty when there is none; a damaged line is skipped, its run redone)."""
        rows: dict[str, dict[str, Any]] = {}
        path = Path(folder) / CACHE_FILE
        if path.is_file() and not path.is_symlink():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    rows[str(entry["key"])] = dict(entry["row"])
                except (ValueError, KeyError, TypeError):
                    continue
        return cls(rows)

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.rows.get(key)
        return None if row is None else dict(row)

    def put(self, key: str, row: Mapping[str, Any]) -> None:
        self.rows[key] = {k: _plain(v) for k, v in row.items()}

    def data(self) -> bytes:
        return "".join(json.dumps({"key": k, "row": r}, sort_keys=True) + "\n" for k, r in self.rows.items()
                       ).encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value
