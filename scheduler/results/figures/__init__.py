"""Summary figures, one module each: a module here that sets ``FIGURE`` to a
:class:`~scheduler.results.figure.Figure` adds a field to summary.json, with its meaning, unit, label and
computation in that module alone (see :mod:`scheduler.results.figure`). The fields the contract was first
written with are the dataclasses of :mod:`scheduler.results.summary`; new ones come here."""
