"""Structured logs: one JSON object per line on stdout (Lambda sends it to CloudWatch Logs).

The trigger writes exactly one ``decision`` line per event (``handler``,
``project``, ``event_id``, ``decision`` and what led to it), so a Logs Insights
query such as ``filter decision = "started"`` lists every retraining start.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def log(message: str, *, level: str = "INFO", **fields: Any) -> dict[str, Any]:
    """Write ``message`` and ``fields`` as one JSON line; returns the record (the handler returns it too)."""
    record = {"level": level, "message": message, **fields}
    # sys.stdout is looked up on every call so test capture sees the line.
    print(json.dumps(record, default=str, sort_keys=True), file=sys.stdout, flush=True)
    return record
