"""The tierup stack: composes the constructs and grants each function what it needs, nothing more.

    gateway      reads keys; reads and writes usage, cache, state; invokes the configured Bedrock
                 models; publishes to the alert topic (its own cap-reached alerts)
    policy       reads and writes usage and state; reads the Modal token
    kill switch  writes state, reads usage; reads the Modal token; sets the gateway's concurrency
                 (a hard stop, and ``[gateway] reserved-concurrency`` at deploy time)

The gateway runs on Lambda or, with ``[gateway] hosting = "container"``, as an ECS service
(infra/gateway_container.py); both get the grants and environment below through the same calls
(``grantee``, ``role``, ``add_environment``). A container gateway has no function for the kill
switch to stop: its hard stop refuses every request through the flags, and ``max-tasks`` bounds
what the gateway itself can cost.

The outputs named by ``functions.core.stack_outputs`` (table names, the gateway function, the
alert topic) are how the ``tierup`` CLI finds this stack's resources.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.adapters.provider_keys import provider_key_names
from functions.core.config import TierupConfig
from functions.core.stack_outputs import ALERT_TOPIC_ENV, GATEWAY_FUNCTION_ENV, output_key

from .alert_topic import AlertTopic
from .batch import BatchWork
from .bedrock_access import bedrock_invoke_statement
from .budget import MonthlyBudget
from .dashboard import OperationsDashboard
from .function_alarms import FunctionErrorAlarms
from .gateway import GatewayFunction
from .gateway_alarms import GatewayAlarms
from .gateway_concurrency import GatewayConcurrency
from .gateway_container import GatewayContainer, GatewayContainerAlarms
from .kill_switch import KillSwitch
from .modal_secret import ModalTokenSecret
from .policy import TrafficPolicy
from .provider_keys import ProviderKeysSecret
from .spend_alarms import SpendAlarms
from .tables import TierupTables


class TierupStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: TierupConfig,
                 gateway_code: lambda_.Code, control_code: lambda_.Code, **kwargs) -> None:
        """``gateway_code`` runs the gateway; ``control_code`` (with the Modal client) runs the
        policy and the kill switch."""
        super().__init__(scope, construct_id, description=f"{config.project}: LLM gateway, quotas, "
                         "budgets and GPU traffic policy", **kwargs)
        project = config.project
        self.config = config
        self.tables = TierupTables(self, "Tables")
        self.modal_secret = ModalTokenSecret(self, "ModalToken", project=project).secret

        # one set of grants and settings, whichever host runs the gateway ([gateway] hosting)
        self.gateway = self._gateway_host(config, gateway_code)
        self.gateway.role.add_to_principal_policy(bedrock_invoke_statement(
            config, region=self.region, account=self.account, partition=self.partition))
        self.tables.grant_read(self.gateway.grantee, "keys")
        key_names = provider_key_names(config)
        self.provider_keys = None
        if key_names:
            self.provider_keys = ProviderKeysSecret(self, "ProviderKeys", project=project, names=key_names)
            self.gateway.add_environment(self.provider_keys.env_var, self.provider_keys.secret.secret_arn)
            self.provider_keys.secret.grant_read(self.gateway.grantee)
        self.tables.grant_read_write(self.gateway.grantee, "usage", "cache", "state")

        self.policy = TrafficPolicy(self, "Policy", config=config, code=control_code, environment={
            **self.tables.environment("usage", "state"),
            "TIERUP_MODAL_SECRET_ARN": self.modal_secret.secret_arn})
        self.tables.grant_read_write(self.policy.function, "usage", "state")
        self.modal_secret.grant_read(self.policy.function)
        if self.provider_keys is not None:  # its GPU health probe sends the tiers' proxy auth token
            self.policy.function.add_environment(self.provider_keys.env_var, self.provider_keys.secret.secret_arn)
            self.provider_keys.secret.grant_read(self.policy.function)

        self.alerts = AlertTopic(self, "Alerts", project=project, emails=config.budgets.alert_emails)
        self.gateway.add_environment(ALERT_TOPIC_ENV, self.alerts.topic.topic_arn)
        self.alerts.grant_publish(self.gateway.grantee)
        # the policy bills GPU time as spend: a cap it reaches sends its alert like a request would
        self.policy.function.add_environment("TIERUP_ALERT_TOPIC_ARN", self.alerts.topic.topic_arn)
        self.alerts.grant_publish(self.policy.function)
        self.kill_switch = KillSwitch(self, "KillSwitch", project=project, code=control_code, tables=self.tables,
                                      topic=self.alerts.topic, gateway=self.gateway_function,
                                      modal_secret=self.modal_secret)

        self.batch = None
        if config.batch.enabled:
            self.batch = BatchWork(self, "Batch", config=config, code=gateway_code, topic=self.alerts.topic,
                                   environment={**self.tables.environment(),
                                                ALERT_TOPIC_ENV: self.alerts.topic.topic_arn})
            self.batch.grant_submit(self.gateway)
            worker = self.batch.worker  # the gateway's pipeline: the same tables, models and alerts
            self.tables.grant_read(worker, "keys")
            self.tables.grant_read_write(worker, "usage", "cache", "state")
            worker.add_to_role_policy(bedrock_invoke_statement(config, region=self.region, account=self.account,
                                                               partition=self.partition))
            self.alerts.grant_publish(worker)
            if self.provider_keys is not None:
                worker.add_environment(self.provider_keys.env_var, self.provider_keys.secret.secret_arn)
                self.provider_keys.secret.grant_read(worker)
            poller = self.batch.poller  # builds the same pipeline; calls no model, reads no key
            self.tables.grant_read(poller, "keys")
            self.tables.grant_read_write(poller, "usage", "cache", "state")
        self.alarms = SpendAlarms(self, "SpendAlarms", config=config, topic=self.alerts.topic)
        if config.gateway.reserved_concurrency is not None:  # Lambda only (the config refuses it otherwise)
            GatewayConcurrency(self, "GatewayConcurrency", kill_switch=self.kill_switch.function,
                               gateway=self.gateway.function, reserved=config.gateway.reserved_concurrency)
        failures = FunctionErrorAlarms(self, "FunctionAlarms", project=project, topic=self.alerts.topic,
                                       kill_switch=self.kill_switch.function, policy=self.policy.function)
        if self.gateway_function is not None:
            gateway_alarms = GatewayAlarms(self, "GatewayAlarms", config=config, gateway=self.gateway_function,
                                           topic=self.alerts.topic)
        else:
            gateway_alarms = GatewayContainerAlarms(self, "GatewayAlarms", config=config, gateway=self.gateway,
                                                    topic=self.alerts.topic)
        if config.budgets.global_.monthly_usd:
            MonthlyBudget(self, "Budget", config=config, topic=self.alerts.topic)
        OperationsDashboard(self, "Dashboard", project=project, routes=sorted(config.routes),
                            alarms=[*self.alarms.alarms, *gateway_alarms.alarms, *failures.alarms,
                                    self.kill_switch.failed_events_alarm,
                                    *(self.batch.alarms if self.batch else [])])
        CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)
        settings = {**self.tables.environment(), ALERT_TOPIC_ENV: self.alerts.topic.topic_arn,
                    **(self.batch.environment if self.batch else {})}
        if self.gateway_function is not None:
            settings[GATEWAY_FUNCTION_ENV] = self.gateway_function.function_name
        for name, value in settings.items():
            CfnOutput(self, output_key(name), value=value, description=f"{name} for the tierup CLI")

    @property
    def gateway_function(self) -> lambda_.IFunction | None:
        """The gateway's Lambda function; None when it runs in containers."""
        return getattr(self.gateway, "function", None)

    def _gateway_host(self, config: TierupConfig, code: lambda_.Code) -> GatewayFunction | GatewayContainer:
        host = GatewayContainer if config.gateway.hosting == "container" else GatewayFunction
        return host(self, "Gateway", config=config, code=code, environment=self.tables.environment())
