"""The results contract: what a run and a sweep produce, as values and table schemas.

- :mod:`scheduler.results.summary`: :class:`RunSummary` (``summary.json``), ``to_json``/``from_json``;
- :mod:`scheduler.results.tables`: the columns of the tables a run and a sweep write, and the naming rule
  of ``sweep.parquet``'s metric columns;
- :mod:`scheduler.results.stats`: the statistics sweeps, plans and reports compute over runs.

Pure data: it sits below the simulation (which builds a :class:`RunSummary`) and everything that reads
results; it imports only the error family, the standard library, numpy and pandas.
"""

from scheduler.results.codec import ResultsError
from scheduler.results.summary import RunSummary

__all__ = ["ResultsError", "RunSummary"]
