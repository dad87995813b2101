"""What every peer task does: INCR a counter; the first and the last task stamp the time.

The driver (peer_bench.py) sets PEER_REDIS_URL and PEER_COUNT in the worker's environment.
One INCR (plus a SET for the first and last) is the whole task body, for every peer alike.
"""
import os
import time

import redis

COUNTER = "bench:peer:count"
FIRST = "bench:peer:first"
LAST = "bench:peer:last"

_client = None


def record():
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["PEER_REDIS_URL"])
    n = _client.incr(COUNTER)
    now = time.time()
    if n == 1:
        _client.set(FIRST, repr(now))
    if n == int(os.environ["PEER_COUNT"]):
        _client.set(LAST, repr(now))
