"""The Secrets Manager secret holding the Modal API token the policy and the kill switch use to
raise or drop reserved GPU capacity (``{"MODAL_TOKEN_ID": ..., "MODAL_TOKEN_SECRET": ...}``).

The stack creates it with a placeholder token (never a real credential in the template); the
operator stores the real one once after the first deploy:

    aws secretsmanager put-secret-value --secret-id <ModalTokenSecretArn output> \\
        --secret-string '{"MODAL_TOKEN_ID": "ak-...", "MODAL_TOKEN_SECRET": "as-..."}'
"""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct


class ModalTokenSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, project: str) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self, "Secret",
            description=f"{project}: Modal API token (MODAL_TOKEN_ID, MODAL_TOKEN_SECRET) for GPU control",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"MODAL_TOKEN_ID": "replace-me"}),
                generate_string_key="MODAL_TOKEN_SECRET"),
            removal_policy=RemovalPolicy.DESTROY,
        )
        CfnOutput(self, "Arn", value=self.secret.secret_arn,
                  description="Store the Modal token here (aws secretsmanager put-secret-value)")
