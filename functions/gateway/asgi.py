"""The ASGI entry point: ``uvicorn functions.gateway.asgi:app`` (locally and on Lambda).

pydantic plugins are switched off unless the environment says otherwise: tierup uses none, and
looking for them scans every installed package's entry points when the first model is built
(8 ms of cold start with the development environment's 139 packages, 25-45 ms on a busy machine).
"""

import os

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from .composition import create_app  # noqa: E402  (after the switch above, which pydantic reads once)

app = create_app()
