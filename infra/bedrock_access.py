"""Which Bedrock models the gateway may invoke: exactly the ones ``tierup.toml`` names.

Every route's ``serverless`` model (chat and embedding routes alike) and, when a route uses the
semantic cache on Bedrock, the Titan embedding model of ``[cache]``. A model id with a
geography prefix (``us.``, ``eu.``, ``global.``...) is a cross-region inference profile: the
caller then needs the profile's ARN and the underlying model in every region it may route to.

No I/O here.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from functions.core.config import TierupConfig
from functions.core.config.cache import titan_region

#: Converse and ConverseStream are authorised as these two actions (there is no bedrock:Converse)
BEDROCK_INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
_PROFILE_PREFIXES = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"})


def bedrock_region(config: TierupConfig, default: str) -> str:
    tier = config.tiers.get("serverless")
    return tier.region if tier is not None and tier.provider == "bedrock" and tier.region else default


def invoked_models(config: TierupConfig) -> set[tuple[str, str | None]]:
    """(model id, the region it is called in; None: the Bedrock tier's region). One model may be
    called in two regions (an embedding route on the tier, Titan for the cache in titan-region)."""
    models: set[tuple[str, str | None]] = {(route.serverless, None) for route in config.routes.values()
                                           if route.serverless}
    if config.cache.embedder != "local" and any(route.cache.semantic for route in config.routes.values()):
        models.add((config.cache.titan_model, titan_region(config)))  # where the gateway calls it
    return models


def cross_region_models(config: TierupConfig) -> list[str]:
    """Base model ids reached through an inference profile (granted in every region)."""
    found = set()
    for model_id, _ in invoked_models(config):
        prefix, _, base_model = model_id.partition(".")
        if prefix in _PROFILE_PREFIXES and base_model:
            found.add(base_model)
    return sorted(found)


def model_arns(model_id: str, region: str, account: str, partition: str = "aws") -> list[str]:
    prefix, _, base_model = model_id.partition(".")
    if prefix in _PROFILE_PREFIXES and base_model:
        return [f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}",
                f"arn:{partition}:bedrock:*::foundation-model/{base_model}"]
    return [f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}"]


def bedrock_invoke_statement(config: TierupConfig, *, region: str, account: str,
                             partition: str = "aws") -> iam.PolicyStatement:
    default_region = bedrock_region(config, region)
    resources = sorted({arn for model_id, model_region in invoked_models(config)
                        for arn in model_arns(model_id, model_region or default_region, account, partition)})
    return iam.PolicyStatement(actions=list(BEDROCK_INVOKE_ACTIONS), resources=resources)
