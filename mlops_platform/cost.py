"""Estimated monthly cost of what a synth keeps running idle, per project and account role, from the templates alone.

``write_report(cdk_out)`` reads the cloud assembly (manifests and templates,
never AWS, never the clock), prices each resource that bills by the hour or
month with no traffic from the pinned table in ``prices.json`` (the region is
the stack's), and writes ``<cdk_out>/cost-report.md``; it returns the plain
table ``python -m mlops_platform.summary`` prints. Default: 730 hours a month,
monitoring runs of :data:`MONITORING_RUN_MINUTES` minutes, list prices of the
table's ``as_of`` date, which is also the report's only date.

Idle here means: no requests, no data moved, no jobs but scheduled monitoring.
A price the table lacks (a region, an instance type) never fails: the item is
kept with its cost "unpriced" and the report names what is missing. Stacks
tagged ``mlops:project`` belong to that project, every other stack to
:data:`SHARED`; the stage is the stack's ``mlops:stage`` tag (else its assembly).

Warm pools are not idle cost; each build pipeline's training step is listed
with what one run's warm pool costs (instances x ``KeepAlivePeriodInSeconds``,
which the synth takes from ``pipeline.warm_pool_minutes``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRICES = Path(__file__).with_name("prices.json")
REPORT_NAME = "cost-report.md"
HOURS_PER_MONTH = 730
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
# Assumed length of one monitoring run (a Model Monitor job or the drift pipeline's processing step),
# billed from instance start to end. An assumption (the report states it): provisioning plus one small window.
MONITORING_RUN_MINUTES = 15
SHARED = "platform (shared)"
PROJECT_TAG = "mlops:project"  # as mlops_platform.naming.PROJECT_TAG (not imported: naming pulls in the config model)
ROLE_TAG = "mlops:stage"  # naming.STAGE_TAG (naming imports the config model, too slow to load here)
STAGE_ORDER = ("governance", "dev", "staging", "prod")
# The drift-check engine's pipelines (mlops_platform.naming.drift_pipeline_name); other scheduled
# pipeline starts (retraining) are per-run training, which the report excludes.
DRIFT_PIPELINE_SUFFIX = "-drift"

ASSUMPTIONS = (
    f"{HOURS_PER_MONTH} hours per month; public on-demand list prices (no free tier, Savings Plans or discounts).",
    "Endpoint instances: a variant's autoscaling minimum (the scalable target's MinCapacity) where it has a "
    "scalable target, else its initial instance count; shadow variants count like production ones.",
    "Serverless variants: serverless: 0 idle (billed per request and duration; provisioned concurrency, which "
    "bills per hour, is named unpriced).",
    f"Monitoring: every scheduled run lasts {MONITORING_RUN_MINUTES} minutes on its job's instances; runs per "
    f"month follow the schedule ({HOURS_PER_MONTH} for hourly, {HOURS_PER_MONTH}/24 for daily).",
    "Interface VPC endpoints bill per Availability Zone: one per subnet they are placed in.",
    "KMS: $1 per key-month (a key's first year; automatic rotation adds up to $2 a month later).",
    "DynamoDB on-demand tables: 0 idle; provisioned tables: their read and write capacity units.",
    "CloudWatch log groups: 0 idle (no ingestion assumed; stored logs bill per GB-month, not counted).",
    "CloudWatch alarms: every alarm at the standard (or high-resolution) rate; the 10 free alarms per account "
    "are not deducted.",
    "FSx for Lustre: provisioned capacity in GiB x the GB-month price of its deployment type and throughput tier.",
)
EXCLUDED = (
    "requests and invocation time (serverless inference, Lambda, API calls, feature store reads and writes)",
    "data transfer and data processed (NAT gateway and VPC endpoint per-GB charges, cross-AZ traffic)",
    "storage and its growth (S3, EBS volumes including HyperPod's, logs, feature store, DynamoDB, backups)",
    "per-run training and pipeline jobs, including scheduled retraining (warm pools are listed separately)",
    "Studio apps and spaces that users start, and anything created outside these templates",
)


# --------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class PriceTable:
    """A dated price table: ``items[name]`` has ``unit``, ``source`` and ``prices[region]`` (a number or a map)."""

    as_of: str
    currency: str
    items: dict[str, dict[str, Any]]
    note: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriceTable:
        return cls(as_of=data["as_of"], currency=data["currency"], items=data["items"], note=data.get("note", ""))

    @classmethod
    def load(cls, path: Path = PRICES) -> PriceTable:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def price(self, item: str, region: str, key: str | None = None) -> float | None:
        """The price of ``item`` in ``region`` (of ``key`` in it, e.g. an instance type); None if the table lacks it."""
        found = self.items.get(item, {}).get("prices", {}).get(region)
        if key is not None:
            found = found.get(key) if isinstance(found, dict) else None
        return float(found) if isinstance(found, int | float) and not isinstance(found, bool) else None


# --------------------------------------------------------------------------- what was synthesized


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: its name, account role, region, project (None: shared) and template."""

    name: str
    stage: str
    region: str
    project: str | None
    template: dict[str, Any]


def read_stacks(cdk_out: Path) -> list[StackTemplate]:
    """Every stack of the cloud assembly in ``cdk_out`` (nested stage assemblies too), in a stable order."""
    stacks: list[StackTemplate] = []
    for stage_id, directory, artifact in _stack_artifacts(Path(cdk_out), None):
        properties = artifact.get("properties", {})
        tags = properties.get("tags") or {}
        environment = str(artifact.get("environment", ""))
        region = environment.removeprefix("aws://").partition("/")[2] or "unknown-region"
        stacks.append(
            StackTemplate(
                name=properties.get("stackName") or artifact.get("displayName", "?"),
                stage=tags.get(ROLE_TAG) or (stage_id or "app").lower(),
                region=region,
                project=tags.get(PROJECT_TAG),
                template=json.loads((directory / properties["templateFile"]).read_text()),
            )
        )
    return sorted(stacks, key=lambda s: (_stage_rank(s.stage), s.name))


def _stack_artifacts(directory: Path, stage_id: str | None) -> Iterator[tuple[str | None, Path, dict[str, Any]]]:
    manifest = json.loads((directory / "manifest.json").read_text())
    for artifact_id, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") == "aws:cloudformation:stack":
            yield stage_id, directory, artifact
        elif artifact.get("type") == "cdk:cloud-assembly":
            nested = directory / artifact["properties"]["directoryName"]
            yield from _stack_artifacts(nested, artifact_id.removeprefix("assembly-"))


def _stage_rank(stage: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), stage)


# --------------------------------------------------------------------------- line items


@dataclass(frozen=True)
class LineItem:
    """One priced thing: ``monthly`` is what could be priced (None: nothing), ``unpriced`` names what could not."""

    project: str
    stage: str
    stack: str
    item: str
    detail: str
    formula: str
    monthly: float | None
    unpriced: tuple[str, ...] = ()


@dataclass(frozen=True)
class WarmPool:
    """What one run of a pipeline's training step keeps warm after it ends (not idle cost)."""

    project: str
    stage: str
    pipeline: str
    instance_type: str
    instance_count: int
    minutes: float
    per_run: float | None
    formula: str
    unpriced: tuple[str, ...] = ()


@dataclass
class _Context:
    """What a handler needs to price one resource of one stack."""

    stack: StackTemplate
    prices: PriceTable
    run_minutes: float
    items: list[LineItem] = field(default_factory=list)

    @property
    def region(self) -> str:
        return self.stack.region

    @property
    def resources(self) -> dict[str, Any]:
        resources = self.stack.template.get("Resources")
        return resources if isinstance(resources, dict) else {}

    def add(self, item: str, detail: str, formula: str, monthly: float | None, unpriced: Iterable[str] = ()) -> None:
        self.items.append(
            LineItem(
                project=self.stack.project or SHARED,
                stage=self.stack.stage,
                stack=self.stack.name,
                item=item,
                detail=detail,
                formula=formula,
                monthly=monthly,
                unpriced=tuple(unpriced),
            )
        )

    def missing(self, what: str) -> str:
        return f"{what} in {self.region}"


def line_items(
    stacks: Iterable[StackTemplate], prices: PriceTable, *, run_minutes: float = MONITORING_RUN_MINUTES
) -> list[LineItem]:
    """Every idle-cost item of ``stacks``, in stack order, then resource order within a stack."""
    items: list[LineItem] = []
    for stack in stacks:
        context = _Context(stack, prices, run_minutes)
        for handler in _HANDLERS:
            handler(context)
        items += context.items
    return items


def _typed(context: _Context, type_: str) -> list[tuple[str, dict[str, Any]]]:
    """(logical id, properties) of the stack's resources of ``type_``, in template order."""
    found = []
    for logical_id, resource in context.resources.items():
        if isinstance(resource, dict) and resource.get("Type") == type_:
            properties = resource.get("Properties")
            found.append((logical_id, properties if isinstance(properties, dict) else {}))
    return found


def _money(value: float) -> str:
    return f"${value:g}"


def _hourly(context: _Context, item: str, label: str, price_item: str, quantity: float, what: str) -> None:
    """``quantity`` things billed per hour at ``price_item``, for a month."""
    price = context.prices.price(price_item, context.region)
    if price is None:
        context.add(label, what, f"{quantity:g} x {HOURS_PER_MONTH} h x ?", None, [context.missing(item)])
    else:
        context.add(
            label, what, f"{quantity:g} x {HOURS_PER_MONTH} h x {_money(price)}", quantity * HOURS_PER_MONTH * price
        )


def _nat_gateways(context: _Context) -> None:
    count = len(_typed(context, "AWS::EC2::NatGateway"))
    if count:
        _hourly(context, "NAT gateway price", "NAT gateways", "nat_gateway_hour", count, f"{count} NAT gateway(s)")


def _public_ips(context: _Context) -> None:
    count = len(_typed(context, "AWS::EC2::EIP"))
    if count:
        what = f"{count} Elastic IP address(es)"
        _hourly(context, "public IPv4 price", "public IPv4 addresses", "public_ipv4_hour", count, what)


def _interface_endpoints(context: _Context) -> None:
    endpoints = [p for _, p in _typed(context, "AWS::EC2::VPCEndpoint") if p.get("VpcEndpointType") == "Interface"]
    if not endpoints:
        return
    zones = 0
    for properties in endpoints:
        subnets = properties.get("SubnetIds")
        zones += len(subnets) if isinstance(subnets, list) else 1
    what = f"{len(endpoints)} interface endpoint(s) in {zones} endpoint-AZ(s)"
    _hourly(context, "interface endpoint price", "interface VPC endpoints", "interface_endpoint_az_hour", zones, what)


def _references(value: Any) -> Iterator[str]:
    """Logical ids that ``Ref`` or ``Fn::GetAtt`` name anywhere inside ``value``."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt" and isinstance(inner, list) and inner and isinstance(inner[0], str):
                yield inner[0]
            elif key == "Fn::GetAtt" and isinstance(inner, str):
                yield inner.split(".", 1)[0]
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


@dataclass
class _Instances:
    """Instances billed per hour, summed for one line item: the formula's terms, the month, what is unpriced."""

    context: _Context
    price_kind: str
    label: str
    terms: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    total: float = 0.0
    priced: bool = False

    def add(self, count: int, instance_type: str) -> None:
        price = self.context.prices.price(self.price_kind, self.context.region, instance_type)
        if price is None:
            self.missing.append(self.context.missing(f"{self.label} {instance_type}"))
            self.terms.append(f"{count} x ?")
            return
        self.terms.append(f"{count} x {_money(price)}")
        self.total += count * HOURS_PER_MONTH * price
        self.priced = True

    @property
    def formula(self) -> str:
        return f"{HOURS_PER_MONTH} h x ({' + '.join(self.terms)})" if self.terms else "-"

    @property
    def monthly(self) -> float | None:
        return self.total if self.priced else None


def _endpoints(context: _Context) -> None:
    """Endpoint instances: per endpoint config, each variant's minimum count x its hosting price."""
    endpoint_of: dict[str, str] = {}
    for logical_id, properties in _typed(context, "AWS::SageMaker::Endpoint"):
        name = properties.get("EndpointName")
        for config_id in _references(properties.get("EndpointConfigName")):
            endpoint_of[config_id] = name if isinstance(name, str) else logical_id
    minimum: dict[tuple[str, str], int] = {}
    for _, properties in _typed(context, "AWS::ApplicationAutoScaling::ScalableTarget"):
        resource = properties.get("ResourceId")
        match = re.fullmatch(r"endpoint/([^/]+)/variant/([^/]+)", resource) if isinstance(resource, str) else None
        if match and properties.get("ScalableDimension") == "sagemaker:variant:DesiredInstanceCount":
            low = properties.get("MinCapacity")
            if isinstance(low, int):
                minimum[(match.group(1), match.group(2))] = low
    for logical_id, properties in _typed(context, "AWS::SageMaker::EndpointConfig"):
        endpoint = endpoint_of.get(logical_id, logical_id)
        variants = [(v, False) for v in properties.get("ProductionVariants") or []]
        variants += [(v, True) for v in properties.get("ShadowProductionVariants") or []]
        parts: list[str] = []
        hosted = _Instances(context, "sagemaker_hosting_hour", "hosting")
        for variant, shadow in variants:
            if not isinstance(variant, dict):
                continue
            name = str(variant.get("VariantName", "?"))
            label = f"{name} (shadow)" if shadow else name
            if isinstance(variant.get("ServerlessConfig"), dict):
                serverless = variant["ServerlessConfig"]
                if serverless.get("ProvisionedConcurrency"):
                    context.add(
                        "serverless endpoint",
                        f"{endpoint}: {label}, provisioned concurrency {serverless['ProvisionedConcurrency']}",
                        "provisioned concurrency bills per hour",
                        None,
                        [f"serverless provisioned concurrency of {endpoint}/{name}"],
                    )
                else:
                    memory = serverless.get("MemorySizeInMB", "?")
                    context.add(
                        "serverless endpoint", f"{endpoint}: {label} ({memory} MB): serverless: 0 idle", "-", 0.0
                    )
                continue
            instance_type = variant.get("InstanceType")
            count = minimum.get((endpoint, name))
            source = "autoscaling min" if count is not None else "initial count"
            if count is None:
                count = variant.get("InitialInstanceCount")
            if not isinstance(instance_type, str) or not isinstance(count, int):
                hosted.missing.append(f"variant {endpoint}/{name} (instance type or count not literal)")
                continue
            parts.append(f"{label} {count} x {instance_type} ({source} {count})")
            hosted.add(count, instance_type)
        if parts or hosted.missing:
            detail = f"{endpoint}: {'; '.join(parts) or 'no instance variant'}"
            context.add("endpoint instances", detail, hosted.formula, hosted.monthly, hosted.missing)


def _file_systems(context: _Context) -> None:
    for logical_id, properties in _typed(context, "AWS::FSx::FileSystem"):
        capacity = properties.get("StorageCapacity")
        lustre = properties.get("LustreConfiguration") or {}
        deployment = lustre.get("DeploymentType", "SCRATCH_1")
        throughput = lustre.get("PerUnitStorageThroughput")
        tier = f"{deployment}/{throughput}" if throughput is not None else str(deployment)
        what = f"{logical_id}: {properties.get('FileSystemType', '?')} {tier}, {capacity} GiB"
        if properties.get("FileSystemType") != "LUSTRE" or properties.get("StorageType", "SSD") != "SSD":
            context.add("FSx file system", what, "-", None, [context.missing(f"FSx {tier} storage")])
            continue
        price = context.prices.price("fsx_lustre_gb_month", context.region, tier)
        if not isinstance(capacity, int) or price is None:
            context.add(
                "FSx for Lustre", what, f"{capacity} GiB x ?", None, [context.missing(f"FSx for Lustre {tier}")]
            )
            continue
        context.add("FSx for Lustre", what, f"{capacity} GiB x {_money(price)}/GB-month", capacity * price)


def _clusters(context: _Context) -> None:
    for logical_id, properties in _typed(context, "AWS::SageMaker::Cluster"):
        name = properties.get("ClusterName", logical_id)
        parts: list[str] = []
        nodes = _Instances(context, "sagemaker_hyperpod_hour", "HyperPod")
        for group in properties.get("InstanceGroups") or []:
            instance_type, count = group.get("InstanceType"), group.get("InstanceCount")
            label = group.get("InstanceGroupName", "?")
            if not isinstance(instance_type, str) or not isinstance(count, int):
                nodes.missing.append(f"instance group {name}/{label} (instance type or count not literal)")
                continue
            parts.append(f"{label} {count} x {instance_type}")
            nodes.add(count, instance_type)
        context.add("HyperPod instances", f"{name}: {'; '.join(parts)}", nodes.formula, nodes.monthly, nodes.missing)


# --------------------------------------------------------------------------- schedules


def runs_per_month(expression: str) -> float | None:
    """Runs a month of an EventBridge/SageMaker ``cron(...)`` or ``rate(...)`` expression; None if not understood.

    A month is 730 hours: hourly is 730 runs, daily 730/24.
    """
    rate = re.fullmatch(r"rate\((\d+) (minutes?|hours?|days?)\)", expression.strip())
    if rate:
        period = int(rate.group(1)) * {"m": 1 / 60, "h": 1, "d": 24}[rate.group(2)[0]]
        return HOURS_PER_MONTH / period if period else None
    cron = re.fullmatch(r"cron\((.+)\)", expression.strip())
    fields = cron.group(1).split() if cron else []
    if len(fields) != 6:
        return None
    minute, hour, day, month, weekday, _year = fields
    minutes, hours = _cron_count(minute, 0, 59), _cron_count(hour, 0, 23)
    months = _cron_count(month, 1, 12, _MONTHS)
    if minutes is None or hours is None or months is None:
        return None
    per_day = minutes * hours
    if day not in ("*", "?"):
        days = _cron_count(day, 1, 31)
        return None if days is None else per_day * days * months / 12
    weekdays = 7 if weekday in ("*", "?") else _cron_count(weekday, 1, 7, _WEEKDAYS)
    if weekdays is None:
        return None
    return per_day * DAYS_PER_MONTH * (weekdays / 7) * (months / 12)


_MONTHS = {
    m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
}
_WEEKDAYS = {d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


def _cron_count(text: str, low: int, high: int, names: dict[str, int] | None = None) -> int | None:
    """How many values of ``low..high`` a cron field matches (lists, ranges, steps); None if not understood."""
    names = names or {}

    def value(token: str) -> int | None:
        number = names.get(token.upper()) if token.upper() in names else (int(token) if token.isdigit() else None)
        return number if number is not None and low <= number <= high else None

    matched: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else (None if step_text else 1)
        if step is None:
            return None
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, last = (value(t) for t in base.split("-", 1))
            if first is None or last is None or first > last:
                return None
            start, end = first, last
        else:
            single = value(base)
            if single is None:
                return None
            start, end = single, (high if step_text else single)
        matched.update(range(start, end + 1, step))
    return len(matched)


def _text(value: Any) -> str | None:
    """A template value as text: a literal, or an ``Fn::Join`` of literals (other parts as ``*``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("Fn::Join"), list) and len(value["Fn::Join"]) == 2:
        separator, parts = value["Fn::Join"]
        if isinstance(separator, str) and isinstance(parts, list):
            return separator.join(p if isinstance(p, str) else "*" for p in parts)
    return None


def _job_instances(job_definition: dict[str, Any]) -> tuple[str, int] | None:
    cluster = (job_definition.get("JobResources") or job_definition.get("MonitoringResources") or {}).get(
        "ClusterConfig"
    ) or {}
    instance_type, count = cluster.get("InstanceType"), cluster.get("InstanceCount")
    return (instance_type, count) if isinstance(instance_type, str) and isinstance(count, int) else None


def _monitoring_run(context: _Context, label: str, schedule: Any, instances: list[tuple[str, int]], what: str) -> None:
    """``instances`` running :attr:`_Context.run_minutes` per run, as often as ``schedule`` says."""
    expression = schedule if isinstance(schedule, str) else ""
    runs = runs_per_month(expression)
    if runs is None or not instances:
        reason = f"schedule {expression or '?'} not understood" if runs is None else "job instances not literal"
        context.add(label, what, "-", None, [f"{what}: {reason}"])
        return
    hours = context.run_minutes / 60
    terms, missing, total, priced = [], [], 0.0, False
    for instance_type, count in instances:
        price = context.prices.price("sagemaker_processing_hour", context.region, instance_type)
        if price is None:
            missing.append(context.missing(f"processing {instance_type}"))
            terms.append(f"{count} x ?")
            continue
        terms.append(f"{count} x {_money(price)}")
        total += count * price * hours * runs
        priced = True
    kinds = " + ".join(f"{c} x {t}" for t, c in instances)
    formula = f"{runs:g} runs x {context.run_minutes:g} min x ({' + '.join(terms)})"
    context.add(label, f"{what}, {expression}: {kinds}", formula, total if priced else None, missing)


def _monitoring_schedules(context: _Context) -> None:
    for logical_id, properties in _typed(context, "AWS::SageMaker::MonitoringSchedule"):
        config = properties.get("MonitoringScheduleConfig") or {}
        name = properties.get("MonitoringScheduleName", logical_id)
        instances = None
        inline = config.get("MonitoringJobDefinition")
        if isinstance(inline, dict):
            instances = _job_instances(inline)
        for reference in _references(config.get("MonitoringJobDefinitionName")):
            definition = context.resources.get(reference, {})
            if isinstance(definition, dict) and isinstance(definition.get("Properties"), dict):
                instances = instances or _job_instances(definition["Properties"])
        schedule = (config.get("ScheduleConfig") or {}).get("ScheduleExpression")
        what = f"{name} ({config.get('MonitoringType', '?')})"
        _monitoring_run(context, "monitoring schedule", schedule, [instances] if instances else [], what)


def _scheduled_pipelines(context: _Context) -> None:
    """The drift-check engine: a schedule (EventBridge rule or Scheduler) that starts a ``*-drift`` pipeline."""
    pipelines = {
        p.get("PipelineName"): p for _, p in _typed(context, "AWS::SageMaker::Pipeline") if p.get("PipelineName")
    }
    starts: list[tuple[Any, str]] = []
    for _, properties in _typed(context, "AWS::Events::Rule"):
        if properties.get("ScheduleExpression") and properties.get("State", "ENABLED") == "ENABLED":
            for target in properties.get("Targets") or []:
                starts.append((properties["ScheduleExpression"], _text(target.get("Arn")) or ""))
    for _, properties in _typed(context, "AWS::Scheduler::Schedule"):
        target = properties.get("Target") or {}
        if properties.get("State", "ENABLED") == "ENABLED":
            arn = _text(target.get("Arn")) or ""
            payload = target.get("Input")
            if "startPipelineExecution" in arn and isinstance(payload, str):
                arn = f":pipeline/{json.loads(payload).get('PipelineName', '')}"
            starts.append((properties.get("ScheduleExpression"), arn))
    for schedule, arn in starts:
        match = re.search(r":pipeline/([^/]+)$", arn)
        if not match or not match.group(1).endswith(DRIFT_PIPELINE_SUFFIX):
            continue
        name = match.group(1)
        definition = _pipeline_definition(pipelines.get(name) or {})
        instances = [] if definition is None else [i for i, _ in _step_instances(definition, "Processing")]
        _monitoring_run(context, "drift check (pipeline)", schedule, instances, name)


def _pipeline_definition(properties: dict[str, Any]) -> dict[str, Any] | None:
    """An inline pipeline definition (a string or the template of an ``Fn::Sub``), parsed; None otherwise."""
    body = (properties.get("PipelineDefinition") or {}).get("PipelineDefinitionBody")
    if isinstance(body, dict) and "Fn::Sub" in body:
        body = body["Fn::Sub"][0] if isinstance(body["Fn::Sub"], list) else body["Fn::Sub"]
    if not isinstance(body, str):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _step_instances(definition: dict[str, Any], step_type: str) -> list[tuple[tuple[str, int], dict[str, Any]]]:
    """((instance type, count), resource config) of the definition's steps of ``step_type``, parameters resolved."""
    defaults: dict[Any, Any] = {
        f"Parameters.{p.get('Name')}": p.get("DefaultValue")
        for p in definition.get("Parameters") or []
        if isinstance(p, dict)
    }

    def resolve(value: Any) -> Any:
        return defaults.get(value.get("Get")) if isinstance(value, dict) and "Get" in value else value

    found = []
    for step in definition.get("Steps") or []:
        if not isinstance(step, dict) or step.get("Type") != step_type:
            continue
        arguments = step.get("Arguments") or {}
        resources = (
            (arguments.get("ProcessingResources") or {}).get("ClusterConfig")
            if step_type == "Processing"
            else arguments.get("ResourceConfig")
        ) or {}
        instance_type, count = resolve(resources.get("InstanceType")), resolve(resources.get("InstanceCount"))
        if isinstance(instance_type, str) and isinstance(count, int):
            found.append(((instance_type, count), resources))
    return found


# --------------------------------------------------------------------------- per-month items


def _keys(context: _Context) -> None:
    count = len(_typed(context, "AWS::KMS::Key"))
    if count:
        price = context.prices.price("kms_key_month", context.region)
        if price is None:
            context.add("KMS keys", f"{count} key(s)", f"{count} x ?", None, [context.missing("KMS key price")])
        else:
            context.add("KMS keys", f"{count} key(s)", f"{count} x {_money(price)}", count * price)


def _tables(context: _Context) -> None:
    for type_ in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
        for logical_id, properties in _typed(context, type_):
            name = properties.get("TableName", logical_id)
            if properties.get("BillingMode", "PROVISIONED") == "PAY_PER_REQUEST":
                context.add("DynamoDB table", f"{name}: on-demand: 0 idle", "-", 0.0)
                continue
            throughput = properties.get("ProvisionedThroughput") or {}
            reads = throughput.get("ReadCapacityUnits")
            writes = throughput.get("WriteCapacityUnits")
            for index in properties.get("GlobalSecondaryIndexes") or []:
                extra = index.get("ProvisionedThroughput") or {}
                reads = reads + extra.get("ReadCapacityUnits", 0) if isinstance(reads, int) else reads
                writes = writes + extra.get("WriteCapacityUnits", 0) if isinstance(writes, int) else writes
            rcu = context.prices.price("dynamodb_rcu_hour", context.region)
            wcu = context.prices.price("dynamodb_wcu_hour", context.region)
            what = f"{name}: provisioned {reads} RCU, {writes} WCU"
            if type_ != "AWS::DynamoDB::Table" or not isinstance(reads, int) or not isinstance(writes, int):
                context.add("DynamoDB table", what, "-", None, [f"provisioned capacity of {name}"])
            elif rcu is None or wcu is None:
                context.add("DynamoDB table", what, "-", None, [context.missing("DynamoDB capacity price")])
            else:
                formula = f"{HOURS_PER_MONTH} h x ({reads} x {_money(rcu)} + {writes} x {_money(wcu)})"
                context.add("DynamoDB table", what, formula, HOURS_PER_MONTH * (reads * rcu + writes * wcu))


def _log_groups(context: _Context) -> None:
    count = len(_typed(context, "AWS::Logs::LogGroup"))
    if count:
        context.add("CloudWatch log groups", f"{count} log group(s): 0 idle (no ingestion)", "-", 0.0)


def _alarms(context: _Context) -> None:
    standard = high = 0
    for _, properties in _typed(context, "AWS::CloudWatch::Alarm"):
        metrics = properties.get("Metrics")
        count = sum(1 for m in metrics if isinstance(m, dict) and "MetricStat" in m) if metrics else 1
        period = properties.get("Period")
        if isinstance(period, int) and period < 60:
            high += count
        else:
            standard += count
    for count, item, label in (
        (standard, "cloudwatch_alarm_month", "standard"),
        (high, "cloudwatch_high_resolution_alarm_month", "high-resolution"),
    ):
        if not count:
            continue
        price = context.prices.price(item, context.region)
        what = f"{count} {label} alarm metric(s)"
        if price is None:
            context.add("CloudWatch alarms", what, f"{count} x ?", None, [context.missing(f"{label} alarm price")])
        else:
            context.add("CloudWatch alarms", what, f"{count} x {_money(price)}", count * price)


def _pipelines_v1(context: _Context) -> None:
    count = sum(1 for _, p in _typed(context, "AWS::CodePipeline::Pipeline") if p.get("PipelineType", "V1") == "V1")
    if count:
        price = context.prices.price("codepipeline_v1_month", context.region)
        what = f"{count} V1 pipeline(s)"
        if price is None:
            context.add("CodePipeline", what, f"{count} x ?", None, [context.missing("CodePipeline V1 price")])
        else:
            context.add("CodePipeline", what, f"{count} x {_money(price)}", count * price)


_HANDLERS = (
    _nat_gateways,
    _public_ips,
    _interface_endpoints,
    _endpoints,
    _file_systems,
    _clusters,
    _monitoring_schedules,
    _scheduled_pipelines,
    _keys,
    _tables,
    _log_groups,
    _alarms,
    _pipelines_v1,
)


# --------------------------------------------------------------------------- warm pools


def warm_pools(stacks: Iterable[StackTemplate], prices: PriceTable) -> list[WarmPool]:
    """Each pipeline training step of ``stacks``: instances x its warm pool (``KeepAlivePeriodInSeconds``), per run."""
    pools = []
    for stack in stacks:
        for resource in (stack.template.get("Resources") or {}).values():
            if not isinstance(resource, dict) or resource.get("Type") != "AWS::SageMaker::Pipeline":
                continue
            properties = resource.get("Properties") or {}
            definition = _pipeline_definition(properties)
            for (instance_type, count), config in _step_instances(definition or {}, "Training"):
                seconds = config.get("KeepAlivePeriodInSeconds") or 0
                minutes = seconds / 60 if isinstance(seconds, int | float) else 0.0
                price = prices.price("sagemaker_training_hour", stack.region, instance_type)
                unpriced: tuple[str, ...] = ()
                if not minutes:
                    per_run: float | None = 0.0
                    formula = "off (no warm pool)"
                elif price is None:
                    per_run, formula = None, f"{count} x {minutes:g} min x ?"
                    unpriced = (f"training {instance_type} in {stack.region}",)
                else:
                    per_run = count * price * minutes / 60
                    formula = f"{count} x {instance_type} x {minutes:g} min x {_money(price)}/h"
                pools.append(
                    WarmPool(
                        project=stack.project or SHARED,
                        stage=stack.stage,
                        pipeline=str(properties.get("PipelineName", "?")),
                        instance_type=instance_type,
                        instance_count=count,
                        minutes=minutes,
                        per_run=per_run,
                        formula=formula,
                        unpriced=unpriced,
                    )
                )
    return pools


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class CostReport:
    items: list[LineItem]
    warm_pools: list[WarmPool]
    prices: PriceTable
    regions: tuple[str, ...]
    run_minutes: float = MONITORING_RUN_MINUTES

    @property
    def stages(self) -> list[str]:
        return sorted({i.stage for i in self.items}, key=_stage_rank)

    @property
    def projects(self) -> list[str]:
        """Projects by name, the shared platform last."""
        names = {i.project for i in self.items}
        return sorted(names - {SHARED}) + ([SHARED] if SHARED in names else [])

    def cell(self, project: str | None = None, stage: str | None = None) -> float:
        """The priced monthly total of a project (None: all), a stage (None: all), or both."""
        return sum(
            i.monthly or 0.0
            for i in self.items
            if (project is None or i.project == project) and (stage is None or i.stage == stage)
        )

    def partial(self, project: str | None = None, stage: str | None = None) -> bool:
        """Whether the cell holds anything unpriced (its total is then a lower bound)."""
        return any(
            i.unpriced
            for i in self.items
            if (project is None or i.project == project) and (stage is None or i.stage == stage)
        )

    @property
    def total(self) -> float:
        return self.cell()

    @property
    def unpriced(self) -> list[str]:
        """What could not be priced, each once, in report order, with where it is."""
        seen: dict[str, None] = {}
        for i in self.items:
            for what in i.unpriced:
                seen.setdefault(f"{what} ({i.project}, {i.stage}, {i.item})", None)
        for pool in self.warm_pools:
            for what in pool.unpriced:
                seen.setdefault(f"{what} ({pool.project}, {pool.stage}, warm pool)", None)
        return list(seen)


def build_report(
    cdk_out: Path, prices: PriceTable | None = None, *, run_minutes: float = MONITORING_RUN_MINUTES
) -> CostReport:
    """The cost report of the cloud assembly in ``cdk_out`` (default prices: the shipped table)."""
    return report_of(read_stacks(Path(cdk_out)), prices or PriceTable.load(), run_minutes=run_minutes)


def report_of(
    stacks: list[StackTemplate], prices: PriceTable, *, run_minutes: float = MONITORING_RUN_MINUTES
) -> CostReport:
    return CostReport(
        items=line_items(stacks, prices, run_minutes=run_minutes),
        warm_pools=warm_pools(stacks, prices),
        prices=prices,
        regions=tuple(sorted({s.region for s in stacks})),
        run_minutes=run_minutes,
    )


def _amount(value: float, partial: bool, marker: str) -> str:
    return f"{value:,.2f}{marker if partial else ''}"


def render_table(report: CostReport, where: str = REPORT_NAME) -> list[str]:
    """The plain-text summary: monthly idle cost per project (rows) and stage (columns), then what is unpriced."""
    stages = report.stages
    width = max([len("total"), *(len(p) for p in report.projects)]) + 2
    head = f"  {'project':<{width}}" + "".join(f"{s:>12}" for s in stages) + f"{'total':>12}"
    lines = [
        f"idle cost estimate, {report.prices.currency}/month at list prices of {report.prices.as_of} "
        f"({HOURS_PER_MONTH} h/month, {', '.join(report.regions)}); details: {where}",
        head,
    ]
    for project in [*report.projects, None]:
        cells = [_amount(report.cell(project, s), report.partial(project, s), "*") for s in stages]
        total = _amount(report.cell(project), report.partial(project), "*")
        lines.append(f"  {project or 'total':<{width}}" + "".join(f"{c:>12}" for c in cells) + f"{total:>12}")
    if report.unpriced:
        lines.append("  * includes unpriced items; unpriced: " + "; ".join(report.unpriced))
    pools = [
        f"{p.project} {p.pipeline}: " + ("off" if not p.minutes else _per_run(p, report.prices.currency))
        for p in report.warm_pools
    ]
    if pools:
        lines.append("  warm pools, per pipeline run (not idle): " + "; ".join(pools))
    return lines


def _per_run(pool: WarmPool, currency: str) -> str:
    cost = "unpriced" if pool.per_run is None else f"{pool.per_run:,.2f} {currency}"
    return f"{pool.instance_count} x {pool.instance_type} x {pool.minutes:g} min = {cost}"


def render_markdown(report: CostReport) -> str:
    """The full report: totals per project and stage, every line item, warm pools, assumptions, exclusions, prices."""
    prices, currency = report.prices, report.prices.currency
    stages = report.stages
    out = [
        "# Idle cost estimate",
        "",
        f"Estimated monthly cost of what the synthesized templates keep running with no traffic, in {currency} at "
        f"public on-demand **list prices as of {prices.as_of}** (`mlops_platform/prices.json`), for "
        f"{', '.join(report.regions)}. An estimate from the templates, not a bill.",
        "",
        f"## Per project and stage ({currency} per month)",
        "",
        "| project | " + " | ".join(stages) + " | total |",
        "|---|" + "---:|" * (len(stages) + 1),
    ]
    for project in [*report.projects, None]:
        cells = [_amount(report.cell(project, s), report.partial(project, s), " + unpriced") for s in stages]
        total = _amount(report.cell(project), report.partial(project), " + unpriced")
        name = project or "**total**"
        out.append(f"| {name} | " + " | ".join(cells) + f" | {total} |")
    out += ["", "## Unpriced", ""]
    out += [f"- {what}" for what in report.unpriced] or ["Every item was priced."]
    out += [
        "",
        "## Line items",
        "",
        f"| project | stage | stack | item | detail | how | {currency}/month |",
        "|---|---|---|---|---|---|---:|",
    ]
    for i in report.items:
        amount = "unpriced" if i.monthly is None else f"{i.monthly:,.2f}" + (" + unpriced" if i.unpriced else "")
        cells = [i.project, i.stage, i.stack, i.item, i.detail, i.formula, amount]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += [
        "",
        "## Warm pools (per pipeline run, not idle)",
        "",
        "A training step with a warm pool keeps its instances, billed at the training rate, for "
        "`pipeline.warm_pool_minutes` after each run.",
        "",
        f"| project | stage | pipeline | training instances | warm pool | {currency} per run |",
        "|---|---|---|---|---|---:|",
    ]
    for p in report.warm_pools:
        cost = "unpriced" if p.per_run is None else f"{p.per_run:,.2f}"
        pool = "off" if not p.minutes else f"{p.minutes:g} min ({p.formula})"
        out.append(
            f"| {p.project} | {p.stage} | {p.pipeline} | {p.instance_count} x {p.instance_type} | {pool} | {cost} |"
        )
    if not report.warm_pools:
        out.append("| - | - | no training step found | - | - | - |")
    out += ["", "## Assumptions", ""]
    assumptions = list(ASSUMPTIONS)
    if report.run_minutes != MONITORING_RUN_MINUTES:
        default, chosen = f"lasts {MONITORING_RUN_MINUTES} minutes", f"lasts {report.run_minutes:g} minutes"
        assumptions = [a.replace(default, chosen) for a in assumptions]
    out += [f"- {a}" for a in assumptions]
    out += ["", "## Not included", ""]
    out += [f"- {e}" for e in EXCLUDED]
    out += ["", f"## Prices ({currency}, list prices as of {prices.as_of})", ""]
    if prices.note:
        out += [prices.note, ""]
    out += [
        "| item | unit | " + " | ".join(report.regions) + " | source |",
        "|---|---|" + "---|" * len(report.regions) + "---|",
    ]
    for name, item in prices.items.items():
        values = [_price_text(item.get("prices", {}).get(region)) for region in report.regions]
        out.append(f"| {name} | {item.get('unit', '')} | " + " | ".join(values) + f" | {item.get('source', '')} |")
    return "\n".join(out) + "\n"


def _price_text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {price:g}" for key, price in value.items()) or "-"
    return "-" if value is None else f"{value:g}"


def write_report(cdk_out: Path, prices: PriceTable | None = None) -> tuple[Path, list[str]]:
    """Write ``<cdk_out>/cost-report.md``; return its path and the plain table to print."""
    report = build_report(Path(cdk_out), prices)
    path = Path(cdk_out) / REPORT_NAME
    path.write_text(render_markdown(report))
    return path, render_table(report, str(path))
