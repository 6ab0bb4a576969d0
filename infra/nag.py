"""cdk-nag's AWS Solutions checks on the stack, and the findings acknowledged on purpose, each
with its reason. Any other finding fails ``cdk synth``.

Not a finding but decided on purpose: the gateway's Function URL has no IAM auth (no AwsSolutions
rule covers Function URLs); tierup authenticates every request by API key itself, because OpenAI
clients cannot sign requests (see infra/gateway.py).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Token, Validations
from cdk_nag import AwsSolutionsChecks

from .bedrock_access import cross_region_models
from .gateway_container import GatewayContainer
from .stack import TierupStack

PACK = "AwsSolutions"


def check_with_cdk_nag(app: App, stack: TierupStack) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # the partition is a literal where the region is known (@aws-cdk/core:enablePartitionLiterals)
    partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
    invokers = [stack.gateway.role, *([stack.batch.worker.role] if stack.batch else [])]
    for model, role in ((model, role) for model in cross_region_models(stack.config) for role in invokers):
        Validations.of(role).acknowledge(Acknowledgment(
            id=f"{PACK}::{PACK}-IAM5[Resource::arn:{partition}:bedrock:*::foundation-model/{model}]",
            reason=f"A cross-region inference profile may serve {model} from any region of its "
                   "geography; Bedrock then checks the model ARN in that region. The grant names "
                   "the one model, and the profile ARN is granted in the home region only."))
    Validations.of(stack.modal_secret).acknowledge(Acknowledgment(
        id=f"{PACK}::{PACK}-SMG4",
        reason="The secret holds a Modal API token, which only Modal can issue; a Secrets Manager "
               "rotation function cannot mint a new one. Rotate it in Modal and store it with "
               "put-secret-value."))
    Validations.of(stack.kill_switch.failed_events).acknowledge(Acknowledgment(
        id=f"{PACK}::{PACK}-SQS3",
        reason="The queue is itself the kill switch's dead-letter destination (Lambda on-failure); "
               "nothing consumes it, so a dead-letter queue of its own would never receive anything. "
               "An alarm on its depth emails the operators."))
    if stack.batch is not None:
        _acknowledge_batch(stack)
    if stack.provider_keys is not None:
        Validations.of(stack.provider_keys.secret).acknowledge(Acknowledgment(
            id=f"{PACK}::{PACK}-SMG4",
            reason="The secret holds API keys issued by other providers (the vLLM servers' key, an "
                   "overflow provider's key); only they can issue new ones, so a rotation function "
                   "cannot. Rotate them there and store them with put-secret-value."))
    if isinstance(stack.gateway, GatewayContainer):
        _acknowledge_container(stack.gateway)


def _acknowledge_container(gateway: GatewayContainer) -> None:
    """``[gateway] hosting = "container"``: what the ECS service and its load balancer do on purpose."""
    Validations.of(gateway.load_balancer).acknowledge(
        Acknowledgment(
            id=f"{PACK}::{PACK}-EC23",
            reason="The load balancer is the gateway's public HTTPS endpoint, as the Function URL is on "
                   "Lambda: OpenAI clients anywhere call it, and tierup authenticates every request by API "
                   "key itself. Only port 443 is open; the tasks admit the load balancer alone."),
        Acknowledgment(
            id=f"{PACK}::{PACK}-ELB2",
            reason="Every answered request is already recorded by the gateway (the usage ledger: key, "
                   "tenant, route, tokens, cost) and every answer is counted in the load balancer's "
                   "metrics, refusals included; access logs would add an S3 bill per request to the "
                   "option chosen to make requests cheaper."))
    Validations.of(gateway.cluster).acknowledge(Acknowledgment(
        id=f"{PACK}::{PACK}-ECS4",
        reason="Scaling and the gateway's alarms use the service's CPU and memory (AWS/ECS) and the load "
               "balancer's metrics, which are free; the gateway writes its own request metrics (EMF). "
               "Container Insights would add per-task custom metrics at a monthly price."))
    Validations.of(gateway.task_definition).acknowledge(Acknowledgment(
        id=f"{PACK}::{PACK}-ECS2",
        reason="The variables are the same as the gateway function's: table names, ARNs, the port and "
               "uvicorn's timeouts, none of them secret. The secrets themselves are read from Secrets "
               "Manager by ARN at start-up, by the app, with the task role."))


def _acknowledge_batch(stack: TierupStack) -> None:
    batch = stack.batch
    bucket = f"<{stack.get_logical_id(batch.bucket.node.default_child)}.Arn>"
    for role in (stack.gateway.role, batch.worker.role, batch.poller.role):
        Validations.of(role).acknowledge(Acknowledgment(
            id=f"{PACK}::{PACK}-IAM5[Resource::{bucket}/files/*]",
            reason="Batch files are objects named by tenant and file id, created at run time; the "
                   "grant is GetObject and PutObject under the files/ prefix of the one bucket."))
    def literal(value: str, pseudo: str) -> str:
        return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

    jobs = (f"arn:{literal(stack.partition, 'Partition')}:bedrock:{literal(stack.region, 'Region')}:"
            f"{literal(stack.account, 'AccountId')}:model-invocation-job/*")
    for role in (batch.worker.role, batch.poller.role):
        Validations.of(role).acknowledge(Acknowledgment(
            id=f"{PACK}::{PACK}-IAM5[Resource::{bucket}/bedrock/*]",
            reason="A Bedrock batch job's records and answers are objects under bedrock/<batch id>/, "
                   "named at run time: the worker writes the records, the poller reads the answers."))
        Validations.of(role).acknowledge(Acknowledgment(
            id=f"{PACK}::{PACK}-IAM5[Resource::{jobs}]",
            reason="Bedrock names a batch job's id when it creates the job; the grant is this account's "
                   "jobs in this region, for the job actions named (create / get and stop) only."))
    Validations.of(batch.bedrock_role).acknowledge(Acknowledgment(
        id=f"{PACK}::{PACK}-IAM5[Resource::{bucket}/bedrock/*]",
        reason="Bedrock batch jobs read their records and write their answers under bedrock/<batch "
               "id>/, named at run time; the role reaches that prefix of the one bucket only."))
    Validations.of(batch.bucket).acknowledge(Acknowledgment(
        id=f"{PACK}::{PACK}-S1",
        reason="Only the gateway, the batch worker and Bedrock's batch role reach the bucket, each "
               "through its own role (CloudTrail records who did what); server access logs would "
               "add a second bucket and per-request log objects for no one else's access."))
