"""Documents handed to the wrong command, recognised so that the error says what to pass instead.

A user with an ECS workload often has it in another shape: a Kubernetes manifest, a CloudFormation
template or its ``AWS::ECS::TaskDefinition`` properties (PascalCase), Terraform's ``container_definitions``
array or its ``aws_ecs_task_definition`` resource; or they pass a neuron-sim scenario where a task
definition goes, or the other way round. :func:`recognise` (parsed data) and :func:`recognise_text`
(text that is not JSON) name the kind; :func:`task_definition_hint` and :func:`scenario_hint` say, in one
sentence, what it is and what the command takes instead. Nothing here decides validity: the validators
still report every problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

KUBERNETES = "kubernetes"
CLOUDFORMATION_TEMPLATE = "cloudformation-template"
CLOUDFORMATION_PROPERTIES = "cloudformation-properties"
TERRAFORM_CONTAINERS = "terraform-container-definitions"
TERRAFORM_RESOURCE = "terraform-resource"
SCENARIO = "scenario"
TASK_DEFINITION = "task-definition"
WRONG_DOCUMENT = "wrong-document"  # the rule name of an issue that says the document is another kind

ECS_JSON = "ECS task-definition JSON (what `aws ecs describe-task-definition` prints or register-task-definition takes)"
_TEXT_LIMIT = 200_000  # characters of a non-JSON file looked at; manifests and templates say what they are early

_SCENARIO_KEYS = frozenset({"workloads", "cluster", "task_definitions"})
_CONTAINER_KEYS = frozenset({"name", "image"})


def recognise(doc: object) -> str | None:
    """The kind of a parsed JSON/YAML document, or None when it is none of the kinds this module knows."""
    if isinstance(doc, str):  # a text file that YAML read as one string (a Terraform file)
        return recognise_text(doc)
    if isinstance(doc, list):
        if doc and all(isinstance(item, Mapping) and set(item) >= _CONTAINER_KEYS for item in doc[:20]):
            return TERRAFORM_CONTAINERS
        return None
    if not isinstance(doc, Mapping):
        return None
    keys = {key for key in doc if isinstance(key, str)}
    if {"apiVersion", "kind"} <= keys and isinstance(doc.get("kind"), str):
        return KUBERNETES
    if "AWSTemplateFormatVersion" in keys or _cloudformation_resources(doc.get("Resources")):
        return CLOUDFORMATION_TEMPLATE
    if doc.get("Type") == "AWS::ECS::TaskDefinition" or (
            "ContainerDefinitions" in keys and not keys & {"family", "containerDefinitions", "taskDefinition"}):
        return CLOUDFORMATION_PROPERTIES
    resource = doc.get("resource")
    if "container_definitions" in keys or (isinstance(resource, Mapping) and "aws_ecs_task_definition" in resource):
        return TERRAFORM_RESOURCE
    if "containerDefinitions" in keys or isinstance(doc.get("taskDefinition"), Mapping):
        return TASK_DEFINITION
    if len(keys & _SCENARIO_KEYS) >= 2:
        return SCENARIO
    return None


def _cloudformation_resources(resources: object) -> bool:
    return isinstance(resources, Mapping) and any(
        isinstance(r, Mapping) and isinstance(r.get("Type"), str) and r["Type"].startswith(("AWS::", "Custom::"))
        for r in resources.values())


_YAML_KEY = r"(?m)^{key}\s*:"
_HCL_RESOURCE = re.compile(r'resource\s+"aws_ecs_task_definition"')


def recognise_text(text: str) -> str | None:
    """The kind of a text that is not JSON (a YAML manifest or template, a Terraform file), or None."""
    head = text[:_TEXT_LIMIT]
    if _HCL_RESOURCE.search(head):
        return TERRAFORM_RESOURCE
    if "AWS::ECS::TaskDefinition" in head or re.search(_YAML_KEY.format(key="AWSTemplateFormatVersion"), head):
        return CLOUDFORMATION_TEMPLATE
    if re.search(_YAML_KEY.format(key="apiVersion"), head) and re.search(_YAML_KEY.format(key="kind"), head):
        return KUBERNETES
    if sum(bool(re.search(_YAML_KEY.format(key=key), head)) for key in _SCENARIO_KEYS) >= 2:
        return SCENARIO
    return None


def describe(kind: str, doc: object = None) -> str:
    """A kind in words: "a Kubernetes Pod manifest", "a CloudFormation template", ..."""
    if kind == KUBERNETES:
        name = doc.get("kind") if isinstance(doc, Mapping) else None
        if isinstance(doc, str):
            found = re.search(r"(?m)^kind\s*:\s*[\"']?([A-Za-z]+)", doc[:_TEXT_LIMIT])
            name = found.group(1) if found else None
        return f"a Kubernetes {name} manifest" if isinstance(name, str) and name.isidentifier() else \
            "a Kubernetes manifest"
    return {
        CLOUDFORMATION_TEMPLATE: "a CloudFormation template",
        CLOUDFORMATION_PROPERTIES: "a CloudFormation AWS::ECS::TaskDefinition (PascalCase keys such as Family "
                                   "and ContainerDefinitions)",
        TERRAFORM_CONTAINERS: "a list of container definitions (Terraform's container_definitions)",
        TERRAFORM_RESOURCE: "a Terraform aws_ecs_task_definition resource",
        SCENARIO: "a neuron-sim scenario",
        TASK_DEFINITION: "an ECS task definition",
    }[kind]


_WRAP = '{"family": "NAME", "containerDefinitions": [...]}'
_TASK_DEFINITION_ADVICE = {
    KUBERNETES: f"pass {ECS_JSON}; containers go in containerDefinitions, a Neuron chip in "
                "linuxParameters.devices or a NeuronDevice resourceRequirement",
    CLOUDFORMATION_TEMPLATE: f"pass {ECS_JSON}, or the AWS::ECS::TaskDefinition resource's Properties with "
                             "camelCase keys (Family -> family, ContainerDefinitions -> containerDefinitions)",
    CLOUDFORMATION_PROPERTIES: f"ECS's API spells the keys in camelCase (family, containerDefinitions, ...): "
                               f"rename them, or pass {ECS_JSON}",
    TERRAFORM_CONTAINERS: f"wrap it as {_WRAP} with the task-level fields (cpu, memory, "
                          f"requiresCompatibilities), or pass {ECS_JSON}",
    TERRAFORM_RESOURCE: f"pass {ECS_JSON}, or its container_definitions array wrapped as {_WRAP}",
    SCENARIO: "simulate it with `neuron-sim run FILE`; `validate` takes one ECS task-definition JSON file",
}


def task_definition_hint(kind: str | None, doc: object = None) -> str | None:
    """What to pass instead, where an ECS task definition was expected; None when ``kind`` is None or a
    task definition."""
    if kind not in _TASK_DEFINITION_ADVICE:
        return None
    return f"this is {describe(kind, doc)}, not an ECS task definition: {_TASK_DEFINITION_ADVICE[kind]}"


def scenario_hint(kind: str | None, doc: object = None) -> str | None:
    """What to pass instead, where a neuron-sim scenario was expected; None when ``kind`` is None or a
    scenario."""
    if kind is None or kind == SCENARIO:
        return None
    if kind == TASK_DEFINITION:
        advice = ("check it with `neuron-sim validate FILE`, or name it under task_definitions: in a scenario "
                  "file (see docs/scenarios.md)")
    else:
        advice = ("a scenario is YAML with name, duration, task_definitions (ECS task-definition JSON files), "
                  "cluster and workloads (see docs/scenarios.md); `neuron-sim validate FILE` says what a "
                  "task definition takes")
    return f"this is {describe(kind, doc)}, not a neuron-sim scenario: {advice}"
