#!/usr/bin/python3
"""One candidate in a ZooKeeper leader election, for scripts/bench-peers (python3-kazoo).

It campaigns with kazoo's Election recipe (a Lock: an ephemeral sequential node under the
election path, the lowest sequence number leads, each contender watches the one before it),
in a session of --session-timeout seconds (the server clamps it to its min/max session
timeout).

It believes it leads from the moment Election.run calls its function until its connection is
SUSPENDED or its session LOST, the point at which kazoo's documentation says a lock holder must
assume it may have lost the lock (the session may already have expired at the server). Then it
prints "lost" and exits; the driver starts it anew. Every candidate also watches the election's
children and reports who leads by Election.contenders(). On SIGTERM it resigns by closing its
session, which deletes its node at once, and exits.

Events go to stdout in the format of events.py.

    zk_candidate.py --id c0 --hosts 127.0.0.1:2181,127.0.0.1:2182 --session-timeout 1 \
        --path /bench/election
"""
import argparse
import os
import queue
import signal
import threading

from kazoo.client import KazooClient, KazooState

from events import emit, set_id


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--id", required=True)
    p.add_argument("--hosts", required=True, help="the ensemble's client addresses")
    p.add_argument("--session-timeout", type=float, required=True, help="seconds")
    p.add_argument("--path", required=True, help="the election's node")
    args = p.parse_args()
    set_id(args.id)

    zk = KazooClient(hosts=args.hosts, timeout=args.session_timeout)
    state = {"leading": False, "leader": None, "resigning": False}
    lock = threading.Lock()

    def give_up(why):
        with lock:
            if state["leading"]:
                emit("lost", why=why)
            else:
                emit("note", what="exit: " + why)
        os._exit(3)

    def on_state(new_state):
        # Runs on kazoo's connection thread; only a leader's SUSPENDED or anyone's LOST ends
        # this candidate (a follower's SUSPENDED is a reconnect that may keep the session).
        if state["resigning"]:
            return  # zk.stop() below ends the session on purpose
        if new_state == KazooState.LOST:
            give_up("session lost")
        if new_state == KazooState.SUSPENDED and state["leading"]:
            give_up("connection suspended")

    zk.add_listener(on_state)
    zk.start(timeout=15)
    emit("ready", session_timeout_s=args.session_timeout)
    election = zk.Election(args.path, args.id)
    zk.ensure_path(args.path)

    changes = queue.Queue()

    def observe():
        # Watch callbacks must not block kazoo's event thread, so reads happen here.
        while True:
            changes.get()
            while not changes.empty():
                changes.get_nowait()
            try:
                contenders = election.contenders()
            except Exception as e:
                emit("note", what="contenders() failed: %s" % type(e).__name__)
                continue
            leader = contenders[0] if contenders else None
            with lock:
                if leader == state["leader"]:
                    continue
                state["leader"] = leader
                emit("view", leader=leader)
                stolen = state["leading"] and leader != args.id
            if stolen:
                give_up("another node is first")

    zk.ChildrenWatch(args.path, lambda _children: changes.put(1))

    def lead():
        with lock:
            state["leading"] = True
            emit("lead")
        threading.Event().wait()  # leads until the session says otherwise

    def resign(_signum, _frame):
        state["resigning"] = True
        zk.stop()  # closes the session: the server deletes the node before answering
        with lock:
            state["leading"] = False
            emit("resigned")
        os._exit(0)

    signal.signal(signal.SIGTERM, resign)
    threading.Thread(target=observe, daemon=True).start()
    threading.Thread(target=election.run, args=(lead,), daemon=True).start()
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
