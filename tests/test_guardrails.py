"""The platform's own SageMaker guardrails: they pass good constructs and fail synth on bad ones."""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack, Stage
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_sagemaker as sagemaker

from mlops_platform.guardrails import check_template
from mlops_platform.nag import add_rule_packs


def _cluster_stack(*, self_rules: bool, public: bool, bucket: str, lustre_ports: bool) -> tuple[App, Stage]:
    app = App()
    stage = Stage(app, "Probe", env=Environment(account="222222222222", region="eu-west-1"))
    stack = Stack(stage, "Training")
    vpc = ec2.CfnVPC(stack, "Vpc", cidr_block="10.0.0.0/16")
    subnet = ec2.CfnSubnet(stack, "Subnet", vpc_id=vpc.ref, cidr_block="10.0.128.0/20", map_public_ip_on_launch=public)
    nodes = ec2.CfnSecurityGroup(stack, "Nodes", group_description="nodes", vpc_id=vpc.ref)
    if self_rules:
        ec2.CfnSecurityGroupIngress(
            stack,
            "SelfIn",
            group_id=nodes.attr_group_id,
            ip_protocol="-1",
            source_security_group_id=nodes.attr_group_id,
        )
        ec2.CfnSecurityGroupEgress(
            stack,
            "SelfOut",
            group_id=nodes.attr_group_id,
            ip_protocol="-1",
            destination_security_group_id=nodes.attr_group_id,
        )
    storage = ec2.CfnSecurityGroup(
        stack,
        "Storage",
        group_description="fsx",
        vpc_id=vpc.ref,
        security_group_ingress=[
            {"ipProtocol": "tcp", "fromPort": 988, "toPort": 988, "sourceSecurityGroupId": nodes.attr_group_id},
            {"ipProtocol": "tcp", "fromPort": 1018, "toPort": 1023, "sourceSecurityGroupId": nodes.attr_group_id},
        ]
        if lustre_ports
        else [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIp": "10.0.0.0/16"}],
    )
    fsx.CfnFileSystem(
        stack,
        "Lustre",
        file_system_type="LUSTRE",
        storage_capacity=1200,
        subnet_ids=[subnet.ref],
        security_group_ids=[storage.attr_group_id],
    )
    sagemaker.CfnCluster(
        stack,
        "Cluster",
        instance_groups=[
            sagemaker.CfnCluster.ClusterInstanceGroupProperty(
                instance_group_name="trn1",
                instance_type="ml.trn1.32xlarge",
                instance_count=1,
                execution_role="arn:aws:iam::222222222222:role/node",
                life_cycle_config=sagemaker.CfnCluster.ClusterLifeCycleConfigProperty(
                    source_s3_uri=f"s3://{bucket}/lifecycle/", on_create="on_create.sh"
                ),
            )
        ],
        vpc_config=sagemaker.CfnCluster.VpcConfigProperty(
            security_group_ids=[nodes.attr_group_id], subnets=[subnet.ref]
        ),
    )
    add_rule_packs(stage, [])  # only the platform's own rules
    return app, stage


def test_a_correct_cluster_passes(tmp_path):
    app, _ = _cluster_stack(self_rules=True, public=False, bucket="sagemaker-lifecycle", lustre_ports=True)
    app.synth()


@pytest.mark.parametrize(
    "changes,rule",
    [
        ({"self_rules": False}, "MLOps-HyperPodEfaSelfRules"),
        ({"public": True}, "MLOps-HyperPodPrivateSubnet"),
        ({"bucket": "my-scripts"}, "MLOps-HyperPodLifecycleBucket"),
        ({"lustre_ports": False}, "MLOps-FsxLustrePorts"),
    ],
)
def test_each_bad_construct_fails_synth(changes, rule):
    settings = {"self_rules": True, "public": False, "bucket": "sagemaker-lifecycle", "lustre_ports": True} | changes
    app, _ = _cluster_stack(**settings)
    with pytest.raises(RuntimeError, match=rule):
        app.synth()


def test_rules_on_templates_directly():
    cluster = {
        "Type": "AWS::SageMaker::Cluster",
        "Properties": {
            "VpcConfig": {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]},
            "InstanceGroups": [{"LifeCycleConfig": {"SourceS3Uri": {"Fn::Join": ["", ["s3://", "x"]]}}}],
        },
    }
    rules = sorted({f.rule for f in check_template({"Resources": {"Cluster": cluster}})})
    # groups and subnets from outside the stack cannot be verified, so they fail too
    assert rules == ["MLOps-HyperPodEfaSelfRules", "MLOps-HyperPodLifecycleBucket", "MLOps-HyperPodPrivateSubnet"]
    assert check_template({"Resources": {}}) == []
