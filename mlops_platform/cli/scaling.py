"""Autoscaling around a serving stack deploy: detach what would block the endpoint update, reattach it after.

Functions over injected boto3 clients (SageMaker, Application Auto Scaling,
CloudFormation of the stage's account); nothing here parses arguments or
prints: progress goes to the ``progress`` callback, :mod:`mlops_platform.cli.app`
prints it. ``scripts/deploy_release.py`` runs ``mlops scaling detach`` before
``cdk deploy`` and ``mlops scaling reattach`` after it, whatever its outcome.

The AWS facts this rests on:

* SageMaker refuses an endpoint update that changes the instance type of a
  variant registered as a scalable target ("If the update would change the
  instance type for any model that is a target for auto scaling, the update
  fails"); the documented procedure is to delete the variant's scaling policies
  and call DeregisterScalableTarget, update the endpoint, then register the
  variant again and attach the policy. Deregistering is needed only when an
  autoscaled production variant changes its instance type or is removed; a new
  model alone is allowed
  (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html).
* DescribeEndpoint does not report instance types; the endpoint config it
  names does (DescribeEndpointConfig ``ProductionVariants[].InstanceType``).
* RegisterScalableTarget on an existing resource "changes the resource's current
  capacity to a value that is inside of this range", so a fleet that kept its
  old count (the endpoint retains variant counts, see
  :class:`stacks.components.endpoint.ServedEndpoint`) is clamped into the
  configured min/max when it is registered again
  (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html).
* Deregistering also deletes the target's scheduled actions; the platform never
  creates any, so a target that has some is refused rather than silently
  stripped.

What the serving stack registers (resource id ``endpoint/<name>/variant/<variant>``,
min/max, the target-tracking policy ``<endpoint>-<variant>-invocations``) is
computed by :func:`scaling_specs` exactly as ``ServedEndpoint._autoscaling``
builds the template; ``tests/serving_cli/test_scaling.py`` compares the two.

Detach saves what it deregisters (targets and policies as they were) in a state
file; reattach reads it and registers, for whichever fleet the endpoint serves
once it is no longer updating:

* the old endpoint config (the deploy failed and CloudFormation rolled the
  endpoint back, or never reached it): the saved targets and policies, as they
  were;
* a new config (the deploy succeeded): every autoscaled production variant the
  stack deploys whose target is missing, with the stack's values, so each ends
  as CloudFormation last set it. Variants the new config removed, or no longer
  autoscales, stay unregistered (CloudFormation deletes their resources).

Without a state file, reattach still registers the stack's values for missing
targets when the stack's last deployment succeeded and the endpoint serves the
config it output (a build that died between the two steps); otherwise a
missing target is reported as a problem.

Refused (exit 3, before anything is touched): an autoscaled variant whose
instance type changes while its live scaling differs from what the stack now
deploys. CloudFormation would then update a scalable target or policy that is
deregistered at that moment, which fails; the safe procedure is two releases:
first the scaling change with the old instance type, then the instance type.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mlops_platform.cli.core import CliError, Context
from mlops_platform.cli.endpoints import POLL_SECONDS, TRANSITIONAL, describe_endpoint
from mlops_platform.config import Variant
from mlops_platform.release_manifest import ReleaseManifest

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
POLICY_TYPE = "TargetTrackingScaling"
# The stack's state after a deployment that CloudFormation completed without rolling back.
DEPLOYED = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
ENDPOINT_CONFIG_OUTPUT = "EndpointConfigName"
STATE_VERSION = 1
# Policy fields PutScalingPolicy takes back as DescribeScalingPolicies returns them.
_POLICY_CONFIGS = (
    "TargetTrackingScalingPolicyConfiguration",
    "StepScalingPolicyConfiguration",
    "PredictiveScalingPolicyConfiguration",
)

Progress = Callable[[str], None]


class ScalingRefused(CliError):
    """Detaching would let the deploy fail: the message names the safe procedure."""

    exit_code = 3


# --------------------------------------------------------------------------- what the stack deploys


def resource_id(endpoint: str, variant: str) -> str:
    """Application Auto Scaling's id of a SageMaker variant: ``endpoint/<endpoint>/variant/<variant>``."""
    return f"endpoint/{endpoint}/variant/{variant}"


@dataclass(frozen=True)
class ScalingSpec:
    """The scalable target and target-tracking policy the serving stack deploys for one production variant."""

    variant: str
    resource_id: str
    min_capacity: int
    max_capacity: int
    policy_name: str
    target_value: float
    scale_in_cooldown: int
    scale_out_cooldown: int

    def policy_configuration(self) -> dict[str, Any]:
        """``TargetTrackingScalingPolicyConfiguration`` as PutScalingPolicy takes it."""
        return {
            "TargetValue": self.target_value,
            "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            "ScaleInCooldown": self.scale_in_cooldown,
            "ScaleOutCooldown": self.scale_out_cooldown,
        }


def scaling_specs(endpoint: str, variants: Sequence[Variant]) -> dict[str, ScalingSpec]:
    """Per autoscaled production variant (shadows are never autoscaled), what ``ServedEndpoint`` registers."""
    specs = {}
    for variant in variants:
        if variant.shadow or variant.autoscaling is None:
            continue
        scaling = variant.autoscaling
        specs[variant.name] = ScalingSpec(
            variant=variant.name,
            resource_id=resource_id(endpoint, variant.name),
            min_capacity=scaling.min_instances,
            max_capacity=scaling.max_instances,
            policy_name=f"{endpoint}-{variant.name}-invocations",
            target_value=float(scaling.invocations_per_instance),
            scale_in_cooldown=scaling.scale_in_cooldown_seconds,
            scale_out_cooldown=scaling.scale_out_cooldown_seconds,
        )
    return specs


def _configured(ctx: Context, project: str, stage: str) -> list[Variant]:
    return list(getattr(ctx.config.projects[project].serving, stage).resolved_variants(stage))


def _instance_type(variant: Variant) -> str | None:
    return None if variant.serverless is not None else variant.instance_type


# --------------------------------------------------------------------------- live state


@dataclass(frozen=True)
class SavedTarget:
    """A deregistered scalable target and its policies, as they were live (PutScalingPolicy's fields)."""

    variant: str
    reason: str
    min_capacity: int
    max_capacity: int
    suspended_state: dict[str, bool] | None
    policies: list[dict[str, Any]]


@dataclass(frozen=True)
class DetachState:
    """What detach deregistered, and the endpoint config the endpoint served then."""

    project: str
    stage: str
    endpoint: str
    endpoint_config: str
    targets: list[SavedTarget]

    def to_json(self) -> str:
        return json.dumps({"version": STATE_VERSION, **asdict(self)}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> DetachState:
        try:
            data = json.loads(text)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            targets = [SavedTarget(**t) for t in data["targets"]]
            return cls(data["project"], data["stage"], data["endpoint"], data["endpoint_config"], targets)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise CliError(f"{where}: not a scaling state file written by `mlops scaling detach` ({err})") from None


def default_state_path(project: str, stage: str) -> Path:
    """Local state only (never under ``releases/``, whose ``*/*.json`` synth reads as manifests)."""
    return Path(".cache") / "scaling" / f"{project}-{stage}.json"


def _write_state(path: Path, state: DetachState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, path)


def _live_production_types(sagemaker: Any, config_name: str) -> dict[str, str | None]:
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    return {v["VariantName"]: v.get("InstanceType") for v in config.get("ProductionVariants") or []}


def _targets(autoscaling: Any, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Scalable targets (instance count) of these resource ids, by resource id."""
    found: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"ServiceNamespace": NAMESPACE, "ScalableDimension": DIMENSION}
    for start in range(0, len(ids), 50):  # the API takes at most 50 ids per call
        kwargs["ResourceIds"] = list(ids[start : start + 50])
        kwargs.pop("NextToken", None)
        while True:
            page = autoscaling.describe_scalable_targets(**kwargs)
            for target in page.get("ScalableTargets") or []:
                found[target["ResourceId"]] = target
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return found


def _policies(autoscaling: Any, rid: str) -> list[dict[str, Any]]:
    """The target's scaling policies, reduced to what PutScalingPolicy takes back."""
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ServiceNamespace": NAMESPACE, "ResourceId": rid, "ScalableDimension": DIMENSION}
    while True:
        page = autoscaling.describe_scaling_policies(**kwargs)
        for policy in page.get("ScalingPolicies") or []:
            kept = {"PolicyName": policy["PolicyName"], "PolicyType": policy["PolicyType"]}
            kept.update({key: policy[key] for key in _POLICY_CONFIGS if policy.get(key)})
            out.append(json.loads(json.dumps(kept, default=str)))
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]


def _scheduled_actions(autoscaling: Any, rid: str) -> list[str]:
    page = autoscaling.describe_scheduled_actions(
        ServiceNamespace=NAMESPACE, ResourceId=rid, ScalableDimension=DIMENSION
    )
    return [a["ScheduledActionName"] for a in page.get("ScheduledActions") or []]


def _wait(
    sagemaker: Any, endpoint: str, wait_minutes: float, sleep: Callable[[float], None], clock: Callable[[], float]
) -> dict[str, Any] | None:
    """DescribeEndpoint once it is no longer Creating/Updating (None: no endpoint); CliError when it stays so."""
    description = describe_endpoint(sagemaker, endpoint)
    deadline = clock() + wait_minutes * 60
    while description is not None and description.get("EndpointStatus") in TRANSITIONAL and clock() < deadline:
        sleep(POLL_SECONDS)
        description = describe_endpoint(sagemaker, endpoint)
    if description is not None and description.get("EndpointStatus") in TRANSITIONAL:
        waited = f" after waiting {wait_minutes:g} min" if wait_minutes else " (pass --wait-minutes to wait)"
        raise CliError(f"endpoint {endpoint} is still {description['EndpointStatus']}{waited}", 1)
    return description


def _differences(spec: ScalingSpec, target: dict[str, Any], policies: list[dict[str, Any]]) -> list[str]:
    """How the live scaling of a variant differs from what the stack deploys (empty: identical)."""
    found = []
    live = (target.get("MinCapacity"), target.get("MaxCapacity"))
    if live != (spec.min_capacity, spec.max_capacity):
        found.append(f"min/max {live[0]}/{live[1]} live, {spec.min_capacity}/{spec.max_capacity} in the stack")
    suspended = sorted(k for k, v in (target.get("SuspendedState") or {}).items() if v)
    if suspended:
        found.append(f"suspended live ({', '.join(suspended)}), not in the stack")
    names = sorted(p["PolicyName"] for p in policies)
    if names != [spec.policy_name]:
        found.append(f"policies {', '.join(names) or 'none'} live, {spec.policy_name} in the stack")
    else:
        (policy,) = policies
        config = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
        want = spec.policy_configuration()
        have = {key: config.get(key) for key in want}
        if policy.get("PolicyType") != POLICY_TYPE or have != want:
            found.append(f"policy {spec.policy_name} is {policy.get('PolicyType')} {have} live, {want} in the stack")
    return found


# --------------------------------------------------------------------------- detach


@dataclass(frozen=True)
class DetachResult:
    endpoint: str
    state: DetachState | None
    notes: list[str] = field(default_factory=list)


def detach(
    sagemaker: Any,
    autoscaling: Any,
    ctx: Context,
    project: str,
    stage: str,
    manifest: ReleaseManifest | None,
    state_path: Path,
    *,
    wait_minutes: float = 0,
    progress: Progress = lambda _line: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> DetachResult:
    """Before ``cdk deploy``: deregister every autoscaled variant the deploy would fail to update.

    That is each production variant with a scalable target whose instance type
    the stack changes, or which the stack removes. Its targets and policies are
    saved to ``state_path`` first, then its policies deleted and the target
    deregistered. Nothing to do without a release (the stack removes the
    endpoint), without an endpoint (the first deploy creates it), or when no
    autoscaled variant changes its instance type. Raises
    :class:`ScalingRefused` (nothing touched) when CloudFormation would also
    update a deregistered target, and CliError when ``state_path`` exists (an
    earlier run was not reattached).
    """
    ctx.projects(project)
    endpoint = ctx.naming.endpoint_name(project, stage)
    state_path = Path(state_path)
    if state_path.exists():
        raise CliError(
            f"{state_path} exists: an earlier detach of {endpoint} was never reattached; run `mlops scaling reattach "
            f"{project} --stage {stage} --state {state_path}` first",
            1,
        )
    if manifest is None:
        return DetachResult(endpoint, None, ["no release: the deploy removes the endpoint and its scaling"])
    description = _wait(sagemaker, endpoint, wait_minutes, sleep, clock)
    if description is None:
        return DetachResult(endpoint, None, [f"endpoint {endpoint} does not exist yet: the deploy creates it"])
    config_name = description["EndpointConfigName"]
    live = _live_production_types(sagemaker, config_name)
    configured = {v.name: v for v in _configured(ctx, project, stage) if not v.shadow}
    specs = scaling_specs(endpoint, list(configured.values()))
    targets = _targets(autoscaling, [resource_id(endpoint, name) for name in live])

    plan: list[tuple[str, str, dict[str, Any]]] = []  # variant, reason, live target
    refusals: list[str] = []
    for name, live_type in live.items():
        target = targets.get(resource_id(endpoint, name))
        if target is None:
            continue
        wanted = configured.get(name)
        if wanted is None:
            plan.append((name, f"variant {name} is removed", target))
            continue
        if _instance_type(wanted) == live_type:
            continue
        new_type = _instance_type(wanted)
        reason = f"variant {name} changes instance type {live_type or 'serverless'} -> {new_type or 'serverless'}"
        spec = specs.get(name)
        if spec is not None:
            problems = _differences(spec, target, _policies(autoscaling, target["ResourceId"]))
            if problems:
                refusals.append(f"{reason}, and its scaling changes too ({'; '.join(problems)})")
        plan.append((name, reason, target))
    if refusals:
        raise ScalingRefused(
            f"refused: {endpoint}: {' | '.join(refusals)}. The variant must be deregistered for the instance type "
            "change, and CloudFormation cannot update a deregistered scalable target or policy. Deploy the two "
            "changes one after the other: first the scaling values with the old instance type, then the new "
            "instance type (or register the live target with the stack's values first, if it drifted)"
        )
    for name, _reason, target in plan:
        actions = _scheduled_actions(autoscaling, target["ResourceId"])
        if actions:
            raise ScalingRefused(
                f"refused: {endpoint} variant {name} has scheduled actions ({', '.join(actions)}) that the serving "
                "stack does not create and deregistering would delete: delete them, or change the instance type by "
                "hand following https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html"
            )
    if not plan:
        return DetachResult(endpoint, None, ["no autoscaled variant changes its instance type or is removed"])

    saved = [
        SavedTarget(
            variant=name,
            reason=reason,
            min_capacity=int(target["MinCapacity"]),
            max_capacity=int(target["MaxCapacity"]),
            suspended_state=target.get("SuspendedState"),
            policies=_policies(autoscaling, target["ResourceId"]),
        )
        for name, reason, target in plan
    ]
    state = DetachState(project, stage, endpoint, config_name, saved)
    _write_state(state_path, state)  # before touching anything: reattach can always restore
    progress(f"saved the scaling of {len(saved)} variant(s) of {endpoint} to {state_path}")
    for entry in saved:
        rid = resource_id(endpoint, entry.variant)
        for policy in entry.policies:
            autoscaling.delete_scaling_policy(
                PolicyName=policy["PolicyName"], ServiceNamespace=NAMESPACE, ResourceId=rid, ScalableDimension=DIMENSION
            )
            progress(f"{entry.reason}: deleted scaling policy {policy['PolicyName']}")
        autoscaling.deregister_scalable_target(ServiceNamespace=NAMESPACE, ResourceId=rid, ScalableDimension=DIMENSION)
        progress(f"{entry.reason}: deregistered {rid} (was {entry.min_capacity}-{entry.max_capacity} instances)")
    return DetachResult(endpoint, state)


# --------------------------------------------------------------------------- reattach


@dataclass(frozen=True)
class ReattachResult:
    endpoint: str
    fleet: str  # old | new | none (no endpoint) | unchanged (nothing detached, nothing missing)
    registered: list[str]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _register(
    autoscaling: Any,
    rid: str,
    low: int,
    high: int,
    policies: list[dict[str, Any]],
    suspended: dict[str, bool] | None = None,
) -> None:
    kwargs: dict[str, Any] = {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": rid,
        "ScalableDimension": DIMENSION,
        "MinCapacity": low,
        "MaxCapacity": high,
    }
    if suspended:
        kwargs["SuspendedState"] = suspended
    autoscaling.register_scalable_target(**kwargs)
    for policy in policies:
        autoscaling.put_scaling_policy(
            ServiceNamespace=NAMESPACE, ResourceId=rid, ScalableDimension=DIMENSION, **policy
        )


def _stack(cloudformation: Any, name: str) -> tuple[str | None, str | None]:
    """(status, EndpointConfigName output) of the serving stack; (None, None) when it does not exist."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as err:
        error = err.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            return None, None
        raise
    output = next(
        (o.get("OutputValue") for o in stack.get("Outputs") or [] if o.get("OutputKey") == ENDPOINT_CONFIG_OUTPUT),
        None,
    )
    return stack.get("StackStatus"), output


def reattach(
    sagemaker: Any,
    autoscaling: Any,
    cloudformation: Any,
    ctx: Context,
    project: str,
    stage: str,
    state_path: Path,
    *,
    wait_minutes: float = 0,
    progress: Progress = lambda _line: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ReattachResult:
    """After ``cdk deploy`` (succeeded or failed): register the scaling of the fleet the endpoint serves.

    Waits up to ``wait_minutes`` for an updating endpoint. The old fleet gets
    back exactly what detach saved; a new fleet gets the stack's values for
    every autoscaled production variant without a target (see the module
    docstring). The state file is removed once everything is registered and
    kept when a call fails, so running reattach again is safe.
    """
    ctx.projects(project)
    endpoint = ctx.naming.endpoint_name(project, stage)
    state_path = Path(state_path)
    state = DetachState.from_json(state_path.read_text(), state_path) if state_path.exists() else None
    if state is not None and (state.project, state.stage) != (project, stage):
        raise CliError(f"{state_path} belongs to {state.project}/{state.stage}, not {project}/{stage}")

    def done(result: ReattachResult) -> ReattachResult:
        if state is not None and result.ok:
            state_path.unlink()
        return result

    description = _wait(sagemaker, endpoint, wait_minutes, sleep, clock)
    if description is None:
        return done(ReattachResult(endpoint, "none", [], notes=[f"endpoint {endpoint} does not exist: no scaling"]))
    serving_config = description["EndpointConfigName"]
    registered: list[str] = []

    if state is not None and serving_config == state.endpoint_config:
        for saved in state.targets:
            rid = resource_id(endpoint, saved.variant)
            _register(autoscaling, rid, saved.min_capacity, saved.max_capacity, saved.policies, saved.suspended_state)
            registered.append(rid)
            names = ", ".join(p["PolicyName"] for p in saved.policies) or "no policy"
            progress(
                f"{endpoint} still serves {serving_config}: restored {rid} "
                f"({saved.min_capacity}-{saved.max_capacity} instances, {names})"
            )
        return done(ReattachResult(endpoint, "old", registered))

    live = _live_production_types(sagemaker, serving_config)
    specs = [s for name, s in scaling_specs(endpoint, _configured(ctx, project, stage)).items() if name in live]
    existing = _targets(autoscaling, [s.resource_id for s in specs])
    missing = [s for s in specs if s.resource_id not in existing]
    notes = []
    if state is not None:
        dropped = sorted({t.variant for t in state.targets} - {s.variant for s in specs})
        if dropped:
            notes.append(f"not registered again (the stack no longer autoscales them): {', '.join(dropped)}")
    else:
        if not missing:
            return ReattachResult(endpoint, "unchanged", [], notes=["nothing was detached; no target is missing"])
        status, deployed = _stack(cloudformation, ctx.naming.stack_name(stage, "serving", project))
        if status not in DEPLOYED or deployed != serving_config:
            names = ", ".join(s.variant for s in missing)
            return ReattachResult(
                endpoint,
                "unchanged",
                [],
                problems=[
                    f"variants {names} of {endpoint} have no scalable target, and without a detach state file the "
                    f"values CloudFormation last set are unknown here (stack {status or 'missing'}, it deployed "
                    f"{deployed or 'no config'}, the endpoint serves {serving_config}): redeploy the serving stack"
                ],
            )
    for spec in missing:
        _register(
            autoscaling,
            spec.resource_id,
            spec.min_capacity,
            spec.max_capacity,
            [
                {
                    "PolicyName": spec.policy_name,
                    "PolicyType": POLICY_TYPE,
                    "TargetTrackingScalingPolicyConfiguration": spec.policy_configuration(),
                }
            ],
        )
        registered.append(spec.resource_id)
        progress(
            f"{endpoint} serves {serving_config}: registered {spec.resource_id} "
            f"({spec.min_capacity}-{spec.max_capacity} instances, {spec.policy_name})"
        )
    return done(ReattachResult(endpoint, "new", registered, notes=notes))
