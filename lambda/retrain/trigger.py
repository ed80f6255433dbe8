"""Retraining trigger: start the project's SageMaker Pipeline when one of its monitoring alarms fires.

Trigger: EventBridge rule on the dev account's default bus for "CloudWatch
Alarm State Change" events of the project's monitoring alarms
(``<prefix>-<project>-<stage>-monitoring-*``), forwarded from the staging/prod
accounts through governance.

A transition to ``ALARM`` of one of the project's alarms, from its stage's
account, starts the pipeline with ``RetrainReason``, ``TriggeredByStage`` and
``TriggeredByVersion`` unless a retraining started within the cool-down;
everything else is logged and dropped. A failed start is raised (Lambda
retries). Logic: :mod:`mlops_platform.retraining.trigger`; environment:
:mod:`mlops_platform.retraining.settings`.
"""

from __future__ import annotations

from typing import Any

from mlops_platform.retraining.settings import get_settings
from mlops_platform.retraining.trigger import get_clients, handle


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, get_settings(), get_clients())
