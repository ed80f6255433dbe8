"""Everything the tabular pipeline definition depends on, as one frozen, hashable value.

``PipelineInputs`` holds only primitives and tuples, so it hashes, compares and
serialises canonically (``to_json``); ``cache.definition_for`` keys on that JSON.
All names, ARNs and URIs must be literal strings: the SageMaker SDK would try
to resolve CDK tokens through AWS calls. Substitute tokens into the JSON after
the build if you need them.

Defaults: ``s3_prefix="pipelines"``; nothing to ingest (``ingest_data_uri``
empty); ``ml.m5.xlarge`` for processing and training, one training instance
with a 30 GB volume; no spot (``max_run_seconds`` 3600, ``max_wait_seconds``
7200 when spot is on); no VPC, no KMS key, no tags; metric ``auc`` >= 0.7;
hyperparameters ``n-estimators=100, max-depth=3, learning-rate=0.1`` (passed to
train.py as ``--key value``); scikit-learn framework ``1.2-1``; registered for
real-time inference on ``ml.m5.large``/``ml.m5.xlarge`` and batch transform on
``ml.m5.xlarge``. The source is the feature group ``feature_group_name``
(label ``target_column``, model inputs ``feature_columns`` in that order),
queried through the Athena workgroup ``athena_workgroup``. No bias or
explainability baseline (``bias_config``/``explainability_config`` empty);
set them with :func:`bias_settings` and :func:`explainability_settings`.

This module imports nothing from the SageMaker SDK (it is cheap to import).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields

from mlops_platform.catalog import JOB_LOCAL_STORAGE_FAMILIES, WARM_POOL_MAX_SECONDS

METRIC_NAMES = ("auc", "accuracy", "precision", "recall", "f1")

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_GROUP_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package-group/(?P<name>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})$"
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_FEATURE = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
# A key ARN, never an alias: VolumeKmsKeyId of training and processing jobs takes key ids and key ARNs only
# (SageMaker API Reference, ResourceConfig.VolumeKmsKeyId and ProcessingClusterConfig.VolumeKmsKeyId).
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")

DEFAULT_HYPERPARAMETERS = (("learning-rate", "0.1"), ("max-depth", "3"), ("n-estimators", "100"))


def instance_family(instance_type: str) -> str:
    """``ml.trn1.32xlarge`` -> ``trn1``."""
    parts = instance_type.split(".")
    return parts[1] if len(parts) == 3 else ""


def has_instance_storage(instance_type: str) -> bool:
    """True for instance types whose volumes cannot take a KMS key (local NVMe; see ``mlops_platform.catalog``)."""
    return instance_family(instance_type) in JOB_LOCAL_STORAGE_FAMILIES


@dataclass(frozen=True)
class PipelineInputs:
    """Inputs of ``tabular.build_definition``; invalid combinations raise ValueError."""

    pipeline_name: str
    region: str
    role_arn: str
    bucket: str
    model_package_group_arn: str
    # S3 URIs of the step code, uploaded by the caller (CDK assets). Processing
    # scripts are single .py files; training code is a gzip sourcedir tarball with
    # train.py at its root (sources.build_train_source_tarball); a CDK asset key
    # keeps only the last suffix, so it ends in ".gz".
    preprocess_code_uri: str
    train_code_uri: str
    evaluate_code_uri: str
    ingest_code_uri: str
    query_code_uri: str
    feature_group_name: str
    record_identifier: str
    feature_columns: tuple[str, ...]
    athena_workgroup: str
    s3_prefix: str = "pipelines"
    ingest_data_uri: str = ""  # default of IngestDataUrl; "" ingests nothing
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = 1
    training_volume_size_gb: int = 30
    use_spot: bool = False
    warm_pool_seconds: int = 0  # the training step's KeepAlivePeriodInSeconds
    max_run_seconds: int = 3600
    max_wait_seconds: int = 7200
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    kms_key_arn: str | None = None
    metric_name: str = "auc"
    metric_threshold: float = 0.7
    # Model-quality constraints registered with every version (the approval policy's thresholds).
    quality_thresholds: tuple[tuple[str, float], ...] = (("auc", 0.7),)
    hyperparameters: tuple[tuple[str, str], ...] = DEFAULT_HYPERPARAMETERS
    sklearn_framework_version: str = "1.2-1"
    target_column: str = "churn"
    inference_instance_types: tuple[str, ...] = ("ml.m5.large", "ml.m5.xlarge")
    transform_instance_types: tuple[str, ...] = ("ml.m5.xlarge",)
    tags: tuple[tuple[str, str], ...] = field(default=())
    # Canonical JSON (bias_settings / explainability_settings); "" registers no such baseline.
    bias_config: str = ""
    explainability_config: str = ""

    def __post_init__(self) -> None:
        # Normalise collection fields so equal inputs hash and serialise equally
        # whether callers pass lists, dicts or tuples.
        object.__setattr__(self, "feature_columns", tuple(self.feature_columns))
        object.__setattr__(self, "subnet_ids", tuple(self.subnet_ids))
        object.__setattr__(self, "security_group_ids", tuple(self.security_group_ids))
        object.__setattr__(self, "inference_instance_types", tuple(self.inference_instance_types))
        object.__setattr__(self, "transform_instance_types", tuple(self.transform_instance_types))
        object.__setattr__(self, "hyperparameters", _pairs(self.hyperparameters, "hyperparameters"))
        object.__setattr__(self, "tags", _pairs(self.tags, "tags"))
        object.__setattr__(self, "s3_prefix", self.s3_prefix.strip("/"))
        object.__setattr__(self, "metric_threshold", float(self.metric_threshold))
        object.__setattr__(
            self,
            "quality_thresholds",
            tuple(sorted((str(k), float(v)) for k, v in dict(self.quality_thresholds).items())),
        )
        self._validate()

    # -- validation ---------------------------------------------------------

    def _validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"PipelineInputs: {message}")

        need(
            bool(_PIPELINE_NAME.match(self.pipeline_name)),
            f"pipeline_name {self.pipeline_name!r} must be letters, digits and hyphens",
        )
        need(bool(_REGION.match(self.region)), f"region {self.region!r} is not a region name")
        need(bool(_ROLE_ARN.match(self.role_arn)), f"role_arn must be a literal IAM role ARN, got {self.role_arn!r}")
        need(bool(_BUCKET.match(self.bucket)), f"bucket must be a literal S3 bucket name, got {self.bucket!r}")
        group = _GROUP_ARN.match(self.model_package_group_arn)
        need(
            group is not None,
            "model_package_group_arn must look like arn:aws:sagemaker:<region>:<account>:"
            f"model-package-group/<name>, got {self.model_package_group_arn!r}",
        )
        # CreateModelPackage is regional: the registry group must be in the pipeline's region.
        if group is None:  # need() above raised already; this keeps the check under python -O
            raise ValueError("PipelineInputs: model_package_group_arn is not a model package group ARN")
        need(
            group.group("region") == self.region,
            f"model_package_group_arn is in {group.group('region')} but the pipeline runs in "
            f"{self.region}; the registry group must be in the same region",
        )
        scripts = ("preprocess_code_uri", "evaluate_code_uri", "ingest_code_uri", "query_code_uri")
        for name in (*scripts, "train_code_uri"):
            value = getattr(self, name)
            need(value.startswith("s3://") and len(value) > 5, f"{name} must be a literal s3:// URI, got {value!r}")
        for name in scripts:
            need(getattr(self, name).endswith(".py"), f"{name} must point at a .py file")
        names = (self.record_identifier, self.target_column, *self.feature_columns)
        for name in names:
            need(bool(_FEATURE.match(name)), f"feature name {name!r} is not a feature name")
        need(bool(self.feature_columns), "feature_columns must name at least one model input")
        need(len(set(names)) == len(names), "record_identifier, target_column and feature_columns must differ")
        need(bool(_PIPELINE_NAME.match(self.feature_group_name)), "feature_group_name is not a feature group name")
        need(bool(re.match(r"^[a-zA-Z0-9._-]{1,128}$", self.athena_workgroup)), "athena_workgroup is not a name")
        need(
            # A CDK file asset keeps only the last suffix (".gz"); the toolkit needs a gzip tarball.
            self.train_code_uri.endswith(".gz"),
            "train_code_uri must point at a gzip sourcedir tarball (train.py at its root), "
            f"got {self.train_code_uri!r}",
        )
        need(
            self.ingest_data_uri == "" or self.ingest_data_uri.startswith("s3://"),
            f"ingest_data_uri must be an s3:// URI, got {self.ingest_data_uri!r}",
        )
        for name in ("processing_instance_type", "training_instance_type"):
            need(
                bool(_INSTANCE_TYPE.match(getattr(self, name))),
                f"{name} must look like ml.<family>.<size>, got {getattr(self, name)!r}",
            )
        for value in self.inference_instance_types + self.transform_instance_types:
            need(bool(_INSTANCE_TYPE.match(value)), f"instance type {value!r} is not ml.<family>.<size>")
        need(self.training_instance_count >= 1, "training_instance_count must be at least 1")
        need(self.training_volume_size_gb >= 1, "training_volume_size_gb must be at least 1")
        need(self.max_run_seconds > 0, "max_run_seconds must be positive")
        need(
            0 <= self.warm_pool_seconds <= WARM_POOL_MAX_SECONDS and not (self.warm_pool_seconds and self.use_spot),
            f"warm_pool_seconds must be 0..{WARM_POOL_MAX_SECONDS} and 0 with spot, got {self.warm_pool_seconds}",
        )
        if self.use_spot:
            # SageMaker rejects spot jobs whose wait budget is below their run budget.
            need(
                self.max_wait_seconds >= self.max_run_seconds,
                f"max_wait_seconds ({self.max_wait_seconds}) must be >= max_run_seconds "
                f"({self.max_run_seconds}) when use_spot is true",
            )
        for value in self.subnet_ids:
            need(bool(_SUBNET.match(value)), f"subnet id {value!r} is not subnet-<hex>")
        for value in self.security_group_ids:
            need(bool(_SECURITY_GROUP.match(value)), f"security group id {value!r} is not sg-<hex>")
        need(
            bool(self.subnet_ids) == bool(self.security_group_ids),
            "subnet_ids and security_group_ids must be given together",
        )
        need(
            self.kms_key_arn is None or bool(_KMS_KEY_ARN.match(self.kms_key_arn)),
            f"kms_key_arn must be a literal KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; volume keys "
            f"cannot be aliases), got {self.kms_key_arn!r}",
        )
        need(
            self.metric_name in METRIC_NAMES,
            f"metric_name must be one of {', '.join(METRIC_NAMES)}, got {self.metric_name!r}",
        )
        need(
            0.0 <= float(self.metric_threshold) <= 1.0,
            f"metric_threshold must be within [0, 1], got {self.metric_threshold!r}",
        )
        need(
            bool(re.match(r"^\d+\.\d+-\d+$", self.sklearn_framework_version)),
            f"sklearn_framework_version must look like 1.2-1, got {self.sklearn_framework_version!r}",
        )
        for name, value in self.quality_thresholds:
            need(
                name in METRIC_NAMES and 0.0 <= value <= 1.0,
                f"quality threshold {name}={value} is not a metric in [0, 1]",
            )
        for key, _ in self.hyperparameters:
            need(
                not key.startswith("sagemaker_"),
                f"hyperparameter {key!r} is reserved for the SageMaker training toolkit",
            )
        if self.bias_config:
            bias = _settings(self.bias_config, "bias_config", {"facets", "label_values", "probability_threshold"})
            facets = bias.get("facets") or []
            need(bool(facets), "bias_config needs at least one facet")
            for facet in facets:
                need(
                    facet.get("name") in self.feature_columns and ("values" in facet) != ("threshold" in facet),
                    f"bias_config facet {facet!r} must name a feature column and give values or a threshold",
                )
            need(bias.get("label_values") in ([0], [1]), "bias_config label_values must be [0] or [1]")
            need(0.0 <= float(bias.get("probability_threshold", -1)) <= 1.0, "bias_config probability_threshold")
            need(self.bias_config == _canonical(bias), "bias_config must be canonical JSON (use bias_settings)")
        if self.explainability_config:
            shap = _settings(self.explainability_config, "explainability_config", {"num_samples", "agg_method"})
            need(
                shap.get("agg_method") in AGG_METHODS, f"explainability_config agg_method must be one of {AGG_METHODS}"
            )
            need(isinstance(shap.get("num_samples"), int) and shap["num_samples"] >= 1, "explainability num_samples")
            need(
                self.explainability_config == _canonical(shap),
                "explainability_config must be canonical JSON (use explainability_settings)",
            )

    # -- derived values -----------------------------------------------------

    @property
    def artifacts_s3_uri(self) -> str:
        """Root of everything this pipeline writes: s3://<bucket>/<prefix>/<pipeline_name>."""
        parts = [p for p in (self.bucket, self.s3_prefix, self.pipeline_name) if p]
        return "s3://" + "/".join(parts)

    @property
    def checkpoint_s3_uri(self) -> str:
        """Spot checkpoints; each execution writes under its own execution id below this."""
        return f"{self.artifacts_s3_uri}/checkpoints"

    @property
    def model_package_group_name(self) -> str:
        match = _GROUP_ARN.match(self.model_package_group_arn)
        return match.group("name") if match else ""

    @property
    def registry_account(self) -> str:
        match = _GROUP_ARN.match(self.model_package_group_arn)
        return match.group("account") if match else ""

    @property
    def uses_vpc(self) -> bool:
        return bool(self.subnet_ids)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): equal inputs give equal text."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PipelineInputs:
        """Inverse of ``to_json``."""
        data = json.loads(text)
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"PipelineInputs: unknown fields {unknown}")
        return cls(**data)


AGG_METHODS = ("mean_abs", "median", "mean_sq")


def _canonical(document: object) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _settings(text: str, name: str, keys: set[str]) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError(f"PipelineInputs: {name} is not JSON") from None
    if not isinstance(data, dict) or set(data) != keys:
        raise ValueError(f"PipelineInputs: {name} must be an object with keys {sorted(keys)}")
    return data


def bias_settings(
    facets: Iterable[tuple[str, list | float]], label_values: Iterable[int], probability_threshold: float
) -> str:
    """``PipelineInputs.bias_config``: facets as (feature, list of the group's values, or a threshold number)."""
    entries: list[dict[str, object]] = []
    for name, group in facets:
        if isinstance(group, list | tuple):
            entries.append({"name": name, "values": list(group)})
        else:
            entries.append({"name": name, "threshold": float(group)})
    return _canonical(
        {
            "facets": entries,
            "label_values": [int(v) for v in label_values],
            "probability_threshold": float(probability_threshold),
        }
    )


def explainability_settings(num_samples: int, agg_method: str) -> str:
    """``PipelineInputs.explainability_config``: Kernel SHAP samples and the aggregation of global SHAP values."""
    return _canonical({"num_samples": int(num_samples), "agg_method": agg_method})


def _pairs(value: Iterable | Mapping, name: str) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    pairs = []
    for item in items:
        if len(item) != 2:
            raise ValueError(f"PipelineInputs: {name} must be (key, value) pairs, got {item!r}")
        key, val = item
        if isinstance(val, bool):
            # Lower-case like JSON so "True"/"true" do not become two cache keys.
            val = "true" if val else "false"
        pairs.append((str(key), str(val)))
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"PipelineInputs: duplicate keys in {name}: {sorted(keys)}")
    return tuple(sorted(pairs))
