"""Dead letters are seen (issue item 6): the DLQ's depth alarms to the owners' topic, whose key admits CloudWatch."""

from __future__ import annotations

from aws_cdk.assertions import Match, Template


def _stack(example, kind):
    name = next(n for n in example.construct_path if n.startswith("mlops-governance") and n.endswith(kind))
    return Template.from_json(example.template(name))


def test_dead_letter_depth_alarms_to_the_owners_topic(example):
    template = _stack(example, "approval")
    queue = next(iter(template.find_resources("AWS::SQS::Queue")))
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "EvaluationPeriods": 1,
            "AlarmActions": [{"Ref": topic}],
            "TreatMissingData": "notBreaching",
        },
    )


def test_the_governance_key_admits_cloudwatch_alarms(example):
    template = _stack(example, "baseline")
    template.has_resource_properties(
        "AWS::KMS::Key",
        {"KeyPolicy": {"Statement": Match.array_with([Match.object_like(
            {"Sid": "CloudWatchAlarms", "Principal": {"Service": "cloudwatch.amazonaws.com"}})])}},
    )  # fmt: skip
