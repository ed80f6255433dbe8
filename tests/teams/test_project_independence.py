"""Adding or removing a project leaves every other project's templates byte-identical.

The ``overlap`` synth is the example plus ``churn-eu``; without churn-eu's file
it is the example. So churn's templates in both must be the same bytes: a
removed project (or a new one) changes only its own stacks and the shared ones.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import OVERLAPPING
from tests.synth import Synthesized


def template_files(synth: Synthesized, project: str) -> dict[str, bytes]:
    """Raw template bytes of the project's stacks, by stack name."""
    found = {}
    for stage_dir in sorted(Path(synth.outdir).glob("assembly-*")):
        manifest = json.loads((stage_dir / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            name = artifact["properties"]["stackName"]
            if f"-{project}-" in name and f"-{OVERLAPPING}-" not in name:
                found[name] = (stage_dir / artifact["properties"]["templateFile"]).read_bytes()
    return found


def test_another_projects_templates_are_byte_identical(example, overlap):
    alone, beside = template_files(example, "churn"), template_files(overlap, "churn")
    assert len(alone) == 7 and sorted(alone) == sorted(beside)
    changed = sorted(name for name in alone if alone[name] != beside[name])
    assert changed == []


def test_the_shared_stacks_do_change(example, overlap):
    """The comparison can fail: the registry-independent shared stacks list churn-eu's grants."""
    shared = "mlops-dev-baseline"
    assert json.dumps(example.templates[shared]) != json.dumps(overlap.templates[shared])
    assert OVERLAPPING in json.dumps(overlap.templates[shared])
