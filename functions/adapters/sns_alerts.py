"""Budget alerts to the SNS alert topic (email subscribers read the body; the kill-switch
function reads the message attributes). Never decides what to send: that is the core's job."""

from __future__ import annotations

import logging

log = logging.getLogger("tierup.alerts")


class SnsAlertPublisher:
    def __init__(self, client_factory, topic_arn: str) -> None:
        self._client_factory = client_factory
        self._topic_arn = topic_arn

    def publish(self, subject: str, body: str, attributes: dict[str, str]) -> None:
        self._client_factory().publish(
            TopicArn=self._topic_arn, Subject=subject, Message=body,
            MessageAttributes={name: {"DataType": "String", "StringValue": value}
                               for name, value in attributes.items() if value})


class LogAlertPublisher:
    """Where no topic is configured (``TIERUP_ALERT_TOPIC_ARN`` unset): alerts go to the log only."""

    def publish(self, subject: str, body: str, attributes: dict[str, str]) -> None:
        log.warning("budget alert (no TIERUP_ALERT_TOPIC_ARN, so not emailed): %s\n%s", subject, body)
