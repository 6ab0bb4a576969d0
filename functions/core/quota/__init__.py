"""Plan quotas as plain values: counters and windows, request demand, lease sizing, headers."""
