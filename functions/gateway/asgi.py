"""The ASGI entry point: ``uvicorn functions.gateway.asgi:app`` (locally and on Lambda).

pydantic plugins are switched off unless the environment says otherwise: tierup uses none, and
looking for them scans every installed package's entry points when the first model is built
(8 ms of cold start with the development environment's 139 packages, 25-45 ms on a busy machine).
The app is imported and built with the garbage collector held off (``start_up_gc``), then frozen.
"""

import gc
import os

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from .start_up_gc import collections_paused  # noqa: E402

with collections_paused():
    from .composition import create_app  # (after the switch above, which pydantic reads once)

    app = create_app()
    # Modules, config and wiring live as long as the process: frozen, no collection walks them
    # again. Left uncollected, the imports' few hundred cyclic leftovers (tens of KB) stay too:
    # cheaper than a full pass over the heap now (16 ms), and this runs once a process.
    gc.freeze()
