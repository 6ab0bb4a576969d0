"""``[gateway] hosting = "container"``: the same ASGI app, from the same bundle, on ECS Fargate
(arm64, Graviton) behind an HTTPS Application Load Balancer, scaled on load.

No image is built, so a first deploy needs no Docker: each task starts from two public images and
the gateway's Lambda bundle (the very asset the Lambda would run, infra/bundling.py: Linux arm64
wheels and Python 3.13 bytecode):

    fetch-bundle  ``AWS_CLI_IMAGE`` copies the bundle's zip from the CDK asset bucket into a task
                  volume (the task role may read that one object), then exits
    gateway       ``PYTHON_IMAGE`` (Python 3.13, the bundle's version, so its bytecode loads)
                  unpacks it into /var/task and runs ``run.sh``: uvicorn, exactly as on Lambda,
                  listening on the task's interface with the keep-alive and shutdown of
                  infra/container_start.py

Streaming end to end: the load balancer relays a chunked response as it comes (an ALB does not
buffer responses to targets); its idle timeout outlasts ``[gateway] provider-timeout-s`` (the
longest a stream or a non-streamed answer can go without a byte), and uvicorn's keep-alive
outlasts the idle timeout, so the balancer, never uvicorn, closes an idle back-end connection
(otherwise a request sent on a connection uvicorn just closed is a 502). Targets are picked by
least outstanding requests: with round robin, long streams pile up on one task.

Draining: a task leaving (scale-in, deploy) is deregistered first, and its streams have the
deregistration delay (provider-timeout-s, plus a margin) to finish before ECS stops it.

Health: the target group checks ``GET /health`` and counts 200 and 503 as healthy. 503 is the
gateway saying DynamoDB is failing (functions/gateway/health.py); every task sees the same store,
so replacing tasks would not help, and the gateway already answers each request 503 with
Retry-After itself. A task that does not answer at all is replaced.

Permissions and environment come from the stack exactly as for the Lambda (infra/stack.py grants
``grantee`` and calls ``add_environment``); the app is not told where it runs. ``TIERUP_EMF`` makes
it write its metric lines to stdout, which the awslogs driver ships to the task's log group, where
CloudWatch extracts them as on Lambda.

Network: a VPC of two public subnets without NAT gateways (a NAT gateway costs more than a small
task); tasks get public addresses to reach AWS APIs and the public image registry, and accept
connections only from the load balancer's security group.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.core.config import TierupConfig

from .bundling import BUNDLED_CONFIG, PYTHON_VERSION
from .container_start import (APP_PORT, BUNDLE_DIR, BUNDLE_ZIP, drain_s, idle_timeout_s, start_command,
                              uvicorn_environment)
from .gateway_alarms import FIVE_MINUTES, FIVE_XX_PERCENT, GREATER_OR_EQUAL, MIN_REQUESTS_FOR_SHARE
from .lambda_function import LOG_RETENTION

#: the Python the bundle's bytecode was compiled for, Debian slim, multi-arch (arm64 pulled)
PYTHON_IMAGE = f"public.ecr.aws/docker/library/python:{PYTHON_VERSION}-slim"
#: AWS CLI v2, multi-arch; only copies the bundle from S3
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.32.9"
#: after draining (see container_start.py), ECS's wait for uvicorn before it kills the task
STOP_TIMEOUT = Duration.seconds(30)
#: starting the task (two image pulls, unpacking) before health checks count
HEALTH_CHECK_GRACE = Duration.seconds(120)
#: scale out within a minute; scale in slowly, since every scale-in drains streams
SCALE_OUT_COOLDOWN = Duration.seconds(60)
SCALE_IN_COOLDOWN = Duration.minutes(5)
BUNDLE_VOLUME = "bundle"


class GatewayContainer(Construct):
    """The gateway service. ``grantee``, ``role`` and ``add_environment`` are what the stack uses
    to give it the same permissions and settings as the gateway function."""

    def __init__(self, scope: Construct, construct_id: str, *, config: TierupConfig,
                 code: lambda_.Code, environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        settings = config.gateway.container
        stack = Stack.of(self)
        self.vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)])
        self.vpc.add_flow_log("RejectedFlows", traffic_type=ec2.FlowLogTrafficType.REJECT,
                              destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                                  logs.LogGroup(self, "FlowLogs", retention=LOG_RETENTION,
                                                removal_policy=RemovalPolicy.DESTROY)))
        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc)
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "TaskRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                             description=f"Runs: {config.project} OpenAI-compatible gateway (ECS tasks)")
        self.grantee: iam.IGrantable = self.role
        self.task_definition = ecs.FargateTaskDefinition(
            self, "Task", cpu=settings.cpu, memory_limit_mib=settings.memory_mb, task_role=self.role,
            runtime_platform=ecs.RuntimePlatform(cpu_architecture=ecs.CpuArchitecture.ARM64,
                                                 operating_system_family=ecs.OperatingSystemFamily.LINUX),
            volumes=[ecs.Volume(name=BUNDLE_VOLUME)])
        bundle = code.bind(self).s3_location
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[f"arn:{stack.partition}:s3:::{bundle.bucket_name}/{bundle.object_key}"]))
        fetch = self.task_definition.add_container(
            "FetchBundle", image=ecs.ContainerImage.from_registry(AWS_CLI_IMAGE), essential=False,
            command=["s3", "cp", "--only-show-errors", "--region", stack.region,
                     f"s3://{bundle.bucket_name}/{bundle.object_key}", BUNDLE_ZIP],
            logging=ecs.LogDriver.aws_logs(stream_prefix="fetch-bundle", log_group=self.log_group))
        fetch.add_mount_points(ecs.MountPoint(container_path=BUNDLE_DIR, source_volume=BUNDLE_VOLUME, read_only=False))
        self.container = self.task_definition.add_container(
            "Gateway", image=ecs.ContainerImage.from_registry(PYTHON_IMAGE), essential=True,
            entry_point=["sh", "-c"], command=[start_command()],
            port_mappings=[ecs.PortMapping(container_port=APP_PORT)],
            stop_timeout=STOP_TIMEOUT,
            logging=ecs.LogDriver.aws_logs(stream_prefix="gateway", log_group=self.log_group),
            environment={
                "TIERUP_CONFIG": BUNDLED_CONFIG,
                **uvicorn_environment(config),
                "AWS_REGION": stack.region,
                **environment,
            })
        self.container.add_mount_points(ecs.MountPoint(container_path=BUNDLE_DIR, source_volume=BUNDLE_VOLUME,
                                                       read_only=True))
        self.container.add_container_dependencies(ecs.ContainerDependency(
            container=fetch, condition=ecs.ContainerDependencyCondition.SUCCESS))

        self.service = ecs.FargateService(
            self, "Service", cluster=self.cluster, task_definition=self.task_definition,
            assign_public_ip=True, vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            min_healthy_percent=100, max_healthy_percent=200, health_check_grace_period=HEALTH_CHECK_GRACE,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True))
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self, "LoadBalancer", vpc=self.vpc, internet_facing=True,
            idle_timeout=Duration.seconds(idle_timeout_s(config)), drop_invalid_header_fields=True)
        listener = self.load_balancer.add_listener(
            "Https", port=443, protocol=elbv2.ApplicationProtocol.HTTPS, open=True,
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            certificates=[elbv2.ListenerCertificate.from_arn(settings.certificate_arn)])
        self.target_group = listener.add_targets(
            "Gateway", port=APP_PORT, protocol=elbv2.ApplicationProtocol.HTTP,
            protocol_version=elbv2.ApplicationProtocolVersion.HTTP1,
            targets=[self.service.load_balancer_target(container_name="Gateway", container_port=APP_PORT)],
            load_balancing_algorithm_type=elbv2.TargetGroupLoadBalancingAlgorithmType.LEAST_OUTSTANDING_REQUESTS,
            deregistration_delay=Duration.seconds(drain_s(config)),
            health_check=elbv2.HealthCheck(path="/health", healthy_http_codes="200,503",
                                           interval=Duration.seconds(15), timeout=Duration.seconds(5),
                                           healthy_threshold_count=2, unhealthy_threshold_count=3))
        scaling = self.service.auto_scale_task_count(min_capacity=settings.min_tasks,
                                                     max_capacity=settings.max_tasks)
        scaling.scale_on_request_count("Requests", requests_per_target=settings.target_requests_per_task,
                                       target_group=self.target_group, scale_in_cooldown=SCALE_IN_COOLDOWN,
                                       scale_out_cooldown=SCALE_OUT_COOLDOWN)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=settings.target_cpu_percent,
                                         scale_in_cooldown=SCALE_IN_COOLDOWN, scale_out_cooldown=SCALE_OUT_COOLDOWN)
        host = settings.domain_name or self.load_balancer.load_balancer_dns_name
        CfnOutput(self, "Url", value=f"https://{host}/",
                  description="OpenAI base URL: append v1/ (the openai SDK's base_url); the name must be "
                              "one the certificate covers")
        CfnOutput(self, "LoadBalancerDns", value=self.load_balancer.load_balancer_dns_name,
                  description="Point [gateway.container] domain-name here (CNAME, or a Route 53 alias)")

    def add_environment(self, name: str, value: str) -> None:
        self.container.add_environment(name, value)


class GatewayContainerAlarms(Construct):
    """The container's counterpart of infra/gateway_alarms.py, for people (no kill-switch marker)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: TierupConfig,
                 gateway: GatewayContainer, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        project = config.project
        metrics = gateway.load_balancer.metrics
        five_xx_share = cloudwatch.MathExpression(
            expression=f"IF(requests >= {MIN_REQUESTS_FOR_SHARE}, 100 * (target + balancer) / requests, 0)",
            using_metrics={
                "requests": metrics.request_count(period=FIVE_MINUTES),
                "target": metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=FIVE_MINUTES),
                "balancer": metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=FIVE_MINUTES)},
            label="5xx share (%)", period=FIVE_MINUTES)
        self.alarms = [
            five_xx_share.create_alarm(
                self, "FiveXxShare", alarm_name=f"{project}-gateway-5xx-share",
                alarm_description=f"Over {FIVE_XX_PERCENT}% of the gateway's answers were 5xx in 5 minutes "
                                  "(provider outage, overload, no healthy task, or an engaged kill switch)",
                threshold=FIVE_XX_PERCENT, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
            gateway.target_group.metrics.unhealthy_host_count(period=Duration.minutes(1), statistic="Maximum")
            .create_alarm(
                self, "Unhealthy", alarm_name=f"{project}-gateway-unhealthy-tasks",
                alarm_description="A gateway task stopped answering its health check for 5 minutes: check the "
                                  "task log group (a failed bundle fetch or start shows there)",
                threshold=1, evaluation_periods=5, comparison_operator=GREATER_OR_EQUAL,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
            gateway.service.metric_cpu_utilization(period=FIVE_MINUTES).create_alarm(
                self, "Cpu", alarm_name=f"{project}-gateway-cpu",
                alarm_description="The gateway tasks averaged 85%+ CPU for 15 minutes: autoscaling is at "
                                  "[gateway.container] max-tasks or cannot keep up; raise max-tasks or cpu",
                threshold=85, evaluation_periods=3, comparison_operator=GREATER_OR_EQUAL,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
        ]
        action = actions.SnsAction(topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
