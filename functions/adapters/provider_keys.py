"""API keys of the OpenAI-compatible tiers (vLLM on Modal, an overflow provider) on AWS.

Each ``[tiers.X] api-key-env`` (and ``proxy-auth-env``) names an environment variable. On Lambda those values come from
one Secrets Manager secret (``TIERUP_PROVIDER_KEYS_SECRET_ARN``) holding ``{"NAME": "key", ...}``,
loaded at start-up into the runtime's environment before any provider is built. A variable
already set wins; empty values (the stack's placeholders) are skipped.
"""

from __future__ import annotations

from .secrets import secret_json

SECRET_ARN_ENV = "TIERUP_PROVIDER_KEYS_SECRET_ARN"


def provider_key_names(config) -> list[str]:
    """The environment variables the enabled OpenAI-compatible tiers read their keys (and Modal
    proxy auth tokens, ``proxy-auth-env``) from."""
    return sorted({name for tier in config.tiers.values() if tier.enabled and tier.provider == "openai"
                   for name in (tier.api_key_env, tier.proxy_auth_env) if name})


def load_provider_keys(runtime) -> list[str]:
    """Fill ``runtime.environ`` from the secret; return the names it set."""
    values = secret_json(runtime, SECRET_ARN_ENV, "provider keys") or {}
    loaded = []
    for name in provider_key_names(runtime.config):
        if not runtime.environ.get(name) and values.get(name):
            runtime.environ[name] = str(values[name])
            loaded.append(name)
    return loaded
