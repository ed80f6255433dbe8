"""The AWS facts catalogue: matches the pinned SageMaker API model, stays consistent, stays cheap to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlops_platform import catalog
from mlops_platform.config import InstanceGroup, Pipeline, TrainingCluster, Variant
from tests.synth import ROOT

# Catalogue purpose -> the botocore shape whose enum lists the instance types that API accepts.
API_SHAPES = {
    "hosting": "ProductionVariantInstanceType",
    "training": "TrainingInstanceType",
    "processing": "ProcessingInstanceType",
    "hyperpod": "ClusterInstanceType",
}


@pytest.fixture(scope="module")
def shapes() -> dict:
    loaders = pytest.importorskip("botocore.loaders")
    return loaders.Loader().load_service_model("sagemaker", "service-2")["shapes"]


@pytest.mark.parametrize("purpose,shape", API_SHAPES.items())
def test_instance_types_are_exactly_what_the_sagemaker_api_accepts(shapes, purpose, shape):
    """A botocore upgrade that adds or drops a type fails here: update the table in mlops_platform/catalog.py."""
    api = set(shapes[shape]["enum"])
    ours = catalog.instance_types(purpose)
    assert not ours - api, f"catalogue lists types {shape} does not accept: {sorted(ours - api)}"
    assert not api - ours, f"{shape} accepts types the catalogue lacks: {sorted(api - ours)}"


def test_blue_green_limits_are_the_api_model_limits(shapes):
    def bounds(name: str) -> tuple[int, int]:
        return shapes[name]["min"], shapes[name]["max"]

    assert bounds("WaitIntervalInSeconds") == (0, catalog.BLUE_GREEN_MAX_WAIT_INTERVAL_SECONDS)
    assert bounds("TerminationWaitInSeconds") == (0, catalog.BLUE_GREEN_MAX_TERMINATION_WAIT_SECONDS)
    assert bounds("MaximumExecutionTimeoutInSeconds") == catalog.BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS
    assert shapes["CapacitySizeValue"]["min"] == 1
    assert "CAPACITY_PERCENT" in shapes["CapacitySizeType"]["enum"]


def test_local_storage_sets_are_one_fact_seen_through_each_api():
    nvme, for_hosting, for_jobs = (
        catalog.NVME_INSTANCE_STORE_FAMILIES,
        catalog.LOCAL_STORAGE_FAMILIES,
        catalog.JOB_LOCAL_STORAGE_FAMILIES,
    )
    offered = {family for table in catalog.INSTANCE_SIZES.values() for family in table}
    assert nvme <= offered, f"NVMe families no SageMaker API offers (a typo?): {sorted(nvme - offered)}"
    hosting = set(catalog.INSTANCE_SIZES["hosting"])
    jobs = set(catalog.INSTANCE_SIZES["training"]) | set(catalog.INSTANCE_SIZES["processing"])
    assert for_hosting == nvme & hosting
    assert for_jobs == nvme & jobs
    assert isinstance(catalog.LOCAL_STORAGE_FAMILIES, frozenset)
    assert all(isinstance(f, str) and "." not in f for f in catalog.LOCAL_STORAGE_FAMILIES)
    # Known both ways: NVMe (KMS key refused) and EBS-only (KMS key required for encryption with our key).
    assert {"m5d", "g5", "p4d", "trn1"} <= catalog.LOCAL_STORAGE_FAMILIES
    assert not {"m5", "c5", "inf2", "t2"} & catalog.LOCAL_STORAGE_FAMILIES
    assert {"g4dn", "p3dn", "trn1n", "r5d"} <= catalog.JOB_LOCAL_STORAGE_FAMILIES


def test_pipeline_inputs_take_their_local_storage_facts_from_the_catalogue():
    from pipeline_definitions.inputs import has_instance_storage

    for family, sizes in catalog.INSTANCE_SIZES["training"].items():
        assert has_instance_storage(f"ml.{family}.{sizes[0]}") == (family in catalog.JOB_LOCAL_STORAGE_FAMILIES)


def test_trainium_types():
    assert catalog.TRAINIUM_INSTANCE_TYPES == (
        "ml.trn1.2xlarge",
        "ml.trn1.32xlarge",
        "ml.trn1n.32xlarge",
        "ml.trn2.48xlarge",
    )
    assert set(catalog.HYPERPOD_TRAINIUM_TYPES) <= catalog.instance_types("hyperpod")
    assert all(catalog.instance_family(t) in catalog.TRAINIUM_FAMILIES for t in catalog.HYPERPOD_TRAINIUM_TYPES)


def test_guardrail_exclusions_name_a_hosting_family_and_a_replacement():
    for family, instead in catalog.GUARDRAILS_EXCLUDED_FAMILIES.items():
        assert family in catalog.INSTANCE_SIZES["hosting"] and instead in catalog.INSTANCE_SIZES["hosting"]
        assert instead not in catalog.GUARDRAILS_EXCLUDED_FAMILIES


def test_config_defaults_are_offered():
    """Defaults are not validated on load, so check them here."""
    assert Variant(name="primary").instance_type in catalog.instance_types("hosting")
    pipeline = Pipeline()
    assert pipeline.processing_instance_type in catalog.instance_types("processing")
    assert pipeline.training_instance_type in catalog.instance_types("training")
    cluster = TrainingCluster()
    groups: list[InstanceGroup] = [cluster.controller, *cluster.workers]
    assert all(g.instance_type in catalog.instance_types("hyperpod") for g in groups)


def test_instance_family():
    assert catalog.instance_family("ml.p6-b200.48xlarge") == "p6-b200"
    assert catalog.instance_family("m5.xlarge") == ""


def test_importing_the_catalogue_imports_nothing_heavy():
    heavy = ("pydantic", "yaml", "boto3", "botocore", "aws_cdk", "jsii", "sagemaker", "pipeline_definitions")
    code = f"import sys, mlops_platform.catalog\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_image_registries_match_the_sagemaker_sdks_tables():
    """The images monitoring runs are resolved per region from the SDK's own tables, never hard-coded to one."""
    import json
    from pathlib import Path

    import sagemaker.core

    tables = Path(sagemaker.core.__file__).parent / "image_uri_config"
    monitor = json.loads((tables / "model-monitor.json").read_text())["versions"][""]
    assert monitor["registries"] == catalog.MODEL_MONITOR_REGISTRIES
    assert monitor["repository"] == "sagemaker-model-monitor-analyzer"
    sklearn = json.loads((tables / "sklearn.json").read_text())["training"]["versions"]["1.2-1"]
    assert sklearn["registries"] == catalog.SKLEARN_1_2_REGISTRIES
    assert catalog.model_monitor_image("eu-west-1") == (
        "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    )
    assert catalog.model_monitor_image("cn-north-1").endswith(".amazonaws.com.cn/sagemaker-model-monitor-analyzer")
    with pytest.raises(KeyError, match="no analyzer image in xx-east-9"):
        catalog.model_monitor_image("xx-east-9")


def test_the_warm_pool_limit_is_the_apis():
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    keep_alive = model.shape_for("ResourceConfig").members["KeepAlivePeriodInSeconds"]
    assert keep_alive.metadata["max"] == catalog.WARM_POOL_MAX_SECONDS
