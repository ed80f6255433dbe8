"""``mlops scaling detach|reattach`` around a serving stack deploy, and their place in ``make deploy-release``.

The CLI runs with ``--role-arn`` into the prod moto account (STS AssumeRole, as
the deploy pipeline reaches the stage through its verify role). moto 5.2.5
serves what the commands call: SageMaker DescribeEndpoint/DescribeEndpointConfig
and Application Auto Scaling targets, policies and scheduled actions. Its gaps,
and how the tests bridge them:

* no UpdateEndpoint: a deploy is simulated as in support.py, by a new endpoint
  config, the endpoint recreated on it and the stack output set to it; a failed
  deploy leaves the endpoint on its old config (CloudFormation rolled it back);
* moto's DeregisterScalableTarget keeps the target's policies (AWS deletes them);
  detach deletes them itself first, as the SageMaker procedure says, so the end
  state is the same;
* moto never clamps a fleet into a registered range, nor refuses an update of an
  autoscaled variant: what SageMaker does with the counts is not tested here.

The project config is the shipped example's serving section, so the values
reattach registers are compared with the synthesized template itself.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from moto import mock_aws

from mlops_platform.cli import scaling
from mlops_platform.config import load_config
from mlops_platform.release_manifest import ModelVersion, ReleaseManifest, write_manifest
from tests.serving_cli.support import PROD_ROLE_ARN, PROJECT, World, assumed_session, write_config
from tests.synth import EXAMPLE_CONFIG, ROOT

EXAMPLE_SERVING = yaml.safe_load((EXAMPLE_CONFIG / "projects" / "churn.yaml").read_text())["serving"]
ENDPOINT = "mlops-churn-prod"
STATE = Path(".cache/scaling/churn-prod.json")  # relative to the mlops fixture's working directory
# What the example's prod config autoscales, as the template has it (checked against the synth below).
CHAMPION = (2, 6, "mlops-churn-prod-champion-invocations")
CHALLENGER = (1, 2, "mlops-churn-prod-challenger-invocations")
TYPES = {"champion": "ml.m5.xlarge", "challenger": "ml.m5.large"}  # the example's prod instance types


def policy_config(target: float = 200.0, scale_in: int = 300, scale_out: int = 60) -> dict:
    return {
        "TargetValue": target,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleInCooldown": scale_in,
        "ScaleOutCooldown": scale_out,
    }


@pytest.fixture
def world(aws_env, tmp_path):
    """The four-account moto world of support.py, with the example's serving config (autoscaled prod variants)."""
    config_dir = write_config(tmp_path)
    project_file = config_dir / "projects" / "churn.yaml"
    project = yaml.safe_load(project_file.read_text())
    project["serving"] = EXAMPLE_SERVING
    project_file.write_text(yaml.safe_dump(project))
    with mock_aws():
        yield World(config_dir).create()


class Prod:
    """The prod account: its endpoint (instance type per variant), scalable targets and the serving stack output."""

    def __init__(self, world: World, releases: Path) -> None:
        self.stage = world.stage("prod")
        self.world = world
        self.autoscaling = assumed_session(PROD_ROLE_ARN).client("application-autoscaling")
        self.arn = world.register()
        self._configs = 0
        manifest = ReleaseManifest(
            project=PROJECT, stage="prod", challenger=ModelVersion(version=1, model_package_arn=self.arn)
        )
        write_manifest(releases, PROJECT, "prod", manifest)

    def config(self, types: dict[str, str]) -> str:
        self._configs += 1
        name = f"{ENDPOINT}-config-{self._configs}"
        variants = []
        for variant, instance_type in types.items():
            model = f"{ENDPOINT}-{variant}-{self._configs}"
            self.stage.sagemaker.create_model(
                ModelName=model,
                ExecutionRoleArn=self.world.naming.model_role_arn(PROJECT, "prod"),
                PrimaryContainer={"ModelPackageName": self.arn},
            )
            variants.append(
                {
                    "VariantName": variant,
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": instance_type,
                    "InitialVariantWeight": 1.0,
                }
            )
        self.stage.sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)
        return name

    def deploy(self, types: dict[str, str]) -> str:
        """What a successful ``cdk deploy`` leaves: the endpoint on a new config that the stack outputs."""
        name = self.config(types)
        self.stage.serve(name)
        self.stage.stack_output(name)
        return name

    def autoscale(self, variant: str, low: int, high: int, policy: str | None = None, **config) -> None:
        """A scalable target with its target-tracking policy, as CloudFormation registers it."""
        rid = scaling.resource_id(ENDPOINT, variant)
        ids = {"ServiceNamespace": "sagemaker", "ResourceId": rid, "ScalableDimension": scaling.DIMENSION}
        self.autoscaling.register_scalable_target(**ids, MinCapacity=low, MaxCapacity=high)
        self.autoscaling.put_scaling_policy(
            **ids,
            PolicyName=policy or f"{ENDPOINT}-{variant}-invocations",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=policy_config(**config),
        )

    def scaling(self) -> dict[str, tuple]:
        """variant -> (min, max, target ARN, [(policy name, its configuration)])."""
        targets = self.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        out = {}
        for target in targets:
            policies = self.autoscaling.describe_scaling_policies(
                ServiceNamespace="sagemaker", ResourceId=target["ResourceId"]
            )["ScalingPolicies"]
            out[target["ResourceId"].rsplit("/", 1)[1]] = (
                target["MinCapacity"],
                target["MaxCapacity"],
                target["ScalableTargetARN"],
                sorted((p["PolicyName"], p["TargetTrackingScalingPolicyConfiguration"]) for p in policies),
            )
        return out

    def scaled_as(self, variant: str, expected: tuple, config: dict | None = None) -> None:
        low, high, name = expected
        got = self.scaling()[variant]
        assert (got[0], got[1]) == (low, high)
        assert got[3] == [(name, config or policy_config())]


@pytest.fixture
def prod(world, tmp_path):
    return Prod(world, tmp_path / "releases")


def run(mlops, command: str, *args: str):
    return mlops("--role-arn", PROD_ROLE_ARN, "scaling", command, PROJECT, "--stage", "prod", *args)


def ok(result):
    assert result.code == 0, (result.out, result.err)
    assert result.err == ""
    return result.out


# --------------------------------------------------------------------------- the stack's values


def test_the_values_reattach_registers_are_the_synthesized_templates(example):
    template = example.template("mlops-prod-churn-serving")["Resources"]
    config = load_config(EXAMPLE_CONFIG)
    specs = scaling.scaling_specs(ENDPOINT, config.projects["churn"].serving.prod.resolved_variants("prod"))
    targets = {
        k: r["Properties"] for k, r in template.items() if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
    }
    policies = {
        r["Properties"]["ScalingTargetId"]["Ref"]: r["Properties"]
        for r in template.values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
    }
    assert sorted(t["ResourceId"] for t in targets.values()) == sorted(s.resource_id for s in specs.values())
    for logical, target in targets.items():
        spec = next(s for s in specs.values() if s.resource_id == target["ResourceId"])
        assert target["ServiceNamespace"] == scaling.NAMESPACE and target["ScalableDimension"] == scaling.DIMENSION
        assert (target["MinCapacity"], target["MaxCapacity"]) == (spec.min_capacity, spec.max_capacity)
        assert policies[logical]["PolicyName"] == spec.policy_name
        assert policies[logical]["PolicyType"] == scaling.POLICY_TYPE
        assert policies[logical]["TargetTrackingScalingPolicyConfiguration"] == spec.policy_configuration()
    # and the constants the CLI tests below use
    assert {n: (s.min_capacity, s.max_capacity, s.policy_name) for n, s in specs.items()} == {
        "champion": CHAMPION,
        "challenger": CHALLENGER,
    }
    assert all(s.policy_configuration() == policy_config() for s in specs.values())


# --------------------------------------------------------------------------- detach / reattach


def test_instance_type_change_deregisters_before_and_registers_the_stack_values_after(prod, mlops, tmp_path):
    old = prod.deploy({"champion": "ml.m5.large", "challenger": "ml.m5.large"})
    prod.autoscale("champion", *CHAMPION[:2])
    prod.autoscale("challenger", *CHALLENGER[:2])
    challenger_arn = prod.scaling()["challenger"][2]

    out = ok(run(mlops, "detach"))
    assert "variant champion changes instance type ml.m5.large -> ml.m5.xlarge" in out
    assert f"deleted scaling policy {CHAMPION[2]}" in out
    assert f"deregistered endpoint/{ENDPOINT}/variant/champion (was 2-6 instances)" in out
    assert set(prod.scaling()) == {"challenger"}, "only the variant whose instance type changes"
    state = json.loads((tmp_path / STATE).read_text())
    assert state["endpoint_config"] == old
    assert [(t["variant"], t["min_capacity"], t["max_capacity"]) for t in state["targets"]] == [("champion", 2, 6)]

    new = prod.deploy(TYPES)  # cdk deploy succeeded: the endpoint runs the new fleet
    out = ok(run(mlops, "reattach"))
    assert f"serves {new}: registered endpoint/{ENDPOINT}/variant/champion (2-6 instances, {CHAMPION[2]})" in out
    prod.scaled_as("champion", CHAMPION)
    prod.scaled_as("challenger", CHALLENGER)
    assert prod.scaling()["challenger"][2] == challenger_arn, "the unchanged variant was never re-registered"
    assert not (tmp_path / STATE).exists()


def test_no_instance_type_change_touches_nothing(prod, mlops, tmp_path):
    prod.deploy(TYPES)
    prod.autoscale("champion", *CHAMPION[:2])
    prod.autoscale("challenger", *CHALLENGER[:2])
    before = prod.scaling()
    out = ok(run(mlops, "detach"))
    assert "nothing to detach: no autoscaled variant changes its instance type or is removed" in out
    assert not (tmp_path / STATE).exists()
    prod.deploy(TYPES)  # a new model version, same fleet shape
    assert "nothing was detached; no target is missing" in ok(run(mlops, "reattach"))
    assert prod.scaling() == before, "same targets (same ARNs), same policies"


def test_a_variant_without_autoscaling_changing_its_instance_type_touches_nothing(prod, mlops, tmp_path):
    prod.deploy({"champion": "ml.m5.xlarge", "challenger": "ml.m5.2xlarge"})
    prod.autoscale("champion", *CHAMPION[:2])  # the challenger has no scalable target (yet)
    before = prod.scaling()
    assert "nothing to detach" in ok(run(mlops, "detach"))
    assert prod.scaling() == before
    assert not (tmp_path / STATE).exists()


def test_a_failed_deploy_restores_the_old_fleets_scaling(prod, mlops, tmp_path):
    old = prod.deploy({"champion": "ml.m5.large", "challenger": "ml.m5.large", "legacy": "ml.m5.large"})
    prod.autoscale("champion", *CHAMPION[:2])
    # a variant the config no longer has, scaled as an older template set it
    prod.autoscale("legacy", 1, 3, scale_in=600)
    before = prod.scaling()
    out = ok(run(mlops, "detach"))
    assert "variant legacy is removed: deregistered" in out
    assert set(prod.scaling()) == set()

    # cdk deploy failed: CloudFormation rolled the endpoint back, it still serves the old config
    out = ok(run(mlops, "reattach"))
    assert f"{ENDPOINT} still serves {old}: restored endpoint/{ENDPOINT}/variant/legacy (1-3 instances" in out
    after = prod.scaling()
    assert {v: (t[0], t[1], t[3]) for v, t in after.items()} == {v: (t[0], t[1], t[3]) for v, t in before.items()}
    prod.scaled_as("legacy", (1, 3, f"{ENDPOINT}-legacy-invocations"), policy_config(scale_in=600))
    assert not (tmp_path / STATE).exists()


def test_a_removed_variant_is_not_registered_again_after_a_successful_deploy(prod, mlops):
    prod.deploy({**TYPES, "legacy": "ml.m5.large"})
    prod.autoscale("champion", *CHAMPION[:2])
    prod.autoscale("challenger", *CHALLENGER[:2])
    prod.autoscale("legacy", 1, 3)
    before = prod.scaling()
    ok(run(mlops, "detach"))
    assert set(prod.scaling()) == {"champion", "challenger"}
    prod.deploy(TYPES)
    out = ok(run(mlops, "reattach"))
    assert "not registered again (the stack no longer autoscales them): legacy" in out
    assert prod.scaling() == {v: t for v, t in before.items() if v != "legacy"}


def test_the_first_deploy_has_nothing_to_detach(prod, mlops, tmp_path):
    out = ok(run(mlops, "detach"))
    assert f"nothing to detach: endpoint {ENDPOINT} does not exist yet: the deploy creates it" in out
    assert not (tmp_path / STATE).exists()
    prod.deploy(TYPES)  # CloudFormation created the endpoint and registered its scaling
    prod.autoscale("champion", *CHAMPION[:2])
    prod.autoscale("challenger", *CHALLENGER[:2])
    before = prod.scaling()
    assert "nothing was detached" in ok(run(mlops, "reattach"))
    assert prod.scaling() == before


def test_no_release_has_nothing_to_detach(prod, mlops, tmp_path):
    prod.deploy({"champion": "ml.m5.large", "challenger": "ml.m5.large"})
    prod.autoscale("champion", *CHAMPION[:2])
    (tmp_path / "releases" / PROJECT / "prod.json").unlink()
    assert "nothing to detach: no release: the deploy removes the endpoint" in ok(run(mlops, "detach"))
    assert set(prod.scaling()) == {"champion"}


def test_refused_when_the_deploy_changes_the_scaling_of_a_variant_it_must_deregister(prod, mlops, tmp_path):
    prod.deploy({"champion": "ml.m5.large", "challenger": "ml.m5.large"})
    prod.autoscale("champion", 1, 4, target=150.0)  # the new template says 2-6 at 200/min
    before = prod.scaling()
    result = run(mlops, "detach")
    assert result.code == 3, (result.out, result.err)
    assert "variant champion changes instance type ml.m5.large -> ml.m5.xlarge" in result.err
    assert "min/max 1/4 live, 2/6 in the stack" in result.err
    assert "first the scaling values with the old instance type, then the new instance type" in result.err
    assert prod.scaling() == before, "nothing touched"
    assert not (tmp_path / STATE).exists()


def test_refused_when_deregistering_would_delete_scheduled_actions(prod, mlops):
    prod.deploy({"champion": "ml.m5.large", "challenger": "ml.m5.large"})
    prod.autoscale("champion", *CHAMPION[:2])
    prod.autoscaling.put_scheduled_action(
        ServiceNamespace="sagemaker",
        ScheduledActionName="night",
        ResourceId=scaling.resource_id(ENDPOINT, "champion"),
        ScalableDimension=scaling.DIMENSION,
        Schedule="cron(0 22 * * ? *)",
        ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 2},
    )
    result = run(mlops, "detach")
    assert result.code == 3
    assert "has scheduled actions (night)" in result.err
    assert "champion" in prod.scaling()


def test_reattach_heals_a_lost_state_file_only_after_a_successful_deploy(prod, mlops):
    prod.deploy(TYPES)  # deployed, but the build died after detach: no state file, no champion target
    prod.autoscale("challenger", *CHALLENGER[:2])
    out = ok(run(mlops, "reattach"))
    assert f"registered endpoint/{ENDPOINT}/variant/champion (2-6 instances, {CHAMPION[2]})" in out
    prod.scaled_as("champion", CHAMPION)


def test_reattach_reports_missing_scaling_it_cannot_attribute(prod, mlops):
    prod.deploy(TYPES)
    prod.stage.stack_output("some-other-config")  # the stack did not deploy what the endpoint serves
    result = run(mlops, "reattach")
    assert result.code == 1
    assert "variants champion, challenger of mlops-churn-prod have no scalable target" in result.err
    assert prod.scaling() == {}


def test_an_unreattached_earlier_detach_blocks_a_new_one(prod, mlops, tmp_path):
    prod.deploy({"champion": "ml.m5.large", "challenger": "ml.m5.large"})
    prod.autoscale("champion", *CHAMPION[:2])
    ok(run(mlops, "detach"))
    result = run(mlops, "detach")
    assert result.code == 1
    assert "never reattached; run `mlops scaling reattach churn --stage prod" in result.err
    ok(run(mlops, "reattach"))  # the old fleet gets its scaling back
    prod.scaled_as("champion", CHAMPION)


def test_reattach_waits_for_an_updating_endpoint(world, tmp_path):
    """Stubbed SageMaker (moto endpoints are InService at once): poll every 30 s, give up after --wait-minutes."""
    from botocore.stub import Stubber

    from mlops_platform.cli.core import CliError, Context

    client = assumed_session(PROD_ROLE_ARN).client("sagemaker")
    stub = Stubber(client)
    for _ in range(3):
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": ENDPOINT,
                "EndpointArn": f"arn:aws:sagemaker:eu-west-1:444444444444:endpoint/{ENDPOINT}",
                "EndpointConfigName": "c",
                "EndpointStatus": "Updating",
                "CreationTime": "2026-01-01T00:00:00Z",
                "LastModifiedTime": "2026-01-01T00:00:00Z",
            },
            {"EndpointName": ENDPOINT},
        )
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with stub, pytest.raises(CliError, match="is still Updating after waiting 1 min"):
        scaling.reattach(
            client, None, None, Context(world.config), PROJECT, "prod", tmp_path / "absent.json",
            wait_minutes=1, sleep=sleep, clock=lambda: now[0],
        )  # fmt: skip
    assert slept == [30, 30]


# --------------------------------------------------------------------------- make deploy-release


def _script():
    spec = importlib.util.spec_from_file_location("deploy_release", ROOT / "scripts" / "deploy_release.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STEP_NAMES = ["export release", "detach autoscaling", "deploy", "reattach autoscaling", "verify"]


def test_deploy_release_detaches_before_and_reattaches_after_the_deploy(monkeypatch, capsys):
    for name in ("MLOPS_CONFIG_DIR", "MLOPS_RELEASES_DIR"):
        monkeypatch.delenv(name, raising=False)
    script = _script()
    assert script.main(["churn", "prod", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"[{i}/5] {name}" for i, name in enumerate(STEP_NAMES, 1)]
    verify_role = "--role-arn arn:aws:iam::444444444444:role/mlops-churn-prod-verify"
    state = str(ROOT / ".cache" / "scaling" / "churn-prod.json")
    assert f"{verify_role} scaling detach churn --stage prod --state {state}" in lines[1]
    assert lines[1].endswith(f"--manifest {ROOT / 'releases' / 'churn' / 'prod.json'}")
    assert "deploy Prod/ChurnServing --exclusively" in lines[2]
    assert f"{verify_role} scaling reattach churn --stage prod --state {state}" in lines[3]
    assert f"{verify_role} verify churn --stage prod" in lines[4]


@pytest.mark.parametrize(
    ("codes", "ran", "exit_code"),
    [
        ({}, STEP_NAMES, 0),
        # a failed deploy: scaling is restored, verify does not run, the deploy's code wins
        ({"deploy": 1}, ["export release", "detach autoscaling", "deploy", "reattach autoscaling"], 1),
        # detach refused: nothing deployed, reattach (a no-op without a state file) still runs
        ({"detach autoscaling": 3}, ["export release", "detach autoscaling", "reattach autoscaling"], 3),
        ({"reattach autoscaling": 1}, ["export release", "detach autoscaling", "deploy", "reattach autoscaling"], 1),
        ({"export release": 2}, ["export release"], 2),
    ],
)
def test_deploy_release_runs_reattach_whenever_detach_ran(monkeypatch, capsys, codes, ran, exit_code):
    script = _script()
    steps = script.commands("churn", "prod", config_dir=EXAMPLE_CONFIG, releases_dir=ROOT / "releases", expect_arn=None)
    name_of = {tuple(command): name for name, command in zip(STEP_NAMES, steps, strict=True)}
    calls: list[str] = []

    def fake_run(command, **kwargs):
        calls.append(name_of[tuple(command)])
        return SimpleNamespace(returncode=codes.get(calls[-1], 0))

    for name in ("MLOPS_CONFIG_DIR", "MLOPS_RELEASES_DIR", "MODEL_PACKAGE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(subprocess, "run", fake_run)
    assert script.main(["churn", "prod"]) == exit_code
    assert calls == ran
    if "detach autoscaling" in codes:
        assert "[3/5] deploy: skipped, detach failed" in capsys.readouterr().out
