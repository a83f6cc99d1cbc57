"""The ECS vocabulary users already speak: task definitions, the cluster query language and capacity
providers. It sits below the placement core and imports nothing above it; the ECS-shaped API views are
in ``scheduler.views``."""
