"""neuron-sim: a discrete-event simulator of Amazon ECS task placement for AWS Neuron workloads.

The import package is ``scheduler``. Layers, each importing only those before it (tests/test_architecture.py
holds the exact order): ``errors``/``units`` -> ``catalog`` -> ``ecs`` vocabulary (task definitions, query
language) -> ``placement`` (the core) -> ECS ``views`` (ids, Describe*) -> ``sim`` and the ``Cluster``
facade -> scenario / sweep / report -> ``cli``.
"""

__version__ = "0.1.0"

__all__ = ["Cluster", "__version__"]


def __getattr__(name: str) -> object:
    # The facade pulls in the whole stack; import it only when asked for.
    if name == "Cluster":
        from scheduler.cluster import Cluster

        return Cluster
    raise AttributeError(f"module 'scheduler' has no attribute {name!r}")
