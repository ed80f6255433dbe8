"""Project isolation rules: what keeps one project's policies off another project's resources.

- ``MLOps-ProjectNameAsPrefix``: project names may contain hyphens, so a
  resource pattern that follows a project's name with ``*`` in the same name
  segment (``mlops-churn-*``, ``/Endpoints/mlops-churn-prod*``) also matches
  the resources of a project whose name extends it (``churn-eu``). IAM
  matches ``*`` across every character, hyphens included (IAM User Guide,
  "IAM JSON policy elements: Resource", wildcards). A pattern is accepted when
  the name is a complete segment of it before any wildcard (``projects/churn/*``),
  or when its statement also conditions on the ``mlops:project`` tag. The
  projects are the values of the ``mlops:project`` tag in the stage.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlops_platform.guardrails.core import Finding, GuardrailSettings, StackTemplate, StageTemplates, as_list

RULES = {
    "MLOps-ProjectNameAsPrefix": (
        "A resource pattern must name its project as a complete segment (or condition on the mlops:project tag): "
        "'<name>*' or '<name>-*' also matches a project whose name extends it."
    ),
}
PROJECT_TAG = "mlops:project"
# Characters that end a name segment in ARNs and S3 keys; a project name never contains them.
_SEGMENT_END = "/:"
# Resource types whose properties hold policy documents, and where.
_DOCUMENTS = {
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
}


def check(stage: StageTemplates, settings: GuardrailSettings) -> Iterator[Finding]:
    projects = sorted(_projects(stage), key=lambda p: (-len(p), p))
    if not projects:
        return
    for stack in stage.stacks:
        for logical_id, location, statement in _statements(stack):
            if statement.get("Effect") != "Allow" or _tag_scoped(statement):
                continue
            for j, value in enumerate(as_list(statement.get("Resource"))):
                pattern = stack.render(value)
                # Longest first: a pattern bound by churn-eu's prefix is churn-eu's, not a trap of churn's.
                for project in projects:
                    kind = _classify(pattern, project)
                    if kind == "bound":
                        break
                    if kind == "trap":
                        yield Finding(
                            "MLOps-ProjectNameAsPrefix",
                            logical_id,
                            f"{location}.Resource[{j}]",
                            f"'{pattern}' names project {project} as a prefix: "
                            f"a project named '{project}-…' would match it too",
                            stack.path,
                        )
                        break


def prefix_trap(pattern: str, project: str) -> bool:
    """Whether ``pattern`` could match another project's names through ``project``'s name.

    True when the name occurs with a ``*`` after it in the same segment and no
    earlier occurrence of the name is a complete segment.
    """
    return _classify(pattern, project) == "trap"


def _classify(pattern: str, project: str) -> str | None:
    """``bound`` (the name is a complete segment before any ``*``), ``trap``, or None (neither)."""
    for match in re.finditer(rf"(?<![A-Za-z0-9]){re.escape(project)}", pattern):
        rest = pattern[match.end() :]
        segment = re.split(f"[{re.escape(_SEGMENT_END)}]", rest, maxsplit=1)[0]
        if segment == "" and rest[:1] in ("", *_SEGMENT_END):
            return "bound"  # what follows is this project's alone
        if "*" in segment:
            return "trap"
    return None


def _projects(stage: StageTemplates) -> set[str]:
    found: set[str] = set()
    for stack in stage.stacks:
        for resource in stack.resources.values():
            for tag in as_list(resource.get("Properties", {}).get("Tags")):
                if isinstance(tag, dict) and tag.get("Key") == PROJECT_TAG and isinstance(tag.get("Value"), str):
                    found.add(tag["Value"])
    return found


def _statements(stack: StackTemplate) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for logical_id, resource in stack.resources.items():
        props = resource.get("Properties", {})
        documents: list[tuple[str, Any]] = [(f, props.get(f)) for f in _DOCUMENTS.get(resource.get("Type", ""), ())]
        if resource.get("Type") == "AWS::IAM::Role":
            documents += [
                (f"Policies[{i}].PolicyDocument", p.get("PolicyDocument"))
                for i, p in enumerate(as_list(props.get("Policies")))
            ]
        for where, document in documents:
            if isinstance(document, dict):
                for i, statement in enumerate(as_list(document.get("Statement"))):
                    if isinstance(statement, dict):
                        yield logical_id, f"{where}.Statement[{i}]", statement


def _tag_scoped(statement: dict[str, Any]) -> bool:
    keys = [name for block in (statement.get("Condition") or {}).values() for name in (block or {})]
    return any(key.lower().endswith(f"tag/{PROJECT_TAG}") for key in keys)
