"""Synth is deterministic and offline: a fresh process gives byte-identical templates."""

from __future__ import annotations

import os
import subprocess
import sys

from mlops_platform.release_manifest import write_manifest
from tests.synth import ROOT


def test_two_synths_give_identical_templates(example, tmp_path):
    outdir = tmp_path / "cdk.out"
    releases_dir = tmp_path / "releases"
    for (project, stage), manifest in example.releases.items():
        write_manifest(releases_dir, project, stage, manifest)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "CDK_OUTDIR": str(outdir),
            "MLOPS_RELEASES_DIR": str(releases_dir),
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONHASHSEED": "random",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        }
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first = sorted(p.relative_to(example.outdir) for p in example.outdir.rglob("*.template.json"))
    second = sorted(p.relative_to(outdir) for p in outdir.rglob("*.template.json"))
    assert first == second and first
    for rel in first:
        assert (example.outdir / rel).read_bytes() == (outdir / rel).read_bytes(), rel
