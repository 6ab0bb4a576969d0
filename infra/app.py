"""The CDK app: ``npx cdk synth`` / ``npx cdk deploy`` run this with the project's virtualenv
(cdk.json; ``--app "python3 infra/app.py"`` runs it with another Python that has the ``cdk`` extra).

The config comes from ``-c config=PATH``, else ``TIERUP_CONFIG``, else ``./tierup.toml``; it is
validated here, so a bad key fails the synth with the key's name, and the same file is bundled
into every function. The account and region come from the CLI's credentials when present
(``CDK_DEFAULT_*``); without them the stack synthesises environment-agnostic, offline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # cdk.json runs this file as a script, not as a module
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, Environment, Tags  # noqa: E402  (after the jsii settings above)

from functions.core.config import config_path, load_config  # noqa: E402
from functions.core.errors import TierupError  # noqa: E402
from infra.bundling import lambda_bundle  # noqa: E402
from infra.nag import check_with_cdk_nag  # noqa: E402
from infra.stack import TierupStack  # noqa: E402


#: the policy and the kill switch drive Modal, and the policy needs numpy; the gateway needs neither
CONTROL_EXTRAS = ("gpu", "policy")


def build_stack(app: App, config_file: str | os.PathLike | None = None) -> TierupStack:
    """Load and validate the config, then add the tierup stack (and the cdk-nag checks) to ``app``."""
    chosen = Path(config_file or app.node.try_get_context("config") or config_path())
    config = load_config(chosen)
    stack = TierupStack(app, config.project, config=config,
                        gateway_code=lambda_bundle(ROOT, chosen),
                        control_code=lambda_bundle(ROOT, chosen, extras=CONTROL_EXTRAS),
                        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
                                        region=os.environ.get("CDK_DEFAULT_REGION")))
    # every resource carries the project's name: activate it as a cost-allocation tag to see
    # tierup's own spend in Cost Explorer
    Tags.of(stack).add("project", config.project)
    check_with_cdk_nag(app, stack)
    return stack


def main() -> None:
    app = App()
    try:
        build_stack(app)
    except TierupError as exc:  # a bad config or bundle: its message names the key, no traceback
        sys.exit(f"tierup: {exc.message}")
    app.synth()


if __name__ == "__main__":
    main()
