"""The alert topic: spend alarms, AWS Budgets and the gateway's own cap alerts publish here; the
operators' emails and the kill-switch function are subscribed.

Encrypted with a customer-managed KMS key rather than the AWS-managed ``aws/sns`` key, because
CloudWatch alarms and AWS Budgets can publish to an encrypted topic only when the key's policy
lets their service principals use it, and the AWS-managed key's policy cannot be changed.

A topic policy replaces SNS's default one, so each publisher is allowed by name: AWS Budgets, and
CloudWatch for this project's alarms only (``aws:SourceArn`` like ``alarm:{project}-*``, which is
why every alarm's name starts with the project), both from this account only. Without the
CloudWatch statement a deploy succeeds and every alarm fails to notify, visible only in each
alarm's history.
"""

from __future__ import annotations

from aws_cdk import Arn, ArnComponents, ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

#: services that publish alarms and budget notifications to the topic
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")


def project_alarm_arns(scope: Construct, project: str) -> str:
    """``arn:aws:cloudwatch:REGION:ACCOUNT:alarm:{project}-*``: every alarm the stack creates."""
    return Arn.format(ArnComponents(service="cloudwatch", resource="alarm", resource_name=f"{project}-*",
                                    arn_format=ArnFormat.COLON_RESOURCE_NAME), Stack.of(scope))


class AlertTopic(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, project: str, emails: list[str]) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        self.key = kms.Key(self, "Key", enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,
                           pending_window=Duration.days(7),
                           description=f"{project}: encrypts the alert topic")
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="AlarmsAndBudgetsPublishEncrypted",
            principals=[iam.ServicePrincipal(service) for service in PUBLISHING_SERVICES],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy, "*" is this key only
        ))
        self.topic = sns.Topic(self, "Topic", display_name=f"{project} budget alerts",
                               master_key=self.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="BudgetsPublish",
            principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": account}},
        ))
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="ProjectAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": project_alarm_arns(self, project)}},
        ))
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        """Publish to the topic, with the two KMS actions that takes (``Topic.grant_publish``
        grants ``kms:GenerateDataKey*``, a wildcard this grant does without)."""
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["sns:Publish"], resources=[self.topic.topic_arn]))
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn]))
