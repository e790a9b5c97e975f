#!/usr/bin/python3
"""One candidate in an etcd leader election, for scripts/bench-peers (python3-etcd3).

It campaigns the way etcd's own election recipe does (clientv3/concurrency's Session and
Election, which `etcdctl elect` runs): a lease of --ttl seconds kept alive every TTL/3, a key
<prefix>/<lease id> attached to it, and the leader is the key with the lowest create revision;
each candidate waits for the key created just before its own to be deleted. python3-etcd3 has
no election of its own, and `etcdctl elect` in 3.4 always takes a 60 s session, hence this.

It believes it leads from the moment it finds no earlier key until the first of: its lease's
deadline passes by its own clock (the time it last sent a keep-alive that etcd answered, plus
the TTL, as clientv3's keep-alive loop judges it), etcd answers a keep-alive with TTL <= 0, or
its watch shows another key first. Then it prints "lost" and exits; the driver starts it anew.
On SIGTERM it resigns (deletes its key, as Election.Resign does) and exits.

Events go to stdout in the format of events.py.

    etcd_candidate.py --id c0 --endpoint 127.0.0.1:2379 --ttl 1 --prefix /bench/election
"""
import argparse
import os
import queue
import signal
import threading
import time

import etcd3
import etcd3.events

from events import emit, set_id


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--id", required=True)
    p.add_argument("--endpoint", required=True, help="host:port of one etcd member")
    p.add_argument("--ttl", type=int, required=True, help="lease TTL in seconds")
    p.add_argument("--prefix", required=True, help="the election's key prefix")
    args = p.parse_args()
    set_id(args.id)
    host, port = args.endpoint.rsplit(":", 1)
    client = etcd3.client(host=host, port=int(port), timeout=5)
    prefix = args.prefix.rstrip("/") + "/"

    sent = time.monotonic()
    lease = client.lease(args.ttl)
    granted = lease.ttl  # what etcd granted: a TTL below its minimum is raised to it
    state = {"deadline": sent + granted, "leading": False, "leader": None}
    lock = threading.Lock()

    def give_up(why):
        # One way out for every path that ends this candidate's belief, so it is reported once.
        with lock:
            if state["leading"]:
                emit("lost", why=why)
            else:
                emit("note", what="exit: " + why)
        os._exit(3)

    def keep_alive():
        while True:
            sent = time.monotonic()
            try:
                ttl_left = next(iter(client.refresh_lease(lease.id))).TTL
            except Exception as e:  # a failed keep-alive is not a lost lease; the deadline is
                emit("note", what="keep-alive failed: %s" % type(e).__name__)
                ttl_left = None
            if ttl_left is not None:
                if ttl_left <= 0:
                    give_up("etcd answered the keep-alive with TTL %d" % ttl_left)
                with lock:
                    state["deadline"] = max(state["deadline"], sent + ttl_left)
            time.sleep(max(0.0, sent + granted / 3.0 - time.monotonic()))

    def watch_deadline():
        # time.sleep runs on CLOCK_MONOTONIC to an absolute end, so after SIGSTOP/SIGCONT this
        # thread wakes at once and finds the deadline long past.
        while True:
            with lock:
                deadline = state["deadline"]
            now = time.monotonic()
            if now >= deadline:
                give_up("lease deadline passed")
            time.sleep(deadline - now)

    def read_leader():
        # Election.Leader(): the value of the key with the lowest create revision.
        for value, _ in client.get_prefix(prefix, sort_order="ascend", sort_target="create"):
            return value.decode()
        return None

    changes = queue.Queue()

    def observe():
        while True:
            changes.get()
            while not changes.empty():
                changes.get_nowait()
            leader = read_leader()
            with lock:
                if leader == state["leader"]:
                    continue
                state["leader"] = leader
                emit("view", leader=leader)
                stolen = state["leading"] and leader != args.id
            if stolen:
                give_up("another key is first")

    # The watch goes in before the first read, so no change falls between them.
    client.add_watch_prefix_callback(prefix, lambda _response: changes.put(1))
    changes.put(1)

    key = prefix + "%016x" % lease.id

    def campaign():
        put = client.transactions.put(key, args.id, lease=lease)
        client.transaction(compare=[client.transactions.create(key) == 0], success=[put],
                           failure=[])
        _, mine = client.get(key)
        emit("ready", ttl=granted)
        while True:
            earlier = [m for _, m in client.get_prefix(prefix, sort_order="ascend",
                                                       sort_target="create")
                       if m.create_revision < mine.create_revision]
            if not earlier:
                break
            # waitDeletes: watch the latest earlier key from just after its last change, so a
            # delete that happened after the read above is replayed, not missed.
            events, cancel = client.watch(earlier[-1].key,
                                          start_revision=earlier[-1].mod_revision + 1)
            for event in events:
                if isinstance(event, etcd3.events.DeleteEvent):
                    break
            cancel()
        with lock:
            state["leading"] = True
            emit("lead")

    def resign(_signum, _frame):
        client.delete(key)
        with lock:
            state["leading"] = False
            emit("resigned")
        os._exit(0)

    signal.signal(signal.SIGTERM, resign)
    for target in (keep_alive, watch_deadline, observe, campaign):
        threading.Thread(target=target, daemon=True).start()
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
