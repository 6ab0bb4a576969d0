"""Every parameter a tier cannot honour is a 400 naming the parameter and the tier, on every tier;
never a 200 that silently ignored it. The table here is the one in README.md."""

from __future__ import annotations

import openai
import pytest

from ..openai_upstream import ScriptedUpstream
from ..support import openai_client

#: one request per tier-dependent parameter, with a value that would change the answer
REQUESTS = {
    "seed": {"seed": 42},
    "presence_penalty": {"presence_penalty": 0.5},
    "frequency_penalty": {"frequency_penalty": -0.5},
    "logprobs": {"logprobs": True, "top_logprobs": 2},
    "logit_bias": {"logit_bias": {"50256": -100}},
    "reasoning_effort": {"reasoning_effort": "low"},
    "n": {"n": 2},
}

#: what each tier refuses (README: "Parameters by tier")
REFUSED = {
    "simulated": {"presence_penalty", "frequency_penalty", "logprobs", "logit_bias", "reasoning_effort", "n"},
    "bedrock": {"seed", "presence_penalty", "frequency_penalty", "logprobs", "logit_bias", "reasoning_effort", "n"},
    "openai": {"n"},
}


@pytest.fixture(scope="module")
def upstream():
    server = ScriptedUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def tier_client(make_runtime, serve, upstream):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    def start(kind: str):
        if kind == "simulated":
            runtime = make_runtime()
        elif kind == "bedrock":  # the example config's serverless tier; refused before Bedrock is called
            runtime = make_runtime(environ={"TIERUP_PROVIDER": ""})
        else:
            runtime = make_runtime({"tiers": {"serverless": {"provider": "openai", "base-url": upstream.url}},
                                    "routes": {"chat": {"serverless": "prose"}},
                                    "pricing": {"models": {"prose": {"input-per-mtok": 1, "output-per-mtok": 2}}}},
                                   environ={"TIERUP_PROVIDER": ""})
        return openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))

    return start


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_every_unsupported_parameter_is_refused_by_name_on_every_tier(tier_client, kind):
    client = tier_client(kind)
    outcomes = {}
    for param, extra in REQUESTS.items():
        try:
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"hi {param}"}],
                                           extra_body=extra)
            outcomes[param] = "accepted"
        except openai.BadRequestError as exc:
            body = exc.body
            assert body["param"] == param and body["code"] == "unsupported_parameter", body
            assert "serverless" in body["message"] or param == "n", body["message"]  # names the tier
            outcomes[param] = "refused"
    assert {param for param, outcome in outcomes.items() if outcome == "refused"} == REFUSED[kind]


@pytest.mark.parametrize("kind", ["simulated", "openai"])
def test_values_that_change_nothing_are_not_refused(tier_client, kind):
    answer = tier_client(kind).chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "hi"}], n=1, presence_penalty=0, frequency_penalty=0,
        logprobs=False, response_format={"type": "text"}, store=False, user="u", metadata={"a": "b"})
    assert answer.choices[0].message.content
