"""cdk-nag's AWS Solutions checks on the stack, and the findings acknowledged on purpose, each
with its reason. Any other finding fails ``cdk synth``.

Not a finding but decided on purpose: the gateway's Function URL has no IAM auth (no AwsSolutions
rule covers Function URLs); tierup authenticates every request by API key itself, because OpenAI
clients cannot sign requests (see infra/gateway.py).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks

from .stack import TierupStack

PACK = "AwsSolutions"


def check_with_cdk_nag(app: App, stack: TierupStack) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    Validations.of(stack.modal_secret).acknowledge(Acknowledgment(
        id=f"{PACK}::{PACK}-SMG4",
        reason="The secret holds a Modal API token, which only Modal can issue; a Secrets Manager "
               "rotation function cannot mint a new one. Rotate it in Modal and store it with "
               "put-secret-value."))
