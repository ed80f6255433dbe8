"""Test doubles and a small AWS "platform" (registry, topic, table, pipeline) for the approval tests.

moto gaps covered here, each a thin wrapper around a real moto-backed client:

* :class:`RecordingIdentity` — moto's DescribeModelPackage always reports the
  same fake ``CreatedBy`` / ``LastModifiedBy`` (user profile
  ``fake-user-profile-name``, no ``IamIdentity``), whoever called. Real
  SageMaker records the caller. The wrapper remembers which test principal
  created or last updated each version and puts that into the response.
  moto also clears the approval status and description on an
  ``UpdateModelPackage`` that does not set them (a metadata edit); the
  wrapper passes the current ones along, as SageMaker keeps them.
* :class:`Faulty` — raises a botocore ``ClientError`` (throttling,
  AccessDenied, 5xx) for chosen operations, as AWS would.
* CodePipeline: moto 5.2.5 implements ``StartPipelineExecution`` with
  ``variables`` (returned by ``GetPipelineExecution``) and accepts but ignores
  ``clientRequestToken``, so counting executions measures our own idempotency.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from tests.approval.lambdas import aws as lambda_aws
from tests.approval.lambdas import policy
from tests.approval.lambdas import settings as lambda_settings
from tests.moto_governance import create_deploy_pipeline, create_release_table, deploy_executions

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
PROJECT = "churn"
GROUP = "mlops-churn"
OTHER_GROUP = "mlops-fraud"
TABLE = "mlops-releases"
PIPELINE = "mlops-deploy"
BUCKET = "mlops-dev-artifacts-test"
APPROVER_ROLE = "mlops-approver"
APPROVER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{APPROVER_ROLE}"
# The project's approver role (names carry the person as STS source identity) and its Studio lead role.
PROJECT_APPROVER_ROLE = "mlops-churn-governance-approver"
STUDIO_LEAD_ROLE = "mlops-churn-dev-lead"

POLICY_DOCUMENT = {
    "project": PROJECT,
    "model_package_group": GROUP,
    "approvers": ["alice", APPROVER_ROLE_ARN],
    "primary_metric": "auc",
    "metric_thresholds": {"auc": 0.75, "accuracy": 0.7},
    "required_evidence": ["evaluation_report", "data_quality_baseline"],
    "allow_self_approval": False,
    "approver_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{PROJECT_APPROVER_ROLE}",
    "studio_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{STUDIO_LEAD_ROLE}",
}
POLICY = policy.Policy.from_dict(POLICY_DOCUMENT)
# The keys of POLICY_DOCUMENT that come from names, not from the project's approval section.
DERIVED_KEYS = ("project", "model_package_group", "approver_role_arn", "studio_role_arn")


# --------------------------------------------------------------------------- identities


def studio_user(profile: str, role: str) -> dict[str, Any]:
    """UserContext of a Studio user (profile ``<project>-<user>``) acting through its execution role.

    The domain sets the profile name as the session's STS source identity
    (``ExecutionRoleIdentityConfig = USER_PROFILE_NAME``).
    """
    return {
        "UserProfileArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:user-profile/d-test/{profile}",
        "UserProfileName": profile,
        "DomainId": "d-test",
        "IamIdentity": {
            "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/SageMaker",
            "PrincipalId": f"AROATEST{role.upper()[:8]}:SageMaker",
            "SourceIdentity": profile,
        },
    }


def role_session(role: str, session: str, source_identity: str | None = None) -> dict[str, Any]:
    """UserContext of an API call made with an assumed role (CLI, pipeline, Lambda)."""
    iam: dict[str, Any] = {
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "PrincipalId": f"AROATEST{role.upper()[:8]}:{session}",
    }
    if source_identity is not None:
        iam["SourceIdentity"] = source_identity
    return {"IamIdentity": iam}


PIPELINE_ROLE = role_session("mlops-churn-dev-pipeline", "SageMaker-pipeline")
ALICE = studio_user("churn-alice", "mlops-churn-dev-lead")
BOB = studio_user("churn-bob", "mlops-churn-dev-data-scientist")
APPROVER_CLI = role_session(APPROVER_ROLE, "mlops-cli-carol")
# alice through `mlops approve --as alice`: the project's approver role with her name as source identity.
ALICE_CLI = role_session(PROJECT_APPROVER_ROLE, "alice", source_identity="alice")
# Someone assuming the approver role without being alice cannot set her source identity; with another name:
MALLORY_CLI = role_session(PROJECT_APPROVER_ROLE, "alice", source_identity="mallory")
GUARD_ROLE = role_session("mlops-churn-approval-guard", "guard")


@dataclass
class Identities:
    """Who created / last modified each model package (what real SageMaker records)."""

    created_by: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_modified_by: dict[str, dict[str, Any]] = field(default_factory=dict)

    def client(self, real: Any, caller: dict[str, Any] | None) -> RecordingIdentity:
        return RecordingIdentity(real, self, caller)


class RecordingIdentity:
    """A moto SageMaker client whose model packages record the calling principal (see module docstring)."""

    def __init__(self, real: Any, identities: Identities, caller: dict[str, Any] | None) -> None:
        self._real = real
        self._identities = identities
        self._caller = caller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def create_model_package(self, **kwargs: Any) -> dict[str, Any]:
        response = self._real.create_model_package(**kwargs)
        if self._caller is not None:
            self._identities.created_by[response["ModelPackageArn"]] = self._caller
        return response

    def update_model_package(self, **kwargs: Any) -> dict[str, Any]:
        if "ModelApprovalStatus" not in kwargs:
            # moto clears the status and description of a call that does not set them; SageMaker keeps them.
            current = self._real.describe_model_package(ModelPackageName=kwargs["ModelPackageArn"])
            kwargs = {"ModelApprovalStatus": current.get("ModelApprovalStatus"), **kwargs}
            if current.get("ApprovalDescription") is not None and "ApprovalDescription" not in kwargs:
                kwargs["ApprovalDescription"] = current["ApprovalDescription"]
        response = self._real.update_model_package(**kwargs)
        if self._caller is not None:
            self._identities.last_modified_by[kwargs["ModelPackageArn"]] = self._caller
        return response

    def describe_model_package(self, **kwargs: Any) -> dict[str, Any]:
        response = dict(self._real.describe_model_package(**kwargs))
        arn = response["ModelPackageArn"]
        for key, recorded in (
            ("CreatedBy", self._identities.created_by),
            ("LastModifiedBy", self._identities.last_modified_by),
        ):
            response.pop(key, None)
            if arn in recorded:
                response[key] = recorded[arn]
        return response


class Faulty:
    """Wraps a client; the named operations raise ``ClientError(code, status)`` instead of calling AWS."""

    def __init__(self, real: Any, faults: dict[str, tuple[str, int]]) -> None:
        self._real = real
        self._faults = faults
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name not in self._faults:
            return attr

        def fail(**kwargs: Any) -> Any:
            self.calls.append(name)
            code, status = self._faults[name]
            operation = "".join(part.title() for part in name.split("_"))
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": f"simulated {code}"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                operation,
            )

        return fail


# --------------------------------------------------------------------------- events


def state_change_event(
    arn: str,
    status: str,
    *,
    event_id: str | None = None,
    time: str = "2026-05-04T10:00:00Z",
    group: str = GROUP,
    description: str | None = None,
) -> dict[str, Any]:
    """An EventBridge "SageMaker Model Package State Change" event as SageMaker sends it."""
    version = int(arn.rsplit("/", 1)[1])
    detail: dict[str, Any] = {
        "ModelPackageName": f"{group}/{version}",
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": arn,
        "CreationTime": 1777888800000,
        "InferenceSpecification": {
            "Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sklearn:1", "ModelDataUrl": "s3://x/m"}]
        },
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
        "CertifyForMarketplace": False,
    }
    if description is not None:
        detail["ApprovalDescription"] = description
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [arn],
        "detail": detail,
    }


def approval_event(
    arn: str,
    by: dict[str, Any] | None,
    *,
    status: str = "Approved",
    event_id: str | None = None,
    time: str = "2026-05-04T10:00:00Z",
    description: str | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """The EventBridge "AWS API Call via CloudTrail" event of ``UpdateModelPackage`` by ``by`` (a UserContext)."""
    iam = (by or {}).get("IamIdentity", {})
    user_identity: dict[str, Any] = {"type": "AssumedRole", "accountId": ACCOUNT}
    if iam.get("Arn"):
        user_identity["arn"] = iam["Arn"]
        user_identity["principalId"] = iam.get("PrincipalId", "")
        role = iam["Arn"].split("/")[1]
        user_identity["sessionContext"] = {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "userName": role},
            "attributes": {"creationDate": time, "mfaAuthenticated": "false"},
        }
        if iam.get("SourceIdentity"):
            user_identity["sessionContext"]["sourceIdentity"] = iam["SourceIdentity"]
    request: dict[str, Any] = {"modelPackageArn": arn, "modelApprovalStatus": status}
    if description is not None:
        request["approvalDescription"] = description
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": user_identity,
        "eventTime": time,
        "eventSource": "sagemaker.amazonaws.com",
        "eventName": "UpdateModelPackage",
        "awsRegion": REGION,
        "requestParameters": request,
        "responseElements": {"modelPackageArn": arn},
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
    }
    if error_code is not None:
        detail["errorCode"] = error_code
        detail["responseElements"] = None
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


# --------------------------------------------------------------------------- platform


def report(auc: float = 0.82, accuracy: float = 0.8, kind: str = "binary_classification_metrics") -> dict[str, Any]:
    return {
        kind: {
            "auc": {"value": auc, "standard_deviation": 0.01},
            "accuracy": {"value": accuracy, "standard_deviation": 0.01},
        }
    }


class Platform:
    """The governance-side resources the approval workflow uses, created in moto."""

    def __init__(self, make_client: Callable[[str], Any]) -> None:
        self.make_client = make_client
        self.sagemaker = make_client("sagemaker")
        self.s3 = make_client("s3")
        self.sns = make_client("sns")
        self.sqs = make_client("sqs")
        self.dynamodb = make_client("dynamodb")
        self.codepipeline = make_client("codepipeline")
        self.identities = Identities()
        self.topic_arn = ""
        self.queue_url = ""
        self._versions = 0

    def create(self) -> Platform:
        for group in (GROUP, OTHER_GROUP):
            self.sagemaker.create_model_package_group(ModelPackageGroupName=group)
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.topic_arn = self.sns.create_topic(Name="mlops-churn-approval")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="approvers")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        create_release_table(self.dynamodb, TABLE)
        create_deploy_pipeline(self.codepipeline, self.make_client("iam"), name=PIPELINE, bucket=BUCKET)
        return self

    # ------------------------------------------------------------------ registry
    def sagemaker_as(self, caller: dict[str, Any] | None) -> RecordingIdentity:
        return self.identities.client(self.sagemaker, caller)

    def register(
        self,
        *,
        auc: float = 0.82,
        accuracy: float = 0.8,
        registrant: dict[str, Any] | None = PIPELINE_ROLE,
        evaluation: bool = True,
        baseline: str | None = "drift",
        body: Any = None,
        group: str = GROUP,
        status: str = "PendingManualApproval",
    ) -> str:
        """Register a version as the dev pipeline does; returns its ARN."""
        self._versions += 1
        prefix = f"projects/{PROJECT}/run-{self._versions}"
        kwargs: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": status,
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sklearn:1",
                        "ModelDataUrl": f"s3://{BUCKET}/{prefix}/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        }
        metrics: dict[str, Any] = {}
        if evaluation:
            key = f"{prefix}/evaluation.json"
            content = json.dumps(report(auc, accuracy) if body is None else body) if not isinstance(body, str) else body
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=content.encode())
            metrics["ModelQuality"] = {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{key}"}
            }
        data_quality = {
            "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{prefix}/statistics.json"},
            "Constraints": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{prefix}/constraints.json"},
        }
        if baseline == "drift":
            kwargs["DriftCheckBaselines"] = {"ModelDataQuality": data_quality}
        elif baseline == "metrics":
            metrics["ModelDataQuality"] = data_quality
        if metrics:
            kwargs["ModelMetrics"] = metrics
        return self.sagemaker_as(registrant).create_model_package(**kwargs)["ModelPackageArn"]

    def set_status(self, arn: str, status: str, by: dict[str, Any], description: str = "") -> None:
        self.sagemaker_as(by).update_model_package(
            ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=description
        )

    def describe(self, arn: str) -> dict[str, Any]:
        return self.sagemaker_as(None).describe_model_package(ModelPackageName=arn)

    # ------------------------------------------------------------------ handlers
    def settings(self) -> lambda_settings.Settings:
        return lambda_settings.Settings(
            topic_arn=self.topic_arn, releases_table=TABLE, deploy_pipeline_name=PIPELINE, policy=POLICY
        )

    def env(self) -> dict[str, str]:
        return {
            "TOPIC_ARN": self.topic_arn,
            "RELEASES_TABLE": TABLE,
            "DEPLOY_PIPELINE_NAME": PIPELINE,
            "APPROVAL_POLICY": json.dumps(POLICY_DOCUMENT),
        }

    def clients(self, caller: dict[str, Any] | None = GUARD_ROLE, **overrides: Any) -> lambda_aws.Clients:
        """What a handler gets: the Lambda's role identity on SageMaker, other clients as is."""
        clients = {
            "sagemaker": self.sagemaker_as(caller),
            "s3": self.s3,
            "sns": self.sns,
            "dynamodb": self.dynamodb,
            "codepipeline": self.codepipeline,
        }
        clients.update(overrides)
        return lambda_aws.Clients(**clients)

    # ------------------------------------------------------------------ observations
    def notifications(self) -> list[dict[str, str]]:
        """Messages published to the topic since the last call (drained from the subscribed queue)."""
        out = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = batch.get("Messages", [])
            if not messages:
                return out
            for message in messages:
                envelope = json.loads(message["Body"])
                out.append({"subject": envelope.get("Subject", ""), "message": envelope["Message"]})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def executions(self) -> list[dict[str, str]]:
        """Variables of every deploy pipeline execution, oldest first."""
        return deploy_executions(self.codepipeline, PIPELINE)

    def items(self, prefix: str = "") -> list[dict[str, Any]]:
        """Every table item whose pk starts with ``prefix``, decoded to plain values."""
        items = self.dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        out = []
        for item in items:
            plain = {k: next(iter(v.values())) for k, v in item.items()}
            if plain["pk"].startswith(prefix):
                out.append(plain)
        return sorted(out, key=lambda i: (i["pk"], i["sk"]))


# --------------------------------------------------------------------------- config and server


def write_config(root: Path) -> Path:
    """A single-account platform config (moto's account) whose churn policy equals ``POLICY_DOCUMENT``."""
    config = root / "config"
    (config / "projects").mkdir(parents=True)
    (config / "platform.yaml").write_text(
        yaml.safe_dump(
            {
                "prefix": "mlops",
                "accounts": {
                    role: {"id": ACCOUNT, "region": REGION} for role in ("governance", "dev", "staging", "prod")
                },
                "network": {"vpc_cidrs": {"dev": "10.10.0.0/16", "staging": "10.20.0.0/16", "prod": "10.30.0.0/16"}},
            }
        )
    )
    (config / "projects" / "churn.yaml").write_text(
        yaml.safe_dump(
            {
                "name": PROJECT,
                "owners": ["ml-churn@example.com"],
                "members": [{"user": "alice", "persona": "lead"}, {"user": "bob"}],
                "approval": {k: v for k, v in POLICY_DOCUMENT.items() if k not in DERIVED_KEYS},
                # The example's feature group: the pipeline reads it.
                "features": yaml.safe_load((Path(__file__).parents[2] / "config/projects/churn.yaml").read_text())[
                    "features"
                ],
            }
        )
    )
    return config


class MotoServer:
    """A loopback ``ThreadedMotoServer`` on a free port; ``reset()`` empties every backend."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def client_factory(self, session: Any) -> Callable[[str], Any]:
        return lambda service: session.client(service, endpoint_url=self.url)

    def stop(self) -> None:
        self._server.stop()
