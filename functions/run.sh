#!/bin/sh
# The gateway's start script, on both hosts ([gateway] hosting):
# - Lambda: the handler under the Lambda Web Adapter layer; the adapter runs this script, waits for
#   GET /health on $PORT, then relays each Function URL request (streamed) to it. The defaults below
#   are Lambda's.
# - container: the ECS task's command (infra/gateway_container.py) after it unpacks this same bundle;
#   the task sets HOST (the task's network interface, where the load balancer connects), a keep-alive
#   longer than the load balancer's idle timeout (so the balancer, never uvicorn, closes an idle
#   connection: no 502 on a reused one) and a graceful shutdown as long as the longest stream.
# exec, so uvicorn receives the host's SIGTERM directly and shuts down gracefully.
cd "${LAMBDA_TASK_ROOT:-/var/task}"
exec python -m uvicorn functions.gateway.asgi:app \
    --host "${HOST:-127.0.0.1}" --port "${PORT:-8080}" \
    --loop uvloop --http httptools \
    --timeout-keep-alive "${KEEP_ALIVE_S:-5}" \
    --no-access-log --no-server-header --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_S:-2}"
