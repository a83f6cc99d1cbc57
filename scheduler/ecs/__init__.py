"""The ECS vocabulary users already speak: task definitions, the cluster query language, capacity
providers, and (above the placement core) ECS-shaped API views."""
