"""MLOps-ProjectNameAsPrefix: a pattern that names a project as a bare prefix fails synth."""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack, Stage, Tags
from aws_cdk import aws_iam as iam

from mlops_platform.guardrails import check_template
from mlops_platform.guardrails.projects import prefix_trap
from mlops_platform.nag import add_rule_packs

ACCOUNT, REGION = "222222222222", "eu-west-1"
SM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


@pytest.mark.parametrize(
    ("pattern", "trap"),
    [
        (f"{SM}:pipeline/mlops-churn-*", True),
        (f"{SM}:pipeline/mlops-churn*", True),
        (f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/mlops-churn-prod*", True),
        (f"arn:aws:iam::{ACCOUNT}:role/mlops-churn-dev-*", True),  # a project 'churn-dev' has mlops-churn-dev-dev-…
        (f"{SM}:pipeline/mlops-churn", False),
        (f"{SM}:model-package/mlops-churn/*", False),
        (f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/mlops-churn-prod:*", False),
        ("arn:aws:s3:::bucket/projects/churn/*", False),
        ("arn:aws:s3:::bucket/projects/churn/offline-store/mlops-churn-customers-*", False),  # bound by projects/churn/
        ("arn:aws:s3:::bucket/projects/churn*", True),
        (f"arn:aws:glue:{REGION}:{ACCOUNT}:table/sagemaker_featurestore/mlops_churn_customers_??????????", False),
        (f"{SM}:pipeline/mlops-fraud-*", False),  # another project's trap is not churn's
        (f"{SM}:pipeline/mlops-mychurn-*", False),  # the name inside a longer word is not the name
    ],
)
def test_which_patterns_are_prefix_traps(pattern, trap):
    assert prefix_trap(pattern, "churn") is trap


def _stack(resources: list[str], *, tag_condition: bool = False) -> App:
    app = App()
    stage = Stage(app, "Dev", env=Environment(account=ACCOUNT, region=REGION))
    stack = Stack(stage, "Build")
    Tags.of(stack).add("mlops:project", "churn")
    role = iam.Role(stack, "PipelineRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    conditions = {"StringEquals": {"aws:ResourceTag/mlops:project": "churn"}} if tag_condition else None
    role.add_to_policy(
        iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=resources, conditions=conditions)
    )
    add_rule_packs(stage, [])  # only the platform's own rules
    return app


def test_a_bare_prefix_fails_synth_naming_the_pattern():
    expected = r"pipeline/mlops-churn-\*. names project churn as a prefix[\s\S]*MLOps-ProjectNameAsPrefix"
    with pytest.raises(RuntimeError, match=expected):
        _stack([f"{SM}:pipeline/mlops-churn-*"]).synth()


@pytest.mark.parametrize(
    ("resources", "tag_condition"),
    [
        ([f"{SM}:pipeline/mlops-churn"], False),  # the exact name
        ([f"{SM}:pipeline/mlops-churn-*"], True),  # the prefix, but only resources tagged churn
    ],
    ids=["exact name", "tag condition"],
)
def test_its_fixes_pass(resources, tag_condition):
    _stack(resources, tag_condition=tag_condition).synth()


def test_resource_policies_are_checked_too():
    template = {
        "Resources": {
            "Group": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {"Tags": [{"Key": "mlops:project", "Value": "churn"}]},
            },
            "Policy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
                                "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::bucket/projects/churn*",
                            }
                        ]
                    }
                },
            },
        }
    }
    (finding,) = check_template(template)
    assert (finding.rule, finding.logical_id, finding.location) == (
        "MLOps-ProjectNameAsPrefix",
        "Policy",
        "PolicyDocument.Statement[0].Resource[0]",
    )
