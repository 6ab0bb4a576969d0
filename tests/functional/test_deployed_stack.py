"""The CLI finds a deployed stack's tables and gateway function in the stack's outputs (the tables
have names CloudFormation chose), on moto's CloudFormation."""

from __future__ import annotations

import json

import boto3
import pytest

from functions.core.stack_outputs import STACK_SETTINGS, output_key
from functions.gateway.composition import Runtime
from tierup.deployed_stack import StackNotFound, fill_stack_settings

from ..support import make_config


def _stack(endpoint: str, name: str, outputs: dict[str, str]):
    client = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1")
    template = {"Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {output_key(env): {"Value": value} for env, value in outputs.items()}}
    client.create_stack(StackName=name, TemplateBody=json.dumps(template))
    return client


def test_missing_settings_come_from_the_stack_outputs(moto_endpoint):
    config = make_config()
    deployed = {name: f"{config.project}-{name.lower()}-ABC123" for name in STACK_SETTINGS}
    client = _stack(moto_endpoint, config.project, deployed)
    runtime = Runtime(config=config, environ={"TIERUP_TABLE_KEYS": "by-hand", "AWS_REGION": "us-east-1"})
    filled = fill_stack_settings(runtime, cloudformation=client)
    assert "TIERUP_TABLE_KEYS" not in filled and runtime.environ["TIERUP_TABLE_KEYS"] == "by-hand"  # env wins
    assert {name: runtime.environ[name] for name in filled} == {k: v for k, v in deployed.items() if k in filled}
    assert set(filled) == set(STACK_SETTINGS) - {"TIERUP_TABLE_KEYS"}
    from functions.core.tables import USAGE
    assert runtime.table(USAGE) == deployed["TIERUP_TABLE_USAGE"]


def test_a_missing_stack_says_how_to_point_the_cli(moto_endpoint):
    runtime = Runtime(config=make_config(), environ={"AWS_REGION": "us-east-1"})
    client = boto3.client("cloudformation", endpoint_url=moto_endpoint, region_name="us-east-1")
    with pytest.raises(StackNotFound, match="cdk deploy.*AWS_REGION.*TIERUP_TABLE_KEYS"):
        fill_stack_settings(runtime, cloudformation=client)


def test_a_local_stand_in_needs_no_stack(moto_endpoint):
    runtime = Runtime(config=make_config(), environ={"TIERUP_AWS_ENDPOINT": moto_endpoint})
    assert fill_stack_settings(runtime, cloudformation=object()) == []  # never called
