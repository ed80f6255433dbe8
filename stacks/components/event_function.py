"""A Lambda that handles one kind of EventBridge event, with the guard rails every handler needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import jsii
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops_platform.nag import acknowledge, checkov_skip
from stacks.components.roles import ServiceRole

RUNTIME = lambda_.Runtime.PYTHON_3_14  # cdk-nag L1: the latest Python runtime


def dead_letter_queue(scope: Construct, id: str, *, key: kms.IKey, queue_name: str | None = None) -> sqs.Queue:
    """A KMS-encrypted, TLS-only queue keeping failure records for 14 days (what event functions fail into)."""
    queue = sqs.Queue(
        scope,
        id,
        queue_name=queue_name,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(queue, "AwsSolutions-SQS3", "This queue is the dead-letter queue itself.")
    return queue


@jsii.implements(lambda_.IDestination)
class _QueueDestination:
    """An SQS on-failure destination that grants nothing.

    CDK's ``SqsDestination`` grants the function's role the queue and its key,
    which writes the role into the key policy of the baseline stack: a cycle.
    The role holds ``sqs:SendMessage`` on the queue and the key's use itself.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, scope: Construct, fn: lambda_.IFunction, *, type: lambda_.DestinationType | None = None
    ) -> lambda_.DestinationConfig:
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


class EventFunction(Construct):
    """Lambda ``handler`` from ``code_dir`` behind an EventBridge rule matching ``event_pattern`` (or on ``schedule``).

    Defaults: 60 s timeout, no reserved concurrency (the handlers are idempotent,
    and a reservation fails in new accounts whose concurrency quota is 10; set
    ``reserved_concurrency`` to reserve), two async retries, then a failure
    record (the event, the function, the error) to the dead-letter queue as the
    on-failure destination; the rule target sends undeliverable events there
    too. Logs go to a KMS-encrypted group kept for a year, and the environment
    is encrypted with ``key`` too (the role may decrypt with it). The role holds
    only ``statements`` plus writing its own logs.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code_dir: Path,
        handler: str,
        description: str,
        event_pattern: events.EventPattern | None = None,
        schedule: events.Schedule | None = None,
        environment: Mapping[str, str],
        statements: Sequence[iam.PolicyStatement],
        key: kms.IKey,
        dead_letter_queue: sqs.IQueue,
        function_name: str,
        role_name: str | None = None,
        reserved_concurrency: int | None = None,
        timeout: Duration | None = None,
    ) -> None:
        super().__init__(scope, id)
        if (event_pattern is None) == (schedule is None):
            raise ValueError("give exactly one of event_pattern and schedule")
        stack = Stack.of(self)
        log_group_name = f"/aws/lambda/{function_name}"
        log_streams = f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{log_group_name}:*"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            encryption_key=key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = ServiceRole(
            self,
            "Role",
            service="lambda.amazonaws.com",
            role_name=role_name,
            description=description,
            key=key,
            statements=[
                *statements,
                iam.PolicyStatement(
                    sid="OwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_streams],
                ),
                iam.PolicyStatement(
                    sid="DeadLetters", actions=["sqs:SendMessage"], resources=[dead_letter_queue.queue_arn]
                ),
            ],
        )
        self.function = lambda_.Function(
            self,
            "Resource",
            function_name=function_name,
            runtime=RUNTIME,
            handler=handler,
            code=lambda_.Code.from_asset(str(code_dir), exclude=["__pycache__", "*.pyc"]),
            description=description,
            role=iam.Role.from_role_arn(self, "ExecutionRole", self.role.role.role_arn, mutable=False),
            timeout=timeout or Duration.seconds(60),
            memory_size=256,
            environment=dict(environment),
            environment_encryption=key,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            reserved_concurrent_executions=reserved_concurrency,
            # A failure record (event, function, error) rather than the bare event: `mlops dlq` replays it.
            on_failure=_QueueDestination(dead_letter_queue),
            retry_attempts=2,
        )
        self.function.node.add_dependency(self.role)
        self.rule = events.Rule(self, "Rule", description=description, event_pattern=event_pattern, schedule=schedule)
        self.rule.add_target(
            targets.LambdaFunction(self.function, dead_letter_queue=dead_letter_queue, retry_attempts=4)
        )
        self.role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{log_streams}]", "Streams of this function's own log group."
        )
        if reserved_concurrency is None:
            unreserved = (
                "Unreserved on purpose: new accounts have a concurrency quota of 10 and Lambda refuses any "
                "reservation that leaves fewer than 10 unreserved; the handlers are idempotent, so concurrent "
                "duplicate deliveries change nothing twice (approval_workflow.reserved_concurrency reserves)."
            )
            acknowledge(self.function, "NIST.800.53.R5-LambdaConcurrency", unreserved)
            checkov_skip(self.function, "CKV_AWS_115", unreserved)
        destination = (
            "Failures go to the SQS on-failure destination, whose record holds the event, the function and the "
            "error (what `mlops dlq` lists and replays); a DeadLetterConfig would keep the bare event only."
        )
        acknowledge(self.function, "NIST.800.53.R5-LambdaDLQ", destination)
        checkov_skip(self.function, "CKV_AWS_116", destination)
        outside_vpc = (
            "Calls only AWS APIs (SageMaker, S3, DynamoDB, SNS, CodePipeline); the governance "
            "account has no VPC and no private data path to protect."
        )
        acknowledge(self.function, "NIST.800.53.R5-LambdaInsideVPC", outside_vpc)
        checkov_skip(self.function, "CKV_AWS_117", outside_vpc)
