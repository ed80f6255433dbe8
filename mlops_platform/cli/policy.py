"""The approval Lambdas' pure modules, loaded by path, and the policy document built from config.

``lambda/approval`` is a Lambda asset directory, not a package (``lambda`` is a
Python keyword), so the CLI loads ``policy.py`` and ``releases.py`` from it by
file path: the CLI and the guard evaluate approvals with the very same code.

:func:`load_policy` evaluates with the same ``APPROVAL_POLICY`` document the
approval Lambdas of the project get (``mlops_platform.approval_policy``).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops_platform.approval_policy import policy_document
from mlops_platform.config import PlatformConfig

APPROVAL_DIR = Path(__file__).resolve().parents[2] / "lambda" / "approval"
# Modules of lambda/approval with no sibling imports (safe to load on their own).
LOADABLE = ("aws", "policy", "releases")


@functools.cache
def load_approval_module(name: str) -> ModuleType:
    """Load ``lambda/approval/<name>.py`` as module ``mlops_approval_<name>``."""
    if name not in LOADABLE:
        raise ValueError(f"{name} is not one of the stand-alone approval modules ({', '.join(LOADABLE)})")
    path = APPROVAL_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the CLI from a checkout of the platform repository")
    module_name = f"mlops_approval_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before executing so dataclasses can resolve the module's annotations.
    sys.modules[module_name] = module
    # No __pycache__ inside the Lambda asset directory: it would change the asset hash.
    previous, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        sys.dont_write_bytecode = previous
    return module


def load_policy(config: PlatformConfig, project: str) -> Any:
    """The project's policy as a ``policy.Policy`` of the loaded Lambda module."""
    return load_approval_module("policy").Policy.from_dict(policy_document(config, project))
