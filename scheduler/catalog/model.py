"""What one EC2 instance type is, as data: host resources, accelerators, launch types, price, topology."""

from __future__ import annotations

from dataclasses import dataclass, field

LAUNCH_EC2 = "EC2"
LAUNCH_MANAGED = "MANAGED_INSTANCES"

# Neuron chip names as EC2's NeuronInfo and Managed Instances' acceleratorNames spell them.
NEURON_ACCELERATORS = frozenset({"inferentia", "inferentia2", "trainium", "trainium2"})

# Registered memory: the ECS agent registers MemTotal from /proc/meminfo minus ECS_RESERVED_MEMORY
# (agent default 0). MemTotal is below the nominal size by kernel and firmware reservations; the two
# published data points are 97.5% (m4.large, 7985 of 8192 MiB) and 97.9% (c4.2xlarge). We use 97.5%.
MEMTOTAL_FRACTION = 0.975


@dataclass(frozen=True, slots=True)
class InstanceType:
    """One row of the catalog. Figures are EC2's published ones; ``source`` says where each came from."""

    name: str                      # "trn1.32xlarge"
    family: str                    # "trn1"
    vcpus: int
    memory_mib: int                # nominal, as EC2 publishes it (GiB * 1024)
    chips: int                     # Neuron devices: /dev/neuron0 .. /dev/neuron{chips-1}
    cores_per_chip: int            # NeuronCores per chip (physical); 0 without Neuron
    accelerator: str | None        # inferentia | inferentia2 | trainium | trainium2 | a10g | a100 | None
    accelerator_memory_gib: float  # per chip (Neuron) or per GPU
    gpus: int                      # NVIDIA GPUs
    launch_types: frozenset[str]   # subset of {"EC2", "MANAGED_INSTANCES"}
    price_per_hour: float | None   # on-demand USD/h, us-east-1 unless ``price_note`` says otherwise
    price_note: str = ""           # non-empty when the price is not a us-east-1 on-demand figure
    topology: str = "none"         # none | single | line:N | ring:N | torus2d:RxC
    cpu_architecture: str = "x86_64"
    cpu_manufacturer: str = "intel"          # intel | amd | amazon-web-services
    accelerator_manufacturer: str | None = None  # amazon-web-services | nvidia | None
    max_enis: int = 4
    generation: str = "current"              # current | previous (instanceGenerations)
    registered_memory_override: int | None = None
    source: str = field(default="", compare=False)

    @property
    def device_paths(self) -> tuple[str, ...]:
        return tuple(f"/dev/neuron{i}" for i in range(self.chips))

    @property
    def is_neuron(self) -> bool:
        return self.chips > 0

    @property
    def registered_cpu(self) -> int:
        """CPU units the ECS agent registers: vCPU x 1024."""
        return self.vcpus * 1024

    def registered_memory_mib(self, reserved_mib: int = 0) -> int:
        """MEMORY the ECS agent registers: floor(97.5% of nominal MiB) - ECS_RESERVED_MEMORY."""
        base = self.registered_memory_override
        if base is None:
            base = int(self.memory_mib * MEMTOTAL_FRACTION)
        return base - reserved_mib

    @property
    def neuron_cores(self) -> int:
        return self.chips * self.cores_per_chip
