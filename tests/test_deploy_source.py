"""Release deploys run what main deployed, and a platform deploy never touches what an endpoint serves."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlops_platform.config import load_config
from mlops_platform.naming import Naming
from scripts import deploy_platform, upload_source
from tests.synth import EXAMPLE_CONFIG

NAMING = Naming(load_config(EXAMPLE_CONFIG).platform)
SERVING_TYPES = {"AWS::SageMaker::Endpoint", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Model"}


# --------------------------------------------------------------------------- the release pipeline's source


def test_the_release_pipeline_reads_the_committed_bundle_not_a_working_directory(example):
    template = example.template("mlops-governance-deploy")
    (pipeline,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    source = pipeline["Properties"]["Stages"][0]["Actions"][0]["Configuration"]
    assert source == {
        "S3Bucket": "cdk-hnb659fds-assets-111111111111-eu-west-1",
        "S3ObjectKey": "mlops/platform-source/source.zip",
        "PollForSourceChanges": False,
    }
    assert not [p for p in example.outdir.glob("asset.*") if p.is_dir() and (p / "app.py").exists()]


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (("init", "-q"), ("config", "user.email", "ci@example.com"), ("config", "user.name", "ci")):
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "app.py").write_text("print('platform')\n")
    (repo / ".venv").mkdir()
    (repo / ".venv" / "big").write_text("local only\n")
    (repo / ".gitignore").write_text(".venv/\n")
    subprocess.run(["git", "add", "app.py", ".gitignore"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "platform"], cwd=repo, check=True)
    return repo


@pytest.fixture
def s3(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        bucket = NAMING.platform_source_bucket()
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_upload_source_puts_the_committed_tree_with_its_commit_id(tmp_path, s3, capsys):
    import zipfile

    repo = _repo(tmp_path)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    code = upload_source.main(["--repo", str(repo), "--config-dir", str(EXAMPLE_CONFIG)], client=lambda p, r: s3)
    assert code == 0 and commit in capsys.readouterr().out
    bucket, key = NAMING.platform_source_bucket(), NAMING.platform_source_key()
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["Metadata"] == {"commit": commit} and head.get("VersionId")
    (tmp_path / "got.zip").write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert sorted(zipfile.ZipFile(tmp_path / "got.zip").namelist()) == [".gitignore", "app.py"]


def test_upload_source_refuses_uncommitted_edits(tmp_path, s3, capsys):
    repo = _repo(tmp_path)
    (repo / "app.py").write_text("print('edited, not committed')\n")
    code = upload_source.main(["--repo", str(repo), "--config-dir", str(EXAMPLE_CONFIG)], client=lambda p, r: s3)
    assert code == 3 and "uncommitted changes" in capsys.readouterr().err
    assert s3.list_objects_v2(Bucket=NAMING.platform_source_bucket()).get("KeyCount") == 0


# --------------------------------------------------------------------------- platform deploys


def _stack_templates(example, selectors: list[str]) -> list[dict]:
    names = {path: name for name, path in example.construct_path.items()}
    return [example.template(names[s]) for s in selectors]


@pytest.mark.parametrize("role", ["governance", "dev", "staging", "prod"])
def test_a_platform_deploy_with_releases_recorded_leaves_every_endpoint_as_it_is(example, role):
    """The example synth has releases in both stages; a platform deploy selects none of the stacks serving them."""
    selected = deploy_platform.platform_stacks(example.outdir, role, deploy_platform.serving_stacks(EXAMPLE_CONFIG))
    assert selected, role
    for template in _stack_templates(example, selected):
        assert not {r["Type"] for r in template["Resources"].values()} & SERVING_TYPES
    serving = [p for p in example.construct_path.values() if p.startswith(role.capitalize() + "/") and "Serving" in p]
    assert not set(serving) & set(selected)


def test_the_deploy_command_deploys_the_assembly_without_prompts(example, capsys):
    ran = []
    code = deploy_platform.main(
        ["--assembly", str(example.outdir), "--config-dir", str(EXAMPLE_CONFIG)],
        env={"ROLE": "staging", "PROFILE": "staging-admin"},
        run=lambda command: ran.append(command) or 0,
    )
    assert code == 0
    (command,) = ran
    assert command[1:4] == ["deploy", "--app", str(example.outdir)]
    assert "Staging/Baseline" in command and not [c for c in command if c.endswith("Serving")]
    assert command[-8:] == ["--require-approval", "never", "--concurrency", "4", "--progress", "events",
                            "--profile", "staging-admin"]  # fmt: skip
    assert "serving and GitHub OIDC stacks excluded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROLE": "dev; rm -rf /"}, "is not one of governance, dev, staging, prod"),
        ({"ROLE": ""}, "is not one of"),
        ({"ROLE": "dev", "PROFILE": "$(touch pwned)"}, "is not an AWS profile name"),
    ],
)
def test_role_and_profile_are_data_checked_before_anything_runs(example, env, message, capsys):
    ran = []
    code = deploy_platform.main(["--assembly", str(example.outdir)], env=env, run=lambda c: ran.append(c) or 0)
    assert code == 2 and not ran
    assert message in capsys.readouterr().err


def test_the_readme_deploys_platform_stacks_with_make_deploy():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Bootstrap and deploy", 1)[1].split("\n## ", 1)[0]
    assert "make deploy ROLE=governance" in section
    assert "cdk deploy 'Staging/*'" not in section and "cdk deploy 'Dev/*'" not in section
    assert json.dumps(section)  # the section exists and is text
