"""The response cache's pure logic: keys and scopes, LSH buckets, near-miss guards, entry encoding.

No I/O here: the DynamoDB store is in ``functions/adapters/dynamodb/cache.py`` and the cache
the pipeline calls is in ``functions/gateway/response_cache.py``.
"""
