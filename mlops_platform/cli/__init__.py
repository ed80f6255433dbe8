"""``mlops``: the admin CLI for model approvals, releases and their rollout.

Commands (see ``mlops --help``)::

    mlops approvals list [--project P]        versions waiting for approval
    mlops approvals show ARN                  metrics vs thresholds vs what runs now, evidence
    mlops approve ARN --as NAME --reason TEXT approve as approver NAME (the approver role, NAME as STS source
                                              identity); refused, exit 3, if NAME or metrics/evidence fail the policy
    mlops reject ARN [--as NAME] --reason TEXT
                                              reject (the rejected Lambda rolls back what it served)
    mlops releases [--project P]              what runs where, and the release history
    mlops releases export --project P --stage S [--out DIR] [--expect-arn ARN]
                                              write the stage's release manifest (the deploy's first step)
    mlops shadow report P [--hours N]         staging champion vs challenger (staging credentials)
    mlops promote P --to prod --reason TEXT   record the prod release if the shadow test passes, deploy
    mlops verify P --stage S [--manifest F]   the live endpoint serves the manifest (stage credentials)
    mlops scaling detach P --stage S          before a deploy: lift autoscaling off variants whose instance
                                              type changes (SageMaker refuses that update otherwise)
    mlops scaling reattach P --stage S        after it: restore or re-register that scaling (stage credentials)
    mlops loadtest P --stage S --tps N --latency-ms P
                                              rising steps of N TPS (Locust, headless) against the stage's
                                              endpoint: p50/p90/p99, errors, the instances N needs (prod: --i-know)
    mlops monitoring status P [--stage S]    Model Monitor schedules or drift pipeline runs, the latest
                                              violations report, the monitoring alarms (stage credentials)
    mlops dlq list P                          approval events the handlers failed on, and why
    mlops dlq redrive P [--dry-run] [--message-id ID]
                                              replay them through their handlers (idempotent)
    mlops new-project NAME [--from P]         write config/projects/NAME.yaml, checked with the whole config
                                              (no AWS), and print the stacks it adds per account role
    mlops remove-project NAME [--execute] [--delete-models]
                                              plan (default) or carry out the removal of a deployed project,
                                              in the order AWS requires; resumes after a failure

Global options: ``--config-dir`` (default ``config``), ``--profile``,
``--region`` (default: the region of the account the command works in) and
``--role-arn`` (assume a role in that account first; default: use the
profile's credentials as they are).

Exit codes: 0 done; 1 AWS error or a failed verification; 2 usage, config,
unknown project or model package, missing credentials; 3 refused by the
approval policy or the promotion rule.

The command logic lives in :mod:`mlops_platform.cli.core` (approvals,
releases) and one module per serving command (:mod:`~mlops_platform.cli.export`,
:mod:`~mlops_platform.cli.shadow`, :mod:`~mlops_platform.cli.promote`,
:mod:`~mlops_platform.cli.verify`, :mod:`~mlops_platform.cli.scaling`) as
functions that take boto3 clients, so tests (and other tools) call them directly. Importing
this package is cheap: boto3 and rich load only when :func:`main` runs.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (``mlops = mlops_platform.cli:main``)."""
    from mlops_platform.cli.app import run

    return run(argv)
