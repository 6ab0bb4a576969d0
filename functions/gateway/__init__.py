"""The gateway: an ASGI app (uvicorn locally, Lambda Web Adapter on AWS) and its composition root."""
