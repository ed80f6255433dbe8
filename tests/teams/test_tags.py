"""Every taggable resource carries ``mlops:project`` (in a project's stacks), ``mlops:stage`` and ``cost-center``.

Which resource types take tags is read from the CloudFormation resource schemas
cfn-lint ships (``tagging.taggable``), per the stack's region, so a new resource
type is covered without a list here.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import cfnlint

from mlops_platform.config import COST_CENTER_TAG
from mlops_platform.naming import PROJECT_TAG, STAGE_TAG
from tests.conftest import OVERLAPPING
from tests.synth import Synthesized, example_platform

SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
PLATFORM_COST_CENTER = example_platform()["tags"][COST_CENTER_TAG]
COST_CENTERS = {"churn": PLATFORM_COST_CENTER, OVERLAPPING: "ml-churn-eu"}


@cache
def taggable(region: str, type_: str) -> bool:
    providers = json.loads((SCHEMAS / "providers" / f"{region}.json").read_text())
    if type_ not in providers:
        return False  # custom resources and CDK metadata
    schema = json.loads((SCHEMAS / "resources" / f"{providers[type_]}.json").read_text())
    return bool((schema.get("tagging") or {}).get("taggable", "Tags" in schema.get("properties", {})))


def tags_of(resource: dict) -> dict[str, str]:
    tags = resource.get("Properties", {}).get("Tags")
    if isinstance(tags, dict):
        return tags
    return {t.get("Key", t.get("key")): t.get("Value", t.get("value")) for t in tags or []}


def project_of(stack: str) -> str | None:
    """The project whose stack this is (``mlops-<role>-<project>-<part>``); the longest name that fits wins."""
    found = [p for p in COST_CENTERS if f"-{p}-" in stack]
    return max(found, key=len) if found else None


def missing_tags(synth: Synthesized) -> list[str]:
    problems = []
    for stack, template in synth.templates.items():
        role = synth.stage_of[stack].lower()
        project = project_of(stack)
        expected = {STAGE_TAG: role, COST_CENTER_TAG: COST_CENTERS.get(project or "", PLATFORM_COST_CENTER)}
        if project:
            expected[PROJECT_TAG] = project
        region = example_platform()["accounts"][role]["region"]
        for logical, resource in template["Resources"].items():
            if not taggable(region, resource["Type"]):
                continue
            tags = tags_of(resource)
            wrong = {k: tags.get(k) for k, v in expected.items() if tags.get(k) != v}
            if wrong or (not project and PROJECT_TAG in tags):
                problems.append(f"{stack}/{logical} ({resource['Type']}): {wrong or tags}")
    return problems


def test_every_taggable_resource_of_two_projects_is_tagged(overlap):
    counted = sum(
        taggable(example_platform()["accounts"][overlap.stage_of[s].lower()]["region"], r["Type"])
        for s, t in overlap.templates.items()
        for r in t["Resources"].values()
    )
    assert counted > 250  # the check ran over the whole platform
    assert missing_tags(overlap) == []


def test_the_check_sees_a_missing_tag(overlap):
    stack = next(s for s in overlap.templates if project_of(s) == OVERLAPPING)
    templates = json.loads(json.dumps(overlap.templates))
    resource = next(r for r in templates[stack]["Resources"].values() if r["Type"] == "AWS::IAM::Role")
    resource["Properties"]["Tags"] = [t for t in resource["Properties"]["Tags"] if t["Key"] != COST_CENTER_TAG]
    broken = Synthesized(outdir=overlap.outdir, templates=templates, stage_of=overlap.stage_of)
    (problem,) = missing_tags(broken)
    assert stack in problem and COST_CENTER_TAG in problem
