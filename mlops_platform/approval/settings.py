"""Environment of the approval Lambdas, parsed once into a typed, frozen :class:`Settings`.

Variables (all required):

``TOPIC_ARN``
    the project's approvers' SNS topic.
``RELEASES_TABLE``
    DynamoDB table of release records (keys ``pk``/``sk``, strings; TTL on ``expires_at``).
``DEPLOY_PIPELINE_NAME``
    CodePipeline (V2) that deploys a released version; declares the variables
    ``PROJECT``, ``STAGE`` and ``MODEL_PACKAGE_ARN``.
``APPROVAL_POLICY``
    JSON: ``project``, ``model_package_group``, ``approvers``, ``primary_metric``,
    ``metric_thresholds``, ``required_evidence``, ``allow_self_approval``.

A missing or invalid variable raises :class:`SettingsError` on the first
invocation: that is a deployment fault, so the event goes to Lambda's retries
and then the dead-letter queue instead of being dropped.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_platform.approval.policy import Policy, PolicyError

REQUIRED = ("TOPIC_ARN", "RELEASES_TABLE", "DEPLOY_PIPELINE_NAME", "APPROVAL_POLICY")


class SettingsError(RuntimeError):
    """The Lambda's environment is incomplete or invalid."""


@dataclass(frozen=True)
class Settings:
    topic_arn: str
    releases_table: str
    deploy_pipeline_name: str
    policy: Policy

    @property
    def project(self) -> str:
        return self.policy.project

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        missing = [name for name in REQUIRED if not environ.get(name)]
        if missing:
            raise SettingsError(f"missing environment variables: {', '.join(missing)}")
        try:
            policy = Policy.from_dict(json.loads(environ["APPROVAL_POLICY"]))
        except json.JSONDecodeError as err:
            raise SettingsError(f"APPROVAL_POLICY is not valid JSON: {err}") from None
        except PolicyError as err:
            raise SettingsError(f"APPROVAL_POLICY: {err}") from None
        if not environ["TOPIC_ARN"].startswith("arn:"):
            raise SettingsError("TOPIC_ARN must be an SNS topic ARN")
        return cls(
            topic_arn=environ["TOPIC_ARN"],
            releases_table=environ["RELEASES_TABLE"],
            deploy_pipeline_name=environ["DEPLOY_PIPELINE_NAME"],
            policy=policy,
        )


@functools.cache
def get_settings() -> Settings:
    """The settings of this Lambda environment, read on first use and then kept."""
    return Settings.from_env(os.environ)
