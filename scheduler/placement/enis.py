"""ENI attachment slots: how many ``awsvpc`` tasks one container instance can run at once.

Each ``awsvpc`` task gets its own elastic network interface attached to its instance. Without trunking
the slots are the type's maximum network interfaces minus the primary one. With the ``awsvpcTrunking``
account setting, ECS attaches a trunk interface to newly launched instances of supported types and tasks
use branch interfaces: a c5.large goes from 2 to 10 tasks (ECS developer guide, "Increasing Amazon ECS
Linux container instance network interfaces"). docs/modelling.md lists the sources; a type whose trunk
limit is not published here keeps its plain limit under trunking (the conservative reading).
"""

from __future__ import annotations

from scheduler.catalog.model import InstanceType

# Tasks per instance with awsvpcTrunking, where published (ECS developer guide, container-instance-eni).
TRUNK_TASK_LIMITS: dict[str, int] = {
    "c5.large": 10,
}


def eni_slots(itype: InstanceType, trunking: bool = False) -> int:
    """ENI attachment slots for tasks on one instance of ``itype``."""
    plain = max(itype.max_enis - 1, 0)
    if trunking:
        return max(TRUNK_TASK_LIMITS.get(itype.name, plain), plain)
    return plain
