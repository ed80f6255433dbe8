"""Where the step scripts live, and the deterministic training sourcedir archive.

The caller (the CDK stack) uploads the step code as assets and passes their S3
URIs in ``PipelineInputs``:

- ``ingest.py``, ``query.py``, ``preprocess.py`` and ``evaluate.py`` as single
  files (``script_path``);
- the training code as a ``sourcedir.tar.gz`` with ``train.py`` at its root
  (``build_train_source_tarball``): the SageMaker training toolkit downloads
  ``sagemaker_submit_directory`` and extracts it as a gzip tarball.

The archive is byte-identical for identical scripts (sorted entries, zeroed
timestamps and owners, fixed modes, no gzip file name or time), so the CDK
asset hash only changes when the code does. Imports nothing from SageMaker.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts" / "tabular"
SAMPLE_DATA = Path(__file__).resolve().parent / "sample_data" / "churn.csv"

STEP_SCRIPTS = ("ingest.py", "query.py", "preprocess.py", "train.py", "evaluate.py")
TRAIN_ENTRY_POINT = "train.py"
TRAIN_SOURCE_FILES = ("train.py",)


def script_path(name: str) -> Path:
    """Path of one step script, e.g. ``script_path("preprocess.py")``."""
    if name not in STEP_SCRIPTS:
        raise ValueError(f"unknown step script {name!r}; expected one of {STEP_SCRIPTS}")
    return SCRIPTS_DIR / name


def train_source_tarball_bytes() -> bytes:
    """The training sourcedir archive as bytes (deterministic)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(TRAIN_SOURCE_FILES):
            data = (SCRIPTS_DIR / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    # mtime=0 and no filename keep the gzip header stable across builds.
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0) as archive:
        archive.write(raw.getvalue())
    return packed.getvalue()


def build_train_source_tarball(dest_dir: Path | str) -> Path:
    """Write ``sourcedir.tar.gz`` into ``dest_dir`` (atomically) and return its path.

    Give the directory its own folder if you hand it to a CDK asset: a file
    asset hashes only the file, a directory asset would zip the folder.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "sourcedir.tar.gz"
    data = train_source_tarball_bytes()
    if target.exists() and target.read_bytes() == data:
        return target
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".sourcedir-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
