"""The public ECS artifacts of the acceptance corpus (tests/corpus/, a copy of shared/corpus) through
task-definition validation.

Each artifact's ``task_definition`` is validated as written, and gets the verdict the ECS rules give. Where
that differs from the corpus's hand-made ``expected_ecs_behaviour.valid``, the reason is written next to
the expectation. Artifacts that are not RegisterTaskDefinition JSON (CloudFormation, an AWS Batch job
definition, a text fragment) are first validated raw (clear errors, no crash), then converted the way
their own tool would hand them to ECS, and validated again. Capacity-provider parts (020-023) are not
task definitions and are not validated here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scheduler.ecs.taskdef import Validation, read_task_definition, validate_task_definition
from scheduler.ecs.taskspec import NeuronMode

CORPUS = Path(__file__).resolve().parent / "corpus"
SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def artifact(number: str) -> dict[str, Any]:
    (path,) = CORPUS.glob(f"{number}_*.json")
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Verdict:
    """What the rules say about an artifact's task definition as written."""

    valid: bool
    errors: frozenset[tuple[str, str]] = frozenset()  # (rule, path), exactly
    why: str = ""  # set where the corpus's own verdict differs
    needs: dict[str, object] = field(default_factory=dict)  # TaskSpec fields, when valid


def invalid(*errors: tuple[str, str], why: str = "") -> Verdict:
    return Verdict(False, frozenset(errors), why)


def valid(**needs: object) -> Verdict:
    return Verdict(True, needs=needs)


C0 = "$.containerDefinitions[0]"

# Verdicts for the task definitions that are RegisterTaskDefinition JSON as found.
AS_WRITTEN: dict[str, Verdict] = {
    "001": valid(cpu=0, memory=1000, neuron_mode=NeuronMode.MANUAL, chips=(0,), tcp_ports=(8500, 8501)),
    "002": valid(
        cpu=8192,
        memory=16384,
        neuron_mode=NeuronMode.MANAGED,
        chips=(),
        tcp_ports=(),
        compatibilities=frozenset({"MANAGED_INSTANCES"}),
    ),
    "003": valid(cpu=0, memory=1000, neuron_mode=NeuronMode.MANUAL, chips=(0,), tcp_ports=(7997,)),
    "004": valid(
        cpu=32768,
        memory=65536,
        neuron_mode=NeuronMode.MANUAL,
        chips=(0,),
        tcp_ports=(),
        network_mode="awsvpc",
    ),
    "006": invalid(("unknown-key", f"{C0}.placement_constraints")),
    # Corpus: valid (CDK synthesises the family and writes networkMode "bridge"). As written, the family is
    # missing and networkMode holds the corpus author's note "bridge (CDK default ...)", not an enum value.
    "007": invalid(
        ("missing-required", "$.family"),
        ("bad-enum", "$.networkMode"),
        why="CDK fills family/networkMode; the JSON as written lacks them",
    ),
    "008": valid(cpu=1024, memory=3072, neuron_mode=NeuronMode.NONE, tcp_ports=(), network_mode="awsvpc"),
    # 009 has no networkMode: bridge, so its hostPort 80 is a static port (CDK would make it awsvpc).
    "009": valid(cpu=1024, memory=3072, neuron_mode=NeuronMode.NONE, tcp_ports=(80,), network_mode="bridge"),
    "012": valid(cpu=100, memory=80, gpus=2),
    "013": valid(cpu=100, memory=100, gpus=1),
    "014": valid(cpu=32768, memory=65536, gpus=4, tcp_ports=(), network_mode="awsvpc"),
    # Corpus: valid ("tight memory fit"). The rules: memory must be greater than memoryReservation, and
    # here both are 184320; also no family, and containerPort is the placeholder "${local.container_port}".
    "015": invalid(
        ("missing-required", "$.family"),
        ("wrong-type", f"{C0}.portMappings[0].containerPort"),
        ("memory-below-reservation", f"{C0}.memory"),
        why="memory == memoryReservation is rejected; Terraform placeholders are strings",
    ),
    # Corpus: "valid after substitution". As written, every containerPort is a "${...}" placeholder string.
    "016": invalid(
        *[("wrong-type", f"{C0}.portMappings[{i}].containerPort") for i in range(4)],
        why="template placeholders where integers belong",
    ),
    # Corpus: valid (a misconfiguration, not an error). As written the family is missing (CDK generates it).
    "017": invalid(("missing-required", "$.family"), why="CDK generates the family"),
    "018": invalid(
        ("awsvpc-host-port", f"{C0}.portMappings[0].hostPort"),
        ("unknown-inference-accelerator", f"{C0}.resourceRequirements[0].value"),
    ),
    "019": invalid(("unknown-key", f"{C0}.inferenceDevices")),
    "021": valid(
        cpu=512,
        memory=3072,
        cpu_architecture="ARM64",
        network_mode="awsvpc",
        compatibilities=frozenset({"EC2", "MANAGED_INSTANCES"}),
    ),
    # Corpus: valid false, but that verdict is about the capacity provider's instanceRequirements; the task
    # definition fragment itself is complete and valid on EC2 (the corpus says so too).
    "022": valid(cpu=0, memory=8192, gpus=1),
    # Corpus: "variant_1: no; variant_2: yes" for the capacity providers; the container fragment needs
    # family, MANAGED_INSTANCES and memory before ECS takes it.
    "023": invalid(
        ("missing-required", "$.family"),
        ("neuron-device-launch-type", "$.requiresCompatibilities"),
        ("no-memory", C0),
    ),
}
CORPUS_SAYS_VALID_BUT_RULES_DO_NOT = {"007", "015", "016", "017"}


def check(validation: Validation, verdict: Verdict) -> None:
    found = {(i.rule, i.path) for i in validation.errors}
    if verdict.valid:
        assert found == set(), validation.errors
        assert validation.spec is not None
        for name, value in verdict.needs.items():
            assert getattr(validation.spec, name) == value, name
    else:
        assert found == set(verdict.errors), validation.errors
        assert len(validation.errors) == len(verdict.errors)
        assert validation.spec is None


def test_corpus_copy_is_complete() -> None:
    names = sorted(p.name for p in CORPUS.glob("*.json"))
    assert len(names) == 23 and (CORPUS / "README.md").is_file()
    if SHARED_CORPUS.is_dir():  # beside the repo (a session's machine, and CI): the copy must match
        assert names == sorted(p.name for p in SHARED_CORPUS.glob("*.json"))
        for name in names:
            assert (CORPUS / name).read_bytes() == (SHARED_CORPUS / name).read_bytes(), name


def test_every_artifact_has_a_verdict() -> None:
    numbers = {p.name[:3] for p in CORPUS.glob("*.json")}
    converted = {"005", "010", "011", "020"}
    assert numbers == set(AS_WRITTEN) | converted
    assert not set(AS_WRITTEN) & converted


@pytest.mark.parametrize("number", sorted(AS_WRITTEN))
def test_artifact_as_written(number: str) -> None:
    data = artifact(number)
    verdict = AS_WRITTEN[number]
    validation = validate_task_definition(data["task_definition"], file=f"{number}.json")
    check(validation, verdict)
    corpus_valid = data["expected_ecs_behaviour"]["valid"]
    if number in CORPUS_SAYS_VALID_BUT_RULES_DO_NOT:
        assert corpus_valid is True and verdict.why
    elif isinstance(corpus_valid, bool) and number != "022":
        assert corpus_valid is verdict.valid


def _normalized_containers(number: str) -> list[dict[str, Any]]:
    listed = artifact(number)["normalized"].get("containers", [])
    keys = ("static_host_ports", "neuron_devices", "gpus")
    return [c for c in listed if any(k in c for k in keys)]


NORMALIZED = sorted(n for n, v in AS_WRITTEN.items() if v.valid and _normalized_containers(n))


def test_normalized_cases_are_there() -> None:
    assert {"001", "002", "003", "004", "012", "013", "014"} <= set(NORMALIZED)


@pytest.mark.parametrize("number", NORMALIZED)
def test_normalized_fields_agree_with_the_spec(number: str) -> None:
    """Where the corpus lists static host ports, Neuron device paths or GPUs, the spec has the same."""
    spec = validate_task_definition(artifact(number)["task_definition"]).spec
    assert spec is not None
    listed_containers = artifact(number)["normalized"]["containers"]
    assert len(listed_containers) == len(spec.containers)
    for listed, container in zip(listed_containers, spec.containers, strict=True):
        if "static_host_ports" in listed:
            assert spec.tcp_ports == tuple(listed["static_host_ports"])
        if isinstance(listed.get("neuron_devices"), list):
            assert tuple(f"/dev/neuron{i}" for i in container.chips) == tuple(listed["neuron_devices"])
        elif listed.get("neuron_devices"):  # "ALL (ECS-managed)"
            assert container.neuron_all
        if "gpus" in listed:
            assert container.gpus == listed["gpus"]


# --- artifacts in other formats: raw -> clear errors; converted -> the rules' verdict -------------------

INTEGER_MEMBERS = frozenset({"containerPort", "hostPort", "cpu", "memory", "memoryReservation"})


def substitute(value: Any, values: dict[str, str], key: str = "") -> Any:
    """Fill ``${NAME}`` placeholders as a template engine would: numbers where the API wants integers
    (the template writes those unquoted), text everywhere else."""
    if isinstance(value, dict):
        return {k: substitute(v, values, k) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values, key) for v in value]
    if isinstance(value, str):
        filled = re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m[1], m[0]), value)
        if key in INTEGER_MEMBERS and filled != value and filled.isdigit():
            return int(filled)
        return filled
    return value


# CloudFormation spells these members differently from the ECS API.
_CFN_NAMES = {"EFSVolumeConfiguration": "efsVolumeConfiguration", "FilesystemId": "fileSystemId"}
_CFN_MAPS = {"Options", "DockerLabels"}  # user keys: keep as they are


def from_cloudformation(resource: dict[str, Any]) -> dict[str, Any]:
    """An ``AWS::ECS::TaskDefinition`` resource -> RegisterTaskDefinition input, Refs from the defaults."""
    defaults = resource.get("Parameters_defaults", {})

    def convert(value: Any, *, keep_keys: bool = False) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"}:
                return defaults.get(value["Ref"], f"<{value['Ref']}>")
            if set(value) == {"Fn::GetAtt"}:
                return f"arn:aws:iam::123456789012:role/{value['Fn::GetAtt'][0]}"
            return {
                (key if keep_keys else _CFN_NAMES.get(key, key[:1].lower() + key[1:])): convert(
                    item, keep_keys=key in _CFN_MAPS
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [convert(item) for item in value]
        return value

    return convert(resource["Properties"])


def from_batch(job: dict[str, Any], family: str) -> dict[str, Any]:
    """An AWS Batch container job definition -> the ECS task definition Batch registers for it."""
    props = job["containerProperties"]
    container = {
        "name": "default",
        "image": props["image"],
        "cpu": props["vcpus"] * 1024,
        "memory": props["memory"],
        "essential": True,
    }
    for key in ("command", "linuxParameters", "mountPoints", "resourceRequirements"):
        if key in props:
            container[key] = props[key]
    task = {"family": family, "containerDefinitions": [container]}
    if "volumes" in props:
        task["volumes"] = props["volumes"]
    return task


@pytest.mark.parametrize("number", ["005", "020"])
def test_cloudformation_artifacts(number: str) -> None:
    resource = artifact(number)["task_definition"]
    raw = validate_task_definition(resource)
    assert {i.rule for i in raw.errors} == {"unknown-key", "missing-required"}
    assert ("unknown-key", "$.Properties") in {(i.rule, i.path) for i in raw.errors}
    converted = validate_task_definition(from_cloudformation(resource))
    assert converted.valid, converted.errors
    assert converted.spec is not None
    if number == "005":  # with the template's parameter defaults
        assert (converted.spec.cpu, converted.spec.memory, converted.spec.chips) == (10240, 32768, (0,))
        assert converted.spec.network_mode == "awsvpc" and converted.spec.tcp_ports == ()
    else:
        assert converted.spec.compatibilities == {"FARGATE", "MANAGED_INSTANCES"}
        assert (converted.spec.cpu, converted.spec.memory) == (256, 512)


def test_batch_job_definition_011() -> None:
    job = artifact("011")["task_definition"]
    raw = validate_task_definition(job)
    assert {(i.rule, i.path) for i in raw.errors} == {
        ("missing-required", "$.family"),
        ("missing-required", "$.containerDefinitions"),
        ("unknown-key", "$.variant_inferentia"),
        ("unknown-key", "$.variant_gpu"),
    }
    inf1 = validate_task_definition(from_batch(job["variant_inferentia"], "sr-inf1")).spec
    gpu = validate_task_definition(from_batch(job["variant_gpu"], "sr-gpu")).spec
    assert inf1 is not None and gpu is not None
    assert (inf1.cpu, inf1.memory, inf1.neuron_mode, inf1.chips) == (4096, 7000, NeuronMode.MANUAL, (0,))
    assert (gpu.cpu, gpu.memory, gpu.gpus, gpu.neuron_mode) == (4096, 7000, 1, NeuronMode.NONE)


def test_text_fragment_010(tmp_path: Path) -> None:
    data = artifact("010")["task_definition"]
    path = tmp_path / "010.json"
    path.write_text(data["raw_text"])
    (issue,) = read_task_definition(path).errors
    assert issue.rule == "not-json" and issue.path == "$" and "line 1 column" in issue.message
    wrapped = tmp_path / "010-wrapped.json"  # even inside braces, the literal "..." stops it
    wrapped.write_text("{" + data["raw_text"].rstrip().rstrip(",") + "}")
    (issue,) = read_task_definition(wrapped).errors
    assert issue.rule == "not-json" and "line 19 column 9" in issue.message
    intent = validate_task_definition(data["parsed_intent"])
    assert {(i.rule, i.path) for i in intent.errors} == {
        ("missing-required", "$.family"),
        ("missing-required", "$.containerDefinitions"),
        ("unknown-key", "$.linuxParameters"),
    }


def test_placeholders_substituted_make_016_valid() -> None:
    """The corpus's "valid after substitution", checked: with the template's values filled in it is."""
    values = {
        "DDN_FLASK_HTTP_PORT": "8080",
        "DDN_FLASK_GRPC_PORT": "8081",
        "DDN_TRITON_HTTP_PORT": "8000",
        "DDN_TRITON_GRPC_PORT": "8001",
    }
    spec = validate_task_definition(substitute(artifact("016")["task_definition"], values)).spec
    assert spec is not None and (spec.cpu, spec.memory, spec.gpus, spec.tcp_ports) == (2048, 8192, 1, ())


def test_cdk_defaults_make_007_and_017_valid() -> None:
    for number in ("007", "017"):
        doc = dict(artifact(number)["task_definition"], family=f"cdk-{number}", networkMode="bridge")
        assert validate_task_definition(doc).valid, number


def test_015_stays_invalid_after_substitution() -> None:
    doc = substitute(artifact("015")["task_definition"], {"local.container_port": "8000"})
    doc["family"] = "vllm"
    validation = validate_task_definition(doc)
    assert [(i.rule, i.path) for i in validation.errors] == [("memory-below-reservation", f"{C0}.memory")]


def test_023_with_what_ecs_needs_is_valid() -> None:
    doc = dict(
        artifact("023")["task_definition"],
        family="neuron",
        requiresCompatibilities=["MANAGED_INSTANCES"],
        networkMode="awsvpc",
        cpu="4096",
        memory="16384",
    )
    spec = validate_task_definition(doc).spec
    assert spec is not None and spec.neuron_mode is NeuronMode.MANAGED
