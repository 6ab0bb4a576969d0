"""Which Bedrock models the gateway may invoke: exactly the ones ``tierup.toml`` names.

Every route's ``serverless`` model (chat and embedding routes alike) and, when a route uses the
semantic cache on Bedrock, the Titan embedding model of ``[cache]``. A model id with a
geography prefix (``us.``, ``eu.``, ``global.``...) is a cross-region inference profile: the
caller then needs the profile's ARN in the region it calls and the underlying foundation model
in every destination region of the profile (``functions/core/bedrock_models.py``), or in any
region where those are not known.

No I/O here.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from functions.core.bedrock_models import destination_regions, split_profile
from functions.core.config import TierupConfig
from functions.core.config.cache import titan_region

#: Converse and ConverseStream are authorised as these two actions (there is no bedrock:Converse)
BEDROCK_INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")


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
    """Foundation models reached through a profile whose destination regions are not known here,
    so granted in every region (cdk-nag acknowledges exactly these wildcards)."""
    found = set()
    for model_id, _ in invoked_models(config):
        geography, base_model = split_profile(model_id)
        if geography and destination_regions(model_id) is None:
            found.add(base_model)
    return sorted(found)


def model_arns(model_id: str, region: str, account: str, partition: str = "aws") -> list[str]:
    geography, base_model = split_profile(model_id)
    if geography is None:
        return [f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}"]
    profile = f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}"
    regions = destination_regions(model_id) or ("*",)
    return [profile, *(f"arn:{partition}:bedrock:{r}::foundation-model/{base_model}" for r in regions)]


def bedrock_invoke_statement(config: TierupConfig, *, region: str, account: str,
                             partition: str = "aws") -> iam.PolicyStatement:
    default_region = bedrock_region(config, region)
    resources = sorted({arn for model_id, model_region in invoked_models(config)
                        for arn in model_arns(model_id, model_region or default_region, account, partition)})
    return iam.PolicyStatement(actions=list(BEDROCK_INVOKE_ACTIONS), resources=resources)
