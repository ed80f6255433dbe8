"""The retraining trigger's core: start a project's SageMaker Pipeline when one of its monitoring alarms fires.

Monitoring alarms of a serving stage (named ``<prefix>-<project>-<stage>-monitoring-*``,
description ending in ``[project=<p> stage=<s> version=<n>]``) emit "CloudWatch
Alarm State Change" events; EventBridge forwards them from the stage account via
governance to the dev account, where :mod:`lambda.retrain.trigger` (a thin handler)
calls :func:`mlops_platform.retraining.trigger.handle`.

Standard library and boto3 only: synth bundles this package alone, next to the
handler (``bundled_asset(lambda/retrain, "mlops_platform.retraining")``), so it
imports nothing outside itself (it has its own ``log``).

Modules: ``settings`` (the Lambda's environment), ``alarm`` (event parsing and
acceptance), ``cooldown`` (the claim record in the retraining table), ``trigger``
(the handling and the SageMaker call), ``log``.
"""
