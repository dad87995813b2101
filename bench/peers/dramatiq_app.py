"""Dramatiq app for the side-by-side drain benchmark (Redis broker, no retries)."""
import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from peer_common import record

dramatiq.set_broker(RedisBroker(url=os.environ["PEER_REDIS_URL"]))


@dramatiq.actor(queue_name="peerbench", max_retries=0)
def noop():
    record()
