"""Offline-store compaction: Athena ``OPTIMIZE ... REWRITE DATA USING BIN_PACK`` then ``VACUUM`` of one table.

Trigger: the feature group's EventBridge schedule (``offline_store.compaction.schedule``).
Reads the group's Glue table from ``DescribeFeatureGroup`` and runs both
statements in the project's Athena workgroup, one after the other, waiting for
each. A failure raises (Lambda retries the same event twice, then the failure
record goes to the dead-letter queue). Logic: :mod:`mlops_platform.compaction.compact`.
"""

from __future__ import annotations

from typing import Any

from mlops_platform.compaction.compact import get_clients, handle, settings_from_env


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, settings_from_env(), get_clients(), remaining_ms=context.get_remaining_time_in_millis)
