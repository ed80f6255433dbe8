"""The compaction core against stub SageMaker and Athena clients: order, waiting, failures, identifiers."""

from __future__ import annotations

import json

import pytest

from mlops_platform.compaction.compact import (
    DEADLINE_MARGIN_MS,
    Clients,
    CompactionError,
    NotIceberg,
    QueryFailed,
    Settings,
    StillRunning,
    handle,
    settings_from_env,
)

SETTINGS = Settings(project="churn", feature_group="mlops-churn-customers", workgroup="mlops-churn")
EVENT = {"id": "event-1", "detail-type": "Scheduled Event", "source": "aws.events"}
TABLE = "mlops_churn_customers_1700000000"


class StubSageMaker:
    def __init__(self, offline: dict | None = None) -> None:
        self.offline = offline
        self.calls: list[str] = []

    def describe_feature_group(self, *, FeatureGroupName: str) -> dict:
        self.calls.append(FeatureGroupName)
        return {"FeatureGroupName": FeatureGroupName, **({"OfflineStoreConfig": self.offline} if self.offline else {})}


def iceberg(table: str = TABLE, database: str = "sagemaker_featurestore") -> dict:
    return {
        "TableFormat": "Iceberg",
        "DataCatalogConfig": {"Catalog": "AwsDataCatalog", "Database": database, "TableName": table},
    }


class StubAthena:
    """Each started query goes through ``states`` (one per GetQueryExecution); the same token, the same query."""

    def __init__(self, states: dict[str, list[str]] | None = None) -> None:
        self.states = states or {}
        self.started: list[dict] = []
        self.by_token: dict[str, str] = {}
        self.polls: dict[str, int] = {}
        self.sql: dict[str, str] = {}

    def start_query_execution(self, **kwargs) -> dict:
        self.started.append(kwargs)
        token = kwargs["ClientRequestToken"]
        if token not in self.by_token:
            query_id = f"q{len(self.by_token) + 1}"
            self.by_token[token] = query_id
            self.sql[query_id] = kwargs["QueryString"]
        return {"QueryExecutionId": self.by_token[token]}

    def get_query_execution(self, *, QueryExecutionId: str) -> dict:
        step = self.sql[QueryExecutionId].split()[0].lower()
        states = self.states.get(step, ["RUNNING", "SUCCEEDED"])
        index = min(self.polls.get(QueryExecutionId, 0), len(states) - 1)
        self.polls[QueryExecutionId] = self.polls.get(QueryExecutionId, 0) + 1
        status = {"State": states[index]}
        if states[index] == "FAILED":
            status["StateChangeReason"] = "ICEBERG_COMMIT_ERROR"
        return {
            "QueryExecution": {
                "QueryExecutionId": QueryExecutionId,
                "Status": status,
                "Statistics": {"DataScannedInBytes": 1024, "EngineExecutionTimeInMillis": 2000},
            }
        }


def run(athena: StubAthena, sagemaker: StubSageMaker | None = None, *, event=EVENT, remaining=None, sleeps=None):
    sleeps = [] if sleeps is None else sleeps
    return handle(
        event,
        SETTINGS,
        Clients(sagemaker=sagemaker or StubSageMaker(iceberg()), athena=athena),
        remaining_ms=remaining or (lambda: 600_000),
        sleep=sleeps.append,
    )


def decisions(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_optimize_then_vacuum_in_the_workgroup_waiting_for_each(capsys):
    athena, sagemaker, sleeps = StubAthena(), StubSageMaker(iceberg()), []
    result = run(athena, sagemaker, sleeps=sleeps)
    assert sagemaker.calls == ["mlops-churn-customers"]
    assert [s["QueryString"] for s in athena.started] == [
        f"OPTIMIZE sagemaker_featurestore.`{TABLE}` REWRITE DATA USING BIN_PACK",
        f"VACUUM sagemaker_featurestore.`{TABLE}`",
    ]
    for start in athena.started:
        assert start["WorkGroup"] == "mlops-churn"
        assert start["QueryExecutionContext"] == {"Catalog": "AwsDataCatalog", "Database": "sagemaker_featurestore"}
    # VACUUM started only after OPTIMIZE succeeded: OPTIMIZE was polled to the end first.
    assert athena.polls == {"q1": 2, "q2": 2}
    assert sleeps == [5.0, 5.0]
    assert result["decision"] == "compacted"
    assert result["table"] == f"AwsDataCatalog.sagemaker_featurestore.{TABLE}"
    assert result["queries"]["optimize"] == {"query_id": "q1", "data_scanned_bytes": 1024, "engine_ms": 2000}
    assert [d["decision"] for d in decisions(capsys)] == ["compacted"]


def test_a_failed_optimize_raises_and_never_vacuums(capsys):
    athena = StubAthena({"optimize": ["RUNNING", "FAILED"]})
    with pytest.raises(QueryFailed, match="optimize q1 FAILED: ICEBERG_COMMIT_ERROR"):
        run(athena)
    assert [s["QueryString"].split()[0] for s in athena.started] == ["OPTIMIZE"]
    (line,) = decisions(capsys)
    assert line["decision"] == "query_failed" and line["level"] == "ERROR"


def test_a_cancelled_vacuum_raises():
    with pytest.raises(QueryFailed, match="vacuum q2 CANCELLED"):
        run(StubAthena({"vacuum": ["CANCELLED"]}))


def test_near_the_timeout_it_stops_waiting_and_a_retry_resumes_the_same_queries(capsys):
    athena = StubAthena({"optimize": ["RUNNING", "RUNNING", "SUCCEEDED"]})
    with pytest.raises(StillRunning):
        run(athena, remaining=lambda: DEADLINE_MARGIN_MS - 1)
    assert decisions(capsys)[0]["decision"] == "still_running"
    result = run(athena)  # Lambda's retry: the same event, so the same token and the same OPTIMIZE
    assert result["decision"] == "compacted"
    tokens = [s["ClientRequestToken"] for s in athena.started]
    assert tokens[0] == tokens[1] and len(set(tokens)) == 2
    assert all(32 <= len(t) <= 128 for t in tokens)
    assert list(athena.sql) == ["q1", "q2"]


def test_another_scheduled_event_starts_new_queries():
    athena = StubAthena()
    run(athena)
    run(athena, event={**EVENT, "id": "event-2"})
    assert len(athena.sql) == 4


@pytest.mark.parametrize(
    ("offline", "error"),
    [
        (None, NotIceberg),
        ({"TableFormat": "Glue", "DataCatalogConfig": iceberg()["DataCatalogConfig"]}, NotIceberg),
        (iceberg(table="t; DROP TABLE x"), CompactionError),
        (iceberg(table="t`x"), CompactionError),
        (iceberg(table=""), CompactionError),
        (iceberg(database="Sage-Maker"), CompactionError),
        ({"TableFormat": "Iceberg"}, CompactionError),
    ],
)
def test_the_table_comes_from_describe_feature_group_and_bad_names_are_refused(offline, error, capsys):
    athena = StubAthena()
    with pytest.raises(error):
        run(athena, StubSageMaker(offline))
    assert athena.started == []
    assert decisions(capsys)[0]["decision"] in ("not_iceberg", "failed")


def test_a_hyphenated_table_is_quoted():
    athena = StubAthena()
    run(athena, StubSageMaker(iceberg(table="mlops-churn-customers-1700000000")))
    assert athena.started[1]["QueryString"] == "VACUUM sagemaker_featurestore.`mlops-churn-customers-1700000000`"


def test_an_api_error_is_logged_and_raised(capsys):
    class Broken(StubAthena):
        def start_query_execution(self, **kwargs):
            raise RuntimeError("AccessDenied")

    with pytest.raises(RuntimeError, match="AccessDenied"):
        run(Broken())
    assert decisions(capsys)[0]["decision"] == "failed"


def test_settings_from_the_environment():
    env = {"PROJECT": "churn", "FEATURE_GROUP_NAME": "mlops-churn-customers", "WORKGROUP": "mlops-churn"}
    assert settings_from_env(env) == SETTINGS
