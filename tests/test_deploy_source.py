"""The deploy pipeline's source bundle holds the repository's code and config, never local state."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from stacks.deploy import SOURCE_EXCLUDES

ROOT = Path(__file__).resolve().parent.parent


def test_everything_git_ignores_is_left_out_of_the_bundle():
    """A local venv or cache in the bundle would make the asset hash differ per machine (and weigh megabytes)."""
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()]
    for pattern in (p for p in ignored if p and not p.startswith("#")):
        sample = pattern.replace("*", "x")
        # "**/x" excludes x at any depth, the top level included
        assert any(fnmatch.fnmatch(sample, exclude.removeprefix("**/")) for exclude in SOURCE_EXCLUDES), pattern


def test_the_staged_bundle_has_no_virtual_environment(example):
    staged = [p for p in example.outdir.glob("asset.*") if p.is_dir() and (p / "app.py").exists()]
    assert len(staged) == 1
    assert not [p.name for p in staged[0].iterdir() if p.name.startswith((".venv", "node_modules", "cdk.out"))]
