"""Structured logs: one JSON object per line on stdout (Lambda sends it to CloudWatch Logs).

Every handler writes exactly one ``decision`` line per event, with ``handler``,
``project``, ``arn``, ``status`` and ``decision``, so a Logs Insights query such
as ``filter decision = "reverted"`` finds every reverted approval.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def log(message: str, *, level: str = "INFO", **fields: Any) -> dict[str, Any]:
    """Write ``message`` and ``fields`` as one JSON line; returns the record (the handlers return it too)."""
    record = {"level": level, "message": message, **fields}
    # sys.stdout is looked up on every call so test capture sees the line.
    print(json.dumps(record, default=str, sort_keys=True), file=sys.stdout, flush=True)
    return record
