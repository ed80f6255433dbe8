"""Environment of the retraining trigger, parsed once into a typed, frozen :class:`Settings`.

Variables (all required):

``RETRAIN_TABLE``
    DynamoDB table of retraining starts (hash key ``pk``, string; one item per project).
``PIPELINE_NAME``
    the project's SageMaker Pipeline in this (dev) account; declares the string
    parameters ``RetrainReason``, ``TriggeredByStage`` and ``TriggeredByVersion``.
``PROJECT``
    the project whose alarms this function answers.
``COOLDOWN_MINUTES``
    whole minutes (0 or more) after a start during which further alarms start nothing.
``ALARM_PREFIXES``
    JSON list of accepted alarm name prefixes, one per monitored stage
    (``Naming.monitoring_alarm_prefix(project, stage)``: ``<prefix>-<project>-<stage>-monitoring-``).
    Each must name exactly one stage of ``ACCOUNTS``.
``ACCOUNTS``
    JSON object of monitored stage -> 12-digit account id; an alarm event is
    accepted only from the account of its stage.

A missing or invalid variable raises :class:`SettingsError` on the first
invocation: a deployment fault, so the event goes to Lambda's retries instead
of being dropped.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REQUIRED = ("RETRAIN_TABLE", "PIPELINE_NAME", "PROJECT", "COOLDOWN_MINUTES", "ALARM_PREFIXES", "ACCOUNTS")
MAX_COOLDOWN_MINUTES = 31 * 24 * 60
_ACCOUNT_ID = re.compile(r"\d{12}")
_STAGE = re.compile(r"[a-z][a-z0-9]*")


class SettingsError(RuntimeError):
    """The Lambda's environment is incomplete or invalid."""


@dataclass(frozen=True)
class Settings:
    retrain_table: str
    pipeline_name: str
    project: str
    cooldown_minutes: int
    # accepted alarm name prefix -> its stage
    alarm_prefixes: Mapping[str, str]
    # monitored stage -> account id
    accounts: Mapping[str, str]

    def stage_of(self, alarm_name: str) -> str | None:
        """The stage whose accepted prefix ``alarm_name`` starts with (None: not one of the project's alarms)."""
        for prefix, stage in self.alarm_prefixes.items():
            if alarm_name.startswith(prefix):
                return stage
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        missing = [name for name in REQUIRED if not environ.get(name, "").strip()]
        if missing:
            raise SettingsError(f"missing environment variables: {', '.join(missing)}")
        project = environ["PROJECT"].strip()
        accounts = _accounts(_json(environ, "ACCOUNTS"))
        prefixes = _prefixes(_json(environ, "ALARM_PREFIXES"), project, accounts)
        return cls(
            retrain_table=environ["RETRAIN_TABLE"].strip(),
            pipeline_name=environ["PIPELINE_NAME"].strip(),
            project=project,
            cooldown_minutes=_cooldown(environ["COOLDOWN_MINUTES"]),
            alarm_prefixes=prefixes,
            accounts=accounts,
        )


def _json(environ: Mapping[str, str], name: str) -> Any:
    try:
        return json.loads(environ[name])
    except json.JSONDecodeError as err:
        raise SettingsError(f"{name} is not valid JSON: {err}") from None


def _cooldown(text: str) -> int:
    try:
        minutes = int(text.strip())
    except ValueError:
        raise SettingsError(f"COOLDOWN_MINUTES must be a whole number of minutes, got {text!r}") from None
    if not 0 <= minutes <= MAX_COOLDOWN_MINUTES:
        raise SettingsError(f"COOLDOWN_MINUTES must be between 0 and {MAX_COOLDOWN_MINUTES}, got {minutes}")
    return minutes


def _accounts(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise SettingsError('ACCOUNTS must be a non-empty JSON object of stage -> account id, e.g. {"prod": "444…"}')
    accounts = {}
    for stage, account in value.items():
        if not _STAGE.fullmatch(str(stage)):
            raise SettingsError(f"ACCOUNTS: {stage!r} is not a stage name")
        if not isinstance(account, str) or not _ACCOUNT_ID.fullmatch(account):
            raise SettingsError(f"ACCOUNTS: the account of stage {stage} must be a 12-digit string, got {account!r}")
        accounts[str(stage)] = account
    return accounts


def _prefixes(value: Any, project: str, accounts: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(value, list) or not value or not all(isinstance(p, str) and p for p in value):
        raise SettingsError("ALARM_PREFIXES must be a non-empty JSON list of alarm name prefixes")
    prefixes: dict[str, str] = {}
    for prefix in value:
        if f"-{project}-" not in f"-{prefix}":
            raise SettingsError(f"ALARM_PREFIXES: {prefix!r} does not name project {project}")
        stages = [stage for stage in accounts if prefix.endswith(f"-{project}-{stage}-monitoring-")]
        if len(stages) != 1:
            raise SettingsError(
                f"ALARM_PREFIXES: {prefix!r} must end with '-{project}-<stage>-monitoring-' for one stage of "
                f"ACCOUNTS ({', '.join(sorted(accounts))})"
            )
        if stages[0] in prefixes.values():
            raise SettingsError(f"ALARM_PREFIXES: more than one prefix for stage {stages[0]}")
        prefixes[prefix] = stages[0]
    return prefixes


@functools.cache
def get_settings() -> Settings:
    """The settings of this Lambda environment, read on first use and then kept."""
    return Settings.from_env(os.environ)
