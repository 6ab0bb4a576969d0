"""The DynamoDB tables, built from ``functions.core.tables.TABLES`` (the same specs ``tierup dev``
creates on moto), and the grants each function gets on them.

CloudFormation names the tables: tables are retained when the stack is deleted (they hold API
keys, spend and audit, which must outlive a mistaken ``cdk destroy``), and a fixed name on a
retained table would make the next deploy fail with "already exists". The functions receive each
name in the environment variable ``table_env_var(spec)``; the stack publishes the same names as
outputs, where the ``tierup`` CLI finds them (``functions.core.stack_outputs``). A redeploy after
``cdk destroy`` starts with new, empty tables; the retained ones stay readable by name.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from functions.core.tables import TABLES, TableSpec, table_env_var


def _string_key(name: str | None) -> dynamodb.Attribute | None:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING) if name else None


class TierupTables(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        self._specs: dict[str, TableSpec] = {}
        for spec in TABLES:
            table = dynamodb.Table(
                self, spec.name.capitalize(),
                partition_key=_string_key(spec.partition_key),
                sort_key=_string_key(spec.sort_key),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                time_to_live_attribute=spec.ttl_attribute,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True),
                removal_policy=RemovalPolicy.RETAIN,
            )
            for index in spec.indexes:
                table.add_global_secondary_index(index_name=index.name,
                                                 partition_key=_string_key(index.partition_key),
                                                 sort_key=_string_key(index.sort_key))
            self.tables[spec.name] = table
            self._specs[spec.name] = spec

    def environment(self, *names: str) -> dict[str, str]:
        """``TIERUP_TABLE_*`` variables for the named tables (all of them when none are named)."""
        chosen = names or tuple(self.tables)
        return {table_env_var(self._specs[name]): self.tables[name].table_name for name in chosen}

    def grant_read(self, grantee: iam.IGrantable, *names: str) -> None:
        for name in names:
            self.tables[name].grant_read_data(grantee)

    def grant_read_write(self, grantee: iam.IGrantable, *names: str) -> None:
        for name in names:
            self.tables[name].grant_read_write_data(grantee)
