"""Ingest CSV or Parquet records into a SageMaker Feature Store feature group.

One core, two doors:

- imported as ``pipeline_definitions.scripts.tabular.ingest`` by ``mlops data
  ingest`` (a local file);
- run as the script of the pipeline's optional ingest processing step::

      python3 ingest.py --input-uri s3://BUCKET/PREFIX --feature-group-name NAME \\
          --output-dir /opt/ml/processing/output/ingest [--region R]

  It reads every ``.csv`` / ``.parquet`` object under the URI itself (sorted by
  key; one object's key works too), validates all of them, ingests them and
  writes ``ingest.json`` (``{"ingested": N, "rejected": 0, "started_at":
  "<ISO UTC>", "feature_group": NAME}``) to the output directory. An empty
  ``--input-uri ""`` ingests nothing and writes ``"ingested": 0``.

Standard library, pandas and boto3 only (pyarrow for Parquet, with a clear
error when it is missing), Python 3.9 or later: the script runs in the
scikit-learn processing container and imports nothing from this repository.

The deployed group decides, not the config: :func:`feature_definitions` reads
``DescribeFeatureGroup``. :func:`validate` checks a whole frame before anything
is written (unknown columns, missing or empty record identifier / event time,
Integral values that are not whole numbers, Fractional values that are not
numbers, event times that are neither epoch seconds nor ISO 8601) and returns
the cleaned frame. :func:`records` turns it into ``PutRecord`` records (missing
values are omitted, never sent as ``"nan"``). :func:`ingest` puts them: the
Feature Store API has no batch put, so a batch is a chunk of ``put_record``
calls run by a small thread pool; throttling is retried with exponential
backoff (on top of botocore's standard retries), any other error stops the
ingest after the chunk it happened in, reporting how many records went in.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import numbers
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

# The processing container's Python may predate 3.11: no datetime.UTC, no zip(strict=), fromisoformat without "Z".
UTC = timezone.utc  # noqa: UP017
INTEGRAL, FRACTIONAL, STRING = "Integral", "Fractional", "String"
SUFFIXES = (".csv", ".parquet")
BATCH_SIZE = 100
WORKERS = 4
MAX_THROTTLE_RETRIES = 8
THROTTLING = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "ProvisionedThroughputExceededException"}
)
MAX_REPORTED_ROWS = 5
_INT64 = (-(2**63), 2**63 - 1)
_WHOLE = re.compile(r"^[+-]?\d+$")
_MISSING_TEXT = frozenset({"nan", "-nan", "+nan"})

Progress = Callable[[int, int], None]


class IngestError(Exception):
    """A problem with the input the user can fix; one line of text."""


class ValidationError(IngestError):
    """The frame does not fit the feature group; ``problems`` lists why (nothing was written)."""

    def __init__(self, group_name: str, problems: Sequence[str], source: str = "") -> None:
        self.group_name = group_name
        self.problems = list(problems)
        where = f"{source} does not fit" if source else "the data do not fit"
        super().__init__(f"{where} feature group {group_name}: {'; '.join(self.problems)}")


class IngestFailed(Exception):
    """``put_record`` failed with a non-throttling error; ``ingested`` records went in before it stopped."""

    def __init__(self, group_name: str, ingested: int, total: int, cause: BaseException) -> None:
        self.group_name = group_name
        self.ingested = ingested
        self.total = total
        self.cause = cause
        super().__init__(f"stopped after {ingested} of {total} records went into {group_name}: {_error_text(cause)}")


@dataclass(frozen=True)
class Definitions:
    """The feature group as deployed: feature name -> type (in definition order), identifier and event time."""

    group_name: str
    features: dict[str, str]
    record_identifier: str
    event_time: str

    @property
    def names(self) -> list[str]:
        return list(self.features)


@dataclass(frozen=True)
class IngestResult:
    group_name: str
    total: int
    ingested: int
    rejected: int = 0
    throttled: int = 0


# --------------------------------------------------------------------------- definitions


def feature_definitions(sagemaker: Any, group_name: str) -> Definitions:
    """The group's features from ``DescribeFeatureGroup`` (AWS errors propagate)."""
    description = sagemaker.describe_feature_group(FeatureGroupName=group_name)
    features = {d["FeatureName"]: d["FeatureType"] for d in description.get("FeatureDefinitions") or []}
    return Definitions(
        group_name=str(description.get("FeatureGroupName") or group_name),
        features=features,
        record_identifier=str(description["RecordIdentifierFeatureName"]),
        event_time=str(description["EventTimeFeatureName"]),
    )


# --------------------------------------------------------------------------- values


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def _integral(value: Any) -> int:
    if _is_bool(value):
        return int(value)
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real):
        if not math.isfinite(float(value)) or not float(value).is_integer():
            raise ValueError("is not a whole number")
        number = int(float(value))
    else:
        text = str(value).strip()
        if _WHOLE.match(text):
            number = int(text)
        else:
            try:
                parsed = float(text)
            except ValueError:
                raise ValueError("is not a whole number") from None
            if not math.isfinite(parsed) or not parsed.is_integer():
                raise ValueError("is not a whole number")
            number = int(parsed)
    if not _INT64[0] <= number <= _INT64[1]:
        raise ValueError("is outside the 64-bit range of an Integral feature")
    return number


def _fractional(value: Any) -> float:
    if _is_bool(value):
        raise ValueError("is not a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError("is not a number") from None
    if not math.isfinite(number):
        raise ValueError("is not a finite number")
    return number


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):  # pandas Timestamp too
        moment = value
    else:
        text = str(value).strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("is neither epoch seconds nor an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _epoch(value: Any) -> float:
    """Epoch seconds of a number, a datetime or an ISO 8601 string."""
    if not _is_bool(value) and isinstance(value, numbers.Real):
        return _fractional(value)
    if isinstance(value, str):
        try:
            return _fractional(value)
        except ValueError:
            pass
    return _datetime(value).timestamp()


def _iso(seconds: float) -> str:
    """Feature Store's String event time format: yyyy-MM-dd'T'HH:mm:ss[.SSS]Z."""
    moment = datetime.fromtimestamp(seconds, UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event_time(value: Any, feature_type: str) -> float | str:
    seconds = _epoch(value)
    if seconds < 0:
        raise ValueError("is before 1970")
    return seconds if feature_type == FRACTIONAL else _iso(seconds)


def _convert(value: Any, feature_type: str, *, event_time: bool = False) -> int | float | str | None:
    """The value as the feature type wants it, None when missing; ValueError says what is wrong."""
    if _missing(value):
        return None
    if feature_type != STRING and isinstance(value, str) and value.strip().lower() in _MISSING_TEXT:
        return None
    if event_time:
        return _event_time(value, feature_type)
    if feature_type == INTEGRAL:
        return _integral(value)
    if feature_type == FRACTIONAL:
        return _fractional(value)
    return value if isinstance(value, str) else str(value)


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- validate


def validate(
    frame: pd.DataFrame,
    definitions: Definitions,
    *,
    source: str = "",
    first_line: int = 2,
    unit: str = "line",
) -> pd.DataFrame:
    """The frame cleaned for the group (values converted, missing ones None); raises :class:`ValidationError`.

    Row ``i`` is reported as ``{unit} {first_line + i}`` (CSV: line 2 is the
    first row after the header). At most ``MAX_REPORTED_ROWS`` bad rows are named.
    """
    problems: list[str] = []
    columns = [str(c).strip() for c in frame.columns]
    known = definitions.features
    unknown = [c for c in columns if c not in known]
    if unknown:
        problems.append(
            f"unknown column(s) {', '.join(unknown)}; the group's features are {', '.join(definitions.names)}"
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    required = [definitions.record_identifier, definitions.event_time]
    absent = [name for name in required if name not in columns]
    if absent:
        problems.append(
            f"missing required column(s) {', '.join(absent)} (record identifier {definitions.record_identifier}, "
            f"event time {definitions.event_time})"
        )
    present = [(i, c) for i, c in enumerate(columns) if c in known and c not in repeated]
    cleaned: dict[str, list[Any]] = {c: [] for _, c in present}
    bad_rows: list[str] = []
    bad_count = 0
    for row_index, row in enumerate(frame.itertuples(index=False, name=None)):
        row_problems = []
        for position, name in present:
            value = row[position]
            try:
                converted = _convert(value, known[name], event_time=name == definitions.event_time)
            except ValueError as err:
                row_problems.append(f"{name} {_shown(value)} {err}")
                converted = None
            else:
                if converted is None and name in required:
                    row_problems.append(f"{name} is empty")
            cleaned[name].append(converted)
        if row_problems:
            bad_count += 1
            if len(bad_rows) < MAX_REPORTED_ROWS:
                bad_rows.append(f"{unit} {first_line + row_index}: {', '.join(row_problems)}")
    problems.extend(bad_rows)
    if bad_count > len(bad_rows):
        problems.append(f"and {bad_count - len(bad_rows)} more bad row(s) ({bad_count} in all)")
    if problems:
        raise ValidationError(definitions.group_name, problems, source)
    return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in cleaned.items()})


# --------------------------------------------------------------------------- records


def _as_string(value: Any, feature_type: str) -> str:
    if feature_type == INTEGRAL:
        return str(_integral(value))
    if feature_type == FRACTIONAL:
        return repr(_fractional(value))
    return value if isinstance(value, str) else str(value)


def records(frame: pd.DataFrame, definitions: Definitions) -> list[list[dict[str, str]]]:
    """One ``PutRecord`` ``Record`` per row; missing values omitted, Integral as whole-number strings."""
    columns = [str(c).strip() for c in frame.columns]
    types = [definitions.features.get(c, STRING) for c in columns]
    out = []
    for row in frame.itertuples(index=False, name=None):
        record = []
        for name, feature_type, value in zip(columns, types, row):  # noqa: B905 - equal lengths; strict= needs 3.10
            if _missing(value) or (
                feature_type != STRING and isinstance(value, str) and value.strip().lower() in _MISSING_TEXT
            ):
                continue
            record.append({"FeatureName": name, "ValueAsString": _as_string(value, feature_type)})
        out.append(record)
    return out


# --------------------------------------------------------------------------- ingest


def _error_code(err: BaseException) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _error_text(err: BaseException) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        operation = getattr(err, "operation_name", "PutRecord")
        message = " ".join(str(error.get("Message", err)).split())
        return f"AWS error in {operation}: {error.get('Code', 'Error')}: {message}"
    return " ".join(f"{err.__class__.__name__}: {err}".split())


def ingest(
    featurestore_runtime: Any,
    group_name: str,
    records: Iterable[list[dict[str, str]]],
    *,
    batch_size: int = BATCH_SIZE,
    workers: int = WORKERS,
    progress: Progress | None = None,
    max_throttle_retries: int = MAX_THROTTLE_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
) -> IngestResult:
    """``put_record`` every record, ``batch_size`` at a time over ``workers`` threads.

    ``progress(done, total)`` is called after every chunk (and once with 0
    first). Throttling is retried up to ``max_throttle_retries`` times per
    record with exponential backoff and jitter; another error (or throttling
    past the retries) raises :class:`IngestFailed` once the chunk it happened in
    is finished, with the count of records that went in.
    """
    pending = list(records)
    total = len(pending)
    batch_size, workers = max(1, batch_size), max(1, workers)
    throttled = 0
    lock = threading.Lock()

    def put(record: list[dict[str, str]]) -> BaseException | None:
        nonlocal throttled
        attempt = 0
        while True:
            try:
                featurestore_runtime.put_record(FeatureGroupName=group_name, Record=record)
                return None
            except Exception as err:
                if _error_code(err) not in THROTTLING or attempt >= max_throttle_retries:
                    return err
                with lock:
                    throttled += 1
                sleep(min(10.0, 0.2 * 2**attempt) * (0.5 + random.random() / 2))
                attempt += 1

    done = 0
    if progress is not None:
        progress(0, total)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="put-record") as pool:
        for start in range(0, total, batch_size):
            outcomes = list(pool.map(put, pending[start : start + batch_size]))
            failures = [err for err in outcomes if err is not None]
            done += len(outcomes) - len(failures)
            if failures:
                raise IngestFailed(group_name, done, total, failures[0])
            if progress is not None:
                progress(done, total)
    return IngestResult(group_name=group_name, total=total, ingested=done, throttled=throttled)


# --------------------------------------------------------------------------- reading


def kind_of(name: str) -> str:
    """``csv`` or ``parquet`` by the name's suffix; IngestError for anything else."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise IngestError(f"{name}: not a .csv or .parquet file")
    return suffix[1:]


def read_table(source: str | os.PathLike[str] | io.BytesIO, kind: str, *, name: str = "") -> pd.DataFrame:
    """A CSV (every value as text; only empty cells are missing) or Parquet file as a frame."""
    label = name or str(source)
    try:
        if kind == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise IngestError(f"{label}: reading Parquet needs pyarrow (pip install pyarrow)") from None
            return pd.read_parquet(source)
        return pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=False)
    except IngestError:
        raise
    except FileNotFoundError:
        raise IngestError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise IngestError(f"{label}: is a directory, not a file") from None
    except PermissionError:
        raise IngestError(f"{label}: permission denied") from None
    except pd.errors.EmptyDataError:
        raise IngestError(f"{label}: the file is empty (no header row)") from None
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as err:
        raise IngestError(f"{label}: not readable as {kind}: {' '.join(str(err).split())[:200]}") from None


def read_path(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A local CSV or Parquet file as a frame; IngestError (one line) when missing or unreadable."""
    return read_table(path, kind_of(str(path)), name=str(path))


def row_labels(kind: str) -> dict[str, Any]:
    """``validate`` keywords naming rows as a user finds them: CSV lines (header is line 1), Parquet rows."""
    return {"first_line": 2, "unit": "line"} if kind == "csv" else {"first_line": 1, "unit": "row"}


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or not uri[len("s3://") :].split("/", 1)[0]:
        raise IngestError(f"--input-uri {uri!r} is not an s3://BUCKET[/PREFIX] URI")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    return bucket, prefix


def s3_objects(s3: Any, uri: str) -> list[str]:
    """Keys of every .csv / .parquet object under the URI, sorted; IngestError when there is none."""
    bucket, prefix = split_s3_uri(uri)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents") or []:
            if item["Key"].lower().endswith(SUFFIXES) and not item["Key"].endswith("/"):
                keys.append(item["Key"])
    if not keys:
        raise IngestError(f"no .csv or .parquet object under {uri}")
    return sorted(keys)


# --------------------------------------------------------------------------- script


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tenths(out: Any = None) -> Progress:
    """A progress callback printing a line at every further 10 %."""
    shown = -1

    def show(done: int, total: int) -> None:
        nonlocal shown
        tenth = 10 if total == 0 else done * 10 // total
        if tenth > shown:
            shown = tenth
            print(f"ingest: {done}/{total} records ({tenth * 10} %)", file=out or sys.stdout, flush=True)

    return show


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ingest CSV/Parquet objects under an S3 URI into a feature group.")
    parser.add_argument("--input-uri", required=True, help="s3://BUCKET/PREFIX (every .csv/.parquet); '' ingests none")
    parser.add_argument("--feature-group-name", required=True)
    parser.add_argument("--output-dir", default="/opt/ml/processing/output/ingest")
    parser.add_argument("--region", default=None, help="default: the container's AWS region")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--workers", type=int, default=WORKERS)
    return parser.parse_args(argv)


def _boto3_client(region: str | None) -> Callable[[str], Any]:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=max(10, WORKERS * 2))
    return lambda service: boto3.client(service, region_name=region, config=config)


def run(args: argparse.Namespace, client: Callable[[str], Any]) -> dict[str, Any]:
    """Read, validate every object, then ingest; the ``ingest.json`` document."""
    started_at = _utc_now()
    summary: dict[str, Any] = {
        "ingested": 0,
        "rejected": 0,
        "started_at": started_at,
        "feature_group": args.feature_group_name,
    }
    if args.input_uri.strip():
        s3 = client("s3")
        bucket, _ = split_s3_uri(args.input_uri)
        definitions = feature_definitions(client("sagemaker"), args.feature_group_name)
        batches = []
        for key in s3_objects(s3, args.input_uri):
            kind = kind_of(key)
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            name = f"s3://{bucket}/{key}"
            frame = read_table(io.BytesIO(body), kind, name=name)
            batches.append(records(validate(frame, definitions, source=name, **row_labels(kind)), definitions))
            print(f"ingest: {name}: {len(frame)} valid rows", flush=True)
        result = ingest(
            client("sagemaker-featurestore-runtime"),
            definitions.group_name,
            [record for batch in batches for record in batch],
            batch_size=args.batch_size,
            workers=args.workers,
            progress=_tenths(),
        )
        summary["ingested"] = result.ingested
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "ingest.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: Sequence[str] | None = None, client: Callable[[str], Any] | None = None) -> int:
    """The processing step; ``client(service_name)`` makes the boto3 clients (injectable for tests)."""
    args = _parse(argv)
    try:
        summary = run(args, client or _boto3_client(args.region))
    except (IngestError, IngestFailed) as err:
        print(f"ingest: error: {err}", file=sys.stderr)
        return 1
    print(f"ingest: ingested {summary['ingested']} records into {args.feature_group_name} (0 rejected)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
