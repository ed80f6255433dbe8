"""boto3 clients (created lazily, injectable) and the few AWS calls the handlers share.

Error policy: "not there" answers that no retry can change (a deleted model
package, a missing evaluation report) are returned as data; every other AWS
error (throttling, AccessDenied, KMS, 5xx) is raised, so Lambda's asynchronous
retries and then the dead-letter queue take the event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Attribute name -> boto3 service name.
SERVICES = {
    "sagemaker": "sagemaker",
    "s3": "s3",
    "sns": "sns",
    "sqs": "sqs",
    "dynamodb": "dynamodb",
    "codepipeline": "codepipeline",
    "cloudwatch": "cloudwatch",
    "cloudformation": "cloudformation",
    "sts": "sts",
    "autoscaling": "application-autoscaling",
    "lambda_": "lambda",
    "featurestore_runtime": "sagemaker-featurestore-runtime",
    "sagemaker_runtime": "sagemaker-runtime",
}
LAMBDA_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
REPORT_MAX_BYTES = 5 * 1024 * 1024
_MISSING_OBJECT = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}


class Clients:
    """boto3 clients of one session, each created on first use; used by the handlers and the CLI.

    ``session``: a boto3 session (default: boto3's default session, as in
    Lambda). Ready-made clients (tests) are passed as keywords and win.
    """

    def __init__(self, session: Any = None, *, config: Config = LAMBDA_CONFIG, **clients: Any) -> None:
        unknown = set(clients) - set(SERVICES)
        if unknown:
            raise TypeError(f"unknown clients: {', '.join(sorted(unknown))}")
        self._session = session
        self._config = config
        self._clients: dict[str, Any] = dict(clients)

    @property
    def session(self) -> Any:
        """The boto3 session the clients come from (None: boto3's default session)."""
        return self._session

    def _get(self, name: str) -> Any:
        if name not in self._clients:
            factory = self._session.client if self._session is not None else boto3.client
            self._clients[name] = factory(SERVICES[name], config=self._config)
        return self._clients[name]

    sagemaker = property(lambda self: self._get("sagemaker"))
    s3 = property(lambda self: self._get("s3"))
    sns = property(lambda self: self._get("sns"))
    sqs = property(lambda self: self._get("sqs"))
    dynamodb = property(lambda self: self._get("dynamodb"))
    codepipeline = property(lambda self: self._get("codepipeline"))
    cloudwatch = property(lambda self: self._get("cloudwatch"))
    cloudformation = property(lambda self: self._get("cloudformation"))
    sts = property(lambda self: self._get("sts"))
    autoscaling = property(lambda self: self._get("autoscaling"), doc="Application Auto Scaling")
    lambda_ = property(lambda self: self._get("lambda_"))
    featurestore_runtime = property(lambda self: self._get("featurestore_runtime"), doc="Feature Store runtime")
    sagemaker_runtime = property(lambda self: self._get("sagemaker_runtime"), doc="SageMaker runtime (endpoints)")


_default: Clients | None = None


def get_clients() -> Clients:
    """Clients shared by the invocations of one Lambda environment."""
    global _default
    if _default is None:
        _default = Clients()
    return _default


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def describe_package(sagemaker: Any, arn: str) -> dict[str, Any] | None:
    """DescribeModelPackage, or None when the package no longer exists."""
    try:
        return sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as err:
        message = str(err.response.get("Error", {}).get("Message", "")).lower()
        if error_code(err) in ("ValidationException", "ResourceNotFound") and (
            "not found" in message or "does not exist" in message
        ):
            return None
        raise


def split_s3_uri(uri: str) -> tuple[str, str] | None:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket and key else None


def read_report(s3: Any, uri: str | None) -> tuple[Any, str | None]:
    """``(decoded JSON, None)`` or ``(None, problem)`` for the evaluation report at ``uri``.

    A missing object or a document that is not JSON is a problem with the
    evidence (reported, not retried); access and service errors are raised.
    """
    if not uri:
        return None, "no evaluation report attached"
    location = split_s3_uri(uri)
    if location is None:
        return None, f"{uri} is not an s3:// URI"
    bucket, key = location
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if error_code(err) in _MISSING_OBJECT:
            return None, f"{uri} does not exist"
        raise
    body = response["Body"].read(REPORT_MAX_BYTES + 1)
    if len(body) > REPORT_MAX_BYTES:
        return None, f"{uri} is larger than {REPORT_MAX_BYTES // (1024 * 1024)} MiB"
    try:
        return json.loads(body), None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"{uri} is not JSON ({err.__class__.__name__})"


def publish(sns: Any, topic_arn: str, subject: str, message: str) -> str:
    """Publish to the approvers' topic; returns the message id."""
    # SNS subjects: ASCII, no line breaks, at most 100 characters.
    subject = subject.encode("ascii", "replace").decode().replace("\n", " ")[:100]
    return sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)["MessageId"]


def deployment_token(kind: str, arn: str, stage: str, record_event_id: str) -> str:
    """clientRequestToken: the same for every retry of one release or rollback record."""
    digest = hashlib.sha256(f"{kind}|{arn}|{stage}|{record_event_id}".encode()).hexdigest()
    return f"{kind}-{digest[:48]}"


def start_deployment(
    codepipeline: Any, pipeline: str, *, project: str, stage: str, model_package_arn: str, token: str
) -> str:
    """Start the deploy pipeline for one stage; returns the execution id."""
    response = codepipeline.start_pipeline_execution(
        name=pipeline,
        variables=[
            {"name": "PROJECT", "value": project},
            {"name": "STAGE", "value": stage},
            {"name": "MODEL_PACKAGE_ARN", "value": model_package_arn},
        ],
        clientRequestToken=token,
    )
    return str(response["pipelineExecutionId"])


def context_request_id(context: Any) -> str | None:
    return getattr(context, "aws_request_id", None) if context is not None else None


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
