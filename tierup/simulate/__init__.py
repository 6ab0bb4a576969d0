"""The laptop-side simulator behind ``tierup simulate`` and bench/policy_cost.py: trace loaders,
the baselines, the replay through the policy's own ``decide``, and the report (table, plot)."""
