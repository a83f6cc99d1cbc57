"""The words ECS uses when a task cannot be placed or started, quoting ids from ``identity``.

The core returns structured outcomes (a Failure's reason code, detail and closest instance row; a
StartFailure's code and chip); this module turns them into the service-event sentences and stop reasons
a user reads, and into the stable keys the run summary counts failures by.
"""

from __future__ import annotations

from scheduler.placement.results import Failure, StartFailure
from scheduler.placement.state import ClusterState
from scheduler.views import identity


def unplaced_event(failure: Failure, state: ClusterState, names: identity.InstanceNames | None = None) -> str:
    """A service event's words after "service X was": the closest instance and what it lacks, as ECS
    says it, or the reason when no instance came close."""
    phrase = failure.explanation.phrase if failure.explanation else ""
    if phrase and failure.instance is not None:
        return ("unable to place a task because no container instance met all of its requirements. The closest "
                f"matching container-instance {identity.names_of(state, names).id(failure.instance)} {phrase}.")
    return f"unable to place a task. Reason: {failure}."


def start_failure_reason(failure: StartFailure, state: ClusterState, row: int) -> str:
    """The stoppedReason of a task whose container could not open a device on instance ``row``."""
    inst = state.instances[row]
    path = failure.device_path
    if failure.code == StartFailure.MISSING:
        return (f"TaskFailedToStart: CannotStartContainerError: error gathering device information "
                f"while adding custom device \"{path}\": no such file or directory "
                f"({inst.instance_type.name} has {inst.instance_type.chips} Neuron device(s))")
    return (f"TaskFailedToStart: {path} is already in use by task {failure.holder or 'another task'} on "
            f"{inst.ec2_instance_id}; the Neuron runtime cannot open it")


def start_failure_key(failure: StartFailure) -> str:
    """The key a run's ``tasks_failed`` counts such a failure under (per device path and code)."""
    return f"TaskFailedToStart: {failure.device_path} {failure.code}"
