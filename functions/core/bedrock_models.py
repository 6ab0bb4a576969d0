"""Bedrock model ids: plain foundation models and cross-region inference profiles.

A model id with a geography prefix (``us.meta.llama3-1-8b-instruct-v1:0``) names a system-defined
cross-region inference profile: it is called in one region (the source) and Bedrock may serve it
in any of the profile's destination regions, checking IAM on the foundation model's ARN in the
region that serves it. Many models (Llama 3.1 8B in us-east-1 among them) are served on demand
only through such a profile; the bare id is refused there.

``destination_regions`` is what the stack grants and what ``tierup doctor`` compares with the
account's own answer (``GetInferenceProfile``); a geography whose regions are not listed here is
granted in every region (``*``) instead.

No I/O here.
"""

from __future__ import annotations

#: geography prefix -> every region its profiles route to (AWS lists each profile's destinations;
#: these are their union, so that a grant holds for every profile of the geography)
PROFILE_DESTINATIONS: dict[str, tuple[str, ...] | None] = {
    "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2"),
    "us-gov": ("us-gov-east-1", "us-gov-west-1"),
    # Regions change as AWS adds them; unknown here, so the grant names the model in any region.
    "eu": None, "apac": None, "jp": None, "au": None, "ca": None, "global": None,
}


def split_profile(model_id: str) -> tuple[str | None, str]:
    """(geography, foundation model id) of a profile id; (None, model_id) for a plain model."""
    prefix, _, base_model = model_id.partition(".")
    if prefix in PROFILE_DESTINATIONS and base_model:
        return prefix, base_model
    return None, model_id


def is_inference_profile(model_id: str) -> bool:
    return split_profile(model_id)[0] is not None


def destination_regions(model_id: str) -> tuple[str, ...] | None:
    """The regions a profile id may be served in (None: not known here, so any); a plain model
    id is served only in the region it is called in, which the caller knows."""
    geography, _ = split_profile(model_id)
    return PROFILE_DESTINATIONS.get(geography) if geography else None
