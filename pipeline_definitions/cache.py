"""A content-addressed on-disk cache of pipeline definitions, so warm synths skip the SDK.

``definition_for(inputs, cache_dir)`` returns the definition JSON for ``inputs``.
The cache key is a sha256 over:

- ``inputs.to_json()`` (canonical JSON of every field),
- the bytes of the three step scripts (``SCRIPTS_DIR``),
- the bytes of this package's builder modules (``*.py`` next to this file),
- the installed versions of the SageMaker SDK distributions and botocore, read
  with ``importlib.metadata`` (which does not import them).

A hit reads ``<cache_dir>/tabular-<key>.json`` and never imports ``sagemaker``
(that import alone costs seconds). A miss imports ``tabular`` lazily, builds,
and writes the file atomically (temporary file in the same directory, then
rename), so concurrent synths and interrupted writes never leave a partial
file. Old entries are not pruned: each is a few KB; delete the directory to
reclaim space.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from importlib import metadata
from pathlib import Path

from mlops_platform import catalog

from .inputs import PipelineInputs
from .sources import SCRIPTS_DIR, STEP_SCRIPTS

__all__ = ["SCRIPTS_DIR", "cache_key", "cache_path", "definition_for"]

# Bump when the cache file format or key recipe changes.
KEY_VERSION = "tabular-definition-v1"
PACKAGE_DIR = Path(__file__).resolve().parent
# Distributions whose code shapes the definition (the SDK is split in several).
SDK_DISTRIBUTIONS = (
    "sagemaker",
    "sagemaker-core",
    "sagemaker-mlops",
    "sagemaker-serve",
    "sagemaker-train",
    "botocore",
)


def _distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _key_material(inputs: PipelineInputs):
    yield "key-version", KEY_VERSION.encode()
    yield "inputs", inputs.to_json().encode()
    for name in STEP_SCRIPTS:
        yield f"script:{name}", (SCRIPTS_DIR / name).read_bytes()
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        yield f"builder:{path.name}", path.read_bytes()
    # The instance facts the inputs are validated against live in the catalogue.
    yield "catalog", Path(catalog.__file__).read_bytes()
    for name in SDK_DISTRIBUTIONS:
        yield f"dist:{name}", _distribution_version(name).encode()


def cache_key(inputs: PipelineInputs) -> str:
    """sha256 hex digest identifying the definition ``inputs`` would build."""
    digest = hashlib.sha256()
    for label, data in _key_material(inputs):
        # Length-prefix every part so no two different inputs concatenate alike.
        for part in (label.encode(), data):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def cache_path(inputs: PipelineInputs, cache_dir: Path | str) -> Path:
    return Path(cache_dir) / f"tabular-{cache_key(inputs)}.json"


def definition_for(inputs: PipelineInputs, cache_dir: Path | str) -> str:
    """Return the pipeline definition JSON for ``inputs``, from the cache when possible."""
    path = cache_path(inputs, cache_dir)
    try:
        text = path.read_text(encoding="utf-8")
        if text:
            return text
    except FileNotFoundError:
        pass

    # Imported here, not at module level: only a miss should pay for the SDK.
    from .tabular import build_definition

    text = build_definition(inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return text
