"""The AWS Budgets backstop: a monthly COST budget of ``[budgets.global] monthly-usd``.

Billing data lags by hours, so this is the last line, not the first: it emails the operators and
notifies the alert topic at each ``[budgets] thresholds`` share of ACTUAL spend, and once when
spend is FORECASTED to pass the cap. The kill switch engages only on ACTUAL spend at the cap.
The budget covers the whole account's cost (cost-allocation tags must be activated by hand before
a budget can filter on them).

Budget names are unique per account, not per region: the name carries the project and the
region, so one project deployed in two regions gets two budgets instead of a failed deploy.
AWS Budgets takes at most 5 notifications per budget, so the config allows at most 4 thresholds
(``[budgets] thresholds``, validated with the config) besides the forecast.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.core.config import TierupConfig

#: AWS Budgets accepts at most this many email subscribers per notification
MAX_EMAIL_SUBSCRIBERS = 10


def _notification(kind: str, percent: float, subscribers: list) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
    return budgets.CfnBudget.NotificationWithSubscribersProperty(
        notification=budgets.CfnBudget.NotificationProperty(
            notification_type=kind, comparison_operator="GREATER_THAN",
            threshold=percent, threshold_type="PERCENTAGE"),
        subscribers=subscribers)


class MonthlyBudget(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TierupConfig, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        monthly = config.budgets.global_.monthly_usd
        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=email)
                       for email in config.budgets.alert_emails[:MAX_EMAIL_SUBSCRIBERS]]
        subscribers.append(budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn))
        thresholds = sorted({round(share * 100, 2) for share in config.budgets.thresholds})
        notifications = [_notification("ACTUAL", percent, subscribers) for percent in thresholds]
        notifications.append(_notification("FORECASTED", 100, subscribers))
        self.budget = budgets.CfnBudget(
            self, "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=f"{config.project}-{Aws.REGION}-monthly", budget_type="COST", time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly, unit="USD")),
            notifications_with_subscribers=notifications,
        )
        # Budgets checks at creation that it may publish: the topic's policy must exist first.
        self.budget.node.add_dependency(topic)
