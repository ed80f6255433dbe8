"""The one place that derives names and ARNs both sides of an account boundary use.

CDK cannot pass constructs between accounts, so the governance registry policy,
the dev pipeline role and the staging/prod model roles all call these functions
with the same config and therefore agree. Every name carries the platform prefix,
and project- and stage-scoped names carry those too, so two projects and four
stages in one account never collide.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_platform.config import PlatformSettings

# Tag key every resource of a project's stacks carries; IAM conditions on it tell projects apart
# where name patterns cannot (a project name may contain hyphens, so "mlops-churn-*" covers "churn-eu").
PROJECT_TAG = "mlops:project"
# Tag key of the account role (governance, dev, staging, prod) every resource is deployed for.
STAGE_TAG = "mlops:stage"


@dataclass(frozen=True)
class Naming:
    """Names for one platform (``prefix``) across its four account roles."""

    platform: PlatformSettings

    @property
    def prefix(self) -> str:
        return self.platform.prefix

    def account(self, role: str) -> str:
        return self.platform.accounts.of(role).id

    def region(self, role: str) -> str:
        return self.platform.accounts.of(role).region

    # ------------------------------------------------------------------ stacks
    def stack_name(self, role: str, part: str, project: str | None = None) -> str:
        """CloudFormation stack name, e.g. ``mlops-dev-churn-build``."""
        middle = f"-{project}" if project else ""
        return f"{self.prefix}-{role}{middle}-{part}"

    # ------------------------------------------------------------------ account level
    def artifacts_bucket(self, role: str) -> str:
        """Per-account artifacts bucket; account and region make it globally unique."""
        return f"{self.prefix}-{role}-artifacts-{self.account(role)}-{self.region(role)}"

    def access_logs_bucket(self, role: str) -> str:
        return f"{self.prefix}-{role}-access-logs-{self.account(role)}-{self.region(role)}"

    def lifecycle_bucket(self) -> str:
        """Dev bucket of the training cluster's lifecycle scripts; HyperPod reads only ``sagemaker-*`` buckets."""
        return f"sagemaker-{self.prefix}-hyperpod-{self.account('dev')}-{self.region('dev')}"

    def lifecycle_access_log_prefix(self) -> str:
        """Where the lifecycle bucket's access logs go in the dev access-log bucket."""
        return "hyperpod-lifecycle/"

    def key_alias(self, role: str) -> str:
        """Alias of the account role's platform KMS key (``alias/mlops/dev``)."""
        return f"alias/{self.prefix}/{role}"

    def key_arn_pattern(self, role: str) -> str:
        """Key ARNs of the role's account; narrow it with a ``kms:ResourceAliases`` condition."""
        return f"arn:aws:kms:{self.region(role)}:{self.account(role)}:key/*"

    def cdk_deploy_role_arn(self, role: str) -> str:
        """CloudFormation execution role of a default ``cdk bootstrap`` in the role's account."""
        account, region = self.account(role), self.region(role)
        return f"arn:aws:iam::{account}:role/cdk-hnb659fds-cfn-exec-role-{account}-{region}"

    def bucket_arn(self, role: str) -> str:
        return f"arn:aws:s3:::{self.artifacts_bucket(role)}"

    def releases_table(self) -> str:
        """DynamoDB table in governance recording which model version is released to which stage."""
        return f"{self.prefix}-releases"

    def deploy_pipeline(self) -> str:
        """CodePipeline in governance that deploys a released version to its stage."""
        return f"{self.prefix}-deploy"

    def deploy_role_arn(self) -> str:
        """Role of the deploy pipeline's CodeBuild project; the stages' verify roles trust it."""
        return f"arn:aws:iam::{self.account('governance')}:role/{self.prefix}-governance-deploy"

    def cdk_bootstrap_role_arns(self, role: str) -> list[str]:
        """The roles ``cdk deploy`` assumes in an account bootstrapped with ``--trust`` governance."""
        account, region = self.account(role), self.region(role)
        return [
            f"arn:aws:iam::{account}:role/cdk-hnb659fds-{kind}-role-{account}-{region}"
            for kind in ("deploy", "file-publishing", "lookup")
        ]

    # ------------------------------------------------------------------ project level
    def model_package_group(self, project: str) -> str:
        return f"{self.prefix}-{project}"

    def model_package_group_arn(self, project: str) -> str:
        return (
            f"arn:aws:sagemaker:{self.region('governance')}:{self.account('governance')}:"
            f"model-package-group/{self.model_package_group(project)}"
        )

    def model_package_arns(self, project: str) -> str:
        """Every version in the project's group (``model-package/<group>/<n>``)."""
        return (
            f"arn:aws:sagemaker:{self.region('governance')}:{self.account('governance')}:"
            f"model-package/{self.model_package_group(project)}/*"
        )

    def project_prefix(self, project: str) -> str:
        """S3 key prefix that holds one project's objects in an artifacts bucket."""
        return f"projects/{project}"

    def role_name(self, project: str, role: str, purpose: str) -> str:
        """IAM role name scoped to project and account role, e.g. ``mlops-churn-dev-pipeline``."""
        name = f"{self.prefix}-{project}-{role}-{purpose}"
        if len(name) > 64:
            raise ValueError(f"IAM role name {name!r} is longer than 64 characters")
        return name

    def role_arn(self, project: str, role: str, purpose: str) -> str:
        return f"arn:aws:iam::{self.account(role)}:role/{self.role_name(project, role, purpose)}"

    def api_call_trail(self) -> str:
        """CloudTrail trail of the governance account (the approval guard's source of who approved)."""
        return f"{self.prefix}-api-calls"

    def github_deploy_role(self, role: str) -> str:
        """The role CI assumes through GitHub OIDC to deploy one account role's stacks."""
        return f"{self.prefix}-{role}-github-deploy"

    def github_deploy_role_arn(self, role: str) -> str:
        return f"arn:aws:iam::{self.account(role)}:role/{self.github_deploy_role(role)}"

    def cfn_execution_policy(self) -> str:
        """The managed policy CloudFormation deploys this platform with (``cdk bootstrap`` execution policy)."""
        return f"{self.prefix}-cfn-execution"

    def platform_source_bucket(self) -> str:
        """Where the deployed commit's source bundle lies: governance's CDK assets bucket (versioned).

        CI writes it through the file-publishing bootstrap role, so its deploy
        role needs nothing but the bootstrap roles.
        """
        return f"cdk-hnb659fds-assets-{self.account('governance')}-{self.region('governance')}"

    def platform_source_key(self) -> str:
        """Key of the deployed commit's source bundle, which release deploys run from."""
        return f"{self.prefix}/platform-source/source.zip"

    def file_publishing_role_arn(self, role: str) -> str:
        """CDK's file-publishing bootstrap role of an account (it writes the CDK assets bucket)."""
        account, region = self.account(role), self.region(role)
        return f"arn:aws:iam::{account}:role/cdk-hnb659fds-file-publishing-role-{account}-{region}"

    def approver_role_arn(self, project: str) -> str:
        """Governance role a project's approvers assume, with their name as STS source identity."""
        return self.role_arn(project, "governance", "approver")

    def pipeline_role_arn(self, project: str) -> str:
        return self.role_arn(project, "dev", "pipeline")

    def canvas_register_role_arn(self, project: str) -> str:
        """Governance role SageMaker Canvas in dev assumes to register versions into the project's group."""
        return self.role_arn(project, "governance", "canvas-register")

    def canvas_artifacts_prefix(self, project: str) -> str:
        """Key prefix (dev artifacts bucket) of the project's Canvas workspace: datasets, models, predictions."""
        return f"{self.project_prefix(project)}/canvas"

    def model_role_arn(self, project: str, stage: str) -> str:
        """Execution role of the SageMaker models a serving stage creates."""
        return self.role_arn(project, stage, "model")

    def pipeline_name(self, project: str) -> str:
        return f"{self.prefix}-{project}"

    def approval_dead_letter_queue(self, project: str) -> str:
        """SQS queue in governance taking the project's failed approval events (``mlops dlq``)."""
        return f"{self.prefix}-{project}-approval-dead-letters"

    def endpoint_name(self, project: str, stage: str) -> str:
        """Stable endpoint name per project and stage; its configs and models are never named."""
        return f"{self.prefix}-{project}-{stage}"

    def verify_role_arn(self, project: str, stage: str) -> str:
        """Read-only role in a serving stage that the deploy pipeline assumes to verify the endpoint."""
        return self.role_arn(project, stage, "verify")

    def data_capture_prefix(self, project: str) -> str:
        """Key prefix of captured requests/responses in the stage's artifacts bucket."""
        return f"{self.project_prefix(project)}/data-capture"

    def feature_group_name(self, project: str, group: str) -> str:
        return f"{self.prefix}-{project}-{group}"

    def offline_store_tables(self, project: str, group: str) -> list[str]:
        """Glue table names (patterns) Feature Store gives a group's offline store: ``<group>_<creation epoch>``.

        The epoch is ten digits, so ``?`` stands for each: ``<group>_*`` would also
        match ``mlops-churn-eu-…`` tables of a project whose name extends this one's.
        Both spellings of the group name are covered (Glue table names often carry
        underscores for hyphens).
        """
        name = self.feature_group_name(project, group)
        return [f"{spelling}_{'?' * 10}" for spelling in sorted({name, name.replace("-", "_")})]

    def monitoring_alarm_prefix(self, project: str, stage: str) -> str:
        """Every monitoring alarm of a project's stage starts with this (the retraining trigger matches it)."""
        return f"{self.prefix}-{project}-{stage}-monitoring-"

    def drift_pipeline_name(self, project: str, stage: str) -> str:
        """The drift-check pipeline of the ``pipeline`` monitoring engine, in the stage's account."""
        return f"{self.prefix}-{project}-{stage}-drift"

    def monitoring_prefix(self, project: str, stage: str) -> str:
        """S3 prefix (stage artifacts bucket) of monitoring reports and violations."""
        return f"{self.project_prefix(project)}/monitoring/{stage}"

    def retrain_function(self, project: str) -> str:
        """The dev Lambda that starts the project's pipeline when a monitoring alarm fires."""
        return f"{self.prefix}-{project}-retrain"

    def retrain_table(self) -> str:
        """Dev table of retraining starts (one cool-down record per project)."""
        return f"{self.prefix}-retraining"

    def athena_workgroup(self, project: str) -> str:
        """Athena workgroup the project's pipeline queries its offline store in (dev account)."""
        return f"{self.prefix}-{project}"

    def studio_domain_name(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def user_profile_name(self, project: str, user: str) -> str:
        return f"{project}-{user}"
