"""Dev account, per feature group with an Iceberg offline store: the scheduled OPTIMIZE/VACUUM Lambda."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops_platform.config import FeatureGroup, ProjectSettings
from mlops_platform.naming import Naming
from stacks.baseline import BaselineStack
from stacks.components.event_function import EventFunction, dead_letter_queue
from stacks.components.lambda_asset import bundled_asset

COMPACTION_HANDLERS = Path(__file__).resolve().parents[2] / "lambda" / "compaction"
COMPACTION_CORE = "mlops_platform.compaction"
# Lambda's maximum: OPTIMIZE of a large table can take longer; the handler stops waiting 30 s before the
# end and a retry of the same scheduled event (same ClientRequestToken) resumes waiting on the same query.
TIMEOUT = Duration.minutes(15)
FUNCTION_NAME_LIMIT = 64


def compacted_groups(project: ProjectSettings) -> list[FeatureGroup]:
    """The feature groups whose Iceberg offline store gets the scheduled compaction."""
    return [
        g for g in project.features.feature_groups if g.offline_store.enabled and g.offline_store.compaction.enabled
    ]


def compaction_function_name(naming: Naming, project: str, group: str) -> str:
    """``<prefix>-<project>-<group>-compact``, shortened with a hash suffix past Lambda's 64 characters."""
    name = f"{naming.feature_group_name(project, group)}-compact"
    if len(name) <= FUNCTION_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: FUNCTION_NAME_LIMIT - 9].rstrip('-_')}-{digest}"


def _construct_id(group: str) -> str:
    return "Compact" + "".join(p.capitalize() for p in group.replace("_", "-").split("-"))


def add_compaction(
    scope: Construct,
    *,
    project: ProjectSettings,
    naming: Naming,
    baseline: BaselineStack,
    workgroup: str,
    database: str,
) -> dict[str, EventFunction]:
    """One scheduled compaction function per compacted group of ``project`` (none: no queue either)."""
    groups = compacted_groups(project)
    if not groups:
        return {}
    dead_letters = dead_letter_queue(scope, "CompactionDeadLetters", key=baseline.key)
    code = bundled_asset(COMPACTION_HANDLERS, COMPACTION_CORE)
    return {
        group.name: _function(scope, group, project, naming, baseline, workgroup, database, dead_letters, code)
        for group in groups
    }


def _function(
    scope: Construct,
    group: FeatureGroup,
    project: ProjectSettings,
    naming: Naming,
    baseline: BaselineStack,
    workgroup: str,
    database: str,
    dead_letters: sqs.IQueue,
    code: Path,
) -> EventFunction:
    stack = Stack.of(scope)
    account, region = stack.account, stack.region
    group_name = naming.feature_group_name(project.name, group.name)
    bucket = naming.bucket_arn("dev")
    project_prefix = naming.project_prefix(project.name)
    # Feature Store writes the group's table under <S3Uri>/<account>/sagemaker/<region>/offline-store/<group>-<time>/.
    table_prefix = f"{project_prefix}/feature-store/{account}/sagemaker/{region}/offline-store/{group_name}-"
    results_prefix = f"{project_prefix}/athena/"
    objects = [f"{bucket}/{table_prefix}*", f"{bucket}/{results_prefix}*"]
    glue = f"arn:aws:glue:{region}:{account}"
    tables = [f"{glue}:table/{database}/{table}" for table in naming.offline_store_tables(project.name, group.name)]
    function = EventFunction(
        scope,
        _construct_id(group.name),
        code_dir=code,
        handler="compact.handler",
        description=f"{project.name}: compact the {group.name} offline store (Athena OPTIMIZE, then VACUUM)",
        function_name=compaction_function_name(naming, project.name, group.name),
        schedule=events.Schedule.expression(group.offline_store.compaction.schedule),
        timeout=TIMEOUT,
        environment={"PROJECT": project.name, "FEATURE_GROUP_NAME": group_name, "WORKGROUP": workgroup},
        statements=[
            iam.PolicyStatement(
                sid="DescribeFeatureGroup",
                actions=["sagemaker:DescribeFeatureGroup"],
                resources=[f"arn:aws:sagemaker:{region}:{account}:feature-group/{group_name}"],
            ),
            iam.PolicyStatement(
                sid="RunQueries",
                actions=["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution"],
                resources=[f"arn:aws:athena:{region}:{account}:workgroup/{workgroup}"],
            ),
            # OPTIMIZE and VACUUM read the table and commit a new metadata location to it.
            iam.PolicyStatement(
                sid="OfflineStoreTable",
                actions=["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"],
                resources=[f"{glue}:catalog", f"{glue}:database/{database}", *tables],
            ),
            # OPTIMIZE writes new data and metadata files, VACUUM deletes expired and orphan ones;
            # Athena writes the statements' results under the workgroup's location.
            iam.PolicyStatement(
                sid="TableAndResultObjects",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=objects,
            ),
            iam.PolicyStatement(
                sid="ListTableAndResults",
                actions=["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket],
                conditions={"StringLike": {"s3:prefix": [f"{table_prefix}*", f"{results_prefix}*"]}},
            ),
            iam.PolicyStatement(sid="ResultsBucket", actions=["s3:GetBucketLocation"], resources=[bucket]),
        ],
        key=baseline.key,
        dead_letter_queue=dead_letters,
    )
    for resource in objects:
        function.role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{resource}]",
            f"The {group.name} offline table's files (named after the group and its creation time) and the "
            "project's Athena results.",
        )
    for table in tables:
        function.role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{table}]", "The group's offline table; its name ends in a time."
        )
    return function
