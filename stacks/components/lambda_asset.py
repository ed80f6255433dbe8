"""Lambda asset directories that bundle a shared package next to thin handlers, staged once per content."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STAGING = REPO / ".cache" / "lambda-assets"


def _sources(handlers: Path, package: str) -> dict[str, bytes]:
    """Asset path -> content: every ``*.py`` of ``handlers`` at the root, ``package`` under its own path.

    Parent packages get an empty ``__init__.py``, so the handler imports only
    the shared package, not what the parent's real ``__init__`` would load.
    """
    files = {path.name: path.read_bytes() for path in sorted(handlers.glob("*.py"))}
    parts = package.split(".")
    for depth in range(1, len(parts)):
        files["/".join(parts[:depth]) + "/__init__.py"] = b""
    package_dir = REPO.joinpath(*parts)
    for path in sorted(package_dir.glob("*.py")):
        files["/".join(parts) + "/" + path.name] = path.read_bytes()
    return files


def bundled_asset(handlers: Path, package: str, *, staging: Path = STAGING) -> Path:
    """A directory holding ``handlers`` plus ``package`` (dotted name), named by the hash of its content.

    Deterministic and offline: the same sources give the same directory (and
    the same asset hash); a directory that exists already is reused, so
    parallel synths share it. Written to a temporary directory first and
    renamed into place, so no reader sees half an asset.
    """
    files = _sources(handlers, package)
    digest = hashlib.sha256()
    for name, content in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    target = staging / f"{handlers.name}-{digest.hexdigest()[:16]}"
    if target.is_dir():
        return target
    staging.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{handlers.name}-", dir=staging))
    try:
        for name, content in files.items():
            path = scratch / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        try:
            os.rename(scratch, target)
        except OSError:
            if not target.is_dir():  # another process won the rename: theirs is identical
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
