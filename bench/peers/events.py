"""The line format shared by the candidates in bench/peers and the driver that reads them.

A candidate prints one JSON object per line on stdout, stamped with time.monotonic() (the
kernel's CLOCK_MONOTONIC, the same clock in every process on the host, and the one the driver
reads when it sends a signal), so times are taken where things happen, not where the driver
happens to read them:

    {"t": 1234.567891, "id": "c0", "ev": "ready"}               connected, campaigning
    {"t": ..., "id": "c0", "ev": "view", "leader": "c1"}        now believes c1 leads (or null)
    {"t": ..., "id": "c0", "ev": "lead"}                        now believes it leads itself
    {"t": ..., "id": "c0", "ev": "lost", "why": "..."}          no longer believes it leads
    {"t": ..., "id": "c0", "ev": "resigned"}                    stepped down on SIGTERM
    {"t": ..., "id": "c0", "ev": "note", "what": "..."}         anything else worth a log line
"""
import json
import sys
import threading
import time

_lock = threading.Lock()
_id = "?"


def set_id(candidate_id):
    global _id
    _id = candidate_id


def emit(ev, **fields):
    """Prints one event line; safe from any thread (the lock keeps lines whole)."""
    line = {"t": time.monotonic(), "id": _id, "ev": ev}
    line.update(fields)
    text = json.dumps(line, separators=(",", ":"))
    with _lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
