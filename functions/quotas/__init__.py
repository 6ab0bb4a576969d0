"""Plan quotas in the gateway: leases on shared DynamoDB counters, the quota stage, backpressure
wiring and the usage ledger's flushing."""
