"""``[gateway] reserved-concurrency`` applied at deploy time by the kill-switch function (the
``Custom::TierupGatewayConcurrency`` resource): real CloudFormation request events, the gateway on
moto's Lambda, the flags in moto's DynamoDB, and the answer PUT to a local HTTP server standing in
for the pre-signed ResponseURL. A deploy never lifts a hard stop."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from functions.core.killswitch import KillSwitchFlag
from functions.killswitch_handler import handler

from .test_killswitch_handler import GATEWAY_FUNCTION, _concurrency, _gateway_function


class ResponseUrl:
    """A stand-in for CloudFormation's pre-signed S3 URL: records each PUT body."""

    def __init__(self) -> None:
        answers = self.answers = []

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answers.append((self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/signed?X-Amz-Signature=abc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def deploy(make_runtime, moto_endpoint):
    name = f"{GATEWAY_FUNCTION}-{time.time_ns()}"
    _gateway_function(moto_endpoint, name, concurrency=None)
    runtime = make_runtime({"gateway": {"reserved-concurrency": 40}}, environ={"TIERUP_GATEWAY_FUNCTION_NAME": name})
    response_url = ResponseUrl()
    from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
    from functions.core.tables import STATE

    def request(request_type: str, reserved="40", physical_id: str | None = None) -> dict:
        event = {"RequestType": request_type, "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:ks",
                 "ResponseURL": response_url.url, "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/t/1",
                 "RequestId": f"req-{time.time_ns()}", "LogicalResourceId": "GatewayConcurrency",
                 "ResourceType": "Custom::TierupGatewayConcurrency",
                 "ResourceProperties": {"ServiceToken": "arn:...", "FunctionName": name,
                                        "ReservedConcurrency": reserved}}
        if physical_id:
            event["PhysicalResourceId"] = physical_id
        handler(event, runtime=runtime)
        content_type, answer = response_url.answers[-1]
        assert content_type == "" and answer["RequestId"] == event["RequestId"]
        assert answer["StackId"] == event["StackId"] and answer["LogicalResourceId"] == "GatewayConcurrency"
        return answer

    yield type("Deploy", (), {"request": staticmethod(request), "function": name, "endpoint": moto_endpoint,
                              "store": DynamoGuardrailStore(runtime.dynamodb, runtime.table(STATE))})
    response_url.close()


def _hard_stop(deploy) -> None:
    deploy.store.put_flag(KillSwitchFlag(scope="global", action="hard-stop", reason="runaway", budget="manual",
                                         source="cli", engaged_at=time.time(),
                                         applied=frozenset({"flag", f"gateway:{deploy.function}"})))
    boto3.client("lambda", endpoint_url=deploy.endpoint, region_name="us-east-1").put_function_concurrency(
        FunctionName=deploy.function, ReservedConcurrentExecutions=0)


def test_a_deploy_applies_the_configured_reservation_and_its_removal_unreserves(deploy):
    created = deploy.request("Create")
    assert created["Status"] == "SUCCESS" and _concurrency(deploy.endpoint, deploy.function) == 40
    updated = deploy.request("Update", reserved="60", physical_id=created["PhysicalResourceId"])
    assert updated["Status"] == "SUCCESS" and updated["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert _concurrency(deploy.endpoint, deploy.function) == 60
    deleted = deploy.request("Delete", physical_id=created["PhysicalResourceId"])
    assert deleted["Status"] == "SUCCESS" and _concurrency(deploy.endpoint, deploy.function) is None


def test_a_deploy_during_a_hard_stop_leaves_the_gateway_stopped(deploy):
    _hard_stop(deploy)
    for request_type in ("Create", "Update", "Delete"):
        answer = deploy.request(request_type, reserved="60")
        assert answer["Status"] == "SUCCESS" and "hard stop (global)" in answer["Reason"]
        assert _concurrency(deploy.endpoint, deploy.function) == 0


def test_a_failure_is_answered_so_the_deploy_fails_fast_and_a_removal_never_sticks(deploy):
    boto3.client("lambda", endpoint_url=deploy.endpoint, region_name="us-east-1").delete_function(
        FunctionName=deploy.function)
    failed = deploy.request("Update")
    assert failed["Status"] == "FAILED" and "not applied" in failed["Reason"]
    assert deploy.request("Delete")["Status"] == "SUCCESS"
