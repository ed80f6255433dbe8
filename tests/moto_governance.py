"""The governance resources the approval Lambdas and the CLI share, created in moto for tests."""

from __future__ import annotations

import json
from typing import Any

DEPLOY_VARIABLES = ("PROJECT", "STAGE", "MODEL_PACKAGE_ARN")


def create_release_table(dynamodb: Any, name: str) -> None:
    """The ``<prefix>-releases`` table as the governance baseline creates it (pk/sk strings, TTL ``expires_at``)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def create_deploy_pipeline(codepipeline: Any, iam: Any, *, name: str, bucket: str) -> None:
    """The deploy pipeline's shape (V2, the three variables, S3 source, CodeBuild deploy); ``bucket`` must exist."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role_arn = iam.create_role(RoleName=f"{name}-pipeline", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    def action_type(category: str, provider: str) -> dict[str, str]:
        return {"category": category, "owner": "AWS", "provider": provider, "version": "1"}

    codepipeline.create_pipeline(
        pipeline={
            "name": name,
            "roleArn": role_arn,
            "artifactStore": {"type": "S3", "location": bucket},
            "pipelineType": "V2",
            "variables": [{"name": variable} for variable in DEPLOY_VARIABLES],
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "PlatformSource",
                            "actionTypeId": action_type("Source", "S3"),
                            "configuration": {"S3Bucket": bucket, "S3ObjectKey": "deploy/source.zip"},
                            "outputArtifacts": [{"name": "Source"}],
                        }
                    ],
                },
                {
                    "name": "Deploy",
                    "actions": [
                        {
                            "name": "DeployRelease",
                            "actionTypeId": action_type("Build", "CodeBuild"),
                            "configuration": {"ProjectName": name},
                            "inputArtifacts": [{"name": "Source"}],
                        }
                    ],
                },
            ],
        }
    )


def deploy_executions(codepipeline: Any, name: str) -> list[dict[str, str]]:
    """Variables of every execution of the deploy pipeline, oldest first."""
    summaries = codepipeline.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    out = []
    for summary in reversed(summaries):
        execution = codepipeline.get_pipeline_execution(
            pipelineName=name, pipelineExecutionId=summary["pipelineExecutionId"]
        )["pipelineExecution"]
        variables = {v["name"]: v["resolvedValue"] for v in execution.get("variables", [])}
        out.append({"id": summary["pipelineExecutionId"], **variables})
    return out
