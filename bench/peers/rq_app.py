"""RQ task for the side-by-side drain benchmark (run by a SimpleWorker: no fork per job)."""
from peer_common import record


def noop():
    record()
