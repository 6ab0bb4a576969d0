"""Create the tables from the same specs the CDK stack uses (for ``tierup dev`` and tests)."""

from __future__ import annotations

from ...core.tables import TABLES, TableSpec, table_name


def create_table(client, spec: TableSpec, name: str) -> None:
    attributes = {spec.partition_key}
    keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        attributes.add(spec.sort_key)
        keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    indexes = []
    for index in spec.indexes:
        attributes.add(index.partition_key)
        schema = [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
        if index.sort_key:
            attributes.add(index.sort_key)
            schema.append({"AttributeName": index.sort_key, "KeyType": "RANGE"})
        indexes.append({"IndexName": index.name, "KeySchema": schema, "Projection": {"ProjectionType": "ALL"}})
    request = {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        "KeySchema": keys,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    try:
        client.create_table(**request)
    except client.exceptions.ResourceInUseException:
        return
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    if spec.ttl_attribute:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": spec.ttl_attribute})


def create_all_tables(client, project: str = "tierup", environ: dict | None = None) -> dict[str, str]:
    """Create every table (idempotent); return logical name -> physical name."""
    names = {}
    for spec in TABLES:
        name = table_name(spec, project, environ)
        create_table(client, spec, name)
        names[spec.name] = name
    return names
