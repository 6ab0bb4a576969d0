"""The ASGI entry point: ``uvicorn functions.gateway.asgi:app`` (locally and on Lambda)."""

from .composition import create_app

app = create_app()
