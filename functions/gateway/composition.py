"""The composition root: the one place where the gateway's parts are built and wired.

Environment (all optional):
    TIERUP_CONFIG          path of tierup.toml (default ./tierup.toml)
    TIERUP_PROVIDER        ``simulated`` serves every tier from the simulated provider (tierup dev)
    TIERUP_AWS_ENDPOINT    DynamoDB/SNS/CloudWatch endpoint (moto server locally)
    TIERUP_TABLE_<NAME>    physical table names (set by the CDK stack)
    AWS_REGION             region for DynamoDB and the default Bedrock region
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import orjson

from ..adapters.aws import AwsClients
from ..adapters.dynamodb.keys import DynamoKeyStore
from ..adapters.dynamodb.responses import DynamoResponseStore
from ..adapters.provider_keys import load_provider_keys
from ..adapters.simulated import SimulatedProvider
from ..batch.wiring import batch_endpoint, wire_batch_worker
from ..core.config import Tier, TierupConfig, load_config
from ..core.gateway_meter import GatewayMeter
from ..core.ports import ChatProvider, Guard, KeyStore, ResponseCache, Router, UsageRecorder
from ..core.pricing import token_cost_usd
from ..core.proxy_auth import proxy_auth_headers
from ..core.tables import KEYS, STATE, table_name
from ..core.tokens import warm_up as warm_up_tokenizer
from ..guardrails.wiring import wire_budgets
from ..quotas.wiring import wire_quotas
from .app import GatewayApp
from .auth import Authenticator
from .health import HealthCheck
from .pipeline import Pipeline
from .cache_wiring import wire_cache
from .routing import ProviderRegistry, StaticRouter
from .table_router import wire_table_router


#: the key-store item ``/health`` reads to see whether a failing store answers again
HEALTH_PROBE_KEY = "health-probe"


@dataclass
class Runtime:
    """What the gateway's parts share: config, environment and AWS clients."""

    config: TierupConfig
    environ: dict = field(default_factory=lambda: dict(os.environ))
    aws: AwsClients | None = None

    def __post_init__(self) -> None:
        if self.aws is None:
            self.aws = AwsClients.from_env(self.environ, model_timeout_s=self.config.gateway.provider_timeout_s)

    def table(self, spec) -> str:
        return table_name(spec, self.config.project, self.environ)

    def dynamodb(self):
        return self.aws.client("dynamodb")


@dataclass
class GatewayParts:
    """The pipeline's parts, filled in stage by stage; guards run in the order listed here."""

    router: Router
    #: kill-switch flags: 503 naming the budget
    kill_switch_guards: list[Guard] = field(default_factory=list)
    #: in-flight limit with a bounded wait: fast 429/503, before any I/O
    admission_guards: list[Guard] = field(default_factory=list)
    #: plan quotas reserved atomically: 429 with x-ratelimit-* headers
    quota_guards: list[Guard] = field(default_factory=list)
    #: spend caps from [budgets]
    budget_guards: list[Guard] = field(default_factory=list)
    recorders: list[UsageRecorder] = field(default_factory=list)
    cache: ResponseCache | None = None
    on_startup: list = field(default_factory=list)
    on_shutdown: list = field(default_factory=list)
    #: awaited just before a response's last message is sent (the host may freeze us after it)
    before_response_completes: list = field(default_factory=list)

    def ordered_guards(self) -> list[Guard]:
        return [*self.kill_switch_guards, *self.admission_guards, *self.quota_guards, *self.budget_guards]


def provider_factory(runtime: Runtime, override: str | None):
    config = runtime.config
    simulated = SimulatedProvider(config.simulated)

    def build(tier: Tier, route: str) -> ChatProvider | None:
        endpoint = config.tiers[tier]
        kind = override or endpoint.provider
        if kind == "simulated":
            return simulated
        if kind == "bedrock":
            from ..adapters.bedrock import BedrockProvider

            return BedrockProvider(runtime.aws.client("bedrock-runtime", endpoint.region),
                                   cache_priced_models=config.pricing.prompt_cache_priced_models)
        from ..adapters.openai_compat import OpenAICompatibleProvider

        api_key = runtime.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
        return OpenAICompatibleProvider((endpoint.base_url or "").replace("{route}", route), api_key,
                                        timeout_s=config.gateway.provider_timeout_s, name=f"{tier} ({route})",
                                        extra_headers=proxy_auth_headers(endpoint.proxy_auth_env, runtime.environ))

    return build


def gateway_meter(runtime: Runtime) -> GatewayMeter:
    """The meter of the gateway's own AWS units: DynamoDB calls count toward it, and, hosted on
    AWS (Lambda, ECS), so do the log lines the process writes (both billed per unit there)."""
    meter = GatewayMeter.from_environ(runtime.environ)
    runtime.aws.meter = meter
    if runtime.environ.get("AWS_LAMBDA_FUNCTION_NAME") or runtime.environ.get("ECS_CONTAINER_METADATA_URI_V4"):
        from ..adapters.log_bytes import count_gateway_log_bytes

        count_gateway_log_bytes()
    return meter


async def write_cpu_profile(meter: GatewayMeter, path: str) -> None:
    """Each request's (critical-path, overlapped) CPU seconds, as JSON, when the gateway stops."""
    Path(path).write_bytes(orjson.dumps(meter.cpu_profile))


def build_gateway(runtime: Runtime, *, key_store: KeyStore | None = None,
                  provider_override: str | None = None,
                  extra_recorders: tuple[UsageRecorder, ...] = ()) -> GatewayApp:
    """``extra_recorders`` also see every request (``tierup dev``'s policy loop watches usage so)."""
    config = runtime.config
    override = provider_override or runtime.environ.get("TIERUP_PROVIDER") or None
    meter = gateway_meter(runtime)
    key_store = key_store or DynamoKeyStore(runtime.dynamodb, runtime.table(KEYS))
    registry = ProviderRegistry(config, provider_factory(runtime, override))
    parts = GatewayParts(router=StaticRouter(registry))
    wire_table_router(runtime, parts, registry)
    wire_quotas(runtime, parts)
    wire_budgets(runtime, parts)
    parts.recorders.extend(extra_recorders)

    async def warm_up() -> None:
        await asyncio.to_thread(warm_up_tokenizer)
        await asyncio.to_thread(runtime.dynamodb)
        await asyncio.to_thread(load_provider_keys, runtime)  # before the first provider is built

    parts.on_startup.append(warm_up)
    parts.on_shutdown.append(registry.close)
    if meter.cpu_profile is not None:  # bench/gateway_cost.py reads each request's CPU split back
        parts.on_shutdown.append(partial(write_cpu_profile, meter, runtime.environ["TIERUP_CPU_PROFILE"]))
    wire_cache(runtime, parts, override)
    cost = lambda tier, model, usage: token_cost_usd(config.pricing, tier, model, usage)  # noqa: E731
    pipeline = Pipeline(guards=parts.ordered_guards(), router=parts.router, recorders=parts.recorders,
                        cost=cost, cache=parts.cache, provider_timeout_s=config.gateway.provider_timeout_s,
                        gateway_cost=meter.settle)
    # a key that cannot exist (not a SHA-256 hex digest): one cheap read that proves the store answers
    health = HealthCheck(runtime.aws.health, probe=lambda: key_store.get(HEALTH_PROBE_KEY))
    auth = Authenticator(key_store, config)
    batch = batch_endpoint(runtime, auth)
    app = GatewayApp(config=config, auth=auth, pipeline=pipeline,
                     on_startup=parts.on_startup, on_shutdown=parts.on_shutdown,
                     before_response_completes=parts.before_response_completes, health=health,
                     response_store=DynamoResponseStore(runtime.dynamodb, runtime.table(STATE)), meter=meter,
                     batch=batch)
    wire_batch_worker(runtime, parts, app, cost)
    return app


def create_app() -> GatewayApp:
    """The app as uvicorn and Lambda Web Adapter load it: config and wiring from the environment."""
    return build_gateway(Runtime(config=load_config()))
