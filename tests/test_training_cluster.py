"""The shared training cluster: FSx for Lustre linked to S3 and a HyperPod cluster of Trainium nodes."""

from __future__ import annotations

import json
import re

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


# --------------------------------------------------------------------------- both ways, keys, node role, logs

BASELINE = "mlops-dev-baseline"
FSX_SLR = (
    "arn:aws:iam::555555555555:role/aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/"
    "AWSServiceRoleForFSxS3Access_fs-*"
)


def _group_ref(resources: dict, prefix: str) -> dict:
    logical = next(k for k, r in resources.items() if k.startswith(prefix) and r["Type"] == "AWS::EC2::SecurityGroup")
    return {"Fn::GetAtt": [logical, "GroupId"]}


def _ports(resources: dict, kind: str, group: dict, peer_key: str, peer: dict) -> set[tuple[int, int]]:
    return {
        (r["Properties"]["FromPort"], r["Properties"]["ToPort"])
        for r in resources.values()
        if r["Type"] == kind and r["Properties"]["GroupId"] == group and r["Properties"].get(peer_key) == peer
    }


def test_lustre_rules_run_both_ways(single_account):
    """The servers open connections back to the clients: each side admits and sends 988 and 1018-1023."""
    resources = single_account.template(STACK)["Resources"]
    nodes, storage = _group_ref(resources, "ClusterSecurityGroup"), _group_ref(resources, "FsxSecurityGroup")
    lustre = {(988, 988), (1018, 1023)}
    assert _ports(resources, "AWS::EC2::SecurityGroupIngress", storage, "SourceSecurityGroupId", nodes) == lustre
    assert _ports(resources, "AWS::EC2::SecurityGroupIngress", nodes, "SourceSecurityGroupId", storage) == lustre
    assert _ports(resources, "AWS::EC2::SecurityGroupEgress", storage, "DestinationSecurityGroupId", nodes) == lustre
    assert _ports(resources, "AWS::EC2::SecurityGroupEgress", nodes, "DestinationSecurityGroupId", storage) == lustre


def test_dev_key_admits_the_fsx_s3_link_roles_for_the_artifacts_bucket(single_account):
    keys = single_account.resources(BASELINE, "AWS::KMS::Key")
    statements = next(iter(keys.values()))["Properties"]["KeyPolicy"]["Statement"]
    link = next(s for s in statements if s.get("Sid") == "FsxS3LinkOfArtifacts")
    bucket = "arn:aws:s3:::mlops-dev-artifacts-555555555555-eu-west-1"
    assert link["Principal"] == {"AWS": "*"}
    assert {"kms:Decrypt", "kms:GenerateDataKey*", "kms:Encrypt", "kms:ReEncrypt*"} <= set(link["Action"])
    assert link["Condition"] == {
        "ArnLike": {"aws:PrincipalArn": FSX_SLR},
        "StringEquals": {"kms:CallerAccount": "555555555555", "kms:ViaService": "s3.eu-west-1.amazonaws.com"},
        # S3 Bucket Keys are on: the context is the bucket ARN (object ARNs for older objects).
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket, f"{bucket}/*"]},
    }


def test_dev_key_has_no_fsx_statement_without_the_cluster(example):
    statements = next(iter(example.resources(BASELINE, "AWS::KMS::Key").values()))["Properties"]["KeyPolicy"]
    assert "FsxS3LinkOfArtifacts" not in json.dumps(statements)


def test_node_role_has_the_hyperpod_vpc_permissions(single_account):
    policies = single_account.resources(STACK, "AWS::IAM::ManagedPolicy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"] if "Sid" in s]
    by_sid = {s["Sid"]: s for s in statements}
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DetachNetworkInterface",
        "ec2:CreateTags",
    } <= actions
    tags = by_sid["TagNewNetworkInterfaces"]
    assert tags["Resource"] == "arn:aws:ec2:eu-west-1:555555555555:network-interface/*"
    assert tags["Condition"] == {"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}}


def test_lifecycle_access_logs_go_to_a_bucket_that_admits_them(single_account):
    """The dev access-log bucket's policy lets S3 logging deliver the lifecycle bucket's logs under its prefix."""
    lifecycle = next(
        r["Properties"]
        for r in single_account.resources(STACK, "AWS::S3::Bucket").values()
        if r["Properties"].get("BucketName", "").startswith("sagemaker-")
    )
    logging = lifecycle["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == "mlops-dev-access-logs-555555555555-eu-west-1"
    policies = single_account.resources(BASELINE, "AWS::S3::BucketPolicy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    admits = [
        s
        for s in statements
        if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
        and s["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{lifecycle['BucketName']}"
    ]
    assert len(admits) == 1 and admits[0]["Action"] == "s3:PutObject"
    resource = json.dumps(admits[0]["Resource"])
    assert f"/{logging['LogFilePrefix']}*" in resource and "AccessLogs" in resource


# --------------------------------------------------------------------------- NAT and switched off

from tests.conftest import _shared, _single_account_config  # noqa: E402
from tests.synth import synthesized_once, write_config  # noqa: E402


def _variant(tmp_path_factory, name: str, cluster: dict):
    from mlops_platform.config import load_config

    def build(tmp):
        config = _single_account_config(tmp / "base")
        platform = config.platform.model_dump(mode="json", exclude_defaults=True)
        platform["training_cluster"] = cluster
        projects = {n: p.model_dump(mode="json", exclude_defaults=True) for n, p in config.projects.items()}
        return load_config(write_config(tmp, platform, projects))

    return synthesized_once(_shared(tmp_path_factory, name), build, lambda _: {})


@pytest.fixture(scope="module")
def with_nat(tmp_path_factory):
    return _variant(tmp_path_factory, "training-nat", {"enabled": True, "internet": "nat"})


@pytest.fixture(scope="module")
def switched_off(tmp_path_factory):
    """Off with the file system kept; SCRATCH_2 with an S3 link (associations work on SCRATCH_2 with Lustre 2.15)."""
    fsx = {
        "deployment_type": "SCRATCH_2",
        "throughput_per_unit": None,
        "data_repositories": [{"s3_prefix": "projects/churn/datasets/", "fs_path": "/datasets"}],
    }
    return _variant(tmp_path_factory, "training-off", {"enabled": False, "keep_file_system": True, "fsx": fsx})


def test_nat_route_is_on_the_cluster_subnet_only(with_nat):
    assert with_nat.error is None, with_nat.error
    resources = with_nat.template(STACK)["Resources"]
    nat = [k for k, r in resources.items() if r["Type"] == "AWS::EC2::NatGateway"]
    assert len(nat) == 1
    cluster_tables = {
        json.dumps(r["Properties"]["RouteTableId"])
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation"
        and r["Properties"]["SubnetId"] == {"Ref": "ClusterSubnet"}
    }
    to_nat = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::Route" and "NatGatewayId" in r["Properties"]
    ]
    assert [json.dumps(r["RouteTableId"]) for r in to_nat] == sorted(cluster_tables)
    assert to_nat[0]["DestinationCidrBlock"] == "0.0.0.0/0" and to_nat[0]["NatGatewayId"] == {"Ref": nat[0]}
    # The NAT sits in its own public /28 in the cluster's AZ, reaching the internet through the gateway.
    subnet = resources["NatSubnet"]["Properties"]
    assert subnet["CidrBlock"] == "10.10.144.0/28" and subnet["AvailabilityZoneId"] == "euw1-az1"
    assert resources[nat[0]]["Properties"]["SubnetId"] == {"Ref": "NatSubnet"}
    assert any(r["Type"] == "AWS::EC2::InternetGateway" for r in resources.values())
    # The VPC's own private subnets stay isolated: the baseline has no route out at all.
    baseline_types = {r["Type"] for r in with_nat.template(BASELINE)["Resources"].values()}
    assert not baseline_types & {"AWS::EC2::Route", "AWS::EC2::NatGateway", "AWS::EC2::InternetGateway"}
    assert with_nat.findings_in(STACK) == []


def test_nat_tells_the_lifecycle_scripts_they_have_internet(with_nat, single_account):
    def internet_access(synth) -> set[bool]:
        files = synth.outdir.glob("asset.*/provisioning_parameters.json")
        found = (re.search(r'"internet_access":\s*(true|false)', p.read_text()) for p in files)
        return {m.group(1) == "true" for m in found if m}

    assert internet_access(with_nat) == {True}
    assert internet_access(single_account) == {False}


def test_switched_off_keeps_only_the_file_system(switched_off):
    """No cluster, node role, script upload or NAT: CloudFormation deletes them; the file system stays."""
    assert switched_off.error is None, switched_off.error
    resources = switched_off.template(STACK)["Resources"]
    types = {r["Type"] for r in resources.values()}
    assert not types & {
        "AWS::SageMaker::Cluster",
        "AWS::IAM::Role",
        "AWS::IAM::ManagedPolicy",
        "Custom::CDKBucketDeployment",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EIP",
    }
    fs = next(iter(switched_off.resources(STACK, "AWS::FSx::FileSystem").values()))
    assert fs["DeletionPolicy"] == "Retain" and fs["Properties"]["LustreConfiguration"]["DeploymentType"] == "SCRATCH_2"
    # SCRATCH_2 keeps its S3 link (never silently dropped), and the key still admits FSx's S3 roles.
    assert len(switched_off.resources(STACK, "AWS::FSx::DataRepositoryAssociation")) == 1
    key = next(iter(switched_off.resources(BASELINE, "AWS::KMS::Key").values()))
    assert "FsxS3LinkOfArtifacts" in json.dumps(key["Properties"]["KeyPolicy"])
    lifecycle = [
        r for r in switched_off.resources(STACK, "AWS::S3::Bucket").values() if r["DeletionPolicy"] == "Retain"
    ]
    assert len(lifecycle) == 1  # kept so that switching on again does not clash with its retained name
    assert switched_off.findings_in(STACK) == []
