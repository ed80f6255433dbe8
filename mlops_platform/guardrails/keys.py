"""Key rules: a KMS key's policy admits every service and role that encrypts with it.

AWS checks these when the resource is created or first used, and no unit test
of a construct sees them:

- ``MLOps-KeyAdmitsLogs``: CreateLogGroup with ``KmsKeyId`` fails unless the key
  policy lets ``logs.<region>.amazonaws.com`` use the key (Encrypt*, Decrypt*,
  ReEncrypt*, GenerateDataKey*, Describe*) for that log group, scoped by the
  ``kms:EncryptionContext:aws:logs:arn`` condition. Source: CloudWatch Logs
  User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS", step 2
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
- ``MLOps-KeyAdmitsTopicPublishers``: a publisher to a KMS-encrypted SNS topic
  needs kms:GenerateDataKey* and kms:Decrypt on its key: CloudWatch alarms and
  EventBridge rules through the key policy (their service principal), roles
  through their own policies with the key policy delegating to the account.
  Otherwise publishing fails silently. Source: SNS Developer Guide, "Enable
  compatibility between event sources from AWS services and encrypted topics"
  (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
- ``MLOps-KeyAdmitsQueueSenders``: the same for KMS-encrypted SQS queues: an
  EventBridge rule's dead-letter queue (events.amazonaws.com), a Lambda
  function's dead-letter queue (its execution role), and roles that send.
  Source: EventBridge User Guide, "Using dead-letter queues"
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
- ``MLOps-KeyServicePrincipalScoped``: every key-policy statement that admits
  a service principal is scoped to this account (``aws:SourceAccount`` or
  ``aws:SourceArn``, or for CloudWatch Logs the encryption-context condition
  naming this account's log groups), so no other account's resources can use
  the key through the service (the confused-deputy problem). Source: IAM User
  Guide, "The confused deputy problem"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlops_platform.guardrails.core import (
    Finding,
    GuardrailSettings,
    Resource,
    StackTemplate,
    StageTemplates,
    allows_actions,
    as_list,
    aws_principals,
    condition_values,
    identity_statements,
    key_statements,
    matches,
    service_principals,
)

RULES = {
    "MLOps-KeyAdmitsLogs": "The log group's KMS key policy must admit logs.<region>.amazonaws.com for its log groups.",
    "MLOps-KeyAdmitsTopicPublishers": "Every publisher to a KMS-encrypted SNS topic must be allowed to use its key.",
    "MLOps-KeyAdmitsQueueSenders": "Every sender to a KMS-encrypted SQS queue must be allowed to use its key.",
    "MLOps-KeyServicePrincipalScoped": (
        "Key-policy statements for service principals need aws:SourceAccount/aws:SourceArn "
        "(or, for CloudWatch Logs, the aws:logs:arn encryption context of this account)."
    ),
}

LOGS_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
)
PUBLISH_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
LOGS_CONTEXT = "kms:EncryptionContext:aws:logs:arn"
SOURCE_KEYS = ("aws:SourceAccount", "aws:SourceArn")


def check(stage: StageTemplates, settings: GuardrailSettings) -> Iterator[Finding]:
    for stack in stage.stacks:
        for logical_id, props in stack.of_type("AWS::Logs::LogGroup"):
            if "KmsKeyId" in props:
                yield from _log_group(stage, stack, logical_id, props)
        for logical_id, props in stack.of_type("AWS::SNS::Topic"):
            if "KmsMasterKeyId" in props:
                yield from _encrypted_target(stage, stack, logical_id, props, "MLOps-KeyAdmitsTopicPublishers")
        for logical_id, props in stack.of_type("AWS::SQS::Queue"):
            if "KmsMasterKeyId" in props:
                yield from _encrypted_target(stage, stack, logical_id, props, "MLOps-KeyAdmitsQueueSenders")
        for logical_id, _ in stack.of_type("AWS::KMS::Key"):
            yield from _scoped(Resource(stack, logical_id, stack.resources[logical_id]))


def _key(stage: StageTemplates, stack: StackTemplate, value: Any) -> Resource | None:
    key = stage.resolve(stack, value)
    return key if key is not None and key.type == "AWS::KMS::Key" else None


def _log_group(stage: StageTemplates, stack: StackTemplate, logical_id: str, props: dict) -> Iterator[Finding]:
    key = _key(stage, stack, props["KmsKeyId"])
    if key is None:
        yield Finding("MLOps-KeyAdmitsLogs", logical_id, "KmsKeyId", "the key is not defined in this stage", stack.path)
        return
    name = stack.render(props.get("LogGroupName", "generated-name"))
    arn = f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{name}"
    service = f"logs.{stack.region}.amazonaws.com"
    granted: set[str] = set()
    for statement in key_statements(key):
        if service not in service_principals(key.stack, statement):
            continue
        contexts = condition_values(key.stack, statement, LOGS_CONTEXT)
        if contexts and any(matches(pattern, arn) for pattern in contexts):
            granted |= allows_actions(statement, LOGS_ACTIONS)
    missing = [a for a in LOGS_ACTIONS if a not in granted]
    if missing:
        yield Finding(
            "MLOps-KeyAdmitsLogs",
            logical_id,
            "KmsKeyId",
            f"key {key.logical_id} does not let {service} use it for {arn} ({', '.join(missing)}; "
            f"with a {LOGS_CONTEXT} condition)",
            stack.path,
        )


def _encrypted_target(
    stage: StageTemplates, stack: StackTemplate, logical_id: str, props: dict, rule: str
) -> Iterator[Finding]:
    key = _key(stage, stack, props["KmsMasterKeyId"])
    if key is None:
        yield Finding(rule, logical_id, "KmsMasterKeyId", "the key is not defined in this stage", stack.path)
        return
    target = Resource(stack, logical_id, stack.resources[logical_id])
    for kind, who in _writers(stage, target):
        missing = _missing_for_service(key, who) if kind == "service" else _missing_for_role(stage, stack, who, key)
        if missing:
            yield Finding(
                rule,
                logical_id,
                "KmsMasterKeyId",
                f"{kind} {who} writes to it but may not use key {key.logical_id} ({missing})",
                stack.path,
            )


def _writers(stage: StageTemplates, target: Resource) -> Iterator[tuple[str, str]]:
    """(``service``, principal) and (``role``, logical id) of everything in the target's stack that writes to it."""
    stack = target.stack
    for _, props in stack.of_type("AWS::CloudWatch::Alarm"):
        actions = [*as_list(props.get("AlarmActions")), *as_list(props.get("OKActions"))]
        actions += as_list(props.get("InsufficientDataActions"))
        if any(stage.same(stack, action, target) for action in actions):
            yield "service", "cloudwatch.amazonaws.com"
    for _, props in stack.of_type("AWS::Events::Rule"):
        for rule_target in as_list(props.get("Targets")):
            dead_letters = (rule_target.get("DeadLetterConfig") or {}).get("Arn")
            if stage.same(stack, rule_target.get("Arn"), target) or stage.same(stack, dead_letters, target):
                yield "service", "events.amazonaws.com"
    for _, props in stack.of_type("AWS::Lambda::Function"):
        if stage.same(stack, (props.get("DeadLetterConfig") or {}).get("TargetArn"), target):
            role = stage.resolve(stack, props.get("Role"))
            yield "role", role.logical_id if role is not None else stack.render(props.get("Role"))
    send = ("sns:Publish",) if target.type == "AWS::SNS::Topic" else ("sqs:SendMessage",)
    for _, props in [*stack.of_type("AWS::IAM::ManagedPolicy"), *stack.of_type("AWS::IAM::Policy")]:
        statements = as_list(props.get("PolicyDocument", {}).get("Statement"))
        if any(
            allows_actions(s, send) and any(stage.same(stack, r, target) for r in as_list(s.get("Resource")))
            for s in statements
        ):
            for role in as_list(props.get("Roles")):
                if isinstance(role, dict) and "Ref" in role:
                    yield "role", role["Ref"]


def _missing_for_service(key: Resource, service: str) -> str:
    granted: set[str] = set()
    for statement in key_statements(key):
        if service in service_principals(key.stack, statement):
            granted |= allows_actions(statement, PUBLISH_ACTIONS)
    return ", ".join(a for a in PUBLISH_ACTIONS if a not in granted)


def _missing_for_role(stage: StageTemplates, stack: StackTemplate, role_id: str, key: Resource) -> str:
    """A same-account role uses the key through its own policy, which counts only if the key delegates to IAM."""
    if role_id not in stack.resources:
        return "its role is not defined in this stack"
    root = f"arn:aws:iam::{key.stack.account}:root"
    if not any(
        root in aws_principals(key.stack, s) and allows_actions(s, PUBLISH_ACTIONS) == set(PUBLISH_ACTIONS)
        for s in key_statements(key)
    ):
        return "the key policy does not delegate to the account's IAM policies"
    key_arn = f"arn:aws:kms:{key.stack.region}:{key.stack.account}:key/00000000-0000-0000-0000-000000000000"
    granted: set[str] = set()
    for statement in identity_statements(stack, role_id):
        resources = as_list(statement.get("Resource"))
        if any(stage.same(stack, r, key) or (isinstance(r, str) and matches(r, key_arn)) for r in resources):
            granted |= allows_actions(statement, PUBLISH_ACTIONS)
    return ", ".join(a for a in PUBLISH_ACTIONS if a not in granted)


def _scoped(key: Resource) -> Iterator[Finding]:
    own_log_groups = f"arn:aws:logs:{key.stack.region}:{key.stack.account}:"
    for i, statement in enumerate(key_statements(key)):
        services = service_principals(key.stack, statement)
        if statement.get("Effect") != "Allow" or not services:
            continue
        if any(condition_values(key.stack, statement, name) for name in SOURCE_KEYS):
            continue
        contexts = condition_values(key.stack, statement, LOGS_CONTEXT)
        if contexts and all(c.startswith(own_log_groups) for c in contexts):
            continue
        yield Finding(
            "MLOps-KeyServicePrincipalScoped",
            key.logical_id,
            f"KeyPolicy.Statement[{i}]",
            f"{', '.join(services)} may use the key for any account's resources",
            key.stack.path,
        )
