"""Where the ``tierup`` CLI finds a deployed stack's resources: the stack's outputs.

CloudFormation names the tables, so the CLI cannot derive them from the config; the stack (named
after ``project``) publishes them, with the gateway function and the alert topic, as outputs
(``functions.core.stack_outputs``). They are read once, only by commands that touch AWS, and only
for what the environment does not set already. Against a local stand-in (``TIERUP_AWS_ENDPOINT``,
as ``tierup dev`` prints it) nothing is looked up: the local tables are ``{project}-{name}``.
"""

from __future__ import annotations

from functions.core.stack_outputs import STACK_SETTINGS, settings_from_outputs


class StackNotFound(Exception):
    """The stack's outputs could not be read; the message says how to point the CLI by hand."""


def fill_stack_settings(runtime, cloudformation=None) -> list[str]:
    """Set each missing ``STACK_SETTINGS`` variable in ``runtime.environ`` from the outputs of
    the stack ``runtime.config.project``; return the names set."""
    env = runtime.environ
    missing = [name for name in STACK_SETTINGS if not env.get(name)]
    if not missing or env.get("TIERUP_AWS_ENDPOINT"):
        return []
    stack = runtime.config.project
    client = cloudformation or runtime.aws.client("cloudformation")
    try:
        [described] = client.describe_stacks(StackName=stack)["Stacks"]
    except Exception as exc:  # no credentials, no stack, another region: all mean "not found here"
        raise StackNotFound(
            f"cannot read the outputs of stack {stack!r} in {runtime.aws.region} ({exc}); deploy it "
            f"(cdk deploy), set AWS_REGION to its region, or set {', '.join(missing)} by hand") from exc
    found = settings_from_outputs(described.get("Outputs", []))
    filled = [name for name in missing if name in found]
    for name in filled:
        env[name] = found[name]
    return filled
