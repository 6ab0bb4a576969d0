"""The OpenAI-compatible tiers' API keys come from Secrets Manager (moto server) at start-up."""

from __future__ import annotations

import json

import pytest

from functions.adapters.provider_keys import SECRET_ARN_ENV, load_provider_keys, provider_key_names
from functions.core.errors import ConfigError


def test_keys_are_loaded_into_the_runtime_environment(make_runtime):
    runtime = make_runtime()
    secrets = runtime.aws.client("secretsmanager")
    arn = secrets.create_secret(Name=f"{runtime.config.project}-keys",
                                SecretString=json.dumps({"TIERUP_GPU_API_KEY": "k-123", "unused": "x"}))["ARN"]
    runtime.environ[SECRET_ARN_ENV] = arn
    runtime.environ.pop("TIERUP_GPU_API_KEY", None)
    assert provider_key_names(runtime.config) == ["TIERUP_GPU_API_KEY", "TIERUP_MODAL_PROXY_TOKEN"]
    assert load_provider_keys(runtime) == ["TIERUP_GPU_API_KEY"]
    assert runtime.environ["TIERUP_GPU_API_KEY"] == "k-123"


def test_placeholders_and_keys_already_set_are_left_alone(make_runtime):
    runtime = make_runtime()
    arn = runtime.aws.client("secretsmanager").create_secret(
        Name=f"{runtime.config.project}-keys", SecretString=json.dumps({"TIERUP_GPU_API_KEY": ""}))["ARN"]
    runtime.environ[SECRET_ARN_ENV] = arn
    runtime.environ.pop("TIERUP_GPU_API_KEY", None)
    assert load_provider_keys(runtime) == []
    runtime.environ["TIERUP_GPU_API_KEY"] = "from-env"
    assert load_provider_keys(runtime) == [] and runtime.environ["TIERUP_GPU_API_KEY"] == "from-env"


def test_a_secret_that_is_not_json_names_the_variable(make_runtime):
    runtime = make_runtime()
    arn = runtime.aws.client("secretsmanager").create_secret(
        Name=f"{runtime.config.project}-keys", SecretString="not json")["ARN"]
    runtime.environ[SECRET_ARN_ENV] = arn
    with pytest.raises(ConfigError) as caught:
        load_provider_keys(runtime)
    assert caught.value.key == SECRET_ARN_ENV


def test_without_a_secret_nothing_happens(make_runtime):
    runtime = make_runtime()
    runtime.environ.pop(SECRET_ARN_ENV, None)
    assert load_provider_keys(runtime) == []
