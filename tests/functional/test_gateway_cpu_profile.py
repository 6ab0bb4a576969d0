"""``TIERUP_CPU_PROFILE``: the gateway splits each request's CPU into its critical path and the part
spent while the model generated, and writes the split when it stops (``bench/gateway_cost.py``)."""

from __future__ import annotations

import orjson

from functions.gateway.composition import build_gateway
from tierup.local_stack import GatewayServer, create_key

from ..support import openai_client


def test_each_request_s_cpu_split_is_written_when_the_gateway_stops(make_runtime, tmp_path):
    path = tmp_path / "cpu.json"
    runtime = make_runtime(environ={"TIERUP_CPU_PROFILE": str(path)})
    key = create_key(runtime, "acme", "pro")
    server = GatewayServer(build_gateway(runtime)).start()
    try:
        client = openai_client(server.url, key)
        stream = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello"}],
                                                max_tokens=32, stream=True)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        client.models.list()  # never calls a provider: all of its CPU is on the critical path
    finally:
        server.stop()
    [streamed, listed] = orjson.loads(path.read_bytes())
    before, during, after = streamed
    assert before > 0 and after > 0  # admission; writing what the request owes
    assert during > 0  # relaying the answer's chunks overlaps the generation
    assert listed[0] > 0 and listed[1:] == [0, 0]
