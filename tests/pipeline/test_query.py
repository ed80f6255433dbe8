"""The offline-store query, run on duckdb standing in for Athena: the same SQL text the Query step sends."""

from __future__ import annotations

import duckdb
import pytest

from pipeline_definitions.scripts.tabular import query

COLUMNS = ("tenure_months", "contract", "churn")


def _store():
    """An Iceberg offline-store table as Feature Store writes it: every PutRecord is a row, deletes too."""
    db = duckdb.connect()
    db.execute("CREATE SCHEMA sagemaker_featurestore")
    db.execute(
        'CREATE TABLE sagemaker_featurestore."mlops_churn_customers_1700000000" ('
        "customer_id VARCHAR, event_time DOUBLE, tenure_months BIGINT, contract VARCHAR, churn BIGINT, "
        "write_time TIMESTAMP, api_invocation_time TIMESTAMP, is_deleted BOOLEAN)"
    )
    rows = [
        # id, event time, tenure, contract, churn, write, invoke, deleted
        ("C1", 100.0, 1, "monthly", 0, "2026-01-01 00:00:01", "2026-01-01 00:00:00", False),
        ("C1", 200.0, 2, "monthly", 1, "2026-01-02 00:00:01", "2026-01-02 00:00:00", False),  # latest at 250
        ("C1", 300.0, 3, "one-year", 1, "2026-01-03 00:00:01", "2026-01-03 00:00:00", False),  # after the cutoff
        ("C2", 150.0, 5, "two-year", 0, "2026-01-01 00:00:01", "2026-01-01 00:00:00", False),
        ("C2", 160.0, 5, "two-year", 0, "2026-01-04 00:00:01", "2026-01-04 00:00:00", True),  # deleted
        ("C3", 120.0, 7, "monthly", 0, "2026-01-01 00:00:01", "2026-01-01 00:00:00", False),
        ("C3", 120.0, 8, "monthly", 1, "2026-01-05 00:00:01", "2026-01-05 00:00:00", False),  # same time, re-put
        ("C4", 400.0, 9, "monthly", 1, "2026-01-06 00:00:01", "2026-01-06 00:00:00", False),  # only after cutoff
    ]
    db.executemany(
        'INSERT INTO sagemaker_featurestore."mlops_churn_customers_1700000000" VALUES (?, ?, ?, ?, ?, ?, ?, ?)', rows
    )
    return db


def _sql(cutoff: str) -> str:
    return query.dataset_sql(
        database="sagemaker_featurestore",
        table="mlops_churn_customers_1700000000",
        record_identifier="customer_id",
        event_time="event_time",
        columns=COLUMNS,
        cutoff=cutoff,
    )


def test_latest_record_per_identifier_as_of_the_cutoff_without_deleted_records():
    result = _store().execute(_sql("250.0"))
    assert [d[0] for d in result.description] == ["customer_id", *COLUMNS]
    assert result.fetchall() == [("C1", 2, "monthly", 1), ("C3", 8, "monthly", 1)]


def test_a_later_cutoff_sees_the_later_versions():
    rows = _store().execute(_sql("1000.0")).fetchall()
    assert rows == [("C1", 3, "one-year", 1), ("C3", 8, "monthly", 1), ("C4", 9, "monthly", 1)]


def test_the_stores_own_columns_and_the_event_time_are_not_selected():
    text = _sql("1.0")
    select = text.split("FROM", 1)[0]
    for column in (*query.STORE_COLUMNS, "event_time"):
        assert column not in select


def test_cutoff_literals_for_both_event_time_types():
    assert query.cutoff_literal("2026-01-01T00:00:00Z", "Fractional") == "1767225600.0"
    assert query.cutoff_literal("2026-01-01T01:00:00+01:00", "String") == "'2026-01-01T00:00:00Z'"


def test_names_that_are_not_feature_names_are_refused():
    with pytest.raises(ValueError, match="not a feature"):
        query.dataset_sql(database="db", table='t"; DROP', record_identifier="id", event_time="t", columns=(),
                          cutoff="1")  # fmt: skip


def test_written_since_counts_records_written_by_this_execution():
    db = _store()
    sql = query.written_since_sql(
        database="sagemaker_featurestore", table="mlops_churn_customers_1700000000", since="2026-01-04T00:00:00Z"
    )
    assert db.execute(sql).fetchall() == [(3,)]
