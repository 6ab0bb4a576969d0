"""The laptop-side simulator behind ``tierup simulate`` and bench/policy_cost.py: trace loaders
(public traces, your own request files, the usage ledger), 10-second buckets, the pricing engine
and its rules, the replay through the policy's own ``decide``, and the report (table, plot)."""
