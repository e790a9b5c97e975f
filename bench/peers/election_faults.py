#!/usr/bin/python3
"""Runs three election candidates (bench/peers/*_candidate.py) and times their failover under
the faults of scripts/bench-peers, from the candidates' own reports (events.py).

Each trial waits until all three name the same leader and that leader says it leads, lets them
settle for a random 1-1.5 s (so the fault falls at a random point of the keep-alive/ping
cycle), then does one of:

  kill   kill -9 of the leader; the time until every survivor names one new leader and that
         leader says it leads.
  stop   SIGSTOP of the leader for --stop-seconds, then SIGCONT: the time to a new leader while
         it is stopped (as for kill), how long after SIGCONT the old leader still says it leads
         (until its "lost" line), and how much of that falls after the new leader said it leads
         (both believe they lead).
  term   SIGTERM of the leader, which resigns; the time to the new leader, as for kill.

The old leader is then killed if it still runs and started anew. A candidate that exits on its
own (a lost session or lease) is started anew before the next trial and counted.

    election_faults.py --name NAME --candidate CMD --candidate CMD --candidate CMD
                       [--trials 10] [--faults kill,stop,term] [--stop-seconds S]
                       [--give-up S] [--read-cmd CMD]... --out results.json --log-dir DIR
"""
import argparse
import ctypes
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time

changed = threading.Condition()
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    # Runs in the child before exec: the kernel kills it when this driver ends, however it ends.
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Candidate:
    """One candidate process and what it has said so far."""

    def __init__(self, index, argv, log_dir):
        self.index = index
        self.id = "c%d" % index
        self.view = None        # whom it last said leads
        self.view_since = None  # when it started saying so
        self.lead_t = None      # when it last said it leads itself
        self.lost_t = None      # when it last said it no longer does
        self.leading = False
        self.exited = False
        self.lines = []
        log = open(os.path.join(log_dir, self.id + ".log"), "a")
        log.write("---- %s\n" % " ".join(argv))
        log.flush()
        self.log = log
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True,
                                     preexec_fn=die_with_parent)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            try:
                e = json.loads(line)
            except ValueError:
                continue
            with changed:
                self._apply(e)
                changed.notify_all()
        with changed:
            self.exited = True
            self.leading = False
            changed.notify_all()

    def _apply(self, e):
        self.lines.append(e)
        if e["ev"] == "view" and e["leader"] != self.view:
            self.view, self.view_since = e["leader"], e["t"]
        elif e["ev"] == "lead":
            self.leading, self.lead_t = True, e["t"]
            if self.view != self.id:
                self.view, self.view_since = self.id, e["t"]
        elif e["ev"] in ("lost", "resigned"):
            self.leading, self.lost_t = False, e["t"]

    def signal(self, sig):
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def end(self):
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        self.proc.wait()


def wait_until(predicate, timeout):
    """Waits for predicate() (checked under the lock) to return non-None; None on timeout."""
    deadline = time.monotonic() + timeout
    with changed:
        while True:
            value = predicate()
            if value is not None:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            changed.wait(left)


def agreement(among, not_leader=None):
    """When every candidate in `among` names one leader (other than `not_leader`) that says it
    leads: (that candidate, the time the last of them came to say so); else None."""
    def check():
        views = {c.view for c in among}
        if len(views) != 1 or any(c.exited for c in among):
            return None
        leader_id = views.pop()
        if leader_id is None or leader_id == not_leader:
            return None
        leader = next((c for c in among if c.id == leader_id), None)
        if leader is None or not leader.leading:
            return None
        return leader, max([c.view_since for c in among] + [leader.lead_t])
    return check


class Run:
    def __init__(self, args):
        self.args = args
        self.argv = [shlex.split(c) for c in args.candidate]
        self.cands = [Candidate(i, a, args.log_dir) for i, a in enumerate(self.argv)]
        self.restarts = 0

    def restart(self, i):
        self.cands[i].end()
        self.cands[i] = Candidate(i, self.argv[i], self.args.log_dir)

    def steady(self):
        """Starts anew any candidate that exited, then waits for all three to agree."""
        for i, c in enumerate(self.cands):
            if c.exited:
                self.restarts += 1
                self.restart(i)
        got = wait_until(agreement(self.cands), self.args.give_up)
        if got is None:
            raise RuntimeError("no agreed leader: " + ", ".join(
                "%s says %s%s" % (c.id, c.view, " (exited)" if c.exited else "")
                for c in self.cands))
        return got[0]

    def settle(self):
        time.sleep(1.0 + random.uniform(0.0, 0.5))

    def fail_over(self, sig):
        leader = self.steady()
        self.settle()
        survivors = [c for c in self.cands if c is not leader]
        t0 = time.monotonic()
        leader.signal(sig)
        got = wait_until(agreement(survivors, leader.id), self.args.give_up)
        self.restart(leader.index)
        return None if got is None else (got[1] - t0) * 1000

    def stop(self):
        leader = self.steady()
        self.settle()
        survivors = [c for c in self.cands if c is not leader]
        t_stop = time.monotonic()
        leader.signal(signal.SIGSTOP)
        got = wait_until(agreement(survivors, leader.id), self.args.stop_seconds)
        time.sleep(max(0.0, t_stop + self.args.stop_seconds - time.monotonic()))
        t_cont = time.monotonic()
        leader.signal(signal.SIGCONT)
        r = {"failover_ms": None, "old_after_cont_ms": None, "both_ms": None}
        if got is None:
            # No new leader while it was stopped: the old one may simply lead on.
            r["both_ms"] = 0.0
        else:
            new, _ = got
            r["failover_ms"] = (got[1] - t_stop) * 1000
            ended = wait_until(lambda: True if (leader.lost_t or leader.exited) else None,
                               self.args.give_up)
            if ended and leader.lost_t is not None:
                r["old_after_cont_ms"] = max(0.0, leader.lost_t - t_cont) * 1000
                r["both_ms"] = max(0.0, leader.lost_t - max(t_cont, new.lead_t)) * 1000
        self.restart(leader.index)
        return r


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--candidate", action="append", required=True, help="a command line")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--faults", default="kill,stop,term")
    p.add_argument("--stop-seconds", type=float, default=5.0)
    p.add_argument("--give-up", type=float, default=30.0, help="seconds to wait for a leader")
    p.add_argument("--read-cmd", action="append", default=[],
                   help="run once while the three agree; its stdout is JSON (repeatable)")
    p.add_argument("--out", required=True)
    p.add_argument("--log-dir", required=True)
    args = p.parse_args()
    os.makedirs(args.log_dir, exist_ok=True)

    run = Run(args)
    out = {"name": args.name, "candidates": args.candidate, "stop_seconds": args.stop_seconds,
           "trials": args.trials, "failed": {}}

    def note(what, trial, value):
        shown = "none" if value is None else "%.1f ms" % value
        print("%s: %s trial %d: %s" % (args.name, what, trial, shown), file=sys.stderr)

    try:
        run.steady()
        out["read"] = []
        for cmd in args.read_cmd:
            done = subprocess.run(shlex.split(cmd), capture_output=True, text=True, check=True)
            out["read"].append(dict(json.loads(done.stdout), command=cmd))
        for fault in args.faults.split(","):
            out["failed"][fault] = 0
            out[fault] = ({"failover_ms": [], "old_after_cont_ms": [], "both_ms": []}
                          if fault == "stop" else [])
            for trial in range(args.trials):
                if fault == "stop":
                    r = run.stop()
                    ms = r["failover_ms"]
                    for k, v in r.items():
                        if v is not None:
                            out["stop"][k].append(v)
                else:
                    ms = run.fail_over({"kill": signal.SIGKILL, "term": signal.SIGTERM}[fault])
                    if ms is not None:
                        out[fault].append(ms)
                note(fault, trial, ms)
                if ms is None:
                    out["failed"][fault] += 1
    except (RuntimeError, subprocess.CalledProcessError) as e:
        # What was measured so far is still written; the table names the error.
        out["error"] = str(e)
        print("%s: %s" % (args.name, e), file=sys.stderr)
    finally:
        out["restarts"] = run.restarts
        for c in run.cands:
            c.end()
        with open(args.out, "w") as f:
            json.dump(out, f)
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
