"""The platform's own guardrails: they pass good constructs and fail synth on bad ones.

Networking (HyperPod, FSx) first, then keys, quotas and SageMaker: each rule has a
construct that AWS would refuse and that must fail synth, beside the fix that passes.
"""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, RemovalPolicy, Stack, Stage
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from mlops_platform.guardrails import GuardrailSettings, check_template
from mlops_platform.guardrails.sagemaker import SUPPORTED_TYPES_METADATA
from mlops_platform.nag import add_rule_packs, checkov_skip
from stacks.components.storage import PlatformKey


def _cluster_stack(
    *, self_rules: bool, public: bool, bucket: str, lustre_ports: bool, lustre_back: bool = True
) -> tuple[App, Stage]:
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
    if lustre_back:  # the servers' connections back to the clients
        for low, high in ((988, 988), (1018, 1023)):
            ec2.CfnSecurityGroupIngress(
                stack,
                f"LustreBack{low}",
                group_id=nodes.attr_group_id,
                ip_protocol="tcp",
                from_port=low,
                to_port=high,
                source_security_group_id=storage.attr_group_id,
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
        ({"lustre_back": False}, "MLOps-FsxLustrePorts"),  # nodes do not admit the servers' connections
    ],
)
def test_each_bad_construct_fails_synth(changes, rule):
    settings = {
        "self_rules": True,
        "public": False,
        "bucket": "sagemaker-lifecycle",
        "lustre_ports": True,
        "lustre_back": True,
    } | changes
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


def test_lustre_rule_checks_the_servers_side_too():
    """A file system group that admits the clients but sends nothing back (egress locked) fails."""
    group = {"Fn::GetAtt": ["Storage", "GroupId"]}
    lustre_in = [
        {"IpProtocol": "tcp", "FromPort": low, "ToPort": high, "CidrIp": "10.0.0.0/16"}
        for low, high in ((988, 988), (1018, 1023))
    ]
    locked = [{"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "CidrIp": "255.255.255.255/32"}]
    resources = {
        "Storage": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": "fsx", "SecurityGroupIngress": lustre_in, "SecurityGroupEgress": locked},
        },
        "Lustre": {
            "Type": "AWS::FSx::FileSystem",
            "Properties": {"FileSystemType": "LUSTRE", "SecurityGroupIds": [group]},
        },
    }
    findings = check_template({"Resources": resources})
    assert [(f.rule, f.logical_id) for f in findings] == [("MLOps-FsxLustrePorts", "Lustre")]
    assert "egress" in findings[0].detail
    resources["Storage"]["Properties"]["SecurityGroupEgress"] = lustre_in
    assert check_template({"Resources": resources}) == []


# --------------------------------------------------------------------------- keys, quotas, SageMaker


def _probe(build, settings: GuardrailSettings = GuardrailSettings()) -> App:
    """A one-stack app in a fixed account and region, with only the platform's own rules."""
    app = App()
    stage = Stage(app, "Probe", env=Environment(account="333333333333", region="eu-west-1"))
    build(Stack(stage, "Probe"))
    add_rule_packs(stage, [], settings)
    return app


def _platform_key(stack: Stack, *, admit: str | None = None) -> kms.IKey:
    key = PlatformKey(stack, "PlatformKey", alias="alias/probe", description="probe")
    if admit:
        key.admit_service("Admitted", admit)
    return key.key


def _log_group(stack: Stack, key: kms.IKey) -> None:
    logs.LogGroup(stack, "Logs", encryption_key=key, removal_policy=RemovalPolicy.DESTROY)


def _alarm_topic(stack: Stack, key: kms.IKey) -> None:
    topic = sns.Topic(stack, "Topic", master_key=key)
    metric = cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="Invocation5XXErrors")
    alarm = metric.create_alarm(stack, "Alarm", threshold=1, evaluation_periods=1)
    alarm.add_alarm_action(cw_actions.SnsAction(topic))


def _rule_with_dead_letters(stack: Stack, key: kms.IKey) -> None:
    queue = sqs.Queue(stack, "DeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key)
    rule = events.Rule(stack, "Rule", event_pattern=events.EventPattern(source=["aws.sagemaker"]))
    rule.add_target(targets.SqsQueue(sqs.Queue(stack, "Target"), dead_letter_queue=queue))


def _publishing_role(stack: Stack, key: kms.IKey, *, key_grant: bool) -> None:
    topic = sns.Topic(stack, "Topic", master_key=key)
    role = iam.Role(stack, "Publisher", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    statements = [iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])]
    if key_grant:
        statements.append(iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]))
    iam.ManagedPolicy(stack, "PublisherPolicy", roles=[role], statements=statements)


def _unscoped_service(stack: Stack) -> None:
    key = _platform_key(stack)
    key.grant_encrypt_decrypt(iam.ServicePrincipal("events.amazonaws.com"))


def _function(stack: Stack, reserved: int | None) -> None:
    lambda_.Function(
        stack,
        "Handler",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
        reserved_concurrent_executions=reserved,
    )


def _endpoint(stack: Stack, variant_type: str, supported: list[str] | None) -> None:
    model = sagemaker.CfnModel(
        stack,
        "Model",
        execution_role_arn="arn:aws:iam::333333333333:role/model",
        containers=[
            sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name="arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-churn/1"
            )
        ],
    )
    if supported is not None:
        model.add_metadata(SUPPORTED_TYPES_METADATA, supported)
    sagemaker.CfnEndpointConfig(
        stack,
        "Config",
        production_variants=[
            sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name="primary",
                model_name=model.attr_model_name,
                initial_instance_count=1,
                instance_type=variant_type,
                initial_variant_weight=1.0,
            )
        ],
    )


SUPPORTED = ["ml.m5.large", "ml.m5.xlarge"]
# (bad construct, its fix): the bad one fails synth with the rule, the fix passes.
CASES = {
    "MLOps-KeyAdmitsLogs": (
        lambda s: _log_group(s, kms.Key(s, "BareKey", removal_policy=RemovalPolicy.DESTROY)),
        lambda s: _log_group(s, _platform_key(s)),
    ),
    "MLOps-KeyAdmitsTopicPublishers": (
        lambda s: _alarm_topic(s, _platform_key(s)),
        lambda s: _alarm_topic(s, _platform_key(s, admit="cloudwatch.amazonaws.com")),
    ),
    "MLOps-KeyAdmitsQueueSenders": (
        lambda s: _rule_with_dead_letters(s, _platform_key(s)),
        lambda s: _rule_with_dead_letters(s, _platform_key(s, admit="events.amazonaws.com")),
    ),
    "MLOps-KeyServicePrincipalScoped": (_unscoped_service, lambda s: _platform_key(s, admit="events.amazonaws.com")),
    "MLOps-LambdaReservedConcurrency": (lambda s: _function(s, 1), lambda s: _function(s, None)),
    "MLOps-ModelPackageInstanceTypes": (
        lambda s: _endpoint(s, "ml.c5.xlarge", SUPPORTED),
        lambda s: _endpoint(s, "ml.m5.xlarge", SUPPORTED),
    ),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_bad_construct_fails_synth_and_its_fix_passes(rule):
    bad, fixed = CASES[rule]
    with pytest.raises(RuntimeError, match=rule):
        _probe(bad).synth()
    _probe(fixed).synth()


def test_a_role_publishing_to_an_encrypted_topic_needs_the_key_in_its_policy():
    with pytest.raises(RuntimeError, match="MLOps-KeyAdmitsTopicPublishers"):
        _probe(lambda s: _publishing_role(s, _platform_key(s), key_grant=False)).synth()
    _probe(lambda s: _publishing_role(s, _platform_key(s), key_grant=True)).synth()


def test_a_model_without_its_package_instance_types_cannot_be_verified():
    with pytest.raises(RuntimeError, match="does not say which instance types"):
        _probe(lambda s: _endpoint(s, "ml.m5.xlarge", None)).synth()


def test_reserved_concurrency_passes_when_config_asks_for_it_within_the_quota():
    _probe(lambda s: _function(s, 5), GuardrailSettings(reserved_concurrency=True)).synth()
    with pytest.raises(RuntimeError, match="reserves 901 in all"):
        _probe(lambda s: _function(s, 901), GuardrailSettings(reserved_concurrency=True)).synth()


def test_logs_key_must_cover_the_log_group_arn():
    """A Logs statement scoped to another account's log groups does not admit this one."""
    template = {
        "Resources": {
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
                                + ["kms:Describe*"],
                                "Resource": "*",
                                "Condition": {
                                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*:999999999999:*"}
                                },
                            }
                        ]
                    }
                },
            },
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]}}},
        }
    }
    rules = sorted(f.rule for f in check_template(template))
    assert rules == ["MLOps-KeyAdmitsLogs", "MLOps-KeyServicePrincipalScoped"]
    statement = template["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"][0]
    statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] = "arn:aws:logs:us-east-1:123456789012:*"
    assert check_template(template) == []


def test_the_example_platform_passes_every_guardrail(example):
    """The shipped config synthesizes with no guardrail finding (cdk-nag's own test covers the packs)."""
    assert example.error is None
    assert not [rule for _, rule in example.findings if rule.startswith("MLOps-")]


def test_checkov_skips_land_in_the_resource_metadata_with_their_reasons():
    app = App()
    stack = Stack(app, "Skips")
    bucket = s3.Bucket(stack, "Bucket")
    checkov_skip(bucket, "CKV_AWS_18", "It is the access-log target itself.")
    checkov_skip(bucket, "CKV_AWS_21", "Versioning is not needed for a probe.")
    resource = next(iter(Template.from_stack(stack).find_resources("AWS::S3::Bucket").values()))
    assert resource["Metadata"]["checkov"]["skip"] == [
        {"id": "CKV_AWS_18", "comment": "It is the access-log target itself."},
        {"id": "CKV_AWS_21", "comment": "Versioning is not needed for a probe."},
    ]
    with pytest.raises(ValueError):
        checkov_skip(bucket, "CKV_AWS_19", " ")
    with pytest.raises(ValueError):
        checkov_skip(bucket, "AwsSolutions-S1", "not a checkov id")
