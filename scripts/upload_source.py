"""Upload the committed source of HEAD as the bundle the governance deploy pipeline runs release deploys from.

``make upload-source [PROFILE=<governance profile>]``; the CI deploy does the
same after deploying governance. The bundle is ``git archive`` of HEAD (what
is committed, nothing else: no venv, no local releases, no uncommitted edits),
written to ``s3://<governance CDK assets bucket>/<prefix>/platform-source/source.zip``
with the commit id as object metadata (``commit``), through the governance
account's file-publishing bootstrap role (what CI's deploy role may assume). A working tree with
uncommitted changes is refused: a release deploy must run what main deployed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROFILE = re.compile(r"[A-Za-z0-9_.@+-]{1,128}")


class Refused(Exception):
    """The source cannot be uploaded as it is; the message says why."""


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def committed_bundle(repo: Path, out: Path) -> str:
    """``git archive`` of HEAD into ``out``; returns the commit id. Refused on a dirty working tree."""
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=repo).strip()
    if dirty:
        raise Refused(f"the working tree has uncommitted changes ({len(dirty.splitlines())} file(s)): commit first")
    commit = git("rev-parse", "HEAD", cwd=repo).strip()
    git("archive", "--format=zip", "-o", str(out), commit, cwd=repo)
    return commit


def upload(s3: Any, bucket: str, key: str, path: Path, commit: str) -> str:
    """Put the bundle; returns the object version id (the bucket is versioned)."""
    with path.open("rb") as body:
        response = s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"commit": commit})
    return str(response.get("VersionId", ""))


def _publishing_client(role_arn: str) -> Callable[[str | None, str], Any]:
    """S3 client of a session in the file-publishing bootstrap role (CDK's own asset uploads use it too)."""

    def make(profile: str | None, region: str) -> Any:
        import boto3

        base = boto3.Session(profile_name=profile, region_name=region)
        credentials = base.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="mlops-upload-source")[
            "Credentials"
        ]
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        ).client("s3")

    return make


def main(argv: list[str] | None = None, *, client: Callable[[str | None, str], Any] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="governance profile (default: the environment's)")
    parser.add_argument("--config-dir", type=Path, default=ROOT / "config")
    parser.add_argument("--repo", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    if args.profile and not PROFILE.fullmatch(args.profile):
        print(f"upload-source: refused: {args.profile!r} is not an AWS profile name", file=sys.stderr)
        return 2
    from mlops_platform.config import ConfigError, load_config
    from mlops_platform.naming import Naming

    try:
        naming = Naming(load_config(args.config_dir).platform)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    bucket, key = naming.platform_source_bucket(), naming.platform_source_key()
    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch) / "source.zip"
        try:
            commit = committed_bundle(args.repo, bundle)
        except Refused as err:
            print(f"upload-source: refused: {err}", file=sys.stderr)
            return 3
        if client is None:
            client = _publishing_client(naming.file_publishing_role_arn("governance"))
        s3 = client(args.profile, naming.region("governance"))
        version = upload(s3, bucket, key, bundle, commit)
    print(f"uploaded commit {commit} to s3://{bucket}/{key} (version {version or 'unversioned'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
