"""Scheduled drift check: Model Monitor's data- and model-quality checks, for accounts without Model Monitor.

Runs as a processing step in the SageMaker scikit-learn container (Python 3.9+,
standard library, numpy, pandas, boto3) and locally in tests.

Reads the data-quality baseline ``preprocess.py`` writes (``--baseline-dir``:
``statistics.json``, ``constraints.json``, Model Monitor schema version 0.0,
features named ``_c0``, ``_c1``, ... and ``feature_names.json`` mapping those
to column names; without that file the positional names are kept), then the
endpoint's data capture in the window ``[end - window-hours, end)``:

    python3 drift.py --capture-uri s3://bucket/capture/<endpoint>/ \\
        --baseline-dir /opt/ml/processing/baseline --output-uri s3://bucket/monitoring/... \\
        --endpoint NAME --schedule NAME --window-hours 1 [--end 2026-12-01T11:00:00Z] \\
        [--ground-truth-uri s3://bucket/ground-truth/] [--model-quality-constraints PATH] \\
        [--probability-threshold 0.5] [--region R] [--no-metrics]

``--capture-uri`` (and ``--ground-truth-uri``) may also be a local directory,
``--output-dir`` a local directory instead of ``--output-uri``. ``--end``
defaults to the start of the current hour. Only the hour prefixes
``<variant>/yyyy/mm/dd/hh/`` that overlap the window are listed, records are
kept when their ``inferenceTime`` is in the window, and files are streamed
line by line into fixed-size chunks (memory does not grow with the window).

Checks, per variant (the path segment after the endpoint) and overall, with
the baseline constraints' ``monitoring_config``:

- ``baseline_drift_check``: numerical features by the largest distance between
  the baseline's and the window's empirical CDFs, categorical ones by the
  L-infinity distance between category frequencies; a violation when above
  ``distribution_constraints.comparison_threshold`` (categorical:
  ``categorical_comparison_threshold``, default both 0.1; a feature's
  ``monitoringConfigOverrides`` wins);
- ``completeness_check``: share of present values below the feature's
  baseline ``completeness`` (minus ``--completeness-tolerance``, default 0:
  Model Monitor's strict floor, which sampling noise alone can break when the
  baseline itself has gaps);
- ``data_type_check``: share of present values of a numerical feature that
  parse as numbers (and, for ``Integral``, are whole) below
  ``datatype_check_threshold`` (1.0: any non-numeric value is a violation);
- ``categorical_values_check``: share of values inside a string feature's
  baseline ``domains`` below ``domain_content_threshold``;
- ``missing_column_check`` / ``extra_column_check``: CSV rows with fewer /
  more fields than the baseline has features.

**Approximation of the numerical distance.** The window's values are counted
into fixed bins whose edges come from the baseline: every distinct value of
the baseline's KLL sketch when it holds at most ``MAX_EDGES`` of them (exact
for discrete features and small baselines), else ``MAX_EDGES`` weighted
quantiles of the sketch; plus the bounds of the baseline's histogram buckets
(the only edges when a baseline has no sketch). Both CDFs are compared at the
edges (the baseline's from the sketch's weighted items, right-continuous; the
window's from the cumulative bin counts, values outside the baseline's range
included), so the result is exact at those points and a lower bound of the
two-sample statistic otherwise; between two edges it can miss at most the
larger of the two distributions' mass in one bin (<= 1/MAX_EDGES of the
baseline). Memory per feature is one counter per bin, whatever the window.

Model quality (with ``--ground-truth-uri`` and ``--model-quality-constraints``):
ground truth JSON Lines (``groundTruthData.data``, ``eventMetadata.eventId``)
under the same hour prefixes (window plus ``--ground-truth-lag-hours``) are
read first, then each captured prediction (``endpointOutput``, first value of
each row, a probability) is joined by ``inferenceId`` (else ``eventId``);
memory holds the labels and the joined pairs. auc, accuracy, precision, recall
and f1 (label 1 when the probability >= ``--probability-threshold``) are
compared with ``binary_classification_constraints``.

Outputs (under ``--output-uri`` / ``--output-dir``): ``constraint_violations.json``
(Model Monitor's format, features by column name), ``statistics.json`` (the
window's counts and per-feature summaries) and ``<variant>/`` copies of both;
``model_quality/`` (and ``<variant>/model_quality/``) with the model-quality
``statistics.json`` and ``constraint_violations.json``; ``summary.json``
(records read, per-variant counts, violation counts, elapsed time, peak RSS).

CloudWatch (unless ``--no-metrics`` or ``emit_metrics`` is not ``Enabled``),
the names Model Monitor publishes, dimensions ``Endpoint`` and
``MonitoringSchedule``: ``aws/sagemaker/Endpoints/data-metrics``:
``feature_baseline_drift_<column>``, ``feature_non_null_<column>`` (share
present) and ``constraint_violations``; ``aws/sagemaker/Endpoints/model-metrics``:
``auc``, ``accuracy``, ``precision``, ``recall``, ``f1`` and
``constraint_violations``. The same metrics per variant carry a third
dimension, ``VariantName`` (so alarms on the two-dimension metrics see the
endpoint as a whole, as with Model Monitor).

Exit code 0 with or without violations (alarms act on the metrics); 2 with one
line when the baseline is missing or invalid, 3 when the window holds no
captured record (nothing is written or published then).
"""

# zip(strict=...) is Python 3.10+; the container may run 3.9.
# ruff: noqa: B905

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import resource
import sys
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

DATA_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MODEL_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
DEFAULT_THRESHOLD = 0.1
MAX_EDGES = 1024
# Rows parsed at once (per variant): bounds memory and keeps pandas' per-call cost small.
CHUNK_ROWS = 50_000
# Distinct categories tracked per feature; the rest are counted together.
MAX_CATEGORIES = 10_000
OTHER = "__other__"
METRICS_PER_CALL = 1000
QUALITY_METRICS = ("auc", "accuracy", "precision", "recall", "f1")
EXIT_BAD_BASELINE = 2
EXIT_NO_CAPTURE = 3
UTC = timezone.utc  # noqa: UP017 - datetime.UTC is 3.11+, the container may run 3.9


class DriftError(Exception):
    """A reason to stop without output; ``code`` is the exit code, the message one line."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- baseline


class Feature:
    """One baseline feature: its names, kind, constraints and (numerical) bins."""

    def __init__(self, index: int, constraint: dict, stats: dict, column: str, config: dict) -> None:
        self.index = index
        self.name = constraint["name"]
        self.column = column
        self.inferred_type = constraint.get("inferred_type", stats.get("inferred_type", "Unknown"))
        self.numeric = self.inferred_type in ("Integral", "Fractional")
        self.completeness = float(constraint.get("completeness", 0.0))
        overrides = constraint.get("monitoringConfigOverrides") or {}
        distribution = config.get("distribution_constraints") or {}
        self.compare = distribution.get("perform_comparison", "Enabled") == "Enabled"
        threshold = float(distribution.get("comparison_threshold", DEFAULT_THRESHOLD))
        if not self.numeric:
            threshold = float(distribution.get("categorical_comparison_threshold", threshold))
        self.threshold = float(overrides.get("comparison_threshold", threshold))
        self.datatype_threshold = float(
            overrides.get("datatype_check_threshold", config.get("datatype_check_threshold", 1.0))
        )
        self.domain_threshold = float(
            overrides.get("domain_content_threshold", config.get("domain_content_threshold", 1.0))
        )
        domains = (constraint.get("string_constraints") or {}).get("domains")
        self.domains = set(domains) if domains else None
        if self.numeric:
            self.edges, self.base_cdf = _numeric_bins(stats.get("numerical_statistics") or {}, self.name)
            bounds = ((stats.get("numerical_statistics") or {}).get("distribution") or {}).get("kll") or {}
            self.buckets = [(float(b["lower_bound"]), float(b["upper_bound"])) for b in bounds.get("buckets") or []]
        else:
            buckets = (((stats.get("string_statistics") or {}).get("distribution") or {}).get("categorical") or {}).get(
                "buckets"
            ) or []
            total = sum(float(b["count"]) for b in buckets)
            self.base_freq = {str(b["value"]): float(b["count"]) / total for b in buckets} if total else {}


def _numeric_bins(numerical: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(edges, baseline CDF at each edge) from the KLL sketch, else from the histogram buckets."""
    kll = (numerical.get("distribution") or {}).get("kll") or {}
    buckets = kll.get("buckets") or []
    bounds = sorted({float(b["lower_bound"]) for b in buckets} | {float(b["upper_bound"]) for b in buckets})
    levels = (kll.get("sketch") or {}).get("data") or []
    items = np.concatenate([np.asarray(level, dtype="float64") for level in levels]) if levels else np.empty(0)
    if len(items):
        weights = np.concatenate([np.full(len(level), 2.0**i) for i, level in enumerate(levels)])
        order = np.argsort(items, kind="stable")
        items, cumulative = items[order], np.cumsum(weights[order])
        total = cumulative[-1]
        distinct = np.unique(items)
        if len(distinct) > MAX_EDGES:
            targets = np.linspace(0.0, total, MAX_EDGES + 1)[1:]
            distinct = np.unique(items[np.minimum(np.searchsorted(cumulative, targets), len(items) - 1)])
        edges = np.unique(np.concatenate([distinct, np.asarray(bounds, dtype="float64")]))
        position = np.searchsorted(items, edges, side="right")
        cdf = np.where(position > 0, cumulative[np.maximum(position - 1, 0)], 0.0) / total
        return edges, cdf
    if buckets:
        ordered = sorted(buckets, key=lambda b: float(b["upper_bound"]))
        total = sum(float(b["count"]) for b in ordered)
        if total > 0:
            edges = [float(ordered[0]["lower_bound"])] + [float(b["upper_bound"]) for b in ordered]
            cdf = [0.0] + list(np.cumsum([float(b["count"]) for b in ordered]) / total)
            frame = pd.DataFrame({"edge": edges, "cdf": cdf}).groupby("edge", sort=True)["cdf"].max()
            return frame.index.to_numpy(dtype="float64"), frame.to_numpy(dtype="float64")
    raise DriftError(
        f"baseline statistics for numerical feature {name!r} have no KLL sketch or buckets", EXIT_BAD_BASELINE
    )


class Baseline:
    def __init__(self, features: list[Feature], config: dict) -> None:
        self.features = features
        self.config = config
        self.evaluate = config.get("evaluate_constraints", "Enabled") == "Enabled"
        self.emit_metrics = config.get("emit_metrics", "Enabled") == "Enabled"


def load_baseline(directory: str) -> Baseline:
    def read(name: str, required: bool = True):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            if required:
                raise DriftError(f"baseline file {path} is missing", EXIT_BAD_BASELINE)
            return None
        try:
            with open(path) as handle:
                return json.load(handle)
        except (OSError, ValueError) as error:
            raise DriftError(f"baseline file {path} is not valid JSON: {error}", EXIT_BAD_BASELINE) from None

    constraints, statistics = read("constraints.json"), read("statistics.json")
    names = read("feature_names.json", required=False) or {}
    try:
        columns = {entry["name"]: entry["column"] for entry in names.get("features", [])}
        stats_by_name = {f["name"]: f for f in statistics["features"]}
        config = constraints.get("monitoring_config") or {}
        features = [
            Feature(i, c, stats_by_name.get(c["name"], {}), columns.get(c["name"], c["name"]), config)
            for i, c in enumerate(constraints["features"])
        ]
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise DriftError(
            f"baseline in {directory} is invalid: {type(error).__name__} {error}", EXIT_BAD_BASELINE
        ) from None
    if not features:
        raise DriftError(f"baseline constraints in {directory} list no features", EXIT_BAD_BASELINE)
    return Baseline(features, config)


# --------------------------------------------------------------------------- accumulation


class VariantStats:
    """Bounded running counts of one variant's (or all variants') window."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.records = 0
        self.rows = 0
        self.short_rows = 0
        self.extra_rows = 0
        self.columns = []
        for f in baseline.features:
            column = {"present": 0, "missing": 0, "mismatched": 0}
            if f.numeric:
                column.update(
                    bins=np.zeros(len(f.edges) + 1, dtype="int64"), sum=0.0, sumsq=0.0, min=np.inf, max=-np.inf
                )
            else:
                column.update(counts={}, out_of_domain=0)
            self.columns.append(column)

    def merge(self, other: VariantStats) -> None:
        for name in ("records", "rows", "short_rows", "extra_rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in zip(self.columns, other.columns):
            for key in ("present", "missing", "mismatched", "out_of_domain", "bins", "sum", "sumsq"):
                if key in mine:
                    mine[key] = mine[key] + theirs[key]
            if "min" in mine:
                mine["min"], mine["max"] = min(mine["min"], theirs["min"]), max(mine["max"], theirs["max"])
            if "counts" in mine:
                _add_counts(mine["counts"], theirs["counts"].items())

    def add_frame(self, frame: pd.DataFrame, expected_rows: int) -> None:
        self.rows += len(frame)
        self.extra_rows += max(0, expected_rows - len(frame))
        for f, column in zip(self.baseline.features, self.columns):
            values = frame[f.index]
            missing = values.isna().to_numpy()
            present = len(values) - int(missing.sum())
            column["missing"] += len(values) - present
            column["present"] += present
            if not present:
                continue
            if f.numeric:
                if values.dtype == bool or pd.api.types.is_bool_dtype(values.dtype):
                    numbers = values.astype("float64").to_numpy()
                elif pd.api.types.is_numeric_dtype(values.dtype):
                    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
                else:
                    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
                numbers = numbers[~missing]
                valid = np.isfinite(numbers)
                if f.inferred_type == "Integral":
                    column["mismatched"] += int(
                        np.count_nonzero(~valid | (np.mod(np.where(valid, numbers, 0.0), 1.0) != 0))
                    )
                else:
                    column["mismatched"] += int(np.count_nonzero(~valid))
                numbers = numbers[valid]
                if len(numbers):
                    column["bins"] += np.bincount(
                        np.searchsorted(f.edges, numbers, side="left"), minlength=len(f.edges) + 1
                    )
                    column["sum"] += float(numbers.sum())
                    column["sumsq"] += float(np.dot(numbers, numbers))
                    column["min"] = min(column["min"], float(numbers.min()))
                    column["max"] = max(column["max"], float(numbers.max()))
            else:
                if pd.api.types.is_float_dtype(values.dtype):
                    # "1" and "1.0" are the same category as the baseline wrote them (pandas text).
                    values = values.astype(object)
                counts = values.astype(str)[~missing].value_counts()
                if f.domains is not None:
                    column["out_of_domain"] += int(counts[~counts.index.isin(list(f.domains))].sum())
                _add_counts(column["counts"], counts.items())


def _add_counts(counts: dict, items) -> None:
    for value, count in items:
        if value in counts:
            counts[value] += int(count)
        elif len(counts) < MAX_CATEGORIES:
            counts[value] = int(count)
        else:
            counts[OTHER] = counts.get(OTHER, 0) + int(count)


class Collector:
    """Buffers one variant's CSV rows and parses them a chunk at a time."""

    def __init__(self, baseline: Baseline) -> None:
        self.stats = VariantStats(baseline)
        self.width = len(baseline.features)
        self.parts: list[str] = []
        self.pending = 0
        self.names = list(range(self.width))

    def add_csv(self, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"
        rows = text.count("\n")
        if '"' not in text and text.count(",") < (self.width - 1) * rows:
            self.stats.short_rows += rows
        self.parts.append(text)
        self.pending += rows
        if self.pending >= CHUNK_ROWS:
            self.flush()

    def add_rows(self, rows: list) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            row = row if isinstance(row, list) else [row]
            writer.writerow(["" if value is None else value for value in row])
        self.add_csv(buffer.getvalue())

    def flush(self) -> None:
        if not self.parts:
            return
        text, expected = "".join(self.parts), self.pending
        self.parts, self.pending = [], 0
        frame = pd.read_csv(
            io.StringIO(text),
            header=None,
            names=self.names,
            index_col=False,
            on_bad_lines="skip",
            skip_blank_lines=True,
            engine="c",
            low_memory=False,
        )
        blank = text.count("\n\n") + (1 if text.startswith("\n") else 0)
        self.stats.add_frame(frame, expected - blank)


# --------------------------------------------------------------------------- storage


def _split_s3(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    return bucket, key


class Storage:
    """S3 (``s3://``) or local paths; the S3 client is injectable."""

    def __init__(self, s3=None, region: str | None = None) -> None:
        self._s3 = s3
        self.region = region
        self.listed: list[str] = []

    @property
    def s3(self):
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3", region_name=self.region)
        return self._s3

    def list_dirs(self, uri: str) -> list[str]:
        """Immediate sub-folders of ``uri`` (each ending in "/")."""
        base = uri.rstrip("/") + "/"
        self.listed.append(base)
        if base.startswith("s3://"):
            bucket, prefix = _split_s3(base)
            found = []
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
                found += [f"s3://{bucket}/{p['Prefix']}" for p in page.get("CommonPrefixes", [])]
            return sorted(found)
        if not os.path.isdir(base):
            return []
        return sorted(os.path.join(base, n) + "/" for n in os.listdir(base) if os.path.isdir(os.path.join(base, n)))

    def list_files(self, uri: str) -> list[str]:
        """Files directly under ``uri`` (no recursion)."""
        base = uri.rstrip("/") + "/"
        self.listed.append(base)
        if base.startswith("s3://"):
            bucket, prefix = _split_s3(base)
            found = []
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
                found += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []) if not o["Key"].endswith("/")]
            return sorted(found)
        if not os.path.isdir(base):
            return []
        return sorted(os.path.join(base, n) for n in os.listdir(base) if os.path.isfile(os.path.join(base, n)))

    def lines(self, uri: str):
        """The file's lines (bytes), streamed."""
        if uri.startswith("s3://"):
            bucket, key = _split_s3(uri)
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                yield from body.iter_lines(chunk_size=1 << 20)
            finally:
                body.close()
        else:
            with open(uri, "rb", buffering=1 << 20) as handle:
                yield from handle

    def write_json(self, base: str, relative: str, document: dict) -> None:
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        if base.startswith("s3://"):
            bucket, prefix = _split_s3(base.rstrip("/") + "/")
            self.s3.put_object(Bucket=bucket, Key=prefix + relative, Body=text.encode(), ContentType="application/json")
        else:
            path = os.path.join(base, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write(text)


def hour_prefixes(start: datetime, end: datetime) -> list[str]:
    """``yyyy/mm/dd/hh/`` of every hour overlapping ``[start, end)``."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    found = []
    while hour < end:
        found.append(hour.strftime("%Y/%m/%d/%H/"))
        hour += timedelta(hours=1)
    return found


def window_files(storage: Storage, uri: str, start: datetime, end: datetime) -> list[str]:
    return [f for prefix in hour_prefixes(start, end) for f in storage.list_files(uri.rstrip("/") + "/" + prefix)]


# --------------------------------------------------------------------------- reading


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _decode(part: dict) -> str:
    data = part.get("data", "")
    if part.get("encoding") == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
    return data


def _json_rows(text: str) -> list:
    document = json.loads(text)
    if isinstance(document, dict):
        for key in ("instances", "inputs", "data", "features", "predictions"):
            if key in document:
                document = document[key]
                break
    if isinstance(document, list) and document and not isinstance(document[0], (list, dict)):
        document = [document]
    rows = []
    for row in document if isinstance(document, list) else [document]:
        if isinstance(row, dict):
            row = row.get("features", row.get("values", list(row.values())))
        rows.append(row)
    return rows


def _predictions(part: dict) -> list[float]:
    text = _decode(part).strip()
    if not text:
        return []
    if text[0] in "[{":
        rows = _json_rows(text)
        return [float(r[0] if isinstance(r, list) else r) for r in rows]
    return [float(line.split(",")[0]) for line in text.splitlines() if line.strip()]


def read_ground_truth(storage: Storage, uri: str, start: datetime, end: datetime) -> dict[str, list]:
    """``{eventId: [label per row]}`` from the ground truth under the window's hour prefixes."""
    labels: dict[str, list] = {}
    for path in window_files(storage, uri, start, end):
        for line in storage.lines(path):
            if not line.strip():
                continue
            record = json.loads(line)
            key = (record.get("eventMetadata") or {}).get("eventId")
            data = _decode(record.get("groundTruthData") or {}).strip()
            if key is None or not data:
                continue
            if data[0] in "[{":
                values = [r[0] if isinstance(r, list) else r for r in _json_rows(data)]
            else:
                values = [v.split(",")[0] for v in data.splitlines() if v.strip()]
            labels[str(key)] = [_label(v) for v in values]
    return labels


def _label(value) -> int | None:
    """0/1 for a binary label (0/1, 0.0/1.0, true/false), None for anything else (not joined)."""
    text = str(value).strip().lower()
    return 1 if text in ("1", "1.0", "true") else 0 if text in ("0", "0.0", "false") else None


def scan(
    baseline: Baseline,
    sources,
    start: datetime,
    end: datetime,
    labels: dict[str, list[int]] | None = None,
) -> tuple[dict[str, VariantStats], list[tuple[str, float, int]]]:
    """The core: ``sources`` yields ``(variant, lines)``.

    Returns the per-variant stats and the predictions joined with ``labels`` as (variant, score, label).
    """
    low, high = _stamp(start), _stamp(end)
    collectors: dict[str, Collector] = {}
    pairs: list[tuple[str, float, int]] = []
    loads = json.loads
    for variant, lines in sources:
        collector = collectors.get(variant)
        if collector is None:
            collector = collectors[variant] = Collector(baseline)
        stats = collector.stats
        for line in lines:
            if not line or line.isspace():
                continue
            record = loads(line)
            metadata = record.get("eventMetadata") or {}
            moment = (metadata.get("inferenceTime") or "")[:19]
            if moment and not (low <= moment < high):
                continue
            capture = record.get("captureData") or {}
            request = capture.get("endpointInput") or {}
            stats.records += 1
            data = request.get("data", "")
            encoding = request.get("encoding", "CSV")
            if encoding == "BASE64":
                data = base64.b64decode(data).decode("utf-8")
            if encoding == "JSON" or "json" in request.get("observedContentType", "") or data[:1] in ("[", "{"):
                collector.add_rows(_json_rows(data))
            else:
                collector.add_csv(data)
            if labels:
                key = metadata.get("inferenceId") or metadata.get("eventId")
                truth = labels.get(str(key)) if key is not None else None
                if truth:
                    scores = _predictions(capture.get("endpointOutput") or {})
                    pairs += [(variant, s, t) for s, t in zip(scores, truth) if t is not None]
    for collector in collectors.values():
        collector.flush()
    return {variant: c.stats for variant, c in collectors.items()}, pairs


def capture_sources(storage: Storage, capture_uri: str, start: datetime, end: datetime):
    """``(variant, lines)`` for each capture file in the window's hour prefixes (listing only those)."""
    for variant_uri in storage.list_dirs(capture_uri):
        variant = variant_uri.rstrip("/").rsplit("/", 1)[-1]
        for path in window_files(storage, variant_uri, start, end):
            yield variant, storage.lines(path)


# --------------------------------------------------------------------------- evaluation


def _pct(value: float) -> str:
    return f"{100.0 * value:.4g}%"


def evaluate(baseline: Baseline, stats: VariantStats, tolerance: float = 0.0) -> tuple[list[dict], dict, dict]:
    """(violations, statistics document, {column: drift distance}) of one variant's window."""
    violations: list[dict] = []
    features: list[dict] = []
    distances: dict[str, float] = {}
    non_null: dict[str, float] = {}
    items = stats.rows

    def violation(f: Feature, check: str, description: str) -> None:
        violations.append({"feature_name": f.column, "constraint_check_type": check, "description": description})

    if stats.short_rows:
        violations.append(
            {
                "feature_name": "",
                "constraint_check_type": "missing_column_check",
                "description": f"{stats.short_rows} of {stats.rows} rows have fewer columns than the "
                f"{len(baseline.features)} of the baseline constraints",
            }
        )
    if stats.extra_rows:
        violations.append(
            {
                "feature_name": "",
                "constraint_check_type": "extra_column_check",
                "description": f"{stats.extra_rows} rows have more columns than the "
                f"{len(baseline.features)} of the baseline constraints (not analysed)",
            }
        )
    for f, column in zip(baseline.features, stats.columns):
        present, missing = column["present"], column["missing"]
        completeness = present / items if items else 0.0
        non_null[f.column] = completeness
        common = {"num_present": present, "num_missing": missing}
        if items and completeness < f.completeness - tolerance:
            violation(
                f,
                "completeness_check",
                f"Data completeness requirement is not met. Expected completeness: {_pct(f.completeness)}, "
                f"observed: {_pct(completeness)} ({missing} of {items} values missing; baseline {f.name})",
            )
        if f.numeric:
            valid = int(column["bins"].sum())
            match = (present - column["mismatched"]) / present if present else 1.0
            if present and match < f.datatype_threshold:
                violation(
                    f,
                    "data_type_check",
                    f"Data type match requirement is not met. Expected data type: {f.inferred_type}, "
                    f"expected match: {_pct(f.datatype_threshold)}, observed: only {_pct(match)} of "
                    f"{present} present values are {f.inferred_type} (baseline {f.name})",
                )
            summary = {"common": common}
            if valid:
                mean = column["sum"] / valid
                summary.update(
                    mean=mean,
                    sum=column["sum"],
                    std_dev=float(np.sqrt(max(column["sumsq"] / valid - mean * mean, 0.0))),
                    min=column["min"],
                    max=column["max"],
                )
                cumulative = np.cumsum(column["bins"])
                current = cumulative[: len(f.edges)] / valid
                distance = float(np.max(np.abs(current - f.base_cdf)))
                distances[f.column] = distance
                at = dict(zip(f.edges.tolist(), cumulative[: len(f.edges)].tolist()))
                summary["distribution"] = {
                    "kll": {
                        "buckets": [
                            {
                                "lower_bound": lo,
                                "upper_bound": hi,
                                "count": float(at.get(hi, 0) - (at.get(lo, 0) if i else 0)),
                            }
                            for i, (lo, hi) in enumerate(f.buckets)
                        ],
                        "above_baseline_max": int(column["bins"][-1]),
                    }
                }
                if f.compare and distance > f.threshold:
                    violation(
                        f,
                        "baseline_drift_check",
                        f"Baseline drift distance: {distance:.4g} exceeds threshold: {f.threshold:g} "
                        f"(largest distance between the empirical CDFs; baseline {f.name})",
                    )
            features.append({"name": f.column, "inferred_type": f.inferred_type, "numerical_statistics": summary})
        else:
            counts = column["counts"]
            total = sum(counts.values())
            summary = {"common": common, "distinct_count": float(len(counts))}
            if total:
                summary["distribution"] = {
                    "categorical": {"buckets": [{"value": v, "count": float(c)} for v, c in sorted(counts.items())]}
                }
                if f.domains is not None:
                    inside = 1.0 - column["out_of_domain"] / total
                    if inside < f.domain_threshold:
                        violation(
                            f,
                            "categorical_values_check",
                            f"Data content requirement is not met. Expected: {_pct(f.domain_threshold)} of values "
                            f"in the baseline domain, observed: {_pct(inside)} (baseline {f.name})",
                        )
                categories = set(counts) | set(f.base_freq)
                distance = max(abs(counts.get(c, 0) / total - f.base_freq.get(c, 0.0)) for c in categories)
                distances[f.column] = distance
                if f.compare and distance > f.threshold:
                    violation(
                        f,
                        "baseline_drift_check",
                        f"Baseline drift distance: {distance:.4g} exceeds threshold: {f.threshold:g} "
                        f"(L-infinity distance between category frequencies; baseline {f.name})",
                    )
            features.append({"name": f.column, "inferred_type": f.inferred_type, "string_statistics": summary})
    if not baseline.evaluate:
        violations = []
    document = {"version": 0.0, "dataset": {"item_count": items, "record_count": stats.records}, "features": features}
    return violations, document, {"drift": distances, "non_null": non_null}


def quality_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (scores >= threshold).astype("int64")
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    positives, negatives = int(labels.sum()), int(len(labels) - labels.sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    auc = 0.0
    if positives and negatives:
        # Mann-Whitney U with average ranks for ties.
        ranks = pd.Series(scores).rank(method="average").to_numpy()
        auc = float((ranks[labels == 1].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))
    return {
        "auc": auc,
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


OPERATORS = {
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
}


def quality_violations(metrics: dict[str, float], constraints: dict) -> list[dict]:
    found = []
    for name, rule in sorted((constraints.get("binary_classification_constraints") or {}).items()):
        operator = rule.get("comparison_operator", "LessThanThreshold")
        check = OPERATORS.get(operator)
        threshold = float(rule["threshold"])
        if name in metrics and check and check(metrics[name], threshold):
            found.append(
                {
                    "constraint_check_type": operator,
                    "description": f"Metric {name} with {metrics[name]:.4g} was {operator} '{threshold:g}'",
                    "metric_name": name,
                }
            )
    return found


# --------------------------------------------------------------------------- metrics


def _datum(name: str, value: float, dimensions: list[dict], timestamp: datetime, unit: str = "None") -> dict:
    return {"MetricName": name, "Dimensions": dimensions, "Timestamp": timestamp, "Value": float(value), "Unit": unit}


def publish(cloudwatch, metrics: dict[str, list[dict]]) -> int:
    """``put_metric_data`` per namespace in calls of at most METRICS_PER_CALL; returns the data points sent."""
    sent = 0
    for namespace, data in metrics.items():
        for i in range(0, len(data), METRICS_PER_CALL):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[i : i + METRICS_PER_CALL])
            sent += len(data[i : i + METRICS_PER_CALL])
    return sent


# --------------------------------------------------------------------------- run


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Drift check of an endpoint's captured requests against its baseline.")
    parser.add_argument("--capture-uri", required=True, help="s3://bucket/prefix/<endpoint>/ or a local directory")
    parser.add_argument("--baseline-dir", default="/opt/ml/processing/baseline")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--output-uri", help="s3://bucket/prefix for the reports")
    out.add_argument("--output-dir", help="local directory for the reports")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--schedule", required=True)
    parser.add_argument("--window-hours", type=float, default=1.0)
    parser.add_argument("--end", help="window end, ISO 8601 (default: start of the current hour, UTC)")
    parser.add_argument("--ground-truth-uri")
    parser.add_argument("--ground-truth-lag-hours", type=float, default=0.0)
    parser.add_argument("--model-quality-constraints", help="model-quality constraints.json (local path)")
    parser.add_argument("--probability-threshold", type=float, default=0.5)
    parser.add_argument(
        "--completeness-tolerance",
        type=float,
        default=0.0,
        help="allowed shortfall below a feature's baseline completeness (default 0: Model Monitor's strict check)",
    )
    parser.add_argument("--region")
    parser.add_argument("--no-metrics", action="store_true")
    args = parser.parse_args(argv)
    if args.window_hours <= 0:
        parser.error("--window-hours must be positive")
    return args


def run(args: argparse.Namespace, storage: Storage | None = None, cloudwatch=None) -> dict:
    started = time.perf_counter()
    storage = storage or Storage(region=args.region)
    baseline = load_baseline(args.baseline_dir)
    end = parse_time(args.end) if args.end else datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=args.window_hours)
    quality_constraints = None
    if args.model_quality_constraints:
        try:
            with open(args.model_quality_constraints) as handle:
                quality_constraints = json.load(handle)
        except (OSError, ValueError) as error:
            raise DriftError(
                f"model-quality constraints {args.model_quality_constraints}: {error}", EXIT_BAD_BASELINE
            ) from None
    labels = None
    if args.ground_truth_uri:
        labels = read_ground_truth(
            storage, args.ground_truth_uri, start, end + timedelta(hours=args.ground_truth_lag_hours)
        )

    per_variant, pairs = scan(baseline, capture_sources(storage, args.capture_uri, start, end), start, end, labels)
    per_variant = {v: s for v, s in per_variant.items() if s.records}
    if not per_variant:
        raise DriftError(
            f"no captured records for {args.capture_uri} in [{_stamp(start)}Z, {_stamp(end)}Z)", EXIT_NO_CAPTURE
        )
    overall = VariantStats(baseline)
    for stats in per_variant.values():
        overall.merge(stats)

    base = args.output_uri or args.output_dir
    dims = [{"Name": "Endpoint", "Value": args.endpoint}, {"Name": "MonitoringSchedule", "Value": args.schedule}]
    metrics: dict[str, list[dict]] = {DATA_NAMESPACE: [], MODEL_NAMESPACE: []}
    summary = {
        "endpoint": args.endpoint,
        "schedule": args.schedule,
        "window": {"start": _stamp(start) + "Z", "end": _stamp(end) + "Z"},
        "records": overall.records,
        "rows": overall.rows,
        "variants": {},
    }
    groups = [(None, overall)] + sorted(per_variant.items())
    for variant, stats in groups:
        violations, statistics, values = evaluate(baseline, stats, args.completeness_tolerance)
        prefix = "" if variant is None else f"{variant}/"
        storage.write_json(base, prefix + "constraint_violations.json", {"violations": violations})
        storage.write_json(base, prefix + "statistics.json", statistics)
        group_dims = dims if variant is None else [*dims, {"Name": "VariantName", "Value": variant}]
        data = metrics[DATA_NAMESPACE]
        data += [_datum(f"feature_baseline_drift_{c}", v, group_dims, end) for c, v in values["drift"].items()]
        data += [_datum(f"feature_non_null_{c}", v, group_dims, end) for c, v in values["non_null"].items()]
        data.append(_datum("constraint_violations", len(violations), group_dims, end, "Count"))
        entry = {"records": stats.records, "rows": stats.rows, "violations": len(violations)}
        if labels is not None:
            chosen = [(s, t) for v, s, t in pairs if variant is None or v == variant]
            entry["labelled"] = len(chosen)
            if chosen:
                scores = np.asarray([s for s, _ in chosen], dtype="float64")
                truth = np.asarray([t for _, t in chosen], dtype="int64")
                quality = quality_metrics(scores, truth, args.probability_threshold)
                found = quality_violations(quality, quality_constraints or {})
                storage.write_json(base, prefix + "model_quality/constraint_violations.json", {"violations": found})
                storage.write_json(
                    base,
                    prefix + "model_quality/statistics.json",
                    {
                        "version": 0.0,
                        "dataset": {"item_count": len(chosen), "evaluation_time": _stamp(end) + "Z"},
                        "binary_classification_metrics": {
                            k: {"value": v, "standard_deviation": 0.0} for k, v in quality.items()
                        },
                    },
                )
                model = metrics[MODEL_NAMESPACE]
                model += [_datum(k, v, group_dims, end) for k, v in quality.items()]
                model.append(_datum("constraint_violations", len(found), group_dims, end, "Count"))
                entry["model_quality"] = quality
                entry["model_quality_violations"] = len(found)
        if variant is None:
            summary.update({k: v for k, v in entry.items() if k not in ("records", "rows")})
        else:
            summary["variants"][variant] = entry
    published = 0
    if not args.no_metrics and baseline.emit_metrics:
        if cloudwatch is None:
            import boto3

            cloudwatch = boto3.client("cloudwatch", region_name=args.region)
        published = publish(cloudwatch, {k: v for k, v in metrics.items() if v})
    elapsed = time.perf_counter() - started
    summary.update(
        metrics_published=published,
        elapsed_seconds=round(elapsed, 3),
        records_per_second=round(overall.records / elapsed, 1) if elapsed else 0.0,
        peak_rss_mb=round(peak_rss_mb(), 1),
    )
    storage.write_json(base, "summary.json", summary)
    return summary


def peak_rss_mb() -> float:
    """This process's peak resident set size (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None, storage: Storage | None = None, cloudwatch=None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args, storage=storage, cloudwatch=cloudwatch)
    except DriftError as error:
        print(f"drift: {error}", file=sys.stderr)
        return error.code
    per_variant = ", ".join("{}: {}".format(v, e["violations"]) for v, e in summary["variants"].items())
    print(
        f"drift: {summary['records']} records, {summary['rows']} rows, {summary['violations']} violations "
        f"({per_variant}), {summary['metrics_published']} metrics, {summary['records_per_second']:.0f} records/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
