"""Modal proxy auth: the workspace token the GPU tier's endpoints require on every request.

The GPU endpoints are deployed with ``requires_proxy_auth=True``: Modal's proxy refuses (401) any
request without a workspace Proxy Auth Token before it reaches, or starts, a container. The
gateway and its health probe send the token as two headers, ``Modal-Key`` (the token id,
``wk-...``) and ``Modal-Secret`` (``ws-...``). ``[tiers.X] proxy-auth-env`` names the environment
variable that holds both as ``TOKEN_ID:TOKEN_SECRET``; on AWS it is an entry of the provider-keys
secret, like the tiers' API keys.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping

MODAL_KEY_HEADER = "Modal-Key"
MODAL_SECRET_HEADER = "Modal-Secret"


def parse_proxy_token(value: str | None) -> tuple[str, str] | None:
    """(token id, token secret) from ``TOKEN_ID:TOKEN_SECRET``; None when absent or malformed."""
    token_id, sep, secret = (value or "").strip().partition(":")
    if not sep or not token_id or not secret:
        return None
    return token_id, secret


def proxy_auth_headers(env_name: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The headers for a tier whose ``proxy-auth-env`` is ``env_name``; none when it is unset.

    A missing or malformed token sends no headers: Modal's proxy then answers 401, which the
    gateway reports as the tier refusing its credentials, and ``tierup doctor`` names the cause.
    """
    token = parse_proxy_token(environ.get(env_name)) if env_name else None
    if token is None:
        return {}
    return {MODAL_KEY_HEADER: token[0], MODAL_SECRET_HEADER: token[1]}
