"""What the Neuron runtime inside a container does when the task starts, beyond what ECS checks.

ECS accepts a task definition whose ``linuxParameters.devices`` name Neuron devices that are not
contiguous (``/dev/neuron0`` and ``/dev/neuron2``), and places it; the Neuron runtime in the container then
refuses them ("NRT:nrt_allocate_neuron_cores Neuron cores are not contiguous", Neuron troubleshooting
guide), so the task never serves. The simulation counts such a task as failed at start, in every device
mode whose task names its devices (device-aware and ECS-blind); topology-aware placement chooses
contiguous chips itself, so it never meets this.
"""

from __future__ import annotations

from scheduler.ecs.taskspec import NeuronMode, TaskSpec, first_gap

NOT_CONTIGUOUS_KEY = "TaskFailedToStart: Neuron devices not contiguous"


def start_refusal(spec: TaskSpec) -> tuple[str, str] | None:
    """(stoppedReason, failure key) when the Neuron runtime refuses this task's devices at start, else None."""
    if spec.neuron_mode is not NeuronMode.MANUAL or first_gap(spec.chips) is None:
        return None
    paths = ", ".join(spec.device_paths)
    return (f"TaskFailedToStart: the Neuron runtime refused the container's devices {paths}: "
            "NRT:nrt_allocate_neuron_cores Neuron cores are not contiguous", NOT_CONTIGUOUS_KEY)
