"""The settings a deployed stack hands to the ``tierup`` CLI through its CloudFormation outputs.

CloudFormation names the tables (a fixed name on a retained table makes a redeploy after
``cdk destroy`` fail with "already exists"), so the CLI cannot derive them from the config. Each
function gets them as environment variables; the CLI reads the same values from the stack's
outputs, one output per variable, named by ``output_key``. A variable already set in the
environment wins, so ``TIERUP_TABLE_*`` still points the CLI anywhere by hand.

No I/O here.
"""

from __future__ import annotations

from .tables import TABLES, table_env_var

GATEWAY_FUNCTION_ENV = "TIERUP_GATEWAY_FUNCTION_NAME"
ALERT_TOPIC_ENV = "TIERUP_ALERT_TOPIC_ARN"

#: every variable the stack publishes as an output
STACK_SETTINGS: tuple[str, ...] = (*(table_env_var(spec) for spec in TABLES), GATEWAY_FUNCTION_ENV,
                                   ALERT_TOPIC_ENV, "TIERUP_BATCH_BUCKET", "TIERUP_BATCH_QUEUE_URL")


def output_key(env_var: str) -> str:
    """``TIERUP_TABLE_KEYS`` -> ``TierupTableKeys`` (an output's logical ID is alphanumeric)."""
    return "".join(part.capitalize() for part in env_var.split("_"))


def settings_from_outputs(outputs: list[dict]) -> dict[str, str]:
    """``describe_stacks``' ``Outputs`` -> the environment variables they carry."""
    by_key = {output["OutputKey"]: output["OutputValue"] for output in outputs}
    return {name: by_key[output_key(name)] for name in STACK_SETTINGS if output_key(name) in by_key}
