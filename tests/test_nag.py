"""cdk-nag: every stack has no unacknowledged finding, in both account layouts."""

from __future__ import annotations

import pytest

from tests.test_platform_stacks import EXPECTED_STACKS


@pytest.mark.parametrize("stack", sorted(EXPECTED_STACKS))
def test_stack_has_no_unacknowledged_findings(example, stack):
    assert stack in example.construct_path
    assert example.findings_in(stack) == []


def test_synth_passed_every_pack(example):
    assert example.error is None, example.error
    assert example.findings == []


def test_single_account_layout_passes_every_pack(single_account):
    assert single_account.error is None, single_account.error
    assert single_account.findings == []


def test_acknowledgement_needs_a_reason():
    from aws_cdk import App, Stack
    from aws_cdk import aws_sns as sns

    from mlops_platform.nag import acknowledge

    topic = sns.Topic(Stack(App(), "S"), "T")
    with pytest.raises(ValueError, match="needs a reason"):
        acknowledge(topic, "AwsSolutions-SNS3", "  ")


def test_a_finding_fails_the_synth(tmp_path):
    """An unencrypted topic in a stage with the packs fails synthesis: the gate is real."""
    from aws_cdk import App, Stack, Stage
    from aws_cdk import aws_sns as sns

    from mlops_platform.nag import add_rule_packs

    app = App(outdir=str(tmp_path))
    stage = Stage(app, "Probe")
    add_rule_packs(stage, ["AwsSolutions"])
    sns.Topic(Stack(stage, "S"), "Plain")
    with pytest.raises(RuntimeError, match="ValidationFailed.*SNS Topic does not require publishers to use SSL"):
        app.synth()
