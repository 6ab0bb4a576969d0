"""The answer to a CloudFormation custom-resource request: one HTTPS PUT of a JSON document to the
request's pre-signed ``ResponseURL``. Without it the stack waits for an hour, then fails, so the
caller answers on every path, errors included.

Standard library only (urllib): the kill-switch bundle needs no HTTP client for this.
"""

from __future__ import annotations

import json
import urllib.request

#: the pre-signed S3 URL answers in well under a second; a stuck PUT must not eat the function's minute
TIMEOUT_S = 10.0


def send_cfn_response(event: dict, status: str, reason: str, physical_id: str, data: dict | None = None) -> None:
    """``status`` is ``SUCCESS`` or ``FAILED``; ``reason`` shows in the stack's events."""
    body = json.dumps({"Status": status, "Reason": reason[:1000], "PhysicalResourceId": physical_id,
                       "StackId": event["StackId"], "RequestId": event["RequestId"],
                       "LogicalResourceId": event["LogicalResourceId"], "Data": data or {}}).encode()
    # the pre-signed URL is signed for an empty Content-Type
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (CloudFormation's URL)
        response.read()
