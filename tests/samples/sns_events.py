"""SNS Lambda events as AWS delivers them: a CloudWatch alarm state change (JSON message) and an
AWS Budgets notification (plain-text message), wrapped in the ``Records[].Sns`` envelope."""

from __future__ import annotations

import json

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:tierup-alerts"


def sns_event(message: str, subject: str | None = None, attributes: dict | None = None) -> dict:
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": f"{TOPIC_ARN}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
        "Sns": {
            "Type": "Notification", "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": TOPIC_ARN, "Subject": subject, "Message": message,
            "Timestamp": "2026-11-23T12:00:00.000Z", "SignatureVersion": "1", "Signature": "EXAMPLE",
            "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
            "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": attributes or {}}}]}


def alarm_message(description: str | None, state: str = "ALARM", route: str | None = "chat") -> str:
    return json.dumps({
        "AlarmName": "tierup-spend-cap-route-chat",
        "AlarmDescription": description,
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-11-01T09:00:00.000+0000",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed: 1 datapoint [512.3 (23/11/26 11:00:00)] was greater than "
                          "or equal to the threshold (500.0).",
        "StateChangeTime": "2026-11-23T12:00:00.000+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:tierup-spend-cap-route-chat",
        "OldStateValue": "OK",
        "OKActions": [], "AlarmActions": [TOPIC_ARN], "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "CostUSD", "Namespace": "tierup", "StatisticType": "Statistic",
            "Statistic": "SUM", "Unit": None,
            "Dimensions": [{"value": route, "name": "Route"}] if route else [],
            "Period": 86400, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Threshold": 500.0,
            "TreatMissingData": "missing", "EvaluateLowSampleCountPercentile": ""},
    })


def budget_message(alert_type: str = "ACTUAL", threshold: str = "$1,000.00", amount: str = "$1,012.40",
                   budgeted: str = "$1,000.00") -> str:
    return (
        "AWS Budget Notification November 23, 2026\n"
        "AWS Account 123456789012\n\n"
        "Dear AWS Customer,\n\n"
        f"You requested that we alert you when the {alert_type} Cost associated with your tierup-monthly "
        f"budget is greater than {threshold} for the current month. The {alert_type} Cost associated with "
        f"this budget is {amount}. You can find additional details below and by accessing the AWS "
        "Budgets dashboard [1].\n\n"
        "Budget Name: tierup-monthly\n"
        "Budget Type: Cost\n"
        f"Budgeted Amount: {budgeted}\n"
        f"Alert Type: {alert_type}\n"
        f"Alert Threshold: > {threshold}\n"
        f"{alert_type} Amount: {amount}\n\n"
        "[1] https://console.aws.amazon.com/billing/home#/budgets\n")


BUDGET_SUBJECT = "AWS Budgets: tierup-monthly has exceeded your alert threshold"
