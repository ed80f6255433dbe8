"""Build the tabular churn pipeline definition (JSON) with the SageMaker Python SDK 3.x.

``build_definition(inputs)`` runs at synth time and never calls AWS. While it
builds (see shared/TOOLCHAIN.md and ``_offline_sdk_environment``):

- ``SAGEMAKER_VALIDATE_ROLE=false``, ``AWS_EC2_METADATA_DISABLED=true`` and, if
  unset, ``AWS_DEFAULT_REGION=inputs.region`` (restored afterwards);
- the ``PipelineSession`` has region ``inputs.region``, returns ``inputs.bucket``
  from ``default_bucket()``, carries an explicit SDK config holding only
  ``TelemetryOptOut`` (so no user/admin config file is read and no telemetry is
  sent), and refuses every boto call before it is signed
  (``SynthTimeAwsCallError``);
- roles, buckets and code locations are literals from ``inputs``.

The output is canonical JSON (sorted keys, no whitespace): the same inputs give
byte-identical text. Job names (which the SDK derives from timestamps) are not
in it: the SDK drops them and the service names each job per execution.

Steps: Ingest (processing, ``ingest.py``: loads ``IngestDataUrl`` into the
feature group when set) -> Query (processing, ``query.py``: the latest
non-deleted record per identifier as of ``Cutoff`` from the offline store,
through Athena; it waits for the records Ingest wrote to reach the offline
store) -> Preprocess (processing) -> Train (training) -> Evaluate (processing,
``evaluation.json`` property file) -> CheckMetric (condition
``binary_classification_metrics.<metric>.value >= MetricThreshold``) -> Register
(model package in ``inputs.model_package_group_arn``, status from the
``ModelApprovalStatus`` parameter, default ``PendingManualApproval``) or
MetricBelowThreshold (fail). With ``inputs.bias_config`` Evaluate also writes
the bias baseline (``bias/``: Clarify analysis config, pre- and post-training
reports and constraints), registered as ``ModelMetrics.Bias`` and
``DriftCheckBaselines.Bias``; with ``inputs.explainability_config`` the SHAP
baseline (``explainability/``), registered as ``ModelMetrics.Explainability``
and ``DriftCheckBaselines.Explainability``. Step outputs go to
``<artifacts_s3_uri>/<execution id>/<step>/<output>``.

Parameters: IngestDataUrl (default ``inputs.ingest_data_uri``, empty: nothing
to ingest), Cutoff (ISO-8601, empty: the time of the query), ProcessingInstanceType,
TrainingInstanceType, ModelApprovalStatus, MetricThreshold (defaults from
``inputs``). Images are picked at build time from the instance types in
``inputs``: overriding an instance-type parameter at execution time must stay
on x86 CPU (scikit-learn). The registered model takes raw feature rows
(``text/csv`` or ``application/json``) in the order its metadata
``mlops:Features`` records.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from .inputs import PipelineInputs, has_instance_storage
from .sources import TRAIN_ENTRY_POINT

PROCESSING_ROOT = "/opt/ml/processing"
METRIC_REGEX = "{split}:{metric}=([0-9\\.]+)"
APPROVAL_DEFAULT = "PendingManualApproval"
# train.py copies itself here inside model.tar.gz; the serving container imports it from there.
SERVING_CODE_DIR = "/opt/ml/model/code"
_TELEMETRY_OFF_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


def build_definition(inputs: PipelineInputs) -> str:
    """Return the pipeline definition JSON for ``inputs`` (canonical, deterministic).

    Raises ``SynthTimeAwsCallError`` if the SDK tries to send any AWS request.
    """
    with _offline_sdk_environment(inputs), _quiet_sdk():
        pipeline = _build_pipeline(inputs)
        raw = pipeline.definition()
    return _canonical(json.loads(raw))


# --- environment -------------------------------------------------------------


class SynthTimeAwsCallError(RuntimeError):
    """The SDK tried to call AWS while building the definition (a bug to fix, not retry)."""


@contextmanager
def _offline_sdk_environment(inputs: PipelineInputs) -> Iterator[None]:
    """Environment the SDK needs to build offline; restored afterwards.

    - ``SAGEMAKER_VALIDATE_ROLE=false``: otherwise role handling calls IAM.
    - ``AWS_DEFAULT_REGION`` (only if unset): importing ``sagemaker.mlops`` creates
      module-level boto3 clients (``sagemaker.ai_registry.air_hub``) and raises
      NoRegionError without a region.
    - ``AWS_EC2_METADATA_DISABLED=true``: those clients resolve credentials at import,
      which would probe the EC2 instance metadata endpoint over the network.
    """
    wanted = {
        "SAGEMAKER_VALIDATE_ROLE": "false",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or inputs.region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _quiet_sdk() -> Iterator[None]:
    """Keep the SDK from changing the caller's logging, and mute its expected chatter.

    Importing the SDK runs ``logging.basicConfig(level=INFO)``
    (``sagemaker.core.experiments._metrics``), which would turn on INFO output for
    the whole CDK app; the root logger is restored after the build. The SDK's own
    warnings here are expected (job names popped from the definition, "no jobs run
    in a PipelineSession"), so its loggers are held at ERROR while building.
    """
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    # "sagemaker.config" gets its own INFO level from the SDK, so set it too.
    sdk_loggers = [logging.getLogger(name) for name in ("sagemaker", "sagemaker.config")]
    sdk_levels = [logger.level for logger in sdk_loggers]
    for logger in sdk_loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        for logger, level in zip(sdk_loggers, sdk_levels, strict=True):
            logger.setLevel(level)
        root.setLevel(root_level)
        root.handlers[:] = root_handlers


def _refuse_aws_calls(model=None, **_kwargs):
    # "before-call" fires before signing, so this is raised with or without credentials.
    operation = getattr(model, "name", "?")
    service = getattr(getattr(model, "service_model", None), "service_name", "?")
    raise SynthTimeAwsCallError(
        f"the SageMaker SDK tried to call AWS ({service}.{operation}) while building a "
        "pipeline definition; synth must stay offline"
    )


def _validate_sdk_config_once() -> None:
    """Make the SDK validate each distinct config once instead of on every lookup.

    The SDK checks the session's config against its JSON schema whenever it reads
    a value (about 80 times per build, 0.4 s each: nine tenths of a build). The
    config is our constant; validating it again cannot change the answer.
    """
    from sagemaker.core.config.config_manager import SageMakerConfig

    original = SageMakerConfig.validate_sagemaker_config
    if getattr(original, "validates_once", False):
        return
    valid: set[str] = set()

    def validate(sagemaker_config=None):
        key = json.dumps(sagemaker_config, sort_keys=True, default=str)
        if key not in valid:
            original(sagemaker_config)
            valid.add(key)

    validate.validates_once = True  # type: ignore[attr-defined]
    SageMakerConfig.validate_sagemaker_config = staticmethod(validate)  # type: ignore[method-assign]


def _session(inputs: PipelineInputs):
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    _validate_sdk_config_once()

    class _OfflinePipelineSession(PipelineSession):
        # The stock default_bucket() calls S3 (ListBuckets/HeadBucket) to create
        # or check the bucket; the bucket is the caller's, named literally.
        def default_bucket(self):  # noqa: D102
            return inputs.bucket

    # A session with only a region. Every request its clients would send is
    # refused before it leaves the process, even where real credentials exist.
    boto_session = boto3.Session(region_name=inputs.region)
    boto_session.events.register("before-call", _refuse_aws_calls)
    return _OfflinePipelineSession(
        boto_session=boto_session,
        default_bucket=inputs.bucket,
        sagemaker_config=_TELEMETRY_OFF_CONFIG,
    )


def _canonical(document) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


# --- images --------------------------------------------------------------------


def sklearn_image_uri(inputs: PipelineInputs, instance_type: str, scope: str) -> str:
    """scikit-learn framework image for the region (SDK lookup in its bundled JSON, offline).

    ``scope`` is "training" (also used for processing) or "inference".
    """
    version = inputs.sklearn_framework_version
    try:
        with _offline_sdk_environment(inputs), _quiet_sdk():
            from sagemaker.core import image_uris

            uri = image_uris.retrieve(
                framework="sklearn",
                region=inputs.region,
                version=version,
                py_version="py3",
                instance_type=instance_type,
                image_scope=scope,
            )
    except (KeyError, ValueError) as error:
        raise ValueError(
            f"no scikit-learn {version} {scope} image known to sagemaker for {instance_type} "
            f"in {inputs.region}: {error}"
        ) from error
    # For Graviton instance types the SDK silently substitutes another version
    # (e.g. 1.0-1 arm64 for 1.2-1); refuse rather than train on a different library.
    if not uri.rsplit(":", 1)[-1].startswith(f"{version}-"):
        raise ValueError(
            f"sagemaker offers scikit-learn {version} for {instance_type} only as {uri}; "
            "pick an x86 instance type or another sklearn_framework_version"
        )
    return uri


def training_image_uri(inputs: PipelineInputs) -> str:
    """Training image: the scikit-learn framework image (the model serves in the same library version)."""
    return sklearn_image_uri(inputs, inputs.training_instance_type, "training")


# --- the pipeline --------------------------------------------------------------


def _build_pipeline(inputs: PipelineInputs):
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import FileSource, MetricsSource, ModelMetrics
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import (
        CheckpointConfig,
        MetricDefinition,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
        StoppingCondition,
        Tag,
    )
    from sagemaker.core.training.configs import Compute, InputData, Networking, OutputDataConfig
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.model_trainer import ModelTrainer

    session = _session(inputs)
    tags = [{"Key": k, "Value": v} for k, v in inputs.tags] or None

    # -- parameters --
    ingest_data = ParameterString("IngestDataUrl", default_value=inputs.ingest_data_uri)
    cutoff = ParameterString("Cutoff", default_value="")
    processing_instance = ParameterString("ProcessingInstanceType", default_value=inputs.processing_instance_type)
    training_instance = ParameterString("TrainingInstanceType", default_value=inputs.training_instance_type)
    approval_status = ParameterString("ModelApprovalStatus", default_value=APPROVAL_DEFAULT)
    metric_threshold = ParameterFloat("MetricThreshold", default_value=inputs.metric_threshold)
    features = ",".join(inputs.feature_columns)
    # Why an execution ran: set by the retraining trigger when a monitoring alarm started it.
    why = [
        ParameterString(name, default_value="") for name in ("RetrainReason", "TriggeredByStage", "TriggeredByVersion")
    ]

    def step_output_uri(step_name: str, output_name: str):
        # Per-execution prefix: re-runs never overwrite an earlier run's evidence.
        return Join(
            on="/",
            values=[
                inputs.artifacts_s3_uri,
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                step_name,
                output_name,
            ],
        )

    network = None
    if inputs.uses_vpc:
        network = NetworkConfig(
            subnets=list(inputs.subnet_ids),
            security_group_ids=list(inputs.security_group_ids),
            encrypt_inter_container_traffic=True,
        )
    # Volume keys are refused on instance types with local NVMe storage; the
    # processing type parameter defaults to inputs.processing_instance_type.
    processing_volume_key = None if has_instance_storage(inputs.processing_instance_type) else inputs.kms_key_arn
    processing_image = sklearn_image_uri(inputs, inputs.processing_instance_type, "training")

    def processor(base_job_name: str):
        return ScriptProcessor(
            role=inputs.role_arn,
            image_uri=processing_image,
            command=["python3"],
            instance_count=1,
            instance_type=processing_instance,
            volume_kms_key=processing_volume_key,
            output_kms_key=inputs.kms_key_arn,
            base_job_name=base_job_name,
            sagemaker_session=session,
            network_config=network,
            tags=tags,
        )

    def s3_input(name: str, source, destination: str):
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=source,
                local_path=destination,
                s3_data_type="S3Prefix",
                s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
            ),
        )

    def s3_output(step_name: str, name: str, source: str):
        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=step_output_uri(step_name, name),
                local_path=source,
                s3_upload_mode="EndOfJob",
            ),
        )

    # -- Ingest: optional, the parameter empty ingests nothing --
    ingest_args = processor(f"{inputs.pipeline_name}-ingest").run(
        code=inputs.ingest_code_uri,
        outputs=[s3_output("Ingest", "ingest", f"{PROCESSING_ROOT}/output/ingest")],
        arguments=[
            Join(on="", values=["--input-uri=", ingest_data]),
            "--feature-group-name",
            inputs.feature_group_name,
            "--output-dir",
            f"{PROCESSING_ROOT}/output/ingest",
            "--region",
            inputs.region,
        ],
    )
    ingest = ProcessingStep(name="Ingest", step_args=ingest_args)

    # -- Query: the offline store through Athena --
    query_args = processor(f"{inputs.pipeline_name}-query").run(
        code=inputs.query_code_uri,
        inputs=[
            s3_input(
                "ingest",
                ingest.properties.ProcessingOutputConfig.Outputs["ingest"].S3Output.S3Uri,
                f"{PROCESSING_ROOT}/ingest",
            )
        ],
        outputs=[s3_output("Query", "dataset", f"{PROCESSING_ROOT}/output/dataset")],
        arguments=[
            "--feature-group-name",
            inputs.feature_group_name,
            "--columns",
            f"{features},{inputs.target_column}",
            "--workgroup",
            inputs.athena_workgroup,
            Join(on="", values=["--cutoff=", cutoff]),
            "--ingest-report",
            f"{PROCESSING_ROOT}/ingest/ingest.json",
            "--output-dir",
            f"{PROCESSING_ROOT}/output/dataset",
            "--region",
            inputs.region,
        ],
    )
    query = ProcessingStep(name="Query", step_args=query_args)

    # -- Preprocess --
    preprocess_outputs = ("train", "validation", "test", "baseline")
    preprocess_args = processor(f"{inputs.pipeline_name}-preprocess").run(
        code=inputs.preprocess_code_uri,
        inputs=[
            s3_input(
                "dataset",
                query.properties.ProcessingOutputConfig.Outputs["dataset"].S3Output.S3Uri,
                f"{PROCESSING_ROOT}/input",
            )
        ],
        outputs=[s3_output("Preprocess", name, f"{PROCESSING_ROOT}/output/{name}") for name in preprocess_outputs],
        arguments=[
            "--input-dir",
            f"{PROCESSING_ROOT}/input",
            "--output-dir",
            f"{PROCESSING_ROOT}/output",
            "--target-column",
            inputs.target_column,
            "--id-column",
            inputs.record_identifier,
            "--features",
            features,
        ],
    )
    preprocess = ProcessingStep(name="Preprocess", step_args=preprocess_args)

    def preprocess_output(name: str):
        return preprocess.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    # -- Train --
    train_channel = InputData(channel_name="train", data_source=preprocess_output("train"))
    validation_channel = InputData(channel_name="validation", data_source=preprocess_output("validation"))

    hyperparameters = dict(inputs.hyperparameters)
    hyperparameters.update({"features": features, "target-column": inputs.target_column})
    # Legacy script mode of the framework containers (training toolkit): it
    # downloads the sourcedir and runs the entry point with the hyperparameters
    # as --key value arguments. No SDK-side upload, so no AWS call, no random key.
    hyperparameters.update(
        {
            "sagemaker_program": TRAIN_ENTRY_POINT,
            "sagemaker_submit_directory": inputs.train_code_uri,
            "sagemaker_region": inputs.region,
            "sagemaker_container_log_level": "20",
        }
    )
    training_volume_key = None if has_instance_storage(inputs.training_instance_type) else inputs.kms_key_arn
    compute = Compute(
        instance_type=training_instance,
        instance_count=inputs.training_instance_count,
        volume_size_in_gb=inputs.training_volume_size_gb,
        volume_kms_key_id=training_volume_key,
        enable_managed_spot_training=True if inputs.use_spot else None,
        # A warm pool keeps the instances after the run: the next training job starts in seconds.
        keep_alive_period_in_seconds=inputs.warm_pool_seconds or None,
    )
    stopping = StoppingCondition(
        max_runtime_in_seconds=inputs.max_run_seconds,
        **({"max_wait_time_in_seconds": inputs.max_wait_seconds} if inputs.use_spot else {}),
    )
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=inputs.role_arn,
        base_job_name=f"{inputs.pipeline_name}-train",
        training_image=training_image_uri(inputs),
        compute=compute,
        stopping_condition=stopping,
        networking=(
            Networking(
                subnets=list(inputs.subnet_ids),
                security_group_ids=list(inputs.security_group_ids),
                enable_inter_container_traffic_encryption=True,
            )
            if inputs.uses_vpc
            else None
        ),
        output_data_config=OutputDataConfig(
            s3_output_path=f"{inputs.artifacts_s3_uri}/models",
            kms_key_id=inputs.kms_key_arn,
            compression_type="GZIP",
        ),
        checkpoint_config=(
            CheckpointConfig(
                s3_uri=Join(
                    on="/",
                    values=[inputs.checkpoint_s3_uri, ExecutionVariables.PIPELINE_EXECUTION_ID],
                ),
                local_path="/opt/ml/checkpoints",
            )
            if inputs.use_spot
            else None
        ),
        hyperparameters=hyperparameters,
        environment={},
        tags=[Tag(key=k, value=v) for k, v in inputs.tags] or None,
    ).with_metric_definitions(
        [
            MetricDefinition(
                name=f"{split}:{metric}",
                regex=METRIC_REGEX.format(split=split, metric=metric),
            )
            for split in ("train", "validation")
            for metric in ("auc", "accuracy", "f1")
        ]
    )
    train = TrainingStep(
        name="Train",
        step_args=trainer.train(input_data_config=[train_channel, validation_channel]),
    )
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    # -- Evaluate --
    evaluation_report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate_args = processor(f"{inputs.pipeline_name}-evaluate").run(
        code=inputs.evaluate_code_uri,
        inputs=[
            s3_input("model", model_data, f"{PROCESSING_ROOT}/model"),
            s3_input("test", preprocess_output("test"), f"{PROCESSING_ROOT}/test"),
            s3_input("validation", preprocess_output("validation"), f"{PROCESSING_ROOT}/validation"),
        ],
        outputs=[s3_output("Evaluate", "evaluation", f"{PROCESSING_ROOT}/evaluation")],
        arguments=[
            "--model-dir",
            f"{PROCESSING_ROOT}/model",
            "--test-dir",
            f"{PROCESSING_ROOT}/test",
            "--output-dir",
            f"{PROCESSING_ROOT}/evaluation",
            # The model-quality baseline: validation predictions with labels, and the constraints.
            "--validation-dir",
            f"{PROCESSING_ROOT}/validation",
            "--quality-thresholds",
            ",".join(f"{name}={value}" for name, value in inputs.quality_thresholds),
            *(["--bias-config", inputs.bias_config] if inputs.bias_config else []),
            *(["--explainability-config", inputs.explainability_config] if inputs.explainability_config else []),
        ],
    )
    evaluate = ProcessingStep(name="Evaluate", step_args=evaluate_args, property_files=[evaluation_report])
    evaluation_uri = Join(
        on="/",
        values=[
            evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
            "evaluation.json",
        ],
    )

    def evaluation_file(*path: str):
        return Join(
            on="/", values=[evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, *path]
        )

    quality_statistics = MetricsSource(
        content_type="application/json", s3_uri=evaluation_file("model_quality", "statistics.json")
    )
    quality_constraints = MetricsSource(
        content_type="application/json", s3_uri=evaluation_file("model_quality", "constraints.json")
    )

    def evaluation_json(*path: str):
        return MetricsSource(content_type="application/json", s3_uri=evaluation_file(*path))

    # Bias and SHAP baselines (evaluate.py writes them where the inputs ask for them).
    clarify_metrics: dict = {}
    clarify_baselines: dict = {}
    if inputs.bias_config:
        clarify_metrics.update(
            bias_pre_training=evaluation_json("bias", "pre_training_report.json"),
            bias_post_training=evaluation_json("bias", "post_training_report.json"),
        )
        clarify_baselines.update(
            bias_config_file=FileSource(
                content_type="application/json", s3_uri=evaluation_file("bias", "analysis_config.json")
            ),
            bias_pre_training_constraints=evaluation_json("bias", "pre_training_constraints.json"),
            bias_post_training_constraints=evaluation_json("bias", "post_training_constraints.json"),
        )
    if inputs.explainability_config:
        clarify_metrics["explainability"] = evaluation_json("explainability", "report.json")
        clarify_baselines.update(
            explainability_config_file=FileSource(
                content_type="application/json", s3_uri=evaluation_file("explainability", "analysis_config.json")
            ),
            explainability_constraints=evaluation_json("explainability", "constraints.json"),
        )
    baseline_uri = preprocess_output("baseline")
    statistics_uri = Join(on="/", values=[baseline_uri, "statistics.json"])
    constraints_uri = Join(on="/", values=[baseline_uri, "constraints.json"])

    # -- Register --
    model = ModelBuilder(
        image_uri=sklearn_image_uri(inputs, inputs.inference_instance_types[0], "inference"),
        s3_model_data_url=model_data,
        role_arn=inputs.role_arn,
        sagemaker_session=session,
        instance_type=inputs.inference_instance_types[0],
        env_vars={
            # Serve with the train.py copy that training put into model.tar.gz.
            "SAGEMAKER_PROGRAM": TRAIN_ENTRY_POINT,
            "SAGEMAKER_SUBMIT_DIRECTORY": SERVING_CODE_DIR,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": inputs.region,
        },
    )
    register_args = model.register(
        model_package_group_name=inputs.model_package_group_arn,
        content_types=["text/csv", "application/json"],
        response_types=["text/csv", "application/json"],
        inference_instances=list(inputs.inference_instance_types),
        transform_instances=list(inputs.transform_instance_types),
        approval_status=approval_status,
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(content_type="application/json", s3_uri=evaluation_uri),
            model_constraints=quality_constraints,
            model_data_statistics=MetricsSource(content_type="application/json", s3_uri=statistics_uri),
            model_data_constraints=MetricsSource(content_type="application/json", s3_uri=constraints_uri),
            **clarify_metrics,
        ),
        # What monitoring compares the served version with (mlops releases export copies the URIs).
        drift_check_baselines=DriftCheckBaselines(
            model_statistics=quality_statistics,
            model_constraints=quality_constraints,
            model_data_statistics=MetricsSource(content_type="application/json", s3_uri=statistics_uri),
            model_data_constraints=MetricsSource(content_type="application/json", s3_uri=constraints_uri),
            **clarify_baselines,
        ),
        # Evidence for the approval guard: which pipeline run produced this version
        # and which metric gated it (its value is in ModelMetrics' evaluation.json).
        customer_metadata_properties={
            "pipeline": inputs.pipeline_name,
            "pipeline_execution_arn": ExecutionVariables.PIPELINE_EXECUTION_ARN,
            "metric": inputs.metric_name,
            # The inference contract: raw columns in this order (CSV rows, or JSON instances).
            "mlops:Features": features,
        },
    )
    register = ModelStep(name="Register", step_args=register_args)

    # -- CheckMetric / Fail --
    metric_value = JsonGet(
        step_name=evaluate.name,
        property_file=evaluation_report,
        json_path=f"binary_classification_metrics.{inputs.metric_name}.value",
    )
    fail = FailStep(
        name="MetricBelowThreshold",
        error_message=Join(
            on=" ",
            values=[
                f"Model not registered: test {inputs.metric_name}",
                metric_value,
                "is below the MetricThreshold",
                metric_threshold,
            ],
        ),
    )
    check = ConditionStep(
        name="CheckMetric",
        conditions=[ConditionGreaterThanOrEqualTo(left=metric_value, right=metric_threshold)],
        if_steps=[register],
        else_steps=[fail],
    )

    return Pipeline(
        name=inputs.pipeline_name,
        parameters=[
            ingest_data,
            cutoff,
            processing_instance,
            training_instance,
            approval_status,
            metric_threshold,
            *why,
        ],
        steps=[ingest, query, preprocess, train, evaluate, check],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )
