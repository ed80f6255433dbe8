"""Governance account: the pipeline that deploys a released model version to its serving stage."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlops_platform.catalog import BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS
from mlops_platform.config import SERVING_STAGES, PlatformConfig
from mlops_platform.naming import Naming
from stacks.components.roles import ServiceRole

# What the deploy needs of the project directory: code and config, not local state.
VARIABLES = {
    "PROJECT": "project whose serving stack to deploy",
    "STAGE": "staging or prod",
    "MODEL_PACKAGE_ARN": "the version the triggering release names (the release table decides what deploys)",
}
# The build reads its own execution's trigger through this variable (scripts/deploy_release.py).
EXECUTION_VARIABLE = "PIPELINE_EXECUTION_ID"
# A prod blue/green update may run up to SageMaker's execution timeout; an hour more for synth, deploy and verify.
BUILD_TIMEOUT_MINUTES = BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS[1] // 60 + 60
BUILD_SPEC = json.dumps(
    {
        "version": "0.2",
        "env": {"shell": "bash"},
        "phases": {
            "install": {"runtime-versions": {"python": "3.12", "nodejs": "22"}},
            # Pipeline input is data, never code: no command names a variable, so no shell or make ever
            # expands one; the script reads them from the environment and refuses bad ones (stdlib only,
            # before the venv or make exist), then make's own guard and the script check them again.
            "build": {
                "commands": [
                    "python3 scripts/deploy_release.py --from-env --check-only",
                    "make deploy-release",
                ]
            },
        },
    },
    indent=2,
)


class DeployStack(Stack):
    """CodePipeline V2 ``<prefix>-deploy``: source bundle → CodeBuild ``make deploy-release``.

    The approval guard, the rejected handler and ``mlops promote`` start it with the
    variables PROJECT, STAGE and MODEL_PACKAGE_ARN; executions queue, so two
    releases never deploy one stage at once. The build exports the stage's release
    manifest from the release table, runs ``cdk deploy`` of that project's serving
    stack through the CDK bootstrap roles the stage account trusts governance with,
    and verifies the live endpoint through the stage's verify role.

    The source is the bundle of the commit the platform was last deployed from:
    ``<prefix>/platform-source/source.zip`` in governance's CDK assets bucket
    (versioned), which the CI deploy (or ``make upload-source``) writes through
    the file-publishing bootstrap role with the commit id as object metadata.
    Release deploys run exactly what main deployed, never a working
    directory's uncommitted edits.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: PlatformConfig,
        naming: Naming,
        key: kms.IKey,
        releases: dynamodb.ITableV2,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        source_bucket, source_key = naming.platform_source_bucket(), naming.platform_source_key()
        pipeline_name = naming.deploy_pipeline()
        # CodePipeline keys artifacts by the first 20 characters of the pipeline name.
        pipeline_objects = f"{naming.bucket_arn('governance')}/{pipeline_name[:20]}/*"
        log_group = logs.LogGroup(
            self,
            "BuildLogs",
            encryption_key=key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        build_role = ServiceRole(
            self,
            "BuildRole",
            service="codebuild.amazonaws.com",
            role_name=naming.deploy_role_arn().rsplit("/", 1)[1],
            description="Deploys released model versions to the serving stages and verifies them",
            statements=[
                iam.PolicyStatement(
                    sid="DeployThroughCdkBootstrapRoles",
                    actions=["sts:AssumeRole", "sts:TagSession"],
                    resources=sorted(
                        {arn for stage in SERVING_STAGES for arn in naming.cdk_bootstrap_role_arns(stage)}
                    ),
                ),
                iam.PolicyStatement(
                    sid="VerifyEndpoints",
                    actions=["sts:AssumeRole"],
                    resources=[
                        naming.verify_role_arn(project, stage)
                        for project in sorted(config.projects)
                        for stage in SERVING_STAGES
                    ],
                ),
                # Who started the execution: only the approval handlers and mlops promote may deploy.
                iam.PolicyStatement(
                    sid="ReadOwnExecution",
                    actions=["codepipeline:GetPipelineExecution"],
                    resources=[f"arn:aws:codepipeline:{self.region}:{self.account}:{pipeline_name}"],
                ),
                iam.PolicyStatement(
                    sid="ReadReleases", actions=["dynamodb:Query", "dynamodb:GetItem"], resources=[releases.table_arn]
                ),
                # The release manifest records each version's supported instance types from the registry.
                iam.PolicyStatement(
                    sid="ReadReleasedVersions",
                    actions=["sagemaker:DescribeModelPackage"],
                    resources=[naming.model_package_arns(project) for project in sorted(config.projects)],
                ),
                iam.PolicyStatement(
                    sid="ReadSource", actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[pipeline_objects]
                ),
                iam.PolicyStatement(
                    sid="PlatformKey", actions=["kms:Decrypt", "kms:DescribeKey"], resources=[key.key_arn]
                ),
                iam.PolicyStatement(
                    sid="BuildLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"{log_group.log_group_arn}:*"],
                ),
            ],
        )
        build = codebuild.CfnProject(
            self,
            "Build",
            description="make deploy-release: export the release manifest, cdk deploy the serving stack, verify",
            service_role=build_role.role.role_arn,
            encryption_key=key.key_arn,
            timeout_in_minutes=BUILD_TIMEOUT_MINUTES,
            source=codebuild.CfnProject.SourceProperty(type="CODEPIPELINE", build_spec=BUILD_SPEC),
            artifacts=codebuild.CfnProject.ArtifactsProperty(type="CODEPIPELINE"),
            environment=codebuild.CfnProject.EnvironmentProperty(
                type="LINUX_CONTAINER",
                compute_type="BUILD_GENERAL1_MEDIUM",
                image="aws/codebuild/standard:7.0",
                privileged_mode=False,
            ),
            logs_config=codebuild.CfnProject.LogsConfigProperty(
                cloud_watch_logs=codebuild.CfnProject.CloudWatchLogsConfigProperty(
                    status="ENABLED", group_name=log_group.log_group_name
                )
            ),
        )
        build.node.add_dependency(build_role)
        bucket_arn = f"arn:aws:s3:::{source_bucket}"
        pipeline_role = ServiceRole(
            self,
            "PipelineRole",
            service="codepipeline.amazonaws.com",
            description=f"Runs {pipeline_name}: reads the platform source bundle, starts the deploy build",
            statements=[
                iam.PolicyStatement(
                    sid="ReadSourceBundle",
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=[f"{bucket_arn}/{source_key}"],
                ),
                iam.PolicyStatement(
                    sid="SourceBucketVersioning", actions=["s3:GetBucketVersioning"], resources=[bucket_arn]
                ),
                iam.PolicyStatement(
                    sid="PipelineArtifacts", actions=["s3:GetObject", "s3:PutObject"], resources=[pipeline_objects]
                ),
                iam.PolicyStatement(
                    sid="PlatformKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[key.key_arn],
                ),
                iam.PolicyStatement(
                    sid="RunBuild",
                    actions=["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
                    resources=[build.attr_arn],
                ),
            ],
        )
        self.pipeline = codepipeline.CfnPipeline(
            self,
            "Pipeline",
            name=pipeline_name,
            pipeline_type="V2",
            execution_mode="QUEUED",
            restart_execution_on_update=False,
            role_arn=pipeline_role.role.role_arn,
            artifact_store=codepipeline.CfnPipeline.ArtifactStoreProperty(
                type="S3",
                location=naming.artifacts_bucket("governance"),
                encryption_key=codepipeline.CfnPipeline.EncryptionKeyProperty(id=key.key_arn, type="KMS"),
            ),
            variables=[
                codepipeline.CfnPipeline.VariableDeclarationProperty(name=name, description=text)
                for name, text in VARIABLES.items()
            ],
            stages=[
                codepipeline.CfnPipeline.StageDeclarationProperty(
                    name="Source",
                    actions=[
                        codepipeline.CfnPipeline.ActionDeclarationProperty(
                            name="PlatformSource",
                            action_type_id=_action_type("Source", "S3"),
                            configuration={
                                "S3Bucket": source_bucket,
                                "S3ObjectKey": source_key,
                                "PollForSourceChanges": False,  # only the approval workflow starts a deploy
                            },
                            output_artifacts=[codepipeline.CfnPipeline.OutputArtifactProperty(name="Source")],
                            run_order=1,
                        )
                    ],
                ),
                codepipeline.CfnPipeline.StageDeclarationProperty(
                    name="Deploy",
                    actions=[
                        codepipeline.CfnPipeline.ActionDeclarationProperty(
                            name="DeployRelease",
                            action_type_id=_action_type("Build", "CodeBuild"),
                            configuration={
                                "ProjectName": build.ref,
                                "EnvironmentVariables": json.dumps(
                                    [
                                        {"name": name, "value": f"#{{variables.{name}}}", "type": "PLAINTEXT"}
                                        for name in VARIABLES
                                    ]
                                    + [
                                        {
                                            "name": EXECUTION_VARIABLE,
                                            "value": "#{codepipeline.PipelineExecutionId}",
                                            "type": "PLAINTEXT",
                                        }
                                    ]
                                ),
                            },
                            input_artifacts=[codepipeline.CfnPipeline.InputArtifactProperty(name="Source")],
                            run_order=1,
                        )
                    ],
                ),
            ],
        )
        self.pipeline.node.add_dependency(pipeline_role)
        logs_id = self.get_logical_id(log_group.node.default_child)  # type: ignore[arg-type]
        for role in (build_role, pipeline_role):
            role.acknowledge(
                f"AwsSolutions-IAM5[Resource::{pipeline_objects}]",
                "This pipeline's own artifacts in the governance artifacts bucket.",
            )
        build_role.acknowledge(
            f"AwsSolutions-IAM5[Resource::<{logs_id}.Arn>:*]", "The build's own log streams, named per build."
        )
        for project in sorted(config.projects):
            build_role.acknowledge(
                f"AwsSolutions-IAM5[Resource::{naming.model_package_arns(project)}]",
                "Versions of the project's model package group, to read what each released version supports.",
            )


def _action_type(category: str, provider: str) -> codepipeline.CfnPipeline.ActionTypeIdProperty:
    return codepipeline.CfnPipeline.ActionTypeIdProperty(category=category, owner="AWS", provider=provider, version="1")
