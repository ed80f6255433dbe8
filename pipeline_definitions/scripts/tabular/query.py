"""Read the training dataset from a feature group's Iceberg offline store through Athena.

Runs as the pipeline's ``Query`` processing step (standard library, boto3 and
pandas only) and is importable for tests (``pipeline_definitions.scripts.tabular.query``).
:func:`dataset_sql` is the one query text: tests run it on duckdb, the step
runs it on Athena.

What it selects: the latest record per identifier whose event time is at or
before ``--cutoff`` (ties: the later API invocation, then the later write),
without records whose latest version is a deletion. Columns: the record
identifier (preprocess splits by it, then drops it), the features, the label.
The store's own columns (``write_time``, ``api_invocation_time``,
``is_deleted``) and the event time are not selected.

Defaults: ``--cutoff`` empty means now; ``--wait-minutes 30``: when the
``Ingest`` step loaded records in this execution (``--ingest-report``), wait
until the offline store holds that many records written since, because the
offline store lags the ingestion by up to about 15 minutes.

Outputs ``<output-dir>/dataset.csv`` with a header row.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

STORE_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")
_IDENTIFIER = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
POLL_SECONDS = 5


def _quote(name: str) -> str:
    """A column or table name as a quoted SQL identifier; refuses anything but feature-name characters."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a feature, table or database name")
    return f'"{name}"'


def cutoff_literal(cutoff: str, event_time_type: str) -> str:
    """The cutoff as a SQL literal comparable with the event time column (Fractional: epoch seconds)."""
    moment = datetime.fromisoformat(cutoff.replace("Z", "+00:00")) if cutoff else datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if event_time_type == "String":
        # ISO-8601 UTC strings of one format order like the times they name.
        return "'" + moment.strftime("%Y-%m-%dT%H:%M:%SZ") + "'"
    return repr(moment.timestamp())


def dataset_sql(
    *,
    database: str,
    table: str,
    record_identifier: str,
    event_time: str,
    columns: Sequence[str],
    cutoff: str,
) -> str:
    """The query: latest non-deleted record per identifier at ``cutoff`` (a SQL literal), ``columns`` only."""
    selected = ", ".join(_quote(c) for c in (record_identifier, *columns))
    rid, etime = _quote(record_identifier), _quote(event_time)
    return (
        f"SELECT {selected}\n"
        "FROM (\n"
        f"  SELECT *, row_number() OVER (\n"
        f"    PARTITION BY {rid} ORDER BY {etime} DESC, api_invocation_time DESC, write_time DESC\n"
        "  ) AS record_rank\n"
        f"  FROM {_quote(database)}.{_quote(table)}\n"
        f"  WHERE {etime} <= {cutoff}\n"
        ")\n"
        "WHERE record_rank = 1 AND NOT is_deleted\n"
        f"ORDER BY {rid}"
    )


def written_since_sql(*, database: str, table: str, since: str) -> str:
    """How many records the offline store holds that were written at or after ``since`` (ISO-8601 UTC)."""
    moment = datetime.fromisoformat(since.replace("Z", "+00:00")).astimezone(UTC)
    literal = moment.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"SELECT count(*) AS records FROM {_quote(database)}.{_quote(table)} WHERE write_time >= TIMESTAMP '{literal}'"
    )


# --------------------------------------------------------------------------- Athena


class QueryFailed(RuntimeError):
    """Athena ended the query in FAILED or CANCELLED."""


def run_query(athena, sql: str, *, workgroup: str, catalog: str, database: str, timeout_seconds: int = 1800) -> str:
    """Run ``sql`` in ``workgroup`` and wait; returns the S3 URI of the result CSV."""
    execution = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Catalog": catalog, "Database": database},
        WorkGroup=workgroup,
    )["QueryExecutionId"]
    deadline = time.monotonic() + timeout_seconds
    while True:
        state = athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]
        status = state["Status"]["State"]
        if status == "SUCCEEDED":
            return state["ResultConfiguration"]["OutputLocation"]
        if status in ("FAILED", "CANCELLED"):
            raise QueryFailed(f"Athena query {execution} {status}: {state['Status'].get('StateChangeReason', '')}")
        if time.monotonic() > deadline:
            athena.stop_query_execution(QueryExecutionId=execution)
            raise QueryFailed(f"Athena query {execution} still {status} after {timeout_seconds} s; stopped")
        time.sleep(POLL_SECONDS)


def _download(s3, uri: str, path: Path) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(path))


def offline_table(sagemaker, group_name: str) -> tuple[dict, str, str, str]:
    """DescribeFeatureGroup and its offline store's (catalog, database, table)."""
    group = sagemaker.describe_feature_group(FeatureGroupName=group_name)
    catalog = (group.get("OfflineStoreConfig") or {}).get("DataCatalogConfig") or {}
    if not catalog.get("TableName"):
        raise SystemExit(
            f"feature group {group_name} has no offline store table (OfflineStoreConfig.DataCatalogConfig)"
        )
    return group, catalog.get("Catalog", "AwsDataCatalog"), catalog["Database"], catalog["TableName"]


def wait_for_ingest(athena, s3, report: Path, *, workgroup: str, catalog: str, database: str, table: str,
                    minutes: int, scratch: Path) -> None:  # fmt: skip
    """Wait until the offline store holds the records the Ingest step of this execution wrote."""
    if not report.is_file():
        return
    ingested = json.loads(report.read_text())
    expected, since = int(ingested.get("ingested", 0)), ingested.get("started_at")
    if expected == 0 or not since:
        return
    deadline = time.monotonic() + minutes * 60
    sql = written_since_sql(database=database, table=table, since=since)
    while True:
        result = scratch / "written.csv"
        _download(s3, run_query(athena, sql, workgroup=workgroup, catalog=catalog, database=database), result)
        lines = result.read_text().splitlines()
        seen = int(lines[1].strip().strip('"')) if len(lines) > 1 else 0
        print(f"offline store: {seen} of {expected} records ingested in this execution", flush=True)
        if seen >= expected:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the offline store holds {seen} of {expected} ingested records after {minutes} minutes")
        time.sleep(60)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Query a feature group's offline store into dataset.csv.")
    parser.add_argument("--feature-group-name", required=True)
    parser.add_argument("--columns", required=True, help="comma-separated features and label, in order")
    parser.add_argument("--workgroup", required=True)
    parser.add_argument("--cutoff", default="", help="ISO-8601 time (default: now)")
    parser.add_argument("--ingest-report", default="/opt/ml/processing/ingest/ingest.json")
    parser.add_argument("--wait-minutes", type=int, default=30)
    parser.add_argument("--output-dir", default="/opt/ml/processing/output/dataset")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import boto3

    args = parse_args(argv)
    session = boto3.Session(region_name=args.region)
    sagemaker, athena, s3 = session.client("sagemaker"), session.client("athena"), session.client("s3")
    group, catalog, database, table = offline_table(sagemaker, args.feature_group_name)
    types = {d["FeatureName"]: d["FeatureType"] for d in group["FeatureDefinitions"]}
    columns = [c for c in args.columns.split(",") if c]
    unknown = [c for c in columns if c not in types]
    if unknown:
        print(f"query: {', '.join(unknown)} not in feature group {args.feature_group_name}", file=sys.stderr)
        return 2
    output = Path(args.output_dir)
    wait_for_ingest(
        athena, s3, Path(args.ingest_report), workgroup=args.workgroup, catalog=catalog, database=database,
        table=table, minutes=args.wait_minutes, scratch=output.parent / "scratch",
    )  # fmt: skip
    event_time = group["EventTimeFeatureName"]
    sql = dataset_sql(
        database=database,
        table=table,
        record_identifier=group["RecordIdentifierFeatureName"],
        event_time=event_time,
        columns=columns,
        cutoff=cutoff_literal(args.cutoff, types[event_time]),
    )
    print(sql, flush=True)
    _download(s3, run_query(athena, sql, workgroup=args.workgroup, catalog=catalog, database=database),
              output / "dataset.csv")  # fmt: skip
    rows = max(0, sum(1 for _ in (output / "dataset.csv").open()) - 1)
    print(f"dataset: {rows} records as of {args.cutoff or 'now'}", flush=True)
    return 0 if rows else 3


if __name__ == "__main__":
    sys.exit(main())
