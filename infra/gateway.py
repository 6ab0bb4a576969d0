"""The gateway function: the ASGI app (``functions.gateway.asgi:app``) under uvicorn, behind the
Lambda Web Adapter layer and a Function URL that streams responses (SSE relayed as it is made).

Why the Function URL has no IAM auth: OpenAI clients send ``Authorization: Bearer <api key>``
and cannot sign requests with SigV4, so tierup authenticates every request itself (the API key's
SHA-256 hash is looked up in the keys table) before any model is called; an unauthenticated
request costs one DynamoDB read at most and is answered 401.

The function resource never carries a reserved concurrency: ``[gateway] reserved-concurrency``,
when set, is applied by the kill switch (infra/gateway_concurrency.py), so that a ``cdk deploy``
cannot lift a hard stop.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.core.config import TierupConfig

from .lambda_function import TierupFunction

#: Lambda Web Adapter 1.x (arm64), published by AWS in every commercial region
WEB_ADAPTER_LAYER_ARN = "arn:aws:lambda:{region}:753240598075:layer:LambdaAdapterLayerArm64:30"
#: the port uvicorn listens on inside the sandbox (run.sh reads $PORT)
APP_PORT = "8080"
#: Function URLs stream for up to 15 minutes; long generations need the full window
TIMEOUT = Duration.seconds(900)


class GatewayFunction(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TierupConfig,
                 code: lambda_.Code, environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        adapter = lambda_.LayerVersion.from_layer_version_arn(
            self, "WebAdapter", WEB_ADAPTER_LAYER_ARN.format(region=stack.region))
        self.tierup_function = TierupFunction(
            self, "Gateway",
            code=code,
            handler="run.sh",
            description=f"{config.project} OpenAI-compatible gateway (uvicorn under Lambda Web Adapter)",
            memory_mb=config.gateway.lambda_memory_mb,  # [gateway] lambda-memory-mb (bench/gateway_cost.py)
            timeout=TIMEOUT,
            layers=[adapter],
            environment={
                "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                "AWS_LWA_INVOKE_MODE": "response_stream",
                "AWS_LWA_READINESS_CHECK_PATH": "/health",
                "PORT": APP_PORT,
                **environment,
            },
        )
        self.function = self.tierup_function.function
        #: what the stack grants and configures, as for infra/gateway_container.py
        self.grantee: iam.IGrantable = self.function
        self.role = self.tierup_function.role
        self.url = self.function.add_function_url(auth_type=lambda_.FunctionUrlAuthType.NONE,
                                                  invoke_mode=lambda_.InvokeMode.RESPONSE_STREAM)
        CfnOutput(self, "Url", value=self.url.url,
                  description="OpenAI base URL: append v1/ (the openai SDK's base_url)")

    def add_environment(self, name: str, value: str) -> None:
        self.function.add_environment(name, value)
