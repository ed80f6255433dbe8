"""The approval Lambda asset: thin handlers plus the approval core package, importable on their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stacks.components.lambda_asset import bundled_asset
from stacks.governance import APPROVAL_CORE, APPROVAL_HANDLERS


def test_the_asset_holds_the_handlers_and_the_core_package_and_nothing_else(tmp_path):
    asset = bundled_asset(APPROVAL_HANDLERS, APPROVAL_CORE, staging=tmp_path)
    names = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
    core = sorted(f"mlops_platform/approval/{p.name}" for p in Path("mlops_platform/approval").glob("*.py"))
    assert names == sorted(["guard.py", "notify.py", "rejected.py", "mlops_platform/__init__.py", *core])
    # The parent package is an empty marker: the handlers never load config or CDK code.
    assert (asset / "mlops_platform" / "__init__.py").read_bytes() == b""


def test_every_handler_imports_from_the_asset_alone(tmp_path):
    """As the Lambda runtime does: the asset root on sys.path, no repository, no site-packages but boto3's."""
    asset = bundled_asset(APPROVAL_HANDLERS, APPROVAL_CORE, staging=tmp_path)
    probe = (
        "import os, sys; sys.path.insert(0, os.getcwd());"
        "import guard, notify, rejected, mlops_platform, mlops_platform.approval.policy as p;"
        "print(mlops_platform.__file__); print(p.__file__); print('pydantic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-B", "-c", probe], cwd=asset, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    parent, core, pydantic_loaded = result.stdout.split()
    assert Path(parent).resolve() == (asset / "mlops_platform" / "__init__.py").resolve()
    assert Path(core).resolve() == (asset / "mlops_platform" / "approval" / "policy.py").resolve()
    assert pydantic_loaded == "False"


def test_the_same_sources_give_the_same_directory_and_a_changed_source_a_new_one(tmp_path):
    first = bundled_asset(APPROVAL_HANDLERS, APPROVAL_CORE, staging=tmp_path)
    assert bundled_asset(APPROVAL_HANDLERS, APPROVAL_CORE, staging=tmp_path) == first
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "guard.py").write_text("x = 1\n")
    one = bundled_asset(handlers, APPROVAL_CORE, staging=tmp_path)
    (handlers / "guard.py").write_text("x = 2\n")
    assert bundled_asset(handlers, APPROVAL_CORE, staging=tmp_path) != one
