"""CloudWatch alarms on the gateway's ``CostUSD`` metric; every one notifies the alert topic.

The gateway's own counters enforce caps exactly and at once; these alarms are the second line,
for when spend happens that the counters did not see (a bug, a lost settle). Which of them engage
the kill switch is written in their description (``kill_switch_alarm_description``):

* hourly anomaly (CloudWatch anomaly detection band on hourly spend): for people only. The band
  needs about two weeks of history to form, so a static hourly ceiling at ``SPIKE_FACTOR`` times
  the monthly cap's even hourly share covers the first weeks (also for people only);
* per route with ``daily-usd``: 24 h spend at the daily cap engages the route's kill switch;
* per route and globally with ``monthly-usd``: 24 h spend above ``MONTHLY_PACE_FACTOR`` times the
  cap's even daily share (cap / 30) alerts people; with ``[budgets] pace-kill-switch = true`` it
  also engages the scope's kill switch until the next day. Not by default: a good launch day
  spends at that pace without threatening the month, and the gateway's own counters hold the
  true month-to-date sum (beyond an alarm's one-day window) and stop the scope at its cap.

Windows are rolling 24 hours, not calendar days. No data counts as not breaching: no traffic is
no spend.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.core.config import TierupConfig
from functions.core.notifications import kill_switch_alarm_description

from .metrics import COST, route_metric, total_cost

#: hourly spend this many times the monthly cap's even share (cap / 730 h) is a spike
SPIKE_FACTOR = 10.0
#: a day spending 10% of a monthly cap (3 x cap / 30) would exhaust it in ten days
MONTHLY_PACE_FACTOR = 3.0
#: anomaly band width in standard deviations: wide, so a normal busy hour does not page anyone
ANOMALY_STD_DEVS = 3.0
HOURS_PER_MONTH = 730
DAYS_PER_MONTH = 30
DAY = Duration.days(1)
HOUR = Duration.hours(1)


class SpendAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TierupConfig, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.AlarmBase] = []
        self._action = actions.SnsAction(topic)
        project = config.project
        pace_engages = config.budgets.pace_kill_switch

        def pace_description(scope_name: str, why: str) -> str:
            if pace_engages:
                return kill_switch_alarm_description(scope_name, why, period="daily")
            return f"{why} (informs only; [budgets] pace-kill-switch = true also engages the kill switch)"

        self._add(cloudwatch.AnomalyDetectionAlarm(
            self, "HourlyAnomaly",
            alarm_name=f"{project}-spend-hourly-anomaly",
            alarm_description="Hourly LLM spend is above its usual band (anomaly detection; informs only)",
            metric=total_cost(project, HOUR), std_devs=ANOMALY_STD_DEVS, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_UPPER_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING))
        monthly = config.budgets.global_.monthly_usd
        if monthly:
            self._threshold("HourlySpike", f"{project}-spend-hourly-spike", total_cost(project, HOUR),
                            monthly / HOURS_PER_MONTH * SPIKE_FACTOR,
                            f"Hourly LLM spend is over {SPIKE_FACTOR:g}x the pace of the ${monthly:g} "
                            "monthly cap (informs only)")
            self._threshold("GlobalMonthlyPace", f"{project}-spend-global-monthly-pace", total_cost(project, DAY),
                            monthly / DAYS_PER_MONTH * MONTHLY_PACE_FACTOR,
                            pace_description("global", f"24 h spend would exhaust the ${monthly:g} monthly "
                                             f"cap in {DAYS_PER_MONTH / MONTHLY_PACE_FACTOR:g} days"))
        for route, cap in sorted(config.budgets.routes.items()):
            scope_name = f"route:{route}"
            if cap.daily_usd is not None:
                self._threshold(f"Daily{route}", f"{project}-spend-route-{route}-daily",
                                route_metric(project, COST, route, period=DAY), cap.daily_usd,
                                kill_switch_alarm_description(
                                    scope_name, f"24 h spend of route {route} reached its ${cap.daily_usd:g} "
                                    "daily cap", period="daily"))
            if cap.monthly_usd is not None:
                self._threshold(f"MonthlyPace{route}", f"{project}-spend-route-{route}-monthly-pace",
                                route_metric(project, COST, route, period=DAY),
                                cap.monthly_usd / DAYS_PER_MONTH * MONTHLY_PACE_FACTOR,
                                pace_description(scope_name, f"24 h spend of route {route} would exhaust "
                                                 f"its ${cap.monthly_usd:g} monthly cap in "
                                                 f"{DAYS_PER_MONTH / MONTHLY_PACE_FACTOR:g} days"))

    def _threshold(self, construct_id: str, name: str, metric: cloudwatch.Metric, threshold: float,
                   description: str) -> None:
        self._add(cloudwatch.Alarm(
            self, construct_id, alarm_name=name, alarm_description=description, metric=metric,
            threshold=round(threshold, 4), evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING))

    def _add(self, alarm: cloudwatch.AlarmBase) -> None:
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)
