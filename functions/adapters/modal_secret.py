"""The Modal API token, read from AWS Secrets Manager into the environment Modal's client reads.

The secret (``TIERUP_MODAL_SECRET_ARN``) holds ``{"MODAL_TOKEN_ID": ..., "MODAL_TOKEN_SECRET": ...}``.
It is fetched once per Lambda environment, before the Modal adapter is built, and never logged.
"""

from __future__ import annotations

import os

from ..core.errors import ConfigError
from .secrets import secret_json

SECRET_ARN_ENV = "TIERUP_MODAL_SECRET_ARN"
TOKEN_KEYS = ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET")


def load_modal_token(runtime, environ: dict | None = None) -> bool:
    """Put the Modal token into ``environ`` (default ``os.environ``); False when no secret is set.

    A token already present in the environment wins (local runs use ``modal token set``).
    """
    target = os.environ if environ is None else environ
    arn = runtime.environ.get(SECRET_ARN_ENV)
    if not arn or all(target.get(key) for key in TOKEN_KEYS):
        return bool(arn)
    values = secret_json(runtime, SECRET_ARN_ENV, "Modal")
    missing = [key for key in TOKEN_KEYS if not values.get(key)]
    if missing:
        raise ConfigError(SECRET_ARN_ENV, f"the Modal secret lacks {', '.join(missing)}")
    for key in TOKEN_KEYS:
        target[key] = str(values[key])
    return True
