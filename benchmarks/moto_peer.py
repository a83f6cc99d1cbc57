"""moto's ECS backend as an outside peer: its RunTask placement, called in-process (no HTTP, no boto3).

moto (5.2.5) places a RunTask by walking the cluster's ACTIVE container instances in registration order
and taking the first with enough CPU, memory and free host ports (moto/ecs/models.py, moto 5.2.5). It has no
constraints, strategies, GPUs or Neuron devices, so it runs only the CPU/memory part of a stream. Its
container instances register a hard-coded 4096 CPU / 7482 MiB; we overwrite both with each instance's real
registered figures and its free figures at the moment of the copy. Task definitions have no host ports
(moto records ``hostPort: 0`` as a reserved port "0", allowing one such task per instance).
"""

from __future__ import annotations

from typing import Any

from scheduler.ecs.taskspec import TaskSpec
from scheduler.placement.state import ClusterState

REGION = "us-east-1"
LINUX_AMI = "ami-760aaa0f"  # moto's os-type attribute follows the AMI's platform; this one is Linux


def _backends() -> tuple[Any, Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ecs.models import ecs_backends

    return ec2_backends[DEFAULT_ACCOUNT_ID][REGION], ecs_backends[DEFAULT_ACCOUNT_ID][REGION]


def _set(resources: list[dict[str, Any]], cpu: int, memory: int) -> None:
    for r in resources:
        if r["name"] == "CPU":
            r["integerValue"] = cpu
        elif r["name"] == "MEMORY":
            r["integerValue"] = memory


class MotoCluster:
    """A moto ECS cluster mirroring a ClusterState's instances, in the same (registration) order."""

    def __init__(self, state: ClusterState, *, name: str = "bench") -> None:
        ec2, ecs = _backends()
        ecs.reset()
        ec2.reset()
        self.ec2, self.ecs = _backends()
        self.name = name
        self.ecs.create_cluster(name)
        # One EC2 instance per (type, AZ): moto reads attributes from it; many container instances may
        # register against the same one.
        hosts: dict[tuple[str, str], str] = {}
        for inst in state.instances:
            key = (inst.instance_type.name, inst.availability_zone)
            if key not in hosts:
                hosts[key] = self._ec2_instance(*key)
        for inst in state.instances:
            i = inst.index
            ci = self.ecs.register_container_instance(
                name, hosts[(inst.instance_type.name, inst.availability_zone)]
            )
            _set(ci.registered_resources, int(state.cpu_registered[i]), int(state.mem_registered[i]))
            _set(ci.remaining_resources, int(state.cpu_free[i]), int(state.mem_free[i]))
        self._families: dict[tuple[int, int], str] = {}

    def _ec2_instance(self, instance_type: str, zone: str) -> str:
        try:
            res = self.ec2.run_instances(
                image_id=LINUX_AMI,
                count=1,
                user_data=None,
                security_group_names=[],
                instance_type=instance_type,
                is_instance_type_default=False,
                placement=zone,
                region_name=REGION,
            )
        except Exception:
            res = self.ec2.run_instances(
                image_id=LINUX_AMI,
                count=1,
                user_data=None,
                security_group_names=[],
                instance_type="m5.large",
                is_instance_type_default=False,
                placement=zone,
                region_name=REGION,
            )
        return res.instances[0].id

    def family(self, spec: TaskSpec) -> str:
        """A registered task definition with the spec's CPU and memory and no host ports."""
        key = (spec.cpu, spec.memory)
        fam = self._families.get(key)
        if fam is None:
            fam = f"cpu{spec.cpu}-mem{spec.memory}"
            self.ecs.register_task_definition(
                family=fam,
                container_definitions=[{"name": "c", "image": "x", "cpu": spec.cpu, "memory": spec.memory}],
            )
            self._families[key] = fam
        return fam

    def run_task(self, family: str) -> str | None:
        """One RunTask of one task: the task ARN, or None when moto found no instance (it reports none)."""
        tasks = self.ecs.run_task(self.name, family, 1, None, "bench", None, "EC2")
        return tasks[0].task_arn if tasks else None

    def stop_task(self, arn: str) -> None:
        self.ecs.stop_task(self.name, arn, "bench")
        del self.ecs.tasks[self.name][arn]  # moto's stop_task scans every task it ever ran; keep that short
