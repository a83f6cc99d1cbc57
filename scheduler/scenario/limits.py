"""How large a scenario may be, and the ECS constants its fields default to.

The limits a scenario is refused for breaking (file size, YAML nodes, instances, samples, calls, tasks
per call, strategy and constraint rules, name length, the shortest time step), the default availability
zones, the availability-zone attribute and the launch types a fleet or workload may name. The YAML digit limit
stays beside the check that applies it (``yaml_reader``); the nesting limit is ``scheduler.nesting``'s.
"""

from __future__ import annotations

from typing import Literal

MAX_FILE_BYTES = 10 * 1024 * 1024  # a scenario is a few KiB; anything this big is a mistake or an attack
MAX_TRACE_BYTES = 256 * 1024 * 1024  # a trace CSV: millions of RunTask calls
MAX_NODES = 100_000                # YAML nodes after alias expansion (refuses "billion laughs")
MAX_INSTANCES = 100_000            # the simulator's cap; ECS's default quota is 5,000 per cluster
MAX_SAMPLES = 1_000_000            # duration / sample_interval
MAX_CALLS = 1_000_000              # `once` arrivals in one burst
MAX_TASKS_PER_CALL = 10            # RunTask count
MAX_STRATEGIES = 5                 # placement strategy rules per task or service
MAX_CONSTRAINTS = 10               # task definition and run time together
MAX_PROVIDERS_PER_STRATEGY = 20
MAX_NAME = 255
MAX_PERCENT = 1_000                # a service's maximum_percent: the simulator's cap (the API names none)
# The shortest time step a scenario may ask for: intervals between calls, mean task durations, mean times
# between faults and fault durations are at least this, and rates at most one event per MIN_STEP_S. Events
# closer together stall the simulated clock (t + 1e-12 == t once t is a few hours) or never let a run end.
MIN_STEP_S = 0.001
MAX_RATE = 1 / MIN_STEP_S          # events per second

DEFAULT_AVAILABILITY_ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
AZ_ATTRIBUTE = "attribute:ecs.availability-zone"
LaunchType = Literal["EC2", "MANAGED_INSTANCES"]
