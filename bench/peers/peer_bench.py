#!/usr/bin/env python3
"""Drain benchmark of one peer queue on the bench's Redis.

Enqueues --count no-op tasks (each INCRs a counter, see peer_common.py), then starts the peer's
worker, waits until the counter reaches --count and reports:
  drain/s   = (count - 1) / (time the last task ran - time the first task ran), stamped by the tasks
  enqueue/s = count / time the producer loop took
The worker runs in its own process group; its id is appended to --pgid-file at once so the
calling script can kill it even if this driver dies. Last line: `result: per_s=… enqueue_per_s=… seconds=…`.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import redis  # noqa: E402

import peer_common  # noqa: E402


def worker_command(system, url):
    venv_bin = os.path.dirname(sys.executable)
    if system == "celery":
        return [os.path.join(venv_bin, "celery"), "-A", "celery_app", "worker", "-P", "prefork", "-c", "2",
                "-Q", "peerbench", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
    if system == "dramatiq":
        return [os.path.join(venv_bin, "dramatiq"), "dramatiq_app", "-p", "2", "-t", "4", "--queues", "peerbench"]
    if system == "rq":
        return [os.path.join(venv_bin, "rq"), "worker", "--url", url, "--worker-class", "rq.worker.SimpleWorker",
                "--burst", "--quiet", "peerbench"]
    raise SystemExit(f"unknown system {system}")


def enqueue(system, count):
    if system == "celery":
        from celery_app import noop
        for _ in range(count):
            noop.delay()
    elif system == "dramatiq":
        from dramatiq_app import noop
        for _ in range(count):
            noop.send()
    elif system == "rq":
        from rq import Queue

        from rq_app import noop
        queue = Queue("peerbench", connection=redis.Redis.from_url(os.environ["PEER_REDIS_URL"]))
        for _ in range(count):
            queue.enqueue(noop, result_ttl=0)


def stop(process):
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", required=True, choices=["celery", "dramatiq", "rq"])
    parser.add_argument("--url", required=True, help="redis://host:port/db (a db of its own)")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--pgid-file", default=None)
    parser.add_argument("--log", default=None, help="worker output goes here")
    args = parser.parse_args()

    os.environ["PEER_REDIS_URL"] = args.url
    os.environ["PEER_COUNT"] = str(args.count)
    client = redis.Redis.from_url(args.url)
    client.flushdb()

    started = time.perf_counter()
    enqueue(args.system, args.count)
    enqueue_seconds = time.perf_counter() - started

    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = open(args.log, "ab") if args.log else subprocess.DEVNULL
    process = subprocess.Popen(worker_command(args.system, args.url), cwd=HERE, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    if args.pgid_file:
        with open(args.pgid_file, "a") as f:
            f.write(f"{process.pid}\n")

    def on_signal(signum, _frame):
        stop(process)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        deadline = time.monotonic() + args.timeout
        while int(client.get(peer_common.COUNTER) or 0) < args.count:
            if time.monotonic() > deadline:
                raise SystemExit(f"{args.system}: timed out with {int(client.get(peer_common.COUNTER) or 0)} of {args.count} done")
            if process.poll() is not None and args.system != "rq":
                raise SystemExit(f"{args.system}: worker exited with {process.returncode}")
            time.sleep(0.02)
        first = float(client.get(peer_common.FIRST))
        last = float(client.get(peer_common.LAST))
    finally:
        stop(process)
        client.flushdb()
    seconds = last - first
    per_s = (args.count - 1) / seconds
    enqueue_per_s = args.count / enqueue_seconds
    print(f"{args.system}: drained {args.count} tasks in {seconds:.3f} s = {per_s:.0f} tasks/s "
          f"(enqueue {enqueue_per_s:.0f}/s)")
    print(f"result: per_s={per_s:.0f} enqueue_per_s={enqueue_per_s:.0f} seconds={seconds:.4f} tasks={args.count}")


if __name__ == "__main__":
    main()
