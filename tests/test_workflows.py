"""The GitHub Actions workflows: the PR checks run the README's commands, main deploys role by role over OIDC.

``deploy.yml`` deploys governance -> dev -> staging -> prod, each job assuming that account role's
``<prefix>-<role>-github-deploy`` role, prod behind the protected environment; no workflow holds a
secret or a long-lived key. The config step of each deploy job is run here as CI runs it, so the role,
region and bucket it hands on are the ones :class:`~mlops_platform.naming.Naming` derives from config.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_platform.config import GitHub, load_config
from mlops_platform.naming import Naming

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
VENV_BIN = ROOT / ".venv" / "bin"
ORDER = ["governance", "dev", "staging", "prod"]
EXAMPLE_REPOSITORY = "example-org/mlops-platform"
CONFIGURE_AWS = "aws-actions/configure-aws-credentials@"


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return workflow[True] if True in workflow else workflow["on"]


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _step_index(job: dict[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> int:
    matches = [i for i, step in enumerate(job["steps"]) if predicate(step)]
    assert matches, f"no such step among {[s.get('name', s.get('uses', s.get('run'))) for s in job['steps']]}"
    return matches[0]


def _target_step(job: dict[str, Any]) -> dict[str, Any]:
    return job["steps"][_step_index(job, lambda s: s.get("id") == "target")]


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return _load("deploy.yml")


@pytest.fixture(scope="module")
def pull_request() -> dict[str, Any]:
    return _load("pull_request.yml")


@pytest.fixture(scope="module")
def naming() -> Naming:
    return Naming(load_config(ROOT / "config").platform)


@pytest.fixture(scope="module")
def github() -> GitHub:
    """The repository's github settings, or the defaults of a github section naming only a repository."""
    return load_config(ROOT / "config").platform.github or GitHub(repository=EXAMPLE_REPOSITORY)


def _config_with(tmp_path: Path, github: dict[str, Any] | None) -> Path:
    """A copy of config/ whose platform.yaml has this ``github`` section (none when None)."""
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    platform = yaml.safe_load((config / "platform.yaml").read_text())
    platform.pop("github", None)
    if github is not None:
        platform["github"] = github
    (config / "platform.yaml").write_text(yaml.safe_dump(platform, sort_keys=False))
    return config


def _run_target_step(job: dict[str, Any], tmp_path: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the job's config step as the runner does (bash -eo pipefail, repo root): exit code, $GITHUB_OUTPUT, log."""
    output = tmp_path / "github-output"
    output.write_text("")
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _target_step(job)["run"]],
        cwd=ROOT,
        env={**os.environ, **env, "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, output.read_text(), result.stdout + result.stderr


def _target_outputs(job: dict[str, Any], github: GitHub, tmp_path: Path) -> dict[str, str]:
    """The config step's outputs in a push to the configured branch of the configured repository."""
    env = {
        "MLOPS_CONFIG_DIR": str(_config_with(tmp_path, github.model_dump())),
        "GITHUB_REPOSITORY": github.repository,
        "GITHUB_REF": f"refs/heads/{github.branch}",
    }
    code, output, log = _run_target_step(job, tmp_path, env)
    assert code == 0, f"the config step failed:\n{log}"
    return dict(line.split("=", 1) for line in output.splitlines() if line)


# --------------------------------------------------------------------------- every workflow


def test_workflow_files_exist():
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == ["deploy.yml", "pull_request.yml"]


@pytest.mark.parametrize("name", ["deploy.yml", "pull_request.yml"])
def test_no_secrets_and_no_long_lived_keys(name):
    text = (WORKFLOWS / name).read_text()
    assert "secrets." not in text, "workflows authenticate through OIDC only"
    assert "aws-access-key-id" not in text
    assert "aws-secret-access-key" not in text
    assert not re.search(r"\bAKIA[0-9A-Z]{16}\b", text)


@pytest.mark.parametrize("name", ["deploy.yml", "pull_request.yml"])
def test_no_account_id_is_hard_coded(name):
    """Account ids come from config/platform.yaml at run time."""
    assert not re.search(r"(?<!\d)\d{12}(?!\d)", (WORKFLOWS / name).read_text())


def test_actionlint_passes():
    actionlint = VENV_BIN / "actionlint"
    if not actionlint.exists():
        pytest.fail(f"{actionlint} is missing: `make setup` installs it (requirements-dev.txt)")
    files = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.y*ml"))
    # as make lint does: the venv first on PATH, so actionlint checks run: blocks with the pinned shellcheck
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(actionlint), *files], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"actionlint found problems:\n{result.stdout}{result.stderr}"


# --------------------------------------------------------------------------- pull requests


def test_pull_request_runs_on_pull_requests_to_main_read_only(pull_request):
    assert _triggers(pull_request)["pull_request"]["branches"] == ["main"]
    assert pull_request["permissions"] == {"contents": "read"}


def test_pull_request_runs_the_readme_commands_in_order(pull_request):
    readme = (ROOT / "README.md").read_text()
    (job,) = pull_request["jobs"].values()
    runs = _runs(job)
    positions = []
    for command in ("make lint", "make test", "make synth"):
        assert command in readme, command
        found = [i for i, run in enumerate(runs) if re.search(rf"(^|\s){command}(\s|$)", run)]
        assert found, f"{command} is not run: {runs}"
        positions.append(found[0])
    assert positions == sorted(positions), runs
    assert any(re.search(r"make synth\s*\|\s*tee synth-summary\.txt", run) for run in runs)
    # `shell: bash` runs with -o pipefail, so a failed synth fails the step despite the tee
    assert pull_request["defaults"]["run"]["shell"] == "bash"


def test_pull_request_sets_up_the_readme_toolchain(pull_request):
    (job,) = pull_request["jobs"].values()
    uses = {step["uses"].split("@")[0]: step for step in job["steps"] if "uses" in step}
    assert "actions/checkout" in uses
    assert uses["actions/setup-python"]["with"]["python-version"] == "3.11"
    assert uses["actions/setup-node"]["with"]["node-version"] == "20"


def test_pull_request_uploads_assembly_report_and_summary(pull_request):
    (job,) = pull_request["jobs"].values()
    uploads = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert {step["with"]["path"].strip() for step in uploads} == {
        "cdk.out/",
        "cdk.out/validation-report.json",
        "synth-summary.txt",
    }
    assert len({step["with"]["name"] for step in uploads}) == 3
    synth = _step_index(job, lambda s: "make synth" in s.get("run", ""))
    assert all(job["steps"].index(step) > synth for step in uploads)
    # a failed lint or synth still hands over the report that says why
    assert all("!cancelled()" in step.get("if", "") for step in uploads)


# --------------------------------------------------------------------------- deploys


def test_deploy_runs_on_main_and_by_hand(deploy):
    triggers = _triggers(deploy)
    assert triggers["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in triggers


def test_deploy_is_oidc_with_read_only_contents(deploy):
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    assert all("permissions" not in job for job in deploy["jobs"].values())


def test_deploys_never_overlap_nor_cancel(deploy):
    assert deploy["concurrency"] == {"group": "platform-deploy", "cancel-in-progress": False}


def test_deploy_order_is_governance_dev_staging_prod(deploy):
    jobs = deploy["jobs"]
    assert list(jobs) == ORDER
    assert "needs" not in jobs["governance"]
    for before, after in zip(ORDER, ORDER[1:], strict=False):
        assert jobs[after]["needs"] in (before, [before]), after


def test_only_prod_waits_for_the_protected_environment(deploy, github):
    """The prod deploy role trusts only tokens of jobs in github.prod_environment (stacks/github_oidc.py)."""
    jobs = deploy["jobs"]
    assert jobs["prod"]["environment"] == github.prod_environment
    assert [role for role in ORDER if "environment" in jobs[role]] == ["prod"]


def test_workflow_branches_match_config(deploy, pull_request, github):
    """The other deploy roles trust only tokens of github.branch; a dispatch from another branch deploys nothing."""
    assert _triggers(deploy)["push"]["branches"] == [github.branch]
    assert _triggers(pull_request)["pull_request"]["branches"] == [github.branch]
    for job in deploy["jobs"].values():
        assert job["if"] == f"github.ref == 'refs/heads/{github.branch}'"


def test_every_job_reads_its_target_the_same_way(deploy):
    """One script in four jobs: only the role argument differs, so they cannot drift apart."""
    scripts = set()
    for role, job in deploy["jobs"].items():
        run = _target_step(job)["run"]
        assert f'.venv/bin/python - {role} >> "$GITHUB_OUTPUT"' in run
        scripts.add(run.replace(f" - {role} ", " - ROLE ", 1))
    assert len(scripts) == 1, scripts


@pytest.mark.parametrize("role", ORDER)
def test_each_job_assumes_its_roles_github_deploy_role(deploy, naming, github, role, tmp_path):
    job = deploy["jobs"][role]
    target = _step_index(job, lambda s: s.get("id") == "target")
    login = _step_index(job, lambda s: s.get("uses", "").startswith(CONFIGURE_AWS))
    assert job["steps"][login]["uses"] == f"{CONFIGURE_AWS}v4"
    assert _step_index(job, lambda s: s.get("run") == "make setup") < target < login
    credentials = job["steps"][login]["with"]
    assert credentials["role-to-assume"] == "${{ steps.target.outputs.role_arn }}"
    assert credentials["aws-region"] == "${{ steps.target.outputs.region }}"
    assert credentials["role-session-name"] == "github-${{ github.run_id }}"
    assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(credentials)

    outputs = _target_outputs(job, github, tmp_path)
    assert f"-{role}-github-deploy" in outputs["role_arn"]
    assert outputs["role_arn"] == naming.github_deploy_role_arn(role)
    assert f"::{naming.account(role)}:" in outputs["role_arn"]
    assert outputs["region"] == naming.region(role)


@pytest.mark.parametrize(
    ("github_section", "repository", "ref", "says"),
    [
        (None, EXAMPLE_REPOSITORY, "refs/heads/main", "has no github section"),
        ({"repository": EXAMPLE_REPOSITORY}, "someone/fork", "refs/heads/main", "not someone/fork"),
        ({"repository": EXAMPLE_REPOSITORY}, EXAMPLE_REPOSITORY, "refs/heads/feature", "is not github.branch main"),
    ],
)
def test_the_config_step_refuses_what_the_roles_distrust(deploy, tmp_path, github_section, repository, ref, says):
    """A clear error before configure-aws-credentials instead of AccessDenied from AssumeRoleWithWebIdentity."""
    env = {
        "MLOPS_CONFIG_DIR": str(_config_with(tmp_path, github_section)),
        "GITHUB_REPOSITORY": repository,
        "GITHUB_REF": ref,
    }
    code, output, log = _run_target_step(deploy["jobs"]["governance"], tmp_path, env)
    assert code != 0
    assert "::error::" in log and says in log, log
    assert "role_arn" not in output


@pytest.mark.parametrize("role", ORDER)
def test_each_job_deploys_its_role_after_login(deploy, role):
    job = deploy["jobs"][role]
    login = _step_index(job, lambda s: s.get("uses", "").startswith(CONFIGURE_AWS))
    deploy_step = _step_index(job, lambda s: s.get("run", "").strip() == f"make deploy ROLE={role}")
    assert login < deploy_step
    others = [r for r in ORDER if r != role]
    assert not [run for run in _runs(job) if any(f"ROLE={r}" in run for r in others)]
    assert not [run for run in _runs(job) if "cdk deploy" in run], "deploys go through `make deploy`"


def test_make_deploy_never_asks_for_approval():
    """CI has no terminal: `make deploy` must reach cdk deploy with --require-approval never."""
    if not shutil.which("make"):
        pytest.fail("make is not installed")
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "deploy", "ROLE=governance"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"`make -n deploy ROLE=governance` failed:\n{result.stdout}{result.stderr}"
    # the flag may sit in the recipe or in a script the recipe runs
    texts = [result.stdout]
    for script in sorted(set(re.findall(r"scripts/[\w./-]+\.(?:py|sh)", result.stdout))):
        if (ROOT / script).is_file():
            texts.append((ROOT / script).read_text())
    pattern = re.compile(r"""--require-approval["']?\s*[=,]?\s*["']?never""")
    assert any(pattern.search(text) for text in texts), f"--require-approval never is not reachable:\n{result.stdout}"


def test_governance_uploads_the_deployed_commits_source(deploy, naming, github, tmp_path):
    job = deploy["jobs"]["governance"]
    deployed = _step_index(job, lambda s: s.get("run", "").strip() == "make deploy ROLE=governance")
    upload = _step_index(job, lambda s: s.get("run", "").strip() == "make upload-source")
    assert deployed < upload
    # make upload-source: git archive of HEAD with its commit id (tests/test_deploy_source.py runs it)
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/upload_source.py" in makefile.split("upload-source:", 1)[1].split("\n\n", 1)[0]
    outputs = _target_outputs(job, github, tmp_path)
    assert outputs["artifacts_bucket"] == naming.artifacts_bucket("governance")
    assert outputs["source_key"] == naming.platform_source_key()
    # only governance holds the bundle the release pipeline runs from
    for role in ORDER[1:]:
        assert not [run for run in _runs(deploy["jobs"][role]) if "upload-source" in run or "aws s3" in run]
