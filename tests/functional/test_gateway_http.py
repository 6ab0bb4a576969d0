"""Raw HTTP edge cases the SDK cannot send: malformed JSON, wrong types, oversized bodies."""

from __future__ import annotations

import httpx
import pytest


def _post(gateway, body: bytes, key: str | None = None, path: str = "/v1/chat/completions"):
    headers = {"content-type": "application/json"}
    if key is not False:
        headers["authorization"] = f"Bearer {key or gateway.key}"
    return httpx.post(gateway.url + path, content=body, headers=headers, timeout=10)


@pytest.mark.parametrize("body", [b"{bad", b"[]", b"null", b'"text"', b"", b'{"model": 3}',
                                  b'{"model":"chat","messages":"hi"}',
                                  b'{"model":"chat","messages":[{"role":"user","content":5}]}',
                                  b'{"model":"chat","messages":[{"role":"system","content":"x"}]}',
                                  b'{"model":"chat","messages":[{"role":"user","content":"x"}],"n":3}',
                                  b'{"model":"chat","messages":[{"role":"user","content":"x"}],"stream":"yes"}'])
def test_malformed_bodies_are_400(gateway, body):
    response = _post(gateway, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_oversized_body_is_413(gateway):
    big = b'{"model":"chat","messages":[{"role":"user","content":"' + b"x" * (1024 * 1024 + 10) + b'"}]}'
    response = _post(gateway, big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_missing_key_is_401(gateway):
    response = _post(gateway, b'{"model":"chat","messages":[{"role":"user","content":"x"}]}', key=False)
    assert response.status_code == 401


def test_unknown_path_and_method(gateway):
    assert httpx.get(gateway.url + "/v2/nothing").status_code == 404
    assert httpx.get(gateway.url + "/v1/chat/completions").status_code == 405
    assert httpx.get(gateway.url + "/health").json()["status"] == "ok"
