"""The gateway's EMF metrics go to its own project's namespace, the one the stack's alarms and
dashboard read (infra/metrics.py): two projects in one account never feed each other's alarms."""

from __future__ import annotations

import json

from functions.gateway.composition import build_gateway
from infra.metrics import COST, route_metric
from tierup.local_stack import GatewayServer, create_key

from ..support import openai_client


def test_every_metric_line_is_in_the_project_s_namespace(make_runtime, capfd):
    runtime = make_runtime(environ={"TIERUP_EMF": "stdout"})
    key = create_key(runtime, "acme", "pro")
    server = GatewayServer(build_gateway(runtime)).start()
    try:
        openai_client(server.url, key).chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hello"}], max_tokens=8)
    finally:
        server.stop()  # the last flush writes the ledger, metrics included
    directives = [directive for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')
                  for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]]
    assert directives, "no EMF line was written"
    expected = route_metric(runtime.config.project, COST, "chat").namespace
    assert expected == f"tierup/{runtime.config.project}"
    assert {d["Namespace"] for d in directives} == {expected}
    assert any(d["Dimensions"] == [[]] or d["Dimensions"] == [] for d in directives)  # the total CostUSD
