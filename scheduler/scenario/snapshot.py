"""A cluster snapshot: the JSON the AWS CLI prints for a real ECS cluster, read into plain values the
simulation starts from.

A snapshot is a folder of files saved with ``--output json``:

- ``describe-container-instances*.json`` (required): the instances, their attributes (instance type from
  ``ecs.instance-type``, zone from ``ecs.availability-zone``), status, registered and remaining resources;
- ``describe-tasks*.json`` (required): the tasks, with the chips their containers' ``neuronDeviceIds`` say
  they hold (without them: the chips their task definition names, or all of them for ``NeuronDevice ALL``),
  and the static host ports their task definition names (dynamic ``networkBindings`` are not reserved);
- ``describe-task-definition*.json``: one file per task definition the tasks and services run;
- ``describe-services*.json``, ``describe-capacity-providers*.json`` (optional).

Several files of one kind are merged (describe-tasks takes at most 100 tasks a call). Underscores instead
of hyphens (``describe_tasks.json``, as a results folder names them) are accepted too.

Every file is checked against botocore's output shape of its command, then the whole is checked for
consistency: a task on an unknown or inactive instance, a task whose task definition is missing, remaining
more than registered, a chip (or GPU, or host port) held twice, an instance type the catalog does not know,
and an instance whose remaining resources do not equal what it registered less what its tasks hold. Each
problem is one :class:`~scheduler.errors.ScenarioError` naming the file and the JSON path.

:func:`apply_snapshot` then folds the snapshot into a scenario: its task definitions join
``task_definitions`` (as ``snapshot/<family>:<revision>``), its services join the workloads (reconciled
like any other service) and its capacity providers the cluster, unless the scenario defines one of the same
name.
"""


from pathlib import Path
from typing import Any

from scheduler.catalog import Catalog
from scheduler.errors import ScenarioError, show_value
from scheduler.scenario.snapshot_merge import apply_snapshot
from scheduler.scenario.snapshot_model import (
    HOLDING,
    REQUIRED,
    TASKDEF_PREFIX,
    USABLE_INSTANCE,
    ClusterSnapshot,
    SnapshotInstance,
    SnapshotProvider,
    SnapshotService,
    SnapshotTask,
    arn_tail,
    task_definition_key,
)
from scheduler.scenario.snapshot_parts import (
    check_holdings,
    fail,
    items,
    read_instance,
    read_providers,
    read_service,
    read_task,
    read_task_definitions,
    snapshot_files,
)


def read_snapshot(folder: Path, catalog: Catalog) -> ClusterSnapshot:
    """Read and check a snapshot folder; every problem is a ScenarioError naming the file and JSON path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError("is not a folder of AWS CLI describe outputs", file=str(folder))
    for command in REQUIRED:
        if not snapshot_files(folder, command):
            raise ScenarioError(f"no {command}.json: save `aws ecs {command} --cluster NAME ... --output json` "
                                "there", file=str(folder))
    docs, specs = read_task_definitions(folder)
    providers, fargate = read_providers(folder)
    has_provider_file = bool(snapshot_files(folder, "describe-capacity-providers"))
    skipped: dict[str, int] = {}
    instances: dict[str, SnapshotInstance] = {}
    skipped_instances: dict[str, str] = {}
    remaining: dict[str, tuple[str, str, Any]] = {}
    clusters: set[str] = set()
    for file, path, ci in items(folder, "describe-container-instances", "containerInstances"):
        arn = ci.get("containerInstanceArn")
        if arn in instances or arn in skipped_instances:
            raise fail(file, f"{path}.containerInstanceArn", f"container instance {show_value(arn, 120)} is "
                        "listed twice")
        status = ci.get("status", "ACTIVE")
        if status not in USABLE_INSTANCE:
            skipped_instances[arn] = status
            skipped[f"container instances {status}"] = skipped.get(f"container instances {status}", 0) + 1
            continue
        inst = read_instance(file, path, ci, catalog, providers, has_provider_file)
        instances[arn] = inst
        remaining[arn] = (file, path, ci.get("remainingResources"))
        cluster = arn_tail(arn, ":container-instance/")
        if cluster and "/" in cluster:
            clusters.add(cluster.split("/", 1)[0])
    if len(clusters) > 1:
        raise ScenarioError(f"the container instances belong to {len(clusters)} clusters "
                            f"({', '.join(sorted(clusters))}); a snapshot is one cluster", file=str(folder))
    tasks: list[tuple[str, str, SnapshotTask]] = []
    seen: set[str] = set()
    for file, path, task in items(folder, "describe-tasks", "tasks"):
        status = task.get("lastStatus")
        if status not in HOLDING or task.get("launchType") == "FARGATE":
            reason = "FARGATE tasks" if task.get("launchType") == "FARGATE" else f"tasks {status}"
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        parsed = read_task(file, path, task, instances, skipped_instances, specs)
        if parsed.arn in seen:
            raise fail(file, f"{path}.taskArn", f"task {parsed.task_id} is listed twice")
        seen.add(parsed.arn)
        tasks.append((file, path, parsed))
    check_holdings(instances, tasks, remaining)
    services: dict[str, SnapshotService] = {}
    for file, path, svc in items(folder, "describe-services", "services"):
        if svc.get("status", "ACTIVE") != "ACTIVE":
            skipped[f"services {svc.get('status')}"] = skipped.get(f"services {svc.get('status')}", 0) + 1
            continue
        parsed_service = read_service(file, path, svc, specs)
        if parsed_service.name in services:
            raise fail(file, f"{path}.serviceName", f"service {parsed_service.name!r} is listed twice")
        services[parsed_service.name] = parsed_service
    if fargate:
        skipped["FARGATE capacity providers"] = fargate
    return ClusterSnapshot(
        folder=folder, cluster=next(iter(clusters)) if len(clusters) == 1 else None,
        instances=tuple(instances.values()), tasks=tuple(t for _, _, t in tasks),
        services=tuple(services.values()), providers=tuple(providers.values()), task_definitions=docs,
        skipped=skipped)




__all__ = ["HOLDING", "TASKDEF_PREFIX", "ClusterSnapshot", "SnapshotInstance", "SnapshotProvider", "SnapshotService",
           "SnapshotTask", "apply_snapshot", "read_snapshot", "snapshot_files", "task_definition_key"]
