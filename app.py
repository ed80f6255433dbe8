#!/usr/bin/env python3
"""CDK entry point: read config/ once, build the platform, synthesize.

Run through the pinned CDK CLI (``make synth``) or directly (``python app.py``);
a bad config prints one line naming file and field and exits 2 before anything
is written.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> int:
    from mlops_platform.config import ConfigError, load_config

    config_dir = Path(os.environ.get("MLOPS_CONFIG_DIR", ROOT / "config"))
    try:
        config = load_config(config_dir)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2

    from aws_cdk import App

    from stacks.platform import build_platform

    # The CDK CLI passes context itself; a direct run reads the committed lookups.
    context = outdir = None
    if "CDK_CONTEXT_JSON" not in os.environ:
        context = json.loads((ROOT / "cdk.context.json").read_text())
        context.update(json.loads((ROOT / "cdk.json").read_text()).get("context", {}))
    if "CDK_OUTDIR" not in os.environ:
        outdir = str(ROOT / "cdk.out")
    app = App(context=context, outdir=outdir)
    build_platform(app, config)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
