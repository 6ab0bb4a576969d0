"""Budget guardrails with I/O behind ports: the gateway's kill-switch and spend-cap stages,
threshold alerts, and the kill-switch executor. The decisions themselves live in
``functions/core`` (spend_caps, killswitch, notifications, budget_alerts)."""
