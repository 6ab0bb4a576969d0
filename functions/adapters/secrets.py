"""JSON secrets from AWS Secrets Manager, named by an environment variable holding their ARN.

Fetched once per Lambda environment; values are never logged.
"""

from __future__ import annotations

import json

from ..core.errors import ConfigError


def secret_json(runtime, arn_env: str, label: str) -> dict | None:
    """The secret named by ``runtime.environ[arn_env]`` as a dict; None when that is unset."""
    arn = runtime.environ.get(arn_env)
    if not arn:
        return None
    raw = runtime.aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    try:
        values = json.loads(raw)
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise ConfigError(arn_env, f"the {label} secret is not a JSON object")
    return values
