"""Celery 5 app for the side-by-side drain benchmark (results ignored, default prefetch)."""
import os

from celery import Celery

from peer_common import record

app = Celery("peerbench", broker=os.environ["PEER_REDIS_URL"])
app.conf.update(
    task_ignore_result=True,
    task_default_queue="peerbench",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="peer.noop", ignore_result=True)
def noop():
    record()
