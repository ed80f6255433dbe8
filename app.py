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
    from mlops_platform.context import missing_zone_context
    from mlops_platform.release_manifest import load_manifests

    config_dir = Path(os.environ.get("MLOPS_CONFIG_DIR", ROOT / "config"))
    releases_dir = Path(os.environ.get("MLOPS_RELEASES_DIR", ROOT / "releases"))
    try:
        config = load_config(config_dir)
        releases = load_manifests(releases_dir, config)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    # Both the CDK CLI and a direct run take the zones from the committed file.
    missing = missing_zone_context(config, committed_context())
    if missing:
        print(f"config error: {missing}", file=sys.stderr)
        return 2

    # The CDK CLI passes context and output dir itself; a direct run reads the committed ones.
    via_cli = "CDK_CONTEXT_JSON" in os.environ
    outdir = os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out")
    app = create_app(config, outdir=outdir, context=None if via_cli else committed_context(), releases=releases)
    try:
        app.synth()
    except RuntimeError as err:  # cdk-nag or guardrail findings: list them instead of a jsii traceback
        if "ValidationFailed" not in str(err):
            raise
        print(validation_failures(Path(outdir) / "validation-report.json"), file=sys.stderr)
        return 1
    return 0


def validation_failures(report: Path) -> str:
    """The findings of a failed synth, one line each: rule, construct and what the rule says."""
    lines = []
    for plugin in json.loads(report.read_text()).get("pluginReports", []) if report.exists() else []:
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                lines.append(f"  {violation['ruleName']}: {construct['constructPath']}: {violation['description']}")
    return "\n".join([f"synth failed: {len(lines)} finding(s); full report: {report}", *lines])


def committed_context() -> dict:
    """``cdk.context.json`` plus cdk.json's context and settings, as the CDK CLI would pass them."""
    context = json.loads((ROOT / "cdk.context.json").read_text())
    context.update(json.loads((ROOT / "cdk.json").read_text()).get("context", {}))
    context.update(
        {
            "aws:cdk:version-reporting": False,
            "aws:cdk:enable-path-metadata": False,
            "aws:cdk:enable-asset-metadata": False,
        }
    )
    return context


def create_app(config, *, outdir: str, context: dict | None, releases=None):
    """An ``App`` holding the whole platform for ``config``; the caller synthesizes it.

    ``releases`` maps (project, stage) to the release manifest a serving stack
    deploys (see ``mlops_platform.release_manifest``); default: none released.
    """
    from aws_cdk import App

    from stacks.platform import build_platform

    app = App(context=context, outdir=outdir)
    build_platform(app, config, definition_cache=ROOT / ".cache" / "pipeline-definitions", releases=releases or {})
    return app


if __name__ == "__main__":
    sys.exit(main())
