"""The account's side of a deploy: Lambda concurrency, Bedrock models, the alert topic, the alarms
and budget wired to it, and the Web Adapter layer. Each check takes the boto3 clients it reads
(never writes) and returns findings; an error that means "could not look" becomes ``unchecked``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from functions.core.bedrock_models import destination_regions, split_profile
from functions.core.config import TierupConfig

from .findings import Finding, error_code, offline_reason, ok, problem, unchecked

#: AWS refuses a reservation that leaves fewer unreserved concurrent executions than this
MIN_UNRESERVED_CONCURRENCY = 10
#: the principals that must be allowed to publish to the alert topic
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")
_NOT_FOUND = frozenset({"ResourceNotFoundException", "ValidationException", "NotFoundException",
                        "NotFound", "ResourceNotFound"})


def guarded(check: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one check; what stops it from looking becomes ``unchecked``, never a crash."""
    try:
        return run()
    except Exception as exc:  # a check that cannot finish says why, the others still run
        return [unchecked(check, offline_reason(exc) or f"{type(exc).__name__}: {exc}")]


# -- Lambda concurrency ------------------------------------------------------------------------

def stack_reservation(config: TierupConfig) -> int:
    """Concurrent executions the stack reserves: every ``reserved-concurrency`` the config sets."""
    sections = (config.gateway, config.policy, config.budgets)
    return sum(getattr(section, "reserved_concurrency", None) or 0 for section in sections)


def check_concurrency(config: TierupConfig, lambda_client, deployed_functions: list[str] = ()) -> list[Finding]:
    """The reservation must leave the account ``MIN_UNRESERVED_CONCURRENCY`` unreserved (new
    accounts have a quota of 10, so they can reserve nothing). What the deployed stack already
    reserves is counted back in, so the check holds before and after a deploy."""
    name = "lambda concurrency"
    limits = lambda_client.get_account_settings()["AccountLimit"]
    quota, unreserved = limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]
    held = 0
    for function in deployed_functions:
        try:
            held += lambda_client.get_function_concurrency(FunctionName=function).get(
                "ReservedConcurrentExecutions") or 0
        except Exception as exc:
            if error_code(exc) not in _NOT_FOUND:
                raise
    need = stack_reservation(config)
    left = unreserved + held - need
    detail = f"quota {quota}, the stack reserves {need}, {left} would stay unreserved"
    if left < MIN_UNRESERVED_CONCURRENCY:
        return [problem(name, detail + f" (AWS requires at least {MIN_UNRESERVED_CONCURRENCY})",
                        "request a higher 'Concurrent executions' quota in Service Quotas (Lambda), "
                        "or lower [gateway] reserved-concurrency (unset reserves nothing)")]
    return [ok(name, detail)]


# -- Bedrock -----------------------------------------------------------------------------------

def bedrock_models(config: TierupConfig) -> dict[str, tuple[str, str]]:
    """Model id -> (region it is called in, the config key that names it)."""
    tier = config.tiers.get("serverless")
    region = tier.region if tier is not None and tier.provider == "bedrock" and tier.region else None
    models: dict[str, tuple[str, str]] = {}
    if region:
        for route_name, route in config.routes.items():
            if route.serverless:
                models.setdefault(route.serverless, (region, f"routes.{route_name}.serverless"))
    titan_region = getattr(config.cache, "titan_region", None) or region
    if config.cache.embedder != "local" and titan_region and any(r.cache.semantic for r in config.routes.values()):
        models.setdefault(config.cache.titan_model, (titan_region, "cache.titan-model"))
    return models


def check_bedrock_model(model_id: str, region: str, key: str, bedrock) -> list[Finding]:
    """The id works on demand in ``region`` (directly, or as an inference profile whose regions
    the stack grants), and the account may use the model there."""
    name = f"bedrock {model_id} ({region})"
    geography, base_model = split_profile(model_id)
    if geography:
        try:
            profile = bedrock.get_inference_profile(inferenceProfileIdentifier=model_id)
        except Exception as exc:
            if error_code(exc) not in _NOT_FOUND:
                raise
            return [problem(name, f"no inference profile {model_id} in {region}",
                            f"pick an id from `aws bedrock list-inference-profiles --region {region}` for {key}")]
        if profile.get("status", "ACTIVE") != "ACTIVE":
            return [problem(name, f"the profile is {profile.get('status')}", f"choose an active profile for {key}")]
        served_in = {arn.split(":")[3] for arn in (m.get("modelArn", "") for m in profile.get("models", [])) if arn}
        granted = destination_regions(model_id)
        if granted is not None and not served_in <= set(granted):
            missing = ", ".join(sorted(served_in - set(granted)))
            return [problem(name, f"the profile also routes to {missing}, which the stack's IAM grant lacks",
                            "add those regions to PROFILE_DESTINATIONS in functions/core/bedrock_models.py, "
                            "then cdk deploy")]
    else:
        try:
            details = bedrock.get_foundation_model(modelIdentifier=model_id)["modelDetails"]
        except Exception as exc:
            if error_code(exc) not in _NOT_FOUND:
                raise
            return [problem(name, f"Bedrock has no model {model_id} in {region}", f"fix {key}")]
        if "ON_DEMAND" not in details.get("inferenceTypesSupported", []):
            return [problem(name, f"{model_id} runs on demand in {region} only through an inference profile",
                            f"set {key} to the profile id ({_profile_for(bedrock, model_id) or 'us.' + model_id}) "
                            "and price it under that exact id in [pricing.models]")]
    access = bedrock.get_foundation_model_availability(modelId=base_model)
    refused = [f"{field} is {value}" for field, value in (
        ("authorization", access.get("authorizationStatus")),
        ("entitlement", access.get("entitlementAvailability")),
        ("region", access.get("regionAvailability")),
        ("agreement", (access.get("agreementAvailability") or {}).get("status")))
        if value not in (None, "AUTHORIZED", "AVAILABLE")]
    if refused:
        return [problem(name, "the account may not use it yet: " + ", ".join(refused),
                        f"enable access to {base_model} in the Bedrock console (Model access), region {region}")]
    return [ok(name, "inference profile, access granted" if geography else "on demand, access granted")]


def _profile_for(bedrock, model_id: str) -> str | None:
    """A system-defined profile that serves ``model_id``, to suggest in a fix."""
    summaries = bedrock.list_inference_profiles(typeEquals="SYSTEM_DEFINED").get("inferenceProfileSummaries", [])
    for summary in summaries:
        if any(m.get("modelArn", "").endswith(f"/{model_id}") for m in summary.get("models", [])):
            return summary.get("inferenceProfileId")
    return None


def check_bedrock(config: TierupConfig, bedrock_for: Callable[[str], object]) -> list[Finding]:
    findings: list[Finding] = []
    for model_id, (region, key) in bedrock_models(config).items():
        findings += guarded(f"bedrock {model_id} ({region})",
                            lambda m=model_id, r=region, k=key: check_bedrock_model(m, r, k, bedrock_for(r)))
    return findings


# -- the alert topic, and what publishes to it ---------------------------------------------------

def check_subscriptions(config: TierupConfig, sns, topic_arn: str) -> list[Finding]:
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn).get("Subscriptions", [])
    by_email = {s["Endpoint"]: s for s in subscriptions if s.get("Protocol") == "email"}
    findings = []
    for email in config.budgets.alert_emails:
        name = f"alert email {email}"
        subscription = by_email.get(email)
        if subscription is None:
            findings.append(problem(name, "not subscribed to the alert topic", "cdk deploy (the stack subscribes it)"))
        elif subscription.get("SubscriptionArn") == "PendingConfirmation":
            findings.append(problem(name, "subscribed, but the confirmation link was never followed: "
                                          "no alert reaches this address",
                                    f"follow the link in AWS's email to {email}, or resend it: aws sns subscribe "
                                    f"--topic-arn {topic_arn} --protocol email --notification-endpoint {email}"))
        else:
            findings.append(ok(name, "confirmed"))
    return findings


def check_topic_policy(sns, topic_arn: str) -> list[Finding]:
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"].get("Policy") or "{}")
    allowed: set[str] = set()
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = {a.lower() for a in ([actions] if isinstance(actions, str) else actions)}  # IAM ignores case
        if statement.get("Effect") != "Allow" or not {"sns:publish", "sns:*", "*"} & actions:
            continue
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
            allowed |= set(PUBLISHING_SERVICES)  # SNS's default policy: the account's own services
            continue
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        allowed |= {services} if isinstance(services, str) else set(services)
    missing = [service for service in PUBLISHING_SERVICES if service not in allowed]
    if missing:
        return [problem("alert topic policy", f"{', '.join(missing)} may not publish: those alarms and budget "
                                              "notices never reach anyone", "cdk deploy the current stack")]
    return [ok("alert topic policy", "CloudWatch alarms and AWS Budgets may publish")]


def check_alarms(config: TierupConfig, cloudwatch, topic_arn: str) -> list[Finding]:
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"{config.project}-").get("MetricAlarms", [])
    if not alarms:
        return [problem("alarms", f"no CloudWatch alarm named {config.project}-*", "cdk deploy")]
    unwired = sorted(a["AlarmName"] for a in alarms if topic_arn not in a.get("AlarmActions", []))
    if unwired:
        return [problem("alarms", f"{len(unwired)} of {len(alarms)} do not notify the alert topic: "
                                  + ", ".join(unwired), "cdk deploy the current stack")]
    return [ok("alarms", f"all {len(alarms)} notify the alert topic")]


def check_budget(config: TierupConfig, budgets, account_id: str, topic_arn: str) -> list[Finding]:
    if config.budgets.global_.monthly_usd is None:
        return [ok("aws budget", "no [budgets.global] monthly cap, so no AWS Budget")]
    found = [b["BudgetName"] for b in budgets.describe_budgets(AccountId=account_id).get("Budgets", [])
             if b["BudgetName"].startswith(f"{config.project}-")]
    if not found:
        return [problem("aws budget", f"no AWS Budget named {config.project}-*", "cdk deploy")]
    findings = []
    for budget in found:
        notices = budgets.describe_notifications_for_budget(AccountId=account_id, BudgetName=budget).get(
            "Notifications", [])
        unwired = 0
        for notice in notices:
            subscribers = budgets.describe_subscribers_for_notification(
                AccountId=account_id, BudgetName=budget, Notification=notice).get("Subscribers", [])
            if not any(s.get("SubscriptionType") == "SNS" and s.get("Address") == topic_arn for s in subscribers):
                unwired += 1
        if not notices or unwired:
            findings.append(problem(f"aws budget {budget}", f"{unwired or 'no'} notification(s) do not reach the "
                                                            "alert topic", "cdk deploy the current stack"))
        else:
            findings.append(ok(f"aws budget {budget}", f"all {len(notices)} notifications reach the alert topic"))
    return findings


# -- the Lambda Web Adapter layer -----------------------------------------------------------------

def check_layer(lambda_client, layer_arn: str) -> list[Finding]:
    name = "web adapter layer"
    try:
        version = lambda_client.get_layer_version_by_arn(Arn=layer_arn)
    except Exception as exc:
        if error_code(exc) not in _NOT_FOUND:
            raise
        return [problem(name, f"{layer_arn} does not exist in this region",
                        "pick the Lambda Web Adapter layer version published for this region "
                        "(WEB_ADAPTER_LAYER_ARN in infra/gateway.py)")]
    return [ok(name, f"{version.get('LayerVersionArn', layer_arn)} resolves")]
