"""Synth leaves no CDK warning unexplained: the summary lists every one, and the shipped variants have none."""

from __future__ import annotations

import pytest

from mlops_platform.summary import summarize, warnings


@pytest.mark.parametrize("variant", ["example", "single_account"])
def test_no_cdk_warnings(variant, request):
    synth = request.getfixturevalue(variant)
    assert warnings(synth.outdir) == []


def test_summary_lists_every_warning(tmp_path):
    (tmp_path / "manifest.json").write_text('{"artifacts": {}}')
    stage = tmp_path / "assembly-Dev"
    stage.mkdir()
    (stage / "manifest.json").write_text(
        '{"artifacts": {"s": {"type": "aws:cloudformation:stack", "metadata": '
        '{"/Dev/S/Bucket": [{"type": "aws:cdk:warning", "data": "access logs refused [ack: x]"}]}}}}'
    )
    lines = summarize(tmp_path)
    assert "CDK warnings: 1" in lines
    assert "  /Dev/S/Bucket: access logs refused [ack: x]" in lines
