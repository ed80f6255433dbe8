"""What every guardrail rule reads: a stage's synthesized templates, with their references resolved.

Rules see what CloudFormation will get, not the constructs that produced it,
so a hand-written L1 resource is checked like an L2 one. References are
followed within a template (``Ref``, ``Fn::GetAtt``) and across the stage's
templates (``Fn::ImportValue`` of another stack's export); a value that cannot
be followed is reported by the rule as unverifiable, never passed.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One violated rule on one resource; ``template`` is the template file, ``detail`` says what is missing."""

    rule: str
    logical_id: str
    location: str
    detail: str = ""
    template: str = ""


@dataclass(frozen=True)
class GuardrailSettings:
    """What config allows that the rules would otherwise flag. Default: nothing."""

    reserved_concurrency: bool = False


@dataclass
class StackTemplate:
    """One synthesized template and the environment it deploys to."""

    path: str
    template: dict[str, Any]
    account: str = "123456789012"
    region: str = "us-east-1"

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.get("Resources", {})

    def of_type(self, type_: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == type_:
                yield logical_id, resource.get("Properties", {})

    def render(self, value: Any) -> str:
        """A template value as text: pseudo parameters filled in, other references as ``{ref:Id}`` markers."""
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float, bool)):
            return json.dumps(value)
        if isinstance(value, dict) and len(value) == 1:
            ((op, arg),) = value.items()
            if op == "Ref":
                pseudo = {
                    "AWS::Partition": "aws",
                    "AWS::Region": self.region,
                    "AWS::AccountId": self.account,
                    "AWS::URLSuffix": "amazonaws.com",
                }
                return pseudo.get(arg, f"{{ref:{arg}}}")
            if op == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return f"{{att:{name}.{attribute}}}"
            if op == "Fn::Join":
                separator, parts = arg
                return separator.join(self.render(p) for p in parts)
            if op == "Fn::ImportValue":
                return f"{{import:{self.render(arg)}}}"
        return "{unresolved}"


@dataclass(frozen=True)
class Resource:
    """A resource found by following a reference: the template it lives in, its id and body."""

    stack: StackTemplate
    logical_id: str
    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body.get("Type", ""))

    @property
    def properties(self) -> dict[str, Any]:
        return self.body.get("Properties", {})


@dataclass
class StageTemplates:
    """Every template of one CDK stage (one account and region)."""

    stacks: list[StackTemplate] = field(default_factory=list)

    @classmethod
    def from_paths(cls, paths: list[str]) -> StageTemplates:
        """Templates written by a synth, with account and region read from their assembly manifest."""
        environments: dict[str, tuple[str, str]] = {}
        for directory in sorted({str(Path(p).parent) for p in paths}):
            manifest = Path(directory) / "manifest.json"
            if not manifest.exists():
                continue
            for artifact in json.loads(manifest.read_text()).get("artifacts", {}).values():
                if artifact.get("type") != "aws:cloudformation:stack":
                    continue
                env = artifact.get("environment", "").removeprefix("aws://").split("/")
                template_file = str(Path(directory) / artifact["properties"]["templateFile"])
                if len(env) == 2:
                    environments[template_file] = (env[0], env[1])
        stacks = []
        for path in paths:
            account, region = environments.get(str(Path(path)), ("123456789012", "us-east-1"))
            stacks.append(StackTemplate(path, json.loads(Path(path).read_text()), account, region))
        return cls(stacks)

    def resolve(self, stack: StackTemplate, value: Any) -> Resource | None:
        """The resource a ``Ref``/``Fn::GetAtt``/``Fn::ImportValue`` points at; None for anything else."""
        if isinstance(value, dict) and len(value) == 1:
            ((op, arg),) = value.items()
            if op == "Ref" and isinstance(arg, str) and arg in stack.resources:
                return Resource(stack, arg, stack.resources[arg])
            if op == "Fn::GetAtt":
                name = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
                if name in stack.resources:
                    return Resource(stack, name, stack.resources[name])
            if op == "Fn::ImportValue":
                export = stack.render(arg)
                for other in self.stacks:
                    for output in other.template.get("Outputs", {}).values():
                        if other.render(output.get("Export", {}).get("Name")) == export:
                            return self.resolve(other, output.get("Value"))
        return None

    def same(self, stack: StackTemplate, value: Any, target: Resource) -> bool:
        """Whether ``value`` in ``stack`` refers to ``target``."""
        found = self.resolve(stack, value)
        return found is not None and found.stack is target.stack and found.logical_id == target.logical_id


# --------------------------------------------------------------------------- policy documents


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def matches(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM wildcard match (``*`` and ``?``)."""
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def allows_actions(statement: dict[str, Any], actions: tuple[str, ...]) -> set[str]:
    """The ``actions`` an Allow statement grants (``Action`` with wildcards; ``NotAction`` is not used here)."""
    if statement.get("Effect") != "Allow":
        return set()
    patterns = [a for a in as_list(statement.get("Action")) if isinstance(a, str)]
    return {a for a in actions if any(matches(p, a, case_sensitive=False) for p in patterns)}


def service_principals(stack: StackTemplate, statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return []
    return [stack.render(s) for s in as_list(principal.get("Service"))]


def aws_principals(stack: StackTemplate, statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return []
    return [stack.render(s) for s in as_list(principal.get("AWS"))]


def condition_values(stack: StackTemplate, statement: dict[str, Any], key: str) -> list[str]:
    """Values any operator of the statement's condition tests ``key`` against (keys are case-insensitive)."""
    found: list[str] = []
    for block in (statement.get("Condition") or {}).values():
        for name, values in (block or {}).items():
            if name.lower() == key.lower():
                found.extend(stack.render(v) for v in as_list(values))
    return found


def key_statements(key: Resource) -> list[dict[str, Any]]:
    return as_list(key.properties.get("KeyPolicy", {}).get("Statement"))


def identity_statements(stack: StackTemplate, role_id: str) -> Iterator[dict[str, Any]]:
    """Statements of every managed or inline policy the template attaches to role ``role_id``."""
    role = stack.resources.get(role_id, {})
    for policy in as_list(role.get("Properties", {}).get("Policies")):
        yield from as_list(policy.get("PolicyDocument", {}).get("Statement"))
    for _, props in [*stack.of_type("AWS::IAM::ManagedPolicy"), *stack.of_type("AWS::IAM::Policy")]:
        roles = [r.get("Ref") for r in as_list(props.get("Roles")) if isinstance(r, dict)]
        if role_id in roles:
            yield from as_list(props.get("PolicyDocument", {}).get("Statement"))
