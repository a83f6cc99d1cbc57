"""Task definitions -> TaskSpec: every ECS rule, the string forms of cpu/memory, needs as ECS counts them,
ports by network mode, the describe-task-definition wrapper, and botocore shape checks on both sides."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.ecs import botocore_model, taskdef
from scheduler.ecs.taskdef import (
    Validation,
    load_task_definition,
    parse_cpu,
    parse_memory,
    read_task_definition,
    validate_task_definition,
)
from scheduler.ecs.taskspec import Constraint, NeuronMode, TaskSpec
from scheduler.errors import Issue, TaskDefinitionError

TASKDEFS = Path(__file__).resolve().parents[1] / "scenarios" / "taskdefs"

C0 = "$.containerDefinitions[0]"
# The one error each invalid file gives: its rule is the file name, its path is this.
INVALID_PATHS = {
    "awsvpc-host-port": f"{C0}.portMappings[0].hostPort",
    "bad-cpu-string": "$.cpu",
    "bad-enum": f"{C0}.resourceRequirements[0].type",
    "bad-expression": "$.placementConstraints[0].expression",
    "bad-gpu-value": f"{C0}.resourceRequirements[0].value",
    "bad-memory-string": "$.memory",
    "bad-neuron-path": f"{C0}.linuxParameters.devices[0].hostPath",
    "distinct-instance-in-taskdef": "$.placementConstraints[0].type",
    "duplicate-container-name": "$.containerDefinitions[1].name",
    "expression-too-long": "$.placementConstraints[0].expression",
    "fargate-devices": f"{C0}.linuxParameters.devices[0].hostPath",
    "fargate-gpu": f"{C0}.resourceRequirements[0]",
    "fargate-network-mode": "$.networkMode",
    "fargate-placement-constraints": "$.placementConstraints",
    "fractional-gpu-mixed": f"{C0}.resourceRequirements[0]",
    "gpu-value-and-sharing": f"{C0}.resourceRequirements[0]",
    "host-mode-host-port": f"{C0}.portMappings[0].hostPort",
    "managed-instances-network-mode": "$.networkMode",
    "member-of-without-expression": "$.placementConstraints[0].expression",
    "memory-below-reservation": f"{C0}.memory",
    "missing-required": "$.family",
    "neuron-device-beyond-catalog": f"{C0}.linuxParameters.devices[0].hostPath",
    "neuron-device-launch-type": "$.requiresCompatibilities",
    "neuron-device-not-all": f"{C0}.resourceRequirements[0].value",
    "neuron-device-with-devices": f"{C0}.linuxParameters.devices[0].hostPath",
    "no-containers": "$.containerDefinitions",
    "no-essential-container": "$.containerDefinitions",
    "no-memory": C0,
    "not-an-object": "$",
    "not-json": "$",
    "out-of-range": f"{C0}.resourceRequirements[0].sharingStrategy.nvidiaMps.maxComputePercent",
    "task-cpu-range": "$.cpu",
    "task-memory-range": "$.memory",
    "too-many-constraints": "$.placementConstraints",
    "two-neuron-device-containers": "$.containerDefinitions[1].resourceRequirements[0]",
    "unknown-inference-accelerator": f"{C0}.resourceRequirements[0].value",
    "unknown-key": f"{C0}.placement_constraints",
    "wrong-type": f"{C0}.portMappings[0].containerPort",
}
WARNING_PATHS = {
    "duplicate-key": "$.family",
    "non-contiguous-chips": f"{C0}.linuxParameters.devices[1].hostPath",
    "fractional-gpu": f"{C0}.resourceRequirements[0].value",
    "gpu-sharing-not-modelled": f"{C0}.resourceRequirements[0]",
}
VALID_FILES = sorted(p.name for p in TASKDEFS.glob("*.json"))


def container(**fields: object) -> dict:
    return {"name": "app", "image": "public.ecr.aws/nginx/nginx:stable", **fields}


def task(*containers: dict, **fields: object) -> dict:
    return {"family": "t", "containerDefinitions": list(containers) or [container(memory=512)], **fields}


def rules(validation: Validation) -> set[str]:
    return {issue.rule for issue in validation.errors}


# --- the bundled files ---------------------------------------------------------------------------------


def test_every_invalid_file_has_an_expectation() -> None:
    assert sorted(p.stem for p in (TASKDEFS / "invalid").glob("*.json")) == sorted(INVALID_PATHS)
    assert sorted(p.stem for p in (TASKDEFS / "warning").glob("*.json")) == sorted(WARNING_PATHS)


@pytest.mark.parametrize("rule", sorted(INVALID_PATHS))
def test_invalid_file_gives_exactly_its_rule(rule: str) -> None:
    validation = read_task_definition(TASKDEFS / "invalid" / f"{rule}.json")
    assert [(i.rule, i.path) for i in validation.errors] == [(rule, INVALID_PATHS[rule])]
    assert validation.spec is None and not validation.valid
    assert validation.file is not None and validation.file.endswith(f"{rule}.json")
    assert validation.errors[0].message


@pytest.mark.parametrize("rule", sorted(WARNING_PATHS))
def test_warning_file_is_valid_with_its_warning(rule: str) -> None:
    validation = read_task_definition(TASKDEFS / "warning" / f"{rule}.json")
    assert validation.valid and validation.spec is not None
    assert [(i.rule, i.path) for i in validation.warnings] == [(rule, WARNING_PATHS[rule])]


@pytest.mark.parametrize("name", VALID_FILES)
def test_bundled_file_is_valid_without_warnings(name: str) -> None:
    validation = read_task_definition(TASKDEFS / name)
    assert validation.errors == () and validation.warnings == ()
    assert isinstance(validation.spec, TaskSpec)


def test_readme_names_every_file() -> None:
    readme = (TASKDEFS / "README.md").read_text()
    for path in TASKDEFS.rglob("*.json"):
        name = path.relative_to(TASKDEFS).as_posix()
        if not name.startswith("trn1-chip-"):
            assert f"`{name}`" in readme, name
    assert "`trn1-chip-00.json` .. `trn1-chip-15.json`" in readme


def test_docs_managed_example_parses_to_the_right_spec() -> None:
    spec = load_task_definition(TASKDEFS / "neuron-managed.json")
    assert spec == TaskSpec(
        family="ecs-neuron",
        cpu=8192,
        memory=16384,
        neuron_mode=NeuronMode.MANAGED,
        compatibilities=frozenset({"MANAGED_INSTANCES"}),
        network_mode="awsvpc",
    )
    (only,) = spec.containers
    assert only.name == "neuron-inference" and only.neuron_all and only.chips == ()
    assert only.image.endswith(
        "huggingface-vllm-inference-neuronx:0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04"
    )


def test_docs_manual_example_parses_to_the_right_spec() -> None:
    spec = load_task_definition(TASKDEFS / "inf1-resnet50.json")
    assert spec == TaskSpec(
        family="ecs-neuron",
        cpu=0,
        memory=1000,
        neuron_mode=NeuronMode.MANUAL,
        chips=(0,),
        chip_count=1,
        tcp_ports=(8500, 8501),
        constraints=(
            Constraint("memberOf", "attribute:ecs.os-type == linux"),
            Constraint("memberOf", "attribute:ecs.instance-type == inf1.xlarge"),
        ),
    )
    assert spec.device_paths == ("/dev/neuron0",)
    (only,) = spec.containers
    assert (only.cpu, only.memory, only.memory_reservation, only.chips) == (0, None, 1000, (0,))
    unconstrained = load_task_definition(TASKDEFS / "inf1-resnet50-unconstrained.json")
    assert unconstrained.constraints == () and unconstrained.chips == (0,)


def test_sixteen_trn1_chip_tasks_fit_one_trn1_32xlarge() -> None:
    specs = [load_task_definition(TASKDEFS / f"trn1-chip-{i:02d}.json") for i in range(16)]
    assert [s.chips for s in specs] == [(i,) for i in range(16)]
    assert all(s.neuron_mode is NeuronMode.MANUAL and s.chip_count == 1 for s in specs)
    assert all(
        s.constraints == (Constraint("memberOf", "attribute:ecs.instance-type == trn1.32xlarge"),)
        for s in specs
    )
    registered_cpu = 128 * 1024  # trn1.32xlarge: 128 vCPU
    registered_memory = int(0.975 * 512 * 1024)  # floor(97.5% of 512 GiB), as the catalog registers it
    assert sum(s.cpu for s in specs) <= registered_cpu
    assert sum(s.memory for s in specs) <= registered_memory
    assert all(s.tcp_ports == () for s in specs)  # dynamic host ports: nothing stops 16 on one host


def test_other_bundled_neuron_and_gpu_tasks() -> None:
    four = load_task_definition(TASKDEFS / "inf1-6xlarge-4chip.json")
    assert (four.chips, four.chip_count, four.cpu, four.memory) == ((0, 1, 2, 3), 4, 20480, 40960)
    two = load_task_definition(TASKDEFS / "inf2-24xlarge-2chip.json")
    assert two.device_paths == ("/dev/neuron0", "/dev/neuron1")
    gpu = load_task_definition(TASKDEFS / "g5-gpu.json")
    assert (gpu.gpus, gpu.gpus_all, gpu.neuron_mode, gpu.cpu, gpu.memory) == (
        1,
        False,
        NeuronMode.NONE,
        3072,
        12288,
    )
    sidecar = load_task_definition(TASKDEFS / "cpu-sidecar.json")
    assert (sidecar.cpu, sidecar.memory, sidecar.gpus, sidecar.uses_neuron) == (256, 512, 0, False)


# --- string forms of cpu and memory --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("1024", 1024),
        ("1 vCPU", 1024),
        ("1 vcpu", 1024),
        ("0.5 vcpu", 512),
        ("2vCPU", 2048),
        (" 4 VCPU ", 4096),
        ("0.25 vCPU", 256),
        ("192 vCPU", 196608),
        (".5 vcpus", 512),
        (256, 256),
    ],
)
def test_parse_cpu_forms(text: object, units: int) -> None:
    assert parse_cpu(text) == units


@pytest.mark.parametrize(
    "text",
    ["", "lots", "1 core", "1024.5", "0.1 vCPU", "-1", "1e3", "1,024", None, True, 1.5, -5, "1 vCPU 2"],
)
def test_parse_cpu_rejects_garbage(text: object) -> None:
    with pytest.raises(ValueError):
        parse_cpu(text)


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("2048", 2048),
        ("2 GB", 2048),
        ("2GB", 2048),
        ("2 gb", 2048),
        ("2048 MiB", 2048),
        ("512 MB", 512),
        ("0.5 GB", 512),
        ("1 GiB", 1024),
        (3072, 3072),
    ],
)
def test_parse_memory_forms(text: object, mib: int) -> None:
    assert parse_memory(text) == mib


@pytest.mark.parametrize("text", ["", "2 TB", "two GB", "1.5", "0.0001 GB", "-2 GB", None, False, 2.0, -1])
def test_parse_memory_rejects_garbage(text: object) -> None:
    with pytest.raises(ValueError):
        parse_memory(text)


def test_string_forms_reach_the_spec() -> None:
    spec = validate_task_definition(task(cpu="0.5 vcpu", memory="2 GB")).spec
    assert spec is not None and (spec.cpu, spec.memory) == (512, 2048)


# --- needs as ECS counts them --------------------------------------------------------------------------


def test_task_level_needs_win_over_container_sums() -> None:
    doc = task(
        container(name="a", cpu=1024, memory=4096),
        container(name="b", cpu=512, memory=1024),
        cpu="4096",
        memory="8192",
    )
    spec = validate_task_definition(doc).spec
    assert spec is not None and (spec.cpu, spec.memory) == (4096, 8192)


def test_container_sums_when_no_task_level_needs() -> None:
    doc = task(
        container(name="a", cpu=1024, memory=4096, memoryReservation=1024),  # reservation counts
        container(name="b", memory=256),  # no cpu: 0
        container(name="c", cpu=128, memoryReservation=300),
    )
    spec = validate_task_definition(doc).spec
    assert spec is not None
    assert (spec.cpu, spec.memory) == (1024 + 0 + 128, 1024 + 256 + 300)
    assert [(c.cpu, c.memory, c.memory_reservation) for c in spec.containers] == [
        (1024, 4096, 1024),
        (0, 256, None),
        (128, None, 300),
    ]


def test_task_cpu_only_sums_container_memory() -> None:
    spec = validate_task_definition(task(container(memory=700), cpu="1 vCPU")).spec
    assert spec is not None and (spec.cpu, spec.memory) == (1024, 700)


def test_task_memory_lets_containers_omit_theirs() -> None:
    validation = validate_task_definition(task(container(), memory="1 GB"))
    assert validation.valid and validation.spec is not None and validation.spec.memory == 1024


def test_gpus_are_summed_and_all_is_a_flag() -> None:
    doc = task(
        container(name="a", memory=64, resourceRequirements=[{"type": "GPU", "value": "2"}]),
        container(name="b", memory=64, resourceRequirements=[{"type": "GPU", "value": "1"}]),
    )
    spec = validate_task_definition(doc).spec
    assert spec is not None and (spec.gpus, spec.gpus_all) == (3, False)
    assert [c.gpus for c in spec.containers] == [2, 1]
    every = validate_task_definition(
        task(container(memory=64, resourceRequirements=[{"type": "GPU", "value": "ALL"}]))
    ).spec
    assert every is not None and (every.gpus, every.gpus_all, every.containers[0].gpus_all) == (0, True, True)


def test_fractional_gpu_is_kept_with_a_warning() -> None:
    validation = read_task_definition(TASKDEFS / "warning" / "fractional-gpu.json")
    assert validation.spec is not None
    assert (validation.spec.gpus, validation.spec.gpu_fraction) == (0, 0.25)
    assert "no catalog type" in validation.warnings[0].message


def test_neuron_modes_and_chips() -> None:
    devices = [{"hostPath": p} for p in ("/dev/neuron3", "/dev/neuron2", "/dev/kmsg", "/dev/neuron3")]
    spec = validate_task_definition(task(container(memory=64, linuxParameters={"devices": devices}))).spec
    assert spec is not None
    assert (spec.neuron_mode, spec.chips, spec.chip_count) == (NeuronMode.MANUAL, (2, 3), 2)
    across = task(
        container(name="a", memory=64, linuxParameters={"devices": [{"hostPath": "/dev/neuron1"}]}),
        container(name="b", memory=64, linuxParameters={"devices": [{"hostPath": "/dev/neuron0"}]}),
    )
    spec = validate_task_definition(across).spec
    assert spec is not None and spec.chips == (0, 1) and [c.chips for c in spec.containers] == [(1,), (0,)]
    other = validate_task_definition(
        task(
            container(
                memory=64, linuxParameters={"devices": [{"hostPath": "/dev/fuse"}, {"hostPath": "/dev/kmsg"}]}
            )
        )
    ).spec
    assert other is not None and (other.neuron_mode, other.chips) == (NeuronMode.NONE, ())


def test_compatibilities_architecture_and_network_mode() -> None:
    spec = validate_task_definition(task()).spec
    assert spec is not None
    assert (spec.compatibilities, spec.network_mode, spec.cpu_architecture) == (
        frozenset({"EC2"}),
        "bridge",
        None,
    )
    arm = validate_task_definition(
        task(
            requiresCompatibilities=["EC2", "MANAGED_INSTANCES"],
            networkMode="host",
            runtimePlatform={"cpuArchitecture": "ARM64"},
        )
    ).spec
    assert arm is not None
    assert (arm.compatibilities, arm.network_mode, arm.cpu_architecture) == (
        frozenset({"EC2", "MANAGED_INSTANCES"}),
        "host",
        "ARM64",
    )


# --- ports by network mode -----------------------------------------------------------------------------

PORTS = [
    {"containerPort": 80},  # dynamic in bridge
    {"containerPort": 81, "hostPort": 0},  # dynamic in bridge
    {"containerPort": 8080, "hostPort": 8080},
    {"containerPort": 53, "hostPort": 53, "protocol": "udp"},
]


def test_bridge_reserves_only_nonzero_host_ports() -> None:
    spec = validate_task_definition(task(container(memory=64, portMappings=PORTS))).spec
    assert spec is not None and (spec.tcp_ports, spec.udp_ports) == ((8080,), (53,))


def test_bridge_host_port_may_differ_from_container_port() -> None:
    doc = task(container(memory=64, portMappings=[{"containerPort": 80, "hostPort": 8081}]))
    spec = validate_task_definition(doc).spec
    assert spec is not None and spec.tcp_ports == (8081,)


def test_host_mode_reserves_container_ports() -> None:
    spec = validate_task_definition(task(container(memory=64, portMappings=PORTS), networkMode="host")).spec
    assert spec is not None and (spec.tcp_ports, spec.udp_ports) == ((80, 81, 8080), (53,))


def test_awsvpc_reserves_no_host_ports() -> None:
    spec = validate_task_definition(task(container(memory=64, portMappings=PORTS), networkMode="awsvpc")).spec
    assert spec is not None and (spec.tcp_ports, spec.udp_ports) == ((), ())


# --- individual rules beyond the files -----------------------------------------------------------------


def test_all_issues_are_collected() -> None:
    doc = {
        "family": "many",
        "bogus": 1,
        "cpu": "lots",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["EC2"],
        "placementConstraints": [{"type": "distinctInstance"}],
        "containerDefinitions": [
            container(
                name="a",
                cpu="1",
                memory=256,
                memoryReservation=512,
                portMappings=[{"containerPort": 80, "hostPort": 81}],
                resourceRequirements=[{"type": "NeuronDevice", "value": "1"}],
                linuxParameters={"devices": [{"hostPath": "/dev/neuron"}]},
            ),
            container(name="b", resourceRequirements=[{"type": "NeuronDevice", "value": "ALL"}]),
        ],
    }
    found = rules(validate_task_definition(doc))
    assert found == {
        "unknown-key",
        "wrong-type",
        "bad-cpu-string",
        "distinct-instance-in-taskdef",
        "memory-below-reservation",
        "awsvpc-host-port",
        "neuron-device-not-all",
        "two-neuron-device-containers",
        "neuron-device-with-devices",
        "neuron-device-launch-type",
        "bad-neuron-path",
        "no-memory",
    }


@pytest.mark.parametrize(
    "path",
    ["/dev/neuron", "/dev/neuronX", "/dev/neuron-1", "/dev/neuron01", "/dev/neuron1a", "/dev/neuron_core0"],
)
def test_malformed_neuron_paths(path: str) -> None:
    doc = task(container(memory=64, linuxParameters={"devices": [{"hostPath": path}]}))
    assert rules(validate_task_definition(doc)) == {"bad-neuron-path"}


@pytest.mark.parametrize("path", ["/dev/neuron0", "/dev/neuron15", "/dev/kmsg", "/dev/fuse", "/dev/nvidia0"])
def test_acceptable_device_paths(path: str) -> None:
    assert validate_task_definition(
        task(container(memory=64, linuxParameters={"devices": [{"hostPath": path}]}))
    ).valid


@pytest.mark.parametrize(
    "compat", [["EC2"], ["FARGATE"], ["MANAGED_INSTANCES", "EC2"], ["MANAGED_INSTANCES", "FARGATE"], None]
)
def test_neuron_device_needs_managed_instances_alone(compat: list[str] | None) -> None:
    doc = task(
        container(resourceRequirements=[{"type": "NeuronDevice", "value": "ALL"}]),
        networkMode="awsvpc",
        cpu="1024",
        memory="2048",
    )
    if compat is not None:
        doc["requiresCompatibilities"] = compat
    assert "neuron-device-launch-type" in rules(validate_task_definition(doc))
    doc["requiresCompatibilities"] = ["MANAGED_INSTANCES"]
    assert validate_task_definition(doc).valid


def test_neuron_device_without_value_is_not_all() -> None:
    doc = copy.deepcopy(json.loads((TASKDEFS / "neuron-managed.json").read_text()))
    doc["containerDefinitions"][0]["resourceRequirements"] = [{"type": "NeuronDevice"}]
    validation = validate_task_definition(doc)
    assert [(i.rule, i.path) for i in validation.errors] == [
        ("neuron-device-not-all", f"{C0}.resourceRequirements[0].value")
    ]


def test_neuron_device_with_non_neuron_devices_is_fine() -> None:
    doc = json.loads((TASKDEFS / "neuron-managed.json").read_text())
    doc["containerDefinitions"][0]["linuxParameters"] = {"devices": [{"hostPath": "/dev/kmsg"}]}
    assert validate_task_definition(doc).valid


def test_memory_equal_to_reservation_is_an_error() -> None:
    doc = task(container(memory=1024, memoryReservation=1024))
    assert rules(validate_task_definition(doc)) == {"memory-below-reservation"}
    doc = task(container(memory=1025, memoryReservation=1024))
    assert validate_task_definition(doc).valid


def test_zero_memory_counts_as_none() -> None:
    assert rules(validate_task_definition(task(container(memory=0)))) == {"no-memory"}
    both_zero = rules(validate_task_definition(task(container(memory=0, memoryReservation=0))))
    assert both_zero == {"no-memory", "memory-below-reservation"}


def test_ten_constraints_are_fine_eleven_are_not() -> None:
    ten = [
        {"type": "memberOf", "expression": f"attribute:ecs.availability-zone != us-east-1{z}"}
        for z in "abcdefghij"
    ]
    assert validate_task_definition(task(placementConstraints=ten)).valid
    eleven = [*ten, {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}]
    assert rules(validate_task_definition(task(placementConstraints=eleven))) == {"too-many-constraints"}


def test_expression_of_exactly_2000_characters_is_checked_by_the_parser_only() -> None:
    value = "x" * (2000 - len("attribute:stack == "))
    doc = task(placementConstraints=[{"type": "memberOf", "expression": f"attribute:stack == {value}"}])
    assert "expression-too-long" not in rules(validate_task_definition(doc))


def test_expressions_are_only_length_checked_without_the_cql_module(monkeypatch: pytest.MonkeyPatch) -> None:
    path = TASKDEFS / "invalid" / "bad-expression.json"
    assert rules(read_task_definition(path)) == {"bad-expression"}
    monkeypatch.setattr(taskdef, "_cql", None)
    assert read_task_definition(path).valid


@pytest.mark.parametrize(
    ("cpu", "ok"),
    [
        ("127", False),
        ("128", True),
        ("196608", True),
        ("196609", False),
        ("0.125 vCPU", True),
        ("192 vcpu", True),
        ("0", False),
    ],
)
def test_task_cpu_range(cpu: str, ok: bool) -> None:
    validation = validate_task_definition(task(cpu=cpu))
    assert validation.valid is ok
    assert ok or rules(validation) == {"task-cpu-range"}


def test_task_level_numbers_are_wrong_types_as_the_cli_says() -> None:
    validation = validate_task_definition(task(cpu=1024, memory=2048))
    assert [(i.rule, i.path) for i in validation.errors] == [
        ("wrong-type", "$.cpu"),
        ("wrong-type", "$.memory"),
    ]


def test_boolean_where_a_number_belongs_is_a_wrong_type() -> None:
    validation = validate_task_definition(task(container(memory=True)))
    assert ("wrong-type", f"{C0}.memory") in [(i.rule, i.path) for i in validation.errors]


def test_host_port_zero_in_awsvpc_counts_as_blank() -> None:
    doc = task(
        container(memory=64, portMappings=[{"containerPort": 80, "hostPort": 0}]), networkMode="awsvpc"
    )
    assert validate_task_definition(doc).valid
    doc = task(
        container(memory=64, portMappings=[{"containerPort": 80, "hostPort": 80}]), networkMode="awsvpc"
    )
    assert validate_task_definition(doc).valid


def test_inference_accelerator_naming_a_task_device_is_fine() -> None:
    doc = task(
        container(memory=64, resourceRequirements=[{"type": "InferenceAccelerator", "value": "device_1"}]),
        inferenceAccelerators=[{"deviceName": "device_1", "deviceType": "eia2.medium"}],
    )
    assert validate_task_definition(doc).valid


@pytest.mark.parametrize("mode", ["awsvpc", "host"])
def test_managed_instances_network_modes(mode: str) -> None:
    doc = task(requiresCompatibilities=["MANAGED_INSTANCES"], networkMode=mode)
    assert validate_task_definition(doc).valid


def test_managed_instances_default_network_mode_is_bridge_and_rejected() -> None:
    validation = validate_task_definition(task(requiresCompatibilities=["MANAGED_INSTANCES"]))
    assert [(i.rule, i.path) for i in validation.errors] == [
        ("managed-instances-network-mode", "$.networkMode")
    ]
    assert "(the default)" in validation.errors[0].message


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "0.3", "all", "", " ", "1 GPU"])
def test_bad_gpu_values(value: str) -> None:
    doc = task(container(memory=64, resourceRequirements=[{"type": "GPU", "value": value}]))
    assert rules(validate_task_definition(doc)) == {"bad-gpu-value"}


def test_gpu_without_value_or_sharing_is_bad() -> None:
    doc = task(container(memory=64, resourceRequirements=[{"type": "GPU"}]))
    assert rules(validate_task_definition(doc)) == {"bad-gpu-value"}


def test_non_contiguous_warning_only_for_gaps() -> None:
    def devices(*chips: int) -> dict:
        return task(
            container(
                memory=64, linuxParameters={"devices": [{"hostPath": f"/dev/neuron{i}"} for i in chips]}
            )
        )

    assert validate_task_definition(devices(2, 3, 4)).warnings == ()
    gap = validate_task_definition(devices(4, 1, 2))
    assert gap.valid and [(w.rule, w.path) for w in gap.warnings] == [
        ("non-contiguous-chips", f"{C0}.linuxParameters.devices[0].hostPath")
    ]


def test_wrapper_level_unknown_key() -> None:
    doc = {"taskDefinition": task(), "tags": [], "extra": 1}
    assert [(i.rule, i.path) for i in validate_task_definition(doc).errors] == [("unknown-key", "$.extra")]


# --- the describe-task-definition wrapper --------------------------------------------------------------

DESCRIBED = {
    "taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/inf2-chip-0:3",
        "family": "inf2-chip-0",
        "revision": 3,
        "status": "ACTIVE",
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.17"}],
        "compatibilities": ["EXTERNAL", "EC2"],
        "registeredAt": "2026-01-05T10:00:00.000000+00:00",
        "registeredBy": "arn:aws:iam::123456789012:user/planner",
        "requiresCompatibilities": ["EC2"],
        "cpu": "3072",
        "memory": "12288",
        "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.instance-type == inf2.xlarge"}
        ],
        "containerDefinitions": [
            {
                "name": "neuronx-vllm",
                "image": "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:latest",
                "cpu": 0,
                "essential": True,
                "portMappings": [],
                "environment": [],
                "mountPoints": [],
                "volumesFrom": [],
                "linuxParameters": {
                    "devices": [
                        {
                            "hostPath": "/dev/neuron0",
                            "containerPath": "/dev/neuron0",
                            "permissions": ["read", "write"],
                        }
                    ]
                },
            }
        ],
        "volumes": [],
    },
    "tags": [{"key": "team", "value": "ml"}],
}


def test_describe_wrapper_is_unwrapped_and_read_only_fields_dropped() -> None:
    validation = validate_task_definition(DESCRIBED)
    assert validation.valid, validation.errors
    assert validation.spec is not None
    assert (validation.spec.revision, validation.spec.family, validation.spec.chips) == (
        3,
        "inf2-chip-0",
        (0,),
    )
    for key in (
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
    ):
        assert key not in validation.document
    assert validation.document["tags"] == [{"key": "team", "value": "ml"}]
    assert botocore_model.validate_input("RegisterTaskDefinition", validation.document) == []


def test_describe_wrapper_paths_point_into_the_wrapper() -> None:
    broken = copy.deepcopy(DESCRIBED)
    broken["taskDefinition"]["containerDefinitions"][0]["cpu"] = "0"
    validation = validate_task_definition(broken)
    assert [(i.rule, i.path) for i in validation.errors] == [
        ("wrong-type", "$.taskDefinition.containerDefinitions[0].cpu")
    ]
    broken["taskDefinition"] = ["not", "an", "object"]
    assert [(i.rule, i.path) for i in validate_task_definition(broken).errors] == [
        ("not-an-object", "$.taskDefinition")
    ]


def test_bare_task_definition_with_read_only_fields_keeps_its_revision() -> None:
    validation = validate_task_definition(DESCRIBED["taskDefinition"])
    assert validation.valid and validation.spec is not None and validation.spec.revision == 3
    assert "tags" not in validation.document


# --- entry points --------------------------------------------------------------------------------------


def test_load_raises_with_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(task(container(), cpu="lots")))
    with pytest.raises(TaskDefinitionError) as caught:
        load_task_definition(path)
    assert {i.rule for i in caught.value.issues} == {"bad-cpu-string", "no-memory"}
    assert str(path) in str(caught.value) and "(and 1 more)" in str(caught.value)
    with pytest.raises(TaskDefinitionError) as caught:
        load_task_definition(task(container()), file="inline.json")
    assert caught.value.file == "inline.json"


def test_load_from_dict_and_path_agree() -> None:
    path = TASKDEFS / "inf2-chip-0.json"
    assert load_task_definition(json.loads(path.read_text())) == load_task_definition(path)
    assert load_task_definition(str(path)) == load_task_definition(path)


def test_bad_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{\n  "family": "x",\n  "containerDefinitions": [\n')
    (issue,) = read_task_definition(path).errors
    assert issue.path == "$" and issue.rule == "not-json" and "line 4 column 1" in issue.message


def test_unreadable_files_give_an_error_not_an_exception(tmp_path: Path) -> None:
    missing = read_task_definition(tmp_path / "nope.json")
    assert [(i.rule, i.path) for i in missing.errors] == [("unreadable-file", "$")]
    directory = read_task_definition(tmp_path)
    assert [i.rule for i in directory.errors] == ["unreadable-file"]
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert [i.rule for i in read_task_definition(binary).errors] == ["not-json"]
    with pytest.raises(TaskDefinitionError):
        load_task_definition(tmp_path / "nope.json")


@pytest.mark.parametrize("doc", [None, 5, "text", [], [task()], {}, {"taskDefinition": None}])
def test_non_task_definitions_give_errors(doc: object) -> None:
    validation = validate_task_definition(doc)
    assert not validation.valid and validation.spec is None
    assert all(i.path.startswith("$") for i in validation.errors)


# --- arbitrary input never raises ----------------------------------------------------------------------

KEYS = sorted(
    {
        *botocore_model.operation_model("RegisterTaskDefinition").input_shape.members,
        *botocore_model.ecs_service_model().shape_for("ContainerDefinition").members,
        "taskDefinition",
        "tags",
        "type",
        "value",
        "hostPath",
        "devices",
        "containerPort",
        "hostPort",
        "protocol",
        "expression",
        "deviceName",
        "revision",
        "sharingStrategy",
        "nvidiaMps",
        "cpuArchitecture",
    }
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True)
    | st.sampled_from(
        [
            "ALL",
            "GPU",
            "NeuronDevice",
            "InferenceAccelerator",
            "memberOf",
            "distinctInstance",
            "/dev/neuron0",
            "/dev/neuron2",
            "/dev/neuronX",
            "awsvpc",
            "host",
            "bridge",
            "EC2",
            "FARGATE",
            "MANAGED_INSTANCES",
            "1 vCPU",
            "2 GB",
            "0.5",
            "udp",
        ]
    )
    | st.text(max_size=12)
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=30,
)


def check_never_raises(doc: object) -> None:
    validation = validate_task_definition(doc)
    assert isinstance(validation, Validation)
    assert (validation.spec is None) == bool(validation.errors)
    assert all(isinstance(i, Issue) and i.path.startswith("$") and i.rule for i in validation.errors)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_LIKE)
def test_arbitrary_documents_never_raise(doc: object) -> None:
    check_never_raises(doc)


BASES = [json.loads(p.read_text()) for p in sorted(TASKDEFS.glob("*.json"))[:8]]


@st.composite
def mutated_task_definitions(draw: st.DrawFn) -> object:
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        node = doc
        while True:  # walk to a random place, then replace what is there
            keys = (
                list(node)
                if isinstance(node, dict)
                else list(range(len(node)))
                if isinstance(node, list)
                else []
            )
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                node = child
                continue
            node[key] = draw(JSON_LIKE)
            break
    if draw(st.booleans()):
        doc = {"taskDefinition": doc, "tags": draw(JSON_LIKE)}
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_task_definitions())
def test_mutated_real_documents_never_raise(doc: object) -> None:
    check_never_raises(doc)


# --- botocore shape checks on other operations and on output -------------------------------------------


def test_validate_input_checks_enums_and_booleans_for_other_operations() -> None:
    issues = botocore_model.validate_input(
        "RunTask", {"taskDefinition": "x", "count": True, "placementStrategy": [{"type": "bogus"}]}
    )
    assert {(i.rule, i.path) for i in issues} == {
        ("bad-enum", "$.placementStrategy[0].type"),
        ("wrong-type", "$.count"),
    }
    assert botocore_model.validate_input("RunTask", {"taskDefinition": "x", "count": 3}) == []
    with pytest.raises(ValueError):
        botocore_model.validate_input("NoSuchOperation", {})


def test_validate_input_reports_maximums_botocore_skips() -> None:
    doc = task(tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    issues = botocore_model.validate_input("RegisterTaskDefinition", doc)
    assert [(i.rule, i.path) for i in issues] == [("out-of-range", "$.tags")]


def test_validate_output_accepts_a_describe_tasks_view() -> None:
    payload = {
        "tasks": [
            {
                "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/sim/abc",
                "lastStatus": "RUNNING",
                "launchType": "EC2",
                "createdAt": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                "startedAt": 1767225600.5,
                "pullStartedAt": "2026-01-01T00:00:00+00:00",
                "containers": [{"name": "c", "neuronDeviceIds": ["0", "1"], "gpuIds": []}],
                "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
            }
        ],
        "failures": [{"arn": "arn:x", "reason": "RESOURCE:CPU"}],
    }
    assert botocore_model.validate_output("DescribeTasks", payload) == []


def test_validate_output_finds_what_is_wrong() -> None:
    payload = {
        "tasks": [
            {
                "launchType": "SPACESHIP",
                "stoppedAt": "yesterday",
                "bogus": 1,
                "createdAt": True,
                "containers": [{"name": "c", "neuronDeviceIds": ["0", 1]}],
                "attributes": [{"value": "x"}],
            }
        ],
        "failures": "none",
    }
    found = {(i.rule, i.path) for i in botocore_model.validate_output("DescribeTasks", payload)}
    assert found == {
        ("bad-enum", "$.tasks[0].launchType"),
        ("wrong-type", "$.tasks[0].stoppedAt"),
        ("wrong-type", "$.tasks[0].createdAt"),
        ("unknown-key", "$.tasks[0].bogus"),
        ("wrong-type", "$.tasks[0].containers[0].neuronDeviceIds[1]"),
        ("missing-required", "$.tasks[0].attributes[0].name"),
        ("wrong-type", "$.failures"),
    }


def test_validate_output_checks_container_instance_resources() -> None:
    instance = {
        "containerInstanceArn": "arn:ci",
        "status": "ACTIVE",
        "agentConnected": True,
        "registeredResources": [
            {"name": "NEURON_DEVICES", "type": "STRINGSET", "stringSetValue": ["0"]},
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
        ],
        "registeredAt": "2026-01-01T00:00:00+00:00",
    }
    assert (
        botocore_model.validate_output("DescribeContainerInstances", {"containerInstances": [instance]}) == []
    )
    instance["agentUpdateStatus"] = "BUSY"  # ContainerInstance.status is a plain string in the model
    instance["registeredResources"][1]["integerValue"] = "4096"
    found = {
        (i.rule, i.path)
        for i in botocore_model.validate_output(
            "DescribeContainerInstances", {"containerInstances": [instance]}
        )
    }
    assert found == {
        ("bad-enum", "$.containerInstances[0].agentUpdateStatus"),
        ("wrong-type", "$.containerInstances[0].registeredResources[1].integerValue"),
    }


def test_member_path_quotes_odd_keys() -> None:
    assert botocore_model.member_path("$", "cpu") == "$.cpu"
    assert botocore_model.member_path("$.a", 'b "c"') == '$.a["b \\"c\\""]'


@pytest.mark.parametrize(("fields", "path"), [
    ({"cpu": -1}, "cpu"), ({"memory": -512}, "memory"), ({"gpus": -1}, "gpus"), ({"cpu": 1.5}, "cpu"),
    ({"cpu": True}, "cpu"), ({"chips": (-1,)}, "chips"), ({"tcp_ports": (0,)}, "tcp_ports"),
    ({"udp_ports": (70_000,)}, "udp_ports"), ({"gpu_fraction": 1.0}, "gpu_fraction"),
    ({"gpu_fraction": -0.5}, "gpu_fraction"),
])
def test_taskspec_built_directly_rejects_what_placement_cannot_honour(fields: dict, path: str) -> None:
    """A TaskSpec made in code, not from a task definition, still cannot ask for a negative CPU, a port
    outside 1-65535 or a GPU fraction of a whole GPU or more: the error names the field."""
    with pytest.raises(TaskDefinitionError) as err:
        TaskSpec("f", **fields)
    assert err.value.path == path


def test_taskspec_built_directly_with_sound_amounts_is_accepted() -> None:
    spec = TaskSpec("f", cpu=256, memory=512, gpus=1, chips=(0, 1), chip_count=2, tcp_ports=(80,),
                    gpu_fraction=0.5)
    assert (spec.cpu, spec.memory, spec.tcp_ports) == (256, 512, (80,))


@pytest.mark.parametrize("key", ["cpu", "memory", "memoryReservation"])
def test_negative_container_amount_is_reported_at_its_field(key: str) -> None:
    """ECS refuses a negative container cpu, memory or memoryReservation; the validator names the field
    (before, a negative cpu reached TaskSpec and was reported without the file or the field path)."""
    doc = task(container(cpu=256, memory=512))
    doc["containerDefinitions"][0][key] = -5
    validation = validate_task_definition(doc)
    assert not validation.valid
    assert any(i.path == f"$.containerDefinitions[0].{key}" and i.rule == "negative-amount"
               for i in validation.errors)
