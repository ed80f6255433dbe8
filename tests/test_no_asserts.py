"""Code that synth runs has no ``assert``: cdk.json runs the app with ``python -O``, which strips them."""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNTH_CODE = ["app.py", "stacks", "mlops_platform", "pipeline_definitions", "lambda", "hyperpod_lifecycle", "scripts"]


def test_cdk_json_runs_the_app_optimised():
    """The reason for the rule below; if -O goes, this test and the rule can go together."""
    assert " -O " in json.loads((ROOT / "cdk.json").read_text())["app"]


def test_no_assert_statements():
    offenders = []
    for entry in SYNTH_CODE:
        paths = [ROOT / entry] if entry.endswith(".py") else sorted((ROOT / entry).glob("**/*.py"))
        for path in paths:
            tree = ast.parse(path.read_text(), filename=str(path))
            offenders += [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Assert)]
    assert offenders == [], f"raise a real error instead of assert (stripped by -O): {', '.join(offenders)}"
