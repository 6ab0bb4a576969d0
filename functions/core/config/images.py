"""Image inputs per route (``[routes.NAME.images]``): how many, how large, and from where."""

from __future__ import annotations

from pydantic import Field

from ._base import Section


class RouteImagesConfig(Section):
    #: images one request may carry (Bedrock's Converse takes at most 20)
    max_count: int = Field(default=20, alias="max-count", ge=0)
    #: largest image, decoded (Bedrock's Converse takes at most 3.75 MB per image). The request
    #: body holds images base64-encoded (a third larger): raise ``[gateway] max-body-bytes`` to match
    max_bytes: int = Field(default=3_750_000, alias="max-bytes", gt=0)
    #: accept ``https://`` image URLs: the gateway fetches them itself (only from public addresses,
    #: never private, loopback or link-local ones) and passes the bytes on, so no tier fetches a
    #: URL the gateway has not checked. Off by default: it lets clients make the gateway fetch URLs.
    https: bool = False
    #: seconds a fetch of an ``https`` image may take
    fetch_timeout_s: float = Field(default=5.0, alias="fetch-timeout-s", gt=0)
