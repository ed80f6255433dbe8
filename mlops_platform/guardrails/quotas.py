"""Quota rules: what a new account's service quotas refuse.

- ``MLOps-LambdaReservedConcurrency``: Lambda refuses a
  ``ReservedConcurrentExecutions`` that would leave less than the account's
  minimum unreserved concurrency (100 of the default quota of 1,000; new
  accounts often start with a quota of 10, where any reservation fails), so
  function creation fails. Reservations are flagged unless config asks for
  them (``approval_workflow.reserved_concurrency``), and even then a stage may
  reserve at most 900 in all. Source: Lambda Developer Guide, "Configuring
  reserved concurrency"
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops_platform.guardrails.core import Finding, GuardrailSettings, StageTemplates

RULES = {
    "MLOps-LambdaReservedConcurrency": (
        "Reserved concurrency fails in new accounts (quota 10, 10 must stay unreserved); "
        "reserve only where config asks, at most 900 per account."
    ),
}
DEFAULT_QUOTA = 1000
MINIMUM_UNRESERVED = 100


def check(stage: StageTemplates, settings: GuardrailSettings) -> Iterator[Finding]:
    reserved: list[tuple[str, int, str]] = []
    for stack in stage.stacks:
        for logical_id, props in stack.of_type("AWS::Lambda::Function"):
            if "ReservedConcurrentExecutions" in props:
                reserved.append((logical_id, int(props["ReservedConcurrentExecutions"]), stack.path))
    total = sum(count for _, count, _ in reserved)
    for logical_id, count, path in reserved:
        if not settings.reserved_concurrency:
            yield Finding(
                "MLOps-LambdaReservedConcurrency",
                logical_id,
                "ReservedConcurrentExecutions",
                f"reserves {count}; set approval_workflow.reserved_concurrency in platform.yaml to ask for it",
                template=path,
            )
        elif total > DEFAULT_QUOTA - MINIMUM_UNRESERVED:
            yield Finding(
                "MLOps-LambdaReservedConcurrency",
                logical_id,
                "ReservedConcurrentExecutions",
                f"the stage reserves {total} in all, more than {DEFAULT_QUOTA - MINIMUM_UNRESERVED}",
                template=path,
            )
