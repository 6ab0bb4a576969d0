"""The Secrets Manager secret holding the API keys of the OpenAI-compatible tiers (the vLLM
servers on Modal, an overflow provider): ``{"TIERUP_GPU_API_KEY": "...", ...}``, one entry per
``[tiers.X] api-key-env``. The gateway loads it at start-up (functions/adapters/provider_keys.py).

The stack creates it holding ``{}`` and never writes it again; the operator stores the real keys
once after the first deploy:

    aws secretsmanager put-secret-value --secret-id <ProviderKeys Arn output> \\
        --secret-string '{"TIERUP_GPU_API_KEY": "..."}'

Why a fixed placeholder and a fixed description: CloudFormation writes the secret's value again
whenever the resource's properties change (a ``GenerateSecretString`` built from the config is
regenerated when a tier is added), which would wipe the stored keys. Nothing here depends on the
config, so no deploy ever touches the value; the key names are in the stack output's description.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, SecretValue
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from functions.adapters.provider_keys import SECRET_ARN_ENV

#: the value the stack creates the secret with; the gateway skips names it does not find
PLACEHOLDER = "{}"


class ProviderKeysSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, project: str, names: list[str]) -> None:
        super().__init__(scope, construct_id)
        self.env_var = SECRET_ARN_ENV
        self.secret = secretsmanager.Secret(
            self, "Secret",
            description=f"{project}: API keys of the OpenAI-compatible tiers (JSON, one entry per api-key-env)",
            secret_string_value=SecretValue.unsafe_plain_text(PLACEHOLDER),  # not a credential
            removal_policy=RemovalPolicy.DESTROY,
        )
        CfnOutput(self, "Arn", value=self.secret.secret_arn,
                  description=f"Store the tiers' API keys here (aws secretsmanager put-secret-value): "
                              f"{', '.join(names)}")
