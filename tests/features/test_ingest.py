"""Feature Store ingest: the core of ``pipeline_definitions/scripts/tabular/ingest.py``, its script and ``mlops data``.

moto 5.2.5 implements ``sagemaker`` ``CreateFeatureGroup`` / ``DescribeFeatureGroup``
(used here: the deployed group decides what fits) but not the
``sagemaker-featurestore-runtime`` service at all (no ``PutRecord`` /
``GetRecord``): :class:`FeatureStoreStub` stands in for the runtime client, an
in-memory store answering ``put_record`` and ``get_record`` as the service does,
optionally throttling or failing. S3 (the script's input) is moto's.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import yaml
from botocore.exceptions import ClientError
from moto import mock_aws

from mlops_platform.cli import app
from mlops_platform.cli import session as session_mod
from pipeline_definitions.scripts.tabular import ingest

REGION, ACCOUNT = "us-east-1", "123456789012"
GROUP = "mlops-churn-customers"
FEATURES = [
    ("customer_id", "String"),
    ("event_time", "Fractional"),
    ("tenure_months", "Integral"),
    ("monthly_charges", "Fractional"),
    ("total_charges", "Fractional"),
    ("support_calls", "Integral"),
    ("senior_citizen", "Integral"),
    ("contract", "String"),
    ("payment_method", "String"),
    ("internet_service", "String"),
    ("churn", "Integral"),
]
COLUMNS = [name for name, _ in FEATURES]


def rows(count: int = 25) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": f"C{i:05d}",
            "event_time": 1_767_225_600.0 + i,
            "tenure_months": i % 72,
            "monthly_charges": 20.5 + i,
            "total_charges": round((20.5 + i) * (i % 72), 2),
            "support_calls": i % 5,
            "senior_citizen": i % 2,
            "contract": ("month-to-month", "one-year", "two-year")[i % 3],
            "payment_method": "bank-transfer",
            "internet_service": "fiber",
            "churn": i % 2,
        }
        for i in range(count)
    ]


def write_csv(path: Path, data: list[dict[str, Any]] | None = None) -> Path:
    pd.DataFrame(data if data is not None else rows()).to_csv(path, index=False)
    return path


class FeatureStoreStub:
    """``sagemaker-featurestore-runtime`` in memory: ``put_record`` / ``get_record``.

    ``throttle``: the first N ``put_record`` calls answer ThrottlingException.
    ``fail_on``: a record identifier whose put answers ``fail_code``.
    """

    def __init__(self, identifier: str = "customer_id", *, throttle: int = 0, fail_on: str | None = None) -> None:
        self.identifier = identifier
        self.throttle = throttle
        self.fail_on = fail_on
        self.fail_code = "AccessDeniedException"
        self.calls = 0
        self.store: dict[str, dict[str, list[dict[str, str]]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _error(code: str, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": f"{code} from the stub"}}, operation)

    def put_record(self, *, FeatureGroupName: str, Record: list[dict[str, str]], **_: Any) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            if self.throttle > 0:
                self.throttle -= 1
                raise self._error("ThrottlingException", "PutRecord")
            values = {f["FeatureName"]: f["ValueAsString"] for f in Record}
            if values.get(self.identifier) == self.fail_on:
                raise self._error(self.fail_code, "PutRecord")
            self.store.setdefault(FeatureGroupName, {})[values[self.identifier]] = Record
        return {}

    def get_record(self, *, FeatureGroupName: str, RecordIdentifierValueAsString: str, **_: Any) -> dict[str, Any]:
        record = self.store.get(FeatureGroupName, {}).get(RecordIdentifierValueAsString)
        return {"Record": record} if record is not None else {}

    def count(self, group: str = GROUP) -> int:
        return len(self.store.get(group, {}))


@pytest.fixture
def aws(monkeypatch, tmp_path):
    """moto with the churn feature group; dummy credentials, no profile or shared config."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_feature_group(
            FeatureGroupName=GROUP,
            RecordIdentifierFeatureName="customer_id",
            EventTimeFeatureName="event_time",
            FeatureDefinitions=[{"FeatureName": n, "FeatureType": t} for n, t in FEATURES],
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://offline-store/churn"}},
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/feature-store",
        )
        yield sagemaker


@pytest.fixture
def definitions(aws) -> ingest.Definitions:
    return ingest.feature_definitions(aws, GROUP)


# --------------------------------------------------------------------------- core


def test_definitions_come_from_describe_feature_group(definitions):
    assert definitions.names == COLUMNS
    assert (definitions.record_identifier, definitions.event_time) == ("customer_id", "event_time")
    assert definitions.features["tenure_months"] == "Integral"


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_good_file_ingests_every_row(definitions, tmp_path, kind):
    data = rows(25)
    path = tmp_path / f"customers.{kind}"
    if kind == "csv":
        write_csv(path, data)
    else:
        pd.DataFrame(data).to_parquet(path, index=False)
    runtime = FeatureStoreStub()
    seen: list[tuple[int, int]] = []

    frame = ingest.validate(ingest.read_path(path), definitions, **ingest.row_labels(kind))
    result = ingest.ingest(
        runtime, GROUP, ingest.records(frame, definitions), batch_size=10, progress=lambda d, t: seen.append((d, t))
    )

    assert (result.total, result.ingested, result.rejected) == (25, 25, 0)
    assert runtime.count() == 25
    assert seen[0] == (0, 25) and seen[-1] == (25, 25)
    assert [d for d, _ in seen] == [0, 10, 20, 25]
    record = {
        f["FeatureName"]: f["ValueAsString"]
        for f in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="C00007")["Record"]
    }
    assert record == {
        "customer_id": "C00007",
        "event_time": "1767225607.0",
        "tenure_months": "7",
        "monthly_charges": "27.5",
        "total_charges": "192.5",
        "support_calls": "2",
        "senior_citizen": "1",
        "contract": "one-year",
        "payment_method": "bank-transfer",
        "internet_service": "fiber",
        "churn": "1",
    }


def test_missing_values_are_omitted_not_sent_as_nan(definitions, tmp_path):
    data = rows(3)
    data[1]["monthly_charges"] = None
    data[1]["contract"] = None
    data[2]["tenure_months"] = None  # Parquet: the column becomes float with NaN
    csv_path = write_csv(tmp_path / "gaps.csv", data)
    parquet_path = tmp_path / "gaps.parquet"
    pd.DataFrame(data).to_parquet(parquet_path, index=False)

    for path, kind in ((csv_path, "csv"), (parquet_path, "parquet")):
        frame = ingest.validate(ingest.read_path(path), definitions, **ingest.row_labels(kind))
        made = ingest.records(frame, definitions)
        names = [{f["FeatureName"] for f in record} for record in made]
        assert "monthly_charges" not in names[1] and "contract" not in names[1], kind
        assert "tenure_months" not in names[2], kind
        values = [f["ValueAsString"] for record in made for f in record]
        assert not any(v.lower() == "nan" for v in values), kind
        # Integral stays a whole number even when Parquet made the column float.
        assert {f["FeatureName"]: f["ValueAsString"] for f in made[1]}["tenure_months"] == "1", kind


def test_iso_event_times_are_converted_to_the_feature_type(definitions):
    frame = pd.DataFrame(
        {"customer_id": ["a", "b"], "event_time": ["2026-01-01T00:00:00Z", "1767225600"], "churn": ["0", "1"]}
    )
    made = ingest.records(ingest.validate(frame, definitions), definitions)
    assert [r[1] for r in made] == [{"FeatureName": "event_time", "ValueAsString": "1767225600.0"}] * 2


def invalid(definitions, frame: pd.DataFrame) -> str:
    with pytest.raises(ingest.ValidationError) as caught:
        ingest.validate(frame, definitions, source="in.csv")
    return str(caught.value)


def test_unknown_columns_are_named_with_the_known_ones(definitions):
    frame = pd.DataFrame(rows(2)).assign(favourite_colour="blue", shoe_size=42)
    message = invalid(definitions, frame)
    assert message.startswith(f"in.csv does not fit feature group {GROUP}: unknown column(s) favourite_colour, ")
    assert "shoe_size" in message and "the group's features are customer_id, event_time, tenure_months" in message


def test_missing_identifier_column_and_empty_identifier_values(definitions):
    message = invalid(definitions, pd.DataFrame(rows(2)).drop(columns=["customer_id"]))
    assert "missing required column(s) customer_id" in message

    data = rows(4)
    data[2]["customer_id"] = ""
    data[3]["event_time"] = ""
    frame = pd.DataFrame(data).astype(str).replace({"": None})
    message = invalid(definitions, frame)
    assert "line 4: customer_id is empty" in message and "line 5: event_time is empty" in message


def test_integral_values_must_be_whole_numbers(definitions, tmp_path):
    data = rows(12)
    for i in range(1, 9):
        data[i]["tenure_months"] = f"{i}.5"
    data[10]["monthly_charges"] = "cheap"
    path = write_csv(tmp_path / "bad.csv", data)
    message = invalid(definitions, ingest.read_path(path))
    assert "line 3: tenure_months '1.5' is not a whole number" in message
    assert "line 7: tenure_months '5.5' is not a whole number" in message
    assert "line 8:" not in message  # the first five bad rows are shown
    assert "and 4 more bad row(s) (9 in all)" in message


def test_invalid_event_time(definitions):
    frame = pd.DataFrame({"customer_id": ["a"], "event_time": ["yesterday"]})
    assert "line 2: event_time 'yesterday' is neither epoch seconds nor an ISO 8601 time" in invalid(definitions, frame)


def test_nothing_is_written_when_validation_fails(aws, tmp_path):
    data = rows(5)
    data[4]["support_calls"] = "many"
    runtime = FeatureStoreStub()
    path = write_csv(tmp_path / "bad.csv", data)
    from mlops_platform.cli import data as data_mod
    from mlops_platform.cli.core import CliError, Context
    from mlops_platform.config import load_config

    ctx = Context(load_config(write_config(tmp_path)))
    with pytest.raises(CliError) as caught:
        data_mod.ingest_file(aws, runtime, ctx, "churn", "customers", path)
    assert "line 6: support_calls 'many' is not a whole number" in str(caught.value)
    assert caught.value.exit_code == 2
    assert runtime.calls == 0


def test_throttling_is_retried_with_backoff(definitions):
    runtime = FeatureStoreStub(throttle=3)
    sleeps: list[float] = []
    made = ingest.records(ingest.validate(pd.DataFrame(rows(5)), definitions), definitions)

    result = ingest.ingest(runtime, GROUP, made, workers=1, sleep=sleeps.append)

    assert result.ingested == 5 and result.throttled == 3 and runtime.count() == 5
    assert len(sleeps) == 3 and sleeps[0] < sleeps[2]


def test_another_error_stops_and_says_how_many_went_in(definitions):
    runtime = FeatureStoreStub(fail_on="C00012")
    made = ingest.records(ingest.validate(pd.DataFrame(rows(30)), definitions), definitions)

    with pytest.raises(ingest.IngestFailed) as caught:
        ingest.ingest(runtime, GROUP, made, batch_size=10, workers=2)

    # The chunk holding the failure finishes; the next chunks are never started.
    assert caught.value.ingested == 19 and runtime.count() == 19
    assert str(caught.value) == (
        f"stopped after 19 of 30 records went into {GROUP}: AWS error in PutRecord: AccessDeniedException: "
        "AccessDeniedException from the stub"
    )


def test_throttling_past_the_retries_stops(definitions):
    runtime = FeatureStoreStub(throttle=100)
    made = ingest.records(ingest.validate(pd.DataFrame(rows(2)), definitions), definitions)
    with pytest.raises(ingest.IngestFailed, match="ThrottlingException"):
        ingest.ingest(runtime, GROUP, made, workers=1, max_throttle_retries=2, sleep=lambda _: None)


# --------------------------------------------------------------------------- script


def script_clients(runtime: FeatureStoreStub):
    def client(service: str) -> Any:
        if service == "sagemaker-featurestore-runtime":
            return runtime
        return boto3.client(service, region_name=REGION)

    return client


def test_script_ingests_every_object_under_an_s3_prefix(aws, tmp_path, capsys):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="raw")
    data = rows(30)
    first = tmp_path / "a.csv"
    write_csv(first, data[:10])
    second = tmp_path / "b.parquet"
    pd.DataFrame(data[10:]).to_parquet(second, index=False)
    s3.upload_file(str(first), "raw", "churn/2026/a.csv")
    s3.upload_file(str(second), "raw", "churn/2026/b.parquet")
    s3.put_object(Bucket="raw", Key="churn/2026/README.txt", Body=b"not data")
    s3.put_object(Bucket="raw", Key="churn-other/c.csv", Body=b"customer_id\n")  # outside the prefix
    runtime = FeatureStoreStub()
    out = tmp_path / "output" / "ingest"

    code = ingest.main(
        ["--input-uri", "s3://raw/churn/2026/", "--feature-group-name", GROUP, "--output-dir", str(out)],
        client=script_clients(runtime),
    )

    assert code == 0
    summary = json.loads((out / "ingest.json").read_text())
    assert summary["ingested"] == 30 and summary["rejected"] == 0 and summary["feature_group"] == GROUP
    assert summary["started_at"].endswith("Z")
    assert runtime.count() == 30
    printed = capsys.readouterr().out
    assert "(100 %)" in printed and f"ingested 30 records into {GROUP}" in printed


def test_script_with_an_empty_input_uri_ingests_nothing(tmp_path):
    out = tmp_path / "ingest"

    def no_clients(service: str) -> Any:
        raise AssertionError(f"no {service} client expected")

    code = ingest.main(["--input-uri", "", "--feature-group-name", GROUP, "--output-dir", str(out)], client=no_clients)

    assert code == 0
    summary = json.loads((out / "ingest.json").read_text())
    assert summary["ingested"] == 0 and summary["rejected"] == 0 and summary["feature_group"] == GROUP


def test_script_refuses_a_bad_object_and_writes_nothing(aws, tmp_path, capsys):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="raw")
    s3.put_object(Bucket="raw", Key="in/good.csv", Body=pd.DataFrame(rows(3)).to_csv(index=False).encode())
    s3.put_object(Bucket="raw", Key="in/bad.csv", Body=b"customer_id,event_time,colour\nx,1,blue\n")
    runtime = FeatureStoreStub()
    out = tmp_path / "ingest"

    code = ingest.main(
        ["--input-uri", "s3://raw/in", "--feature-group-name", GROUP, "--output-dir", str(out)],
        client=script_clients(runtime),
    )

    assert code == 1 and runtime.calls == 0 and not (out / "ingest.json").exists()
    assert "s3://raw/in/bad.csv does not fit feature group" in capsys.readouterr().err


# --------------------------------------------------------------------------- CLI


def write_config(root: Path) -> Path:
    """A single-account platform (moto's account) whose churn project has the customers feature group."""
    config = root / "config"
    (config / "projects").mkdir(parents=True, exist_ok=True)
    accounts = {role: {"id": ACCOUNT, "region": REGION} for role in ("governance", "dev", "staging", "prod")}
    (config / "platform.yaml").write_text(
        yaml.safe_dump(
            {
                "prefix": "mlops",
                "accounts": accounts,
                "network": {"vpc_cidrs": {"dev": "10.10.0.0/16", "staging": "10.20.0.0/16", "prod": "10.30.0.0/16"}},
            }
        )
    )
    project = {
        "name": "churn",
        "owners": ["ml-churn@example.com"],
        "members": [{"user": "alice", "persona": "lead"}],
        "approval": {"approvers": ["alice"], "primary_metric": "auc", "metric_thresholds": {"auc": 0.75}},
        "features": {
            "feature_groups": [
                {
                    "name": "customers",
                    "record_identifier": "customer_id",
                    "event_time": "event_time",
                    "features": [{"name": n, "type": t} for n, t in FEATURES],
                }
            ]
        },
    }
    (config / "projects" / "churn.yaml").write_text(yaml.safe_dump(project))
    return config


@pytest.fixture
def cli(aws, tmp_path, monkeypatch):
    """``app.run`` against moto with the stub runtime client; returns (run, runtime)."""
    config = write_config(tmp_path)
    runtime = FeatureStoreStub()

    def clients(session: Any, **given: Any) -> session_mod.Clients:
        return session_mod.Clients(session, featurestore_runtime=runtime, **given)

    monkeypatch.setattr(app, "Clients", clients)

    def run(*args: str) -> int:
        return app.run(["--config-dir", str(config), *args])

    return run, runtime


def test_cli_ingests_a_file_and_prints_the_count(cli, tmp_path, capsys):
    run, runtime = cli
    path = write_csv(tmp_path / "customers.csv", rows(40))

    assert run("data", "ingest", "churn", "--group", "customers", str(path)) == 0

    out, err = capsys.readouterr()
    assert out == f"ingested 40 records into {GROUP} (0 rejected)\n"
    progress = err.splitlines()
    assert progress[0] == f"ingest {GROUP}: 0 % (0/40 records)" and progress[-1].endswith("100 % (40/40 records)")
    assert runtime.count() == 40


def test_cli_dry_run_writes_nothing(cli, tmp_path, capsys):
    run, runtime = cli
    path = tmp_path / "customers.parquet"
    pd.DataFrame(rows(7)).to_parquet(path, index=False)

    assert run("data", "ingest", "churn", "--group", "customers", str(path), "--dry-run") == 0

    out, _ = capsys.readouterr()
    assert out.startswith(f"dry run: 7 records of {path} fit {GROUP}") and "nothing was written" in out
    assert runtime.calls == 0


def test_cli_usage_errors_exit_2(cli, tmp_path, capsys):
    run, runtime = cli
    path = write_csv(tmp_path / "customers.csv", rows(3))

    assert run("data", "ingest", "churn", "--group", "orders", str(path)) == 2
    assert capsys.readouterr().err == (
        "mlops: unknown feature group 'orders' of project churn (feature groups: customers)\n"
    )
    assert run("data", "ingest", "nope", "--group", "customers", str(path)) == 2
    assert "unknown project 'nope' (projects in config: churn)" in capsys.readouterr().err
    assert run("data", "ingest", "churn", "--group", "customers", str(tmp_path / "gone.csv")) == 2
    assert capsys.readouterr().err == f"mlops: {tmp_path / 'gone.csv'}: no such file\n"
    (tmp_path / "notes.txt").write_text("x")
    assert run("data", "ingest", "churn", "--group", "customers", str(tmp_path / "notes.txt")) == 2
    assert "not a .csv or .parquet file" in capsys.readouterr().err
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    assert run("data", "ingest", "churn", "--group", "customers", str(broken)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mlops: {broken}: not readable as parquet") and err.count("\n") == 1
    assert runtime.calls == 0


def test_cli_aws_error_exits_1_with_the_count(cli, tmp_path, capsys):
    run, runtime = cli
    runtime.fail_on = "C00002"
    path = write_csv(tmp_path / "customers.csv", rows(3))

    assert run("data", "ingest", "churn", "--group", "customers", str(path), "--workers", "1") == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"mlops: stopped after 2 of 3 records went into {GROUP}: AWS error in PutRecord: AccessDeniedException: "
        "AccessDeniedException from the stub"
    )
