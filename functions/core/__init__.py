"""The pure core: config, request schema, quota math, pricing, cache keys, policy, errors. No I/O."""
