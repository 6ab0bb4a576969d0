#!/bin/sh
# The gateway function's handler under the Lambda Web Adapter layer: the adapter runs this script,
# waits for GET /health on $PORT, then relays each Function URL request (streamed) to it.
# exec, so uvicorn receives the adapter's SIGTERM directly and shuts down gracefully.
cd "${LAMBDA_TASK_ROOT:-/var/task}"
exec python -m uvicorn functions.gateway.asgi:app \
    --host 127.0.0.1 --port "${PORT:-8080}" \
    --loop uvloop --http httptools \
    --no-access-log --no-server-header --timeout-graceful-shutdown 2
