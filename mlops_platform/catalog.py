"""AWS facts the platform checks its config against, in one place.

Pure data and two small lookups; this module imports only the standard library,
so the config loader and the pipeline definitions import it for free. Each fact
names where it comes from. ``tests/test_catalog.py`` re-reads the instance-type
tables from the pinned botocore's SageMaker API model, so an upgrade that adds
or drops a type fails a test until this file follows.
"""

from __future__ import annotations

from typing import Literal

Purpose = Literal["hosting", "training", "processing", "hyperpod"]

# --------------------------------------------------------------------------- instance types
# Family -> sizes, exactly the values each SageMaker API accepts for InstanceType
# (anything else is a ValidationException at deploy or job start). Source: the
# SageMaker API reference enums, as shipped in botocore 1.44.5
# (botocore/data/sagemaker/2017-07-24/service-2.json, shapes named below):
#   hosting    ProductionVariantInstanceType
#              https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html
#   training   TrainingInstanceType
#              https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html
#   processing ProcessingInstanceType
#              https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingClusterConfig.html
#   hyperpod   ClusterInstanceType
#              https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ClusterInstanceGroupSpecification.html
# A valid type can still be missing in a region or have a quota of 0 in an account;
# neither is knowable offline.

_HOSTING: dict[str, str] = {
    "c4": "large xlarge 2xlarge 4xlarge 8xlarge",
    "c5": "large xlarge 2xlarge 4xlarge 9xlarge 18xlarge",
    "c5d": "large xlarge 2xlarge 4xlarge 9xlarge 18xlarge",
    "c6g": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "c6gd": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "c6gn": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "c6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "c6in": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "c7g": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "c7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "c8g": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "dl1": "24xlarge",
    "g4dn": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "g5": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6e": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g7": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "g7e": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "inf1": "xlarge 2xlarge 6xlarge 24xlarge",
    "inf2": "xlarge 8xlarge 24xlarge 48xlarge",
    "m4": "xlarge 2xlarge 4xlarge 10xlarge 16xlarge",
    "m5": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "m5d": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "m6g": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "m6gd": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "m6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "m7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "m8g": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "p2": "xlarge 8xlarge 16xlarge",
    "p3": "2xlarge 8xlarge 16xlarge",
    "p4d": "24xlarge",
    "p4de": "24xlarge",
    "p5": "4xlarge 48xlarge",
    "p5e": "48xlarge",
    "p5en": "48xlarge",
    "p6-b200": "48xlarge",
    "p6-b300": "48xlarge",
    "p6e-gb200": "36xlarge",
    "r5": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "r5d": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "r6g": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "r6gd": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "r6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "r7gd": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "r7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "r8g": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "t2": "medium large xlarge 2xlarge",
    "trn1": "2xlarge 32xlarge",
    "trn1n": "32xlarge",
    "trn2": "48xlarge",
}
_TRAINING: dict[str, str] = {
    "c4": "xlarge 2xlarge 4xlarge 8xlarge",
    "c5": "xlarge 2xlarge 4xlarge 9xlarge 18xlarge",
    "c5n": "xlarge 2xlarge 4xlarge 9xlarge 18xlarge",
    "c6i": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "c7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "c7i-flex": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "c8i": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge 48xlarge 96xlarge",
    "c8i-flex": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "g4dn": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "g5": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6e": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g7": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "g7e": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "m4": "xlarge 2xlarge 4xlarge 10xlarge 16xlarge",
    "m5": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "m6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "m7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "m7i-flex": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "m8i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge 48xlarge 96xlarge",
    "m8i-flex": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "p2": "xlarge 8xlarge 16xlarge",
    "p3": "2xlarge 8xlarge 16xlarge",
    "p3dn": "24xlarge",
    "p4d": "24xlarge",
    "p4de": "24xlarge",
    "p5": "4xlarge 48xlarge",
    "p5e": "48xlarge",
    "p5en": "48xlarge",
    "p6-b200": "48xlarge",
    "p6-b300": "48xlarge",
    "p6e-gb200": "36xlarge",
    "r5": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge",
    "r5d": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge",
    "r6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "r7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "r8i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge 48xlarge 96xlarge",
    "r8i-flex": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "t3": "medium large xlarge 2xlarge",
    "trn1": "2xlarge 32xlarge",
    "trn1n": "32xlarge",
    "trn2": "48xlarge",
}
_PROCESSING: dict[str, str] = {
    "c4": "xlarge 2xlarge 4xlarge 8xlarge",
    "c5": "xlarge 2xlarge 4xlarge 9xlarge 18xlarge",
    "c6i": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "c7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "c7i-flex": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "c8i": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge 48xlarge 96xlarge",
    "c8i-flex": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "g4dn": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "g5": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6e": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g7": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "g7e": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "m4": "xlarge 2xlarge 4xlarge 10xlarge 16xlarge",
    "m5": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "m6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "m7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "m7i-flex": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "m8i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge 48xlarge 96xlarge",
    "m8i-flex": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "p2": "xlarge 8xlarge 16xlarge",
    "p3": "2xlarge 8xlarge 16xlarge",
    "p5": "4xlarge",
    "r5": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge",
    "r5d": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge",
    "r6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "r7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "r8i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge 48xlarge 96xlarge",
    "r8i-flex": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "t3": "medium large xlarge 2xlarge",
}
_HYPERPOD: dict[str, str] = {
    "c5": "large xlarge 2xlarge 4xlarge 9xlarge 12xlarge 18xlarge 24xlarge",
    "c5n": "large 2xlarge 4xlarge 9xlarge 18xlarge",
    "c6a": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge 48xlarge",
    "c6g": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "c6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "c7g": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "c8a": "16xlarge",
    "c8g": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g4dn": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "g5": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6e": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g7": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "g7e": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "gr6": "4xlarge 8xlarge",
    "i3en": "large xlarge 2xlarge 3xlarge 6xlarge 12xlarge 24xlarge",
    "m5": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge",
    "m6a": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge 48xlarge",
    "m6g": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "m6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "m7g": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "m7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "m8a": "16xlarge",
    "m8g": "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "p4d": "24xlarge",
    "p4de": "24xlarge",
    "p5": "4xlarge 48xlarge",
    "p5e": "48xlarge",
    "p5en": "48xlarge",
    "p6-b200": "48xlarge",
    "p6-b300": "48xlarge",
    "p6e-gb200": "36xlarge",
    "r5d": "16xlarge",
    "r6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "r7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "t3": "medium large xlarge 2xlarge",
    "trn1": "32xlarge",
    "trn1n": "32xlarge",
    "trn2": "3xlarge 48xlarge",
}


def _parse(table: dict[str, str]) -> dict[str, tuple[str, ...]]:
    return {family: tuple(sizes.split()) for family, sizes in table.items()}


INSTANCE_SIZES: dict[Purpose, dict[str, tuple[str, ...]]] = {
    "hosting": _parse(_HOSTING),
    "training": _parse(_TRAINING),
    "processing": _parse(_PROCESSING),
    "hyperpod": _parse(_HYPERPOD),
}
PURPOSE_LABELS: dict[Purpose, str] = {
    "hosting": "real-time endpoints",
    "training": "training jobs",
    "processing": "processing jobs",
    "hyperpod": "HyperPod clusters",
}


def instance_family(instance_type: str) -> str:
    """``ml.trn1.32xlarge`` -> ``trn1``; ``""`` for anything not shaped ``ml.<family>.<size>``."""
    parts = instance_type.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "ml" else ""


def instance_types(purpose: Purpose) -> frozenset[str]:
    """Every ``ml.<family>.<size>`` the API behind ``purpose`` accepts."""
    return frozenset(f"ml.{f}.{s}" for f, sizes in INSTANCE_SIZES[purpose].items() for s in sizes)


# Hosting families that make an endpoint fall back to an all-at-once blue/green
# update with no baking period, i.e. no canary and no auto-rollback: SageMaker
# accepts them and silently drops our deployment guardrails, so config refuses them.
# Source: https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html
# (also excludes Marketplace containers, which this platform does not deploy).
GUARDRAILS_EXCLUDED_FAMILIES: dict[str, str] = {"inf1": "inf2"}  # family -> what to use instead

# --------------------------------------------------------------------------- Trainium
# Families with AWS Trainium chips (EC2 Trn1, Trn1n, Trn2); they need Neuron images.
TRAINIUM_FAMILIES = ("trn1", "trn1n", "trn2")
# Trainium types SageMaker training jobs accept (derived from the training table).
TRAINIUM_INSTANCE_TYPES = tuple(
    sorted(t for t in instance_types("training") if instance_family(t) in TRAINIUM_FAMILIES)
)
# HyperPod worker types with Trainium chips and EFA, for multi-node training.
# ml.trn2.3xlarge is in ClusterInstanceType too but left out: a single-chip node,
# and EFA support on it was not verified.
HYPERPOD_TRAINIUM_TYPES = ("ml.trn1.32xlarge", "ml.trn1n.32xlarge", "ml.trn2.48xlarge")

# --------------------------------------------------------------------------- local NVMe storage
# Families whose instances come with NVMe instance-store SSDs (EC2 hardware), among
# the families any SageMaker API above offers. On them SageMaker mounts the local
# disks instead of an EBS volume, and refuses a KMS key for that volume: "You can't
# request a KmsKeyId when using an instance type with local storage ... the call to
# CreateEndpointConfig fails" (same for VolumeKmsKeyId of training and processing jobs).
# Sources: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html
# (KmsKeyId), .../API_ResourceConfig.html and .../API_ProcessingClusterConfig.html
# (VolumeKmsKeyId), https://docs.aws.amazon.com/sagemaker/latest/dg/host-instance-storage.html,
# and the EC2 "instance store specifications" of each family,
# https://docs.aws.amazon.com/ec2/latest/instancetypes/ .
# Not classified (storage not verified, treated as EBS-only): g7, g7e, p6-b300, p6e-gb200.
NVME_INSTANCE_STORE_FAMILIES = frozenset(
    {
        "c5d", "c6gd", "dl1", "g4dn", "g5", "g6", "g6e", "gr6", "i3en", "m5d", "m6gd",
        "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "r5d", "r6gd", "r7gd",
        "trn1", "trn1n", "trn2",
    }
)  # fmt: skip
# The same fact seen through each API (one set per API, both derived from the one above):
# hosting families whose endpoint config must not name a KMS key ...
LOCAL_STORAGE_FAMILIES = frozenset(NVME_INSTANCE_STORE_FAMILIES & set(INSTANCE_SIZES["hosting"]))
# ... and training/processing families whose jobs must not name a VolumeKmsKeyId.
JOB_LOCAL_STORAGE_FAMILIES = frozenset(
    NVME_INSTANCE_STORE_FAMILIES & (set(INSTANCE_SIZES["training"]) | set(INSTANCE_SIZES["processing"]))
)

# --------------------------------------------------------------------------- blue/green deployment guardrails
# AWS::SageMaker::Endpoint DeploymentConfig.BlueGreenUpdatePolicy limits.
# TrafficRoutingConfig: WaitIntervalInSeconds 0-3600; CanarySize "must be less than or
# equal to 50% of the variant's total instance count"; LinearStepSize "must be 10-50%".
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
# CapacitySize.Value: at least 1.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CapacitySize.html
# BlueGreenUpdatePolicy: TerminationWaitInSeconds 0-3600; MaximumExecutionTimeoutInSeconds
# 600-28800, and it "should be larger than the total waiting time specified in
# TerminationWaitInSeconds and WaitIntervalInSeconds".
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html
BLUE_GREEN_MAX_WAIT_INTERVAL_SECONDS = 3600
BLUE_GREEN_MAX_CANARY_PERCENT = 50
BLUE_GREEN_LINEAR_STEP_PERCENT = (10, 50)
BLUE_GREEN_MAX_TERMINATION_WAIT_SECONDS = 3600
BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS = (600, 28800)


# ECR registry account of sagemaker-model-monitor-analyzer per region (SDK image_uri_config/model-monitor.json).
MODEL_MONITOR_REGISTRIES = {
    "af-south-1": "875698925577",
    "ap-east-1": "001633400207",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-northeast-3": "990339680094",
    "ap-south-1": "126357580389",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "ap-southeast-3": "669540362728",
    "ca-central-1": "536280801234",
    "cn-north-1": "453000072557",
    "cn-northwest-1": "453252182341",
    "eu-central-1": "048819808253",
    "eu-central-2": "590183933784",
    "eu-north-1": "895015795356",
    "eu-south-1": "933208885752",
    "eu-south-2": "437450045455",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "il-central-1": "843974653677",
    "me-central-1": "588750061953",
    "me-south-1": "607024016150",
    "sa-east-1": "539772159869",
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-isof-east-1": "853188333426",
    "us-isof-south-1": "467912361380",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}

# ECR registry account of the scikit-learn 1.2-1 framework image per region (SDK image_uri_config/sklearn.json).
SKLEARN_1_2_REGISTRIES = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "ca-west-1": "190319476487",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-iso-east-1": "833128469047",
    "us-isob-east-1": "281123927165",
    "us-isof-east-1": "108575199400",
    "us-isof-south-1": "124985052026",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}


# ECR registry account of sagemaker-clarify-processing 1.0 per region (SDK image_uri_config/clarify.json): the
# image of Model Monitor's bias and explainability jobs (not the model-monitor analyzer).
CLARIFY_REGISTRIES = {
    "af-south-1": "811711786498",
    "ap-east-1": "098760798382",
    "ap-northeast-1": "377024640650",
    "ap-northeast-2": "263625296855",
    "ap-northeast-3": "912233562940",
    "ap-south-1": "452307495513",
    "ap-southeast-1": "834264404009",
    "ap-southeast-2": "007051062584",
    "ap-southeast-3": "705930551576",
    "ca-central-1": "675030665977",
    "cn-north-1": "122526803553",
    "cn-northwest-1": "122578899357",
    "eu-central-1": "017069133835",
    "eu-central-2": "730335477804",
    "eu-north-1": "763603941244",
    "eu-south-1": "638885417683",
    "eu-west-1": "131013547314",
    "eu-west-2": "440796970383",
    "eu-west-3": "341593696636",
    "me-south-1": "835444307964",
    "sa-east-1": "520018980103",
    "us-east-1": "205585389593",
    "us-east-2": "211330385671",
    "us-gov-west-1": "598674086554",
    "us-isof-east-1": "579539705040",
    "us-isof-south-1": "411392592546",
    "us-west-1": "740489534195",
    "us-west-2": "306415355426",
}


def ecr_domain(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def model_monitor_image(region: str) -> str:
    """The Model Monitor analyzer image of ``region``; KeyError names the regions that have one."""
    if region not in MODEL_MONITOR_REGISTRIES:
        raise KeyError(
            f"Model Monitor has no analyzer image in {region} (regions: {', '.join(MODEL_MONITOR_REGISTRIES)})"
        )
    return f"{MODEL_MONITOR_REGISTRIES[region]}.dkr.ecr.{region}.{ecr_domain(region)}/sagemaker-model-monitor-analyzer"


def clarify_image(region: str) -> str:
    """The SageMaker Clarify 1.0 processing image of ``region``; KeyError names the regions that have one."""
    if region not in CLARIFY_REGISTRIES:
        raise KeyError(f"SageMaker Clarify has no image in {region} (regions: {', '.join(CLARIFY_REGISTRIES)})")
    return f"{CLARIFY_REGISTRIES[region]}.dkr.ecr.{region}.{ecr_domain(region)}/sagemaker-clarify-processing:1.0"


def sklearn_image(region: str) -> str:
    """The scikit-learn 1.2-1 CPU image (the one the build pipeline trains and serves with) of ``region``."""
    if region not in SKLEARN_1_2_REGISTRIES:
        raise KeyError(f"no scikit-learn 1.2-1 image in {region} (regions: {', '.join(SKLEARN_1_2_REGISTRIES)})")
    return (
        f"{SKLEARN_1_2_REGISTRIES[region]}.dkr.ecr.{region}.{ecr_domain(region)}/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )


# ResourceConfig.KeepAlivePeriodInSeconds: how long a training warm pool may be kept (SageMaker API, botocore model).
WARM_POOL_MAX_SECONDS = 21600
