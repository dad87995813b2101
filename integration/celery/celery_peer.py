"""The Python side of the Celery interop tests: a real Celery app on the test Redis.

Run as a worker:   celery -A celery_peer worker -Q <queue> ...
Run as a client:   python celery_peer.py <command> ...   (prints one JSON line)
"""
import json
import os
import sys
import time

import redis
from celery import Celery

URL = os.environ["AIRLOCK_REDIS_URL"]
app = Celery("celery_peer", broker=URL, backend=URL)
app.conf.update(
    task_serializer="json", accept_content=["json"], result_serializer="json",
    broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
)
RECORD = os.environ.get("PEER_RECORD_KEY", "peer:record")


@app.task(name="peer.record")
def record(*args, **kwargs):
    """Appends what it received (and when) to a Redis list the Swift test reads."""
    r = redis.Redis.from_url(URL)
    r.rpush(RECORD, json.dumps({"args": list(args), "kwargs": kwargs, "at": time.time(),
                                "retries": record.request.retries, "eta": record.request.eta and str(record.request.eta)}))
    return {"args": list(args), "kwargs": kwargs}


def client(command, payload):
    """Sends tasks to the Swift worker and reports what AsyncResult.get() returned or raised."""
    spec = json.loads(payload)
    out = []
    results = []
    for call in spec["calls"]:
        options = {k: v for k, v in call.items() if k in ("countdown", "queue", "priority", "expires")}
        results.append((call, app.send_task(call["task"], args=call.get("args", []), kwargs=call.get("kwargs", {}), **options)))
    for call, result in results:
        started = time.time()
        try:
            value = result.get(timeout=spec.get("timeout", 30))
            out.append({"ok": True, "value": value, "id": result.id, "waited": time.time() - started})
        except Exception as error:  # the failure the Swift task raised, re-created by Celery
            out.append({"ok": False, "error_type": type(error).__name__, "error": str(error), "id": result.id})
    print(json.dumps(out))


if __name__ == "__main__":
    client(sys.argv[1], sys.argv[2])
