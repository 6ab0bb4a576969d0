"""``[gateway] hosting`` and ``[gateway.container]``: Lambda by default; a container deployment
needs a certificate, a Fargate size that exists and a sane task range, and refuses Lambda-only keys."""

from __future__ import annotations

import pytest

from functions.core.config import parse_config
from functions.core.errors import ConfigError
from tests.support import deep_merge, example_config_data

CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0b6a8c37-1f7e-4a0e-9f3b-2c1d4e5f6a7b"


def container(**settings) -> dict:
    return {"gateway": {"hosting": "container", "container": {"certificate-arn": CERTIFICATE, **settings}}}


def test_lambda_is_the_default_hosting():
    assert parse_config(example_config_data()).gateway.hosting == "lambda"


def test_a_container_gateway_with_a_certificate_is_valid():
    settings = parse_config(deep_merge(example_config_data(), container(
        cpu=1024, **{"memory-mb": 2048, "min-tasks": 2, "max-tasks": 4, "domain-name": "llm.example.com"})))
    assert settings.gateway.hosting == "container"
    assert (settings.gateway.container.cpu, settings.gateway.container.memory_mb) == (1024, 2048)
    assert settings.gateway.container.domain_name == "llm.example.com"


@pytest.mark.parametrize("overrides, key", [
    ({"gateway": {"hosting": "container"}}, "gateway.container.certificate-arn"),
    ({"gateway": {"hosting": "kubernetes"}}, "gateway.hosting"),
    (container(cpu=300), "gateway.container.cpu"),
    (container(cpu=256, **{"memory-mb": 4096}), "gateway.container.memory-mb"),
    (container(**{"min-tasks": 3, "max-tasks": 2}), "gateway.container.max-tasks"),
    (container(**{"min-tasks": 0}), "gateway.container.min-tasks"),
    (container(**{"target-cpu-percent": 95}), "gateway.container.target-cpu-percent"),
    (container(**{"certificate-arn": "arn:aws:iam::123456789012:server-certificate/x"}),
     "gateway.container.certificate-arn"),
    (container(**{"domain-name": "https://llm.example.com"}), "gateway.container.domain-name"),
    (deep_merge(container(), {"gateway": {"reserved-concurrency": 50}}), "gateway.reserved-concurrency"),
])
def test_container_errors_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as caught:
        parse_config(deep_merge(example_config_data(), overrides))
    assert caught.value.key == key
