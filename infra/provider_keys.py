"""The Secrets Manager secret holding the API keys of the OpenAI-compatible tiers (the vLLM
servers on Modal, an overflow provider): ``{"TIERUP_GPU_API_KEY": "...", ...}``, one entry per
``[tiers.X] api-key-env``. The gateway loads it at start-up (functions/adapters/provider_keys.py).

The stack creates it with empty values (never a real credential in the template); the operator
stores the real keys once after the first deploy:

    aws secretsmanager put-secret-value --secret-id <ProviderKeys Arn output> \\
        --secret-string '{"TIERUP_GPU_API_KEY": "..."}'
"""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from functions.adapters.provider_keys import SECRET_ARN_ENV


class ProviderKeysSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, project: str, names: list[str]) -> None:
        super().__init__(scope, construct_id)
        self.env_var = SECRET_ARN_ENV
        self.secret = secretsmanager.Secret(
            self, "Secret",
            description=f"{project}: API keys of the OpenAI-compatible tiers ({', '.join(names)})",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({name: "" for name in names}),
                generate_string_key="unused"),
            removal_policy=RemovalPolicy.DESTROY,
        )
        CfnOutput(self, "Arn", value=self.secret.secret_arn,
                  description="Store the tiers' API keys here (aws secretsmanager put-secret-value)")
