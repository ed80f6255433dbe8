"""The shared training cluster: FSx for Lustre linked to S3 and a HyperPod cluster of Trainium nodes."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

STACK = "mlops-dev-training"


@pytest.fixture(scope="module")
def template(single_account) -> Template:
    return Template.from_json(single_account.template(STACK))


def test_off_by_default(example):
    assert STACK not in example.templates
    for template in example.templates.values():
        types = {r["Type"] for r in template["Resources"].values()}
        assert not types & {"AWS::FSx::FileSystem", "AWS::SageMaker::Cluster"}


def test_file_system_is_persistent_2_lz4_lustre_2_15_encrypted(template, single_account):
    template.has_resource_properties(
        "AWS::FSx::FileSystem",
        {
            "FileSystemType": "LUSTRE",
            "FileSystemTypeVersion": "2.15",
            "StorageCapacity": 1200,
            "KmsKeyId": Match.any_value(),
            "LustreConfiguration": {
                "DeploymentType": "PERSISTENT_2",
                "PerUnitStorageThroughput": 250,
                "DataCompressionType": "LZ4",
                "MetadataConfiguration": {"Mode": "AUTOMATIC"},
            },
        },
    )
    fs = next(iter(single_account.resources(STACK, "AWS::FSx::FileSystem").values()))
    assert fs["DeletionPolicy"] == "Retain"


def test_data_repository_association_links_the_dev_bucket(template):
    template.has_resource_properties(
        "AWS::FSx::DataRepositoryAssociation",
        {
            "FileSystemPath": "/datasets",
            "DataRepositoryPath": "s3://mlops-dev-artifacts-555555555555-eu-west-1/projects/churn/datasets/",
            "BatchImportMetaDataOnCreate": True,
            "S3": {
                "AutoImportPolicy": {"Events": ["NEW", "CHANGED", "DELETED"]},
                "AutoExportPolicy": {"Events": ["NEW", "CHANGED", "DELETED"]},
            },
        },
    )


def test_cluster_has_a_trainium_worker_group_and_lifecycle_in_a_sagemaker_bucket(template, single_account):
    template.has_resource_properties(
        "AWS::SageMaker::Cluster",
        {
            "ClusterName": "mlops-training",
            "NodeRecovery": "Automatic",
            "InstanceGroups": [
                Match.object_like({"InstanceGroupName": "controller", "InstanceType": "ml.m5.xlarge"}),
                Match.object_like(
                    {
                        "InstanceGroupName": "trn1",
                        "InstanceType": "ml.trn1.32xlarge",
                        "InstanceCount": 2,
                        "ThreadsPerCore": 1,
                        "OnStartDeepHealthChecks": ["InstanceStress", "InstanceConnectivity"],
                        "InstanceStorageConfigs": [{"EbsVolumeConfig": {"VolumeSizeInGB": 500}}],
                        "LifeCycleConfig": {
                            "SourceS3Uri": "s3://sagemaker-mlops-hyperpod-555555555555-eu-west-1/lifecycle/",
                            "OnCreate": "on_create.sh",
                        },
                    }
                ),
            ],
        },
    )
    template.has_resource_properties(
        "AWS::S3::Bucket", {"BucketName": "sagemaker-mlops-hyperpod-555555555555-eu-west-1"}
    )


def test_subnet_is_private_and_chosen_by_az_id(template):
    template.has_resource_properties(
        "AWS::EC2::Subnet",
        {"AvailabilityZoneId": "euw1-az1", "CidrBlock": "10.10.128.0/20", "MapPublicIpOnLaunch": False},
    )
    template.resource_count_is("AWS::EC2::Route", 0)  # no route out but the S3 gateway endpoint's
    template.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})


def test_efa_self_rules_and_lustre_ports(single_account):
    resources = single_account.template(STACK)["Resources"]

    def group(prefix: str) -> dict:
        logical = next(
            k for k, r in resources.items() if k.startswith(prefix) and r["Type"] == "AWS::EC2::SecurityGroup"
        )
        return {"Fn::GetAtt": [logical, "GroupId"]}

    nodes, storage = group("ClusterSecurityGroup"), group("FsxSecurityGroup")
    rules = [
        (r["Type"], r["Properties"]) for r in resources.values() if r["Type"].startswith("AWS::EC2::SecurityGroup")
    ]
    ingress = [p for t, p in rules if t == "AWS::EC2::SecurityGroupIngress"]
    egress = [p for t, p in rules if t == "AWS::EC2::SecurityGroupEgress"]
    assert any(
        p["GroupId"] == nodes and p["IpProtocol"] == "-1" and p.get("SourceSecurityGroupId") == nodes for p in ingress
    )
    assert any(
        p["GroupId"] == nodes and p["IpProtocol"] == "-1" and p.get("DestinationSecurityGroupId") == nodes
        for p in egress
    )
    lustre = {
        (p["FromPort"], p["ToPort"])
        for p in ingress
        if p["GroupId"] == storage and p.get("SourceSecurityGroupId") == nodes
    }
    assert lustre == {(988, 988), (1018, 1023)}
    assert "0.0.0.0/0" not in json.dumps(ingress)


def test_provisioning_parameters_follow_config(single_account):
    """The generated provisioning_parameters.json names the same groups and the file system's DNS/mount."""
    resources = single_account.template(STACK)["Resources"]
    deployment = next(r for r in resources.values() if r["Type"] == "Custom::CDKBucketDeployment")
    text = json.dumps(deployment["Properties"])
    assert "FileSystem" in text and "DNSName" in text and "LustreMountName" in text


def test_node_role_uses_the_cluster_instance_policy_and_no_full_access(single_account):
    roles = single_account.resources(STACK, "AWS::IAM::Role")
    node = next(r for r in roles.values() if r["Properties"].get("RoleName") == "mlops-training-cluster-node")
    assert "AmazonSageMakerClusterInstanceRolePolicy" in json.dumps(node["Properties"]["ManagedPolicyArns"])
    assert "FullAccess" not in json.dumps(single_account.template(STACK))


def test_nag_and_guardrails_pass_with_the_cluster(single_account):
    assert single_account.findings_in(STACK) == []
