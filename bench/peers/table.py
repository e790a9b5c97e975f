#!/usr/bin/python3
"""Prints scripts/bench-peers' table from the raw results of one run: our agents' samples
(instaface-failover-probe --samples), the SDK benchmark's JSON (instaface-bench-sdk), and one
election_faults.py result per peer configuration. Every ratio is peer / ours, of medians, so
above 1 means the peer took longer.

    table.py --ours ours.json --sdk sdk.json --peer etcd-ttl1.json --peer zk-1s.json ...
"""
import argparse
import json

OURS = [("fast", "ours, fast 50/150/300 ms"), ("seed", "ours, seed 500/750/1000 ms")]


def stats(values):
    """median, p90, p99, max: nearest rank, as instaface-failover-probe computes them; a
    percentile the count cannot resolve (p90 below 10 samples, p99 below 100) is None."""
    v = sorted(values)
    if not v:
        return None

    def at(q):
        return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]
    return {"median": at(0.5), "p90": at(0.9) if len(v) >= 10 else None,
            "p99": at(0.99) if len(v) >= 100 else None, "max": v[-1], "n": len(v)}


def show_ms(x):
    return "-" if x is None else "%.1f" % x


def show_time_ns(ns):
    if ns is None:
        return "-"
    return "%.1f ns" % ns if ns < 1e4 else "%.1f us" % (ns / 1e3)


def ratio(peer, ours):
    if peer is None or ours is None:
        return "-"
    if ours <= 0:
        return "n/a"
    r = peer / ours
    return "%.2fx" % r if r < 10 else "{:,.0f}x".format(r)


def figure(title, rows, baselines, note=None, extra=None):
    """rows: (label, samples, failed, is_ours[, extra value]); baselines: {name: median} for the
    ratio columns; `extra` names one more column, filled from each row's fifth field."""
    print()
    print(title)
    head = "%-44s %9s %9s %9s %9s %4s %5s" % ("", "median", "p90", "p99", "max", "n", "fail")
    if extra:
        head += " %7s" % extra
    for name in baselines:
        head += " %13s" % ("/ " + name)
    print(head)
    for row in rows:
        label, samples, failed, ours_row = row[:4]
        s = stats(samples)
        if s is None:
            line = "%-44s %9s %9s %9s %9s %4d %5s" % (label, "-", "-", "-", "-", 0, failed)
        else:
            line = "%-44s %9s %9s %9s %9s %4d %5s" % (
                label, show_ms(s["median"]), show_ms(s["p90"]), show_ms(s["p99"]),
                show_ms(s["max"]), s["n"], failed)
        if extra:
            line += " %7s" % (row[4] if len(row) > 4 else "")
        if not ours_row:
            for base in baselines.values():
                line += " %13s" % ratio(s and s["median"], base)
        print(line)
    for n in note or []:
        print("    " + n)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ours", required=True)
    p.add_argument("--sdk")
    p.add_argument("--peer", action="append", default=[])
    args = p.parse_args()
    ours = json.load(open(args.ours))
    peers = [json.load(open(f)) for f in args.peer]
    # Only the timings the probe measured (none with --only etcd,zk).
    settings = [(t, label) for t, label in OURS if any(k.startswith(t + ".") for k in ours)]

    def our(key):
        return ours.get(key, []), ours.get(key + ".failed", "-")

    def medians(key):
        return {"ours " + t: (stats(ours.get(t + "." + key, [])) or {}).get("median")
                for t, _ in settings}

    def rows(key, peer_get):
        out = [(label, *our(t + "." + key), True) for t, label in settings]
        for peer in peers:
            samples, failed = peer_get(peer)
            out.append((peer["name"], samples, failed, False))
        return out

    print("Every time is in ms, from the fault (or from SIGCONT) to what the candidates report;"
          " n = trials that")
    print("produced the figure, fail = trials that did not (no agreed new leader in time).")

    figure("kill -9 of the leader -> every survivor names the new leader, which says it leads",
           rows("kill", lambda p: (p.get("kill", []), p["failed"].get("kill", "-"))),
           medians("kill"))

    def stop_of(p, key):
        return p.get("stop", {}).get(key, [])

    stop_rows = []
    for t, label in settings:
        stop_rows.append((label, *our(t + ".stop.failover"), True,
                          "%.1f" % (ours.get(t + ".stop.hold_ms", [0])[0] / 1000)))
    for peer in peers:
        stop_rows.append((peer["name"], stop_of(peer, "failover_ms"),
                          peer["failed"].get("stop", "-"), False, "%.1f" % peer["stop_seconds"]))
    figure("SIGSTOP of the leader -> every survivor names a new leader while it is stopped",
           stop_rows, medians("stop.failover"), extra="held s")

    # When every trial had its new leader before SIGCONT, the old leader's claim after SIGCONT
    # overlaps the new one's in full, and one table says both.
    overlap_is_all = all(
        sorted(ours.get(t + ".stop.agent_both", [])) == sorted(ours.get(t + ".stop.agent_after_cont", []))
        for t, _ in settings) and all(
        sorted(stop_of(p, "both_ms")) == sorted(stop_of(p, "old_after_cont_ms")) for p in peers)
    after_rows = []
    for t, label in settings:
        after_rows.append((label + ": agent's role", *our(t + ".stop.agent_after_cont"), True))
        after_rows.append((label + ": leadership()", *our(t + ".stop.app_after_cont"), True))
    for peer in peers:
        after_rows.append((peer["name"], stop_of(peer, "old_after_cont_ms"), "-", False))
    notes = ["ours: how long the old agent's record still says role leader, and how long its"
             " app's",
             "leadership() still answers yes; peers: until the old candidate's own \"lost\" line."
             " Ratios are",
             "against our agents' role."]
    if overlap_is_all:
        notes.append("Every new leader said it leads before SIGCONT, so all of this time both"
                     " said they lead.")
    figure("SIGCONT -> the old leader stops saying it leads", after_rows,
           medians("stop.agent_after_cont"), notes)
    if not overlap_is_all:
        both_rows = []
        for t, label in settings:
            both_rows.append((label + ": agents' roles", *our(t + ".stop.agent_both"), True))
        for peer in peers:
            both_rows.append((peer["name"], stop_of(peer, "both_ms"), "-", False))
        figure("after SIGCONT, both the old and the new leader say they lead", both_rows,
               medians("stop.agent_both"))
    both_apps = ", ".join("%s max %.1f ms" % (t, max(ours[t + ".stop.app_both"]))
                          for t, _ in settings if ours.get(t + ".stop.app_both"))
    if both_apps:
        print("    ours, the old and the new leader's leadership() both yes at any time, the stop"
              " included (the")
        print("    app runs on while its agent is stopped): " + both_apps)

    figure("SIGTERM of the leader (resigns) -> every survivor names the new leader",
           rows("term", lambda p: (p.get("term", []), p["failed"].get("term", "-"))),
           medians("term"))

    restarts = ["%s: %d" % (p["name"], p["restarts"]) for p in peers if p.get("restarts")]
    if restarts:
        print("    peer candidates that exited on their own (a lost session or lease) and were"
              " started anew:")
        for r in restarts:
            print("      " + r)
    elif peers:
        print("    no peer candidate exited on its own (a lost session or lease) between trials")

    print_reads(args.sdk, peers)
    for peer in peers:
        if "error" in peer:
            print("%s stopped early: %s" % (peer["name"], peer["error"]))


def print_reads(sdk_path, peers):
    ours = {}
    if sdk_path:
        for b in json.load(open(sdk_path))["benchmarks"]:
            if b.get("aggregate_name") != "median":
                continue
            scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
            ours[b["run_name"].split("/")[0]] = b["real_time"] * scale
    base = {"is_leader()": ours.get("BM_IsLeader"), "snapshot()": ours.get("BM_Snapshot")}
    print()
    print("one \"who leads\" read")
    head = "%-52s %10s %10s %10s %10s %5s" % ("", "median", "p90", "p99", "max", "n")
    for name in base:
        head += " %13s" % ("/ " + name)
    print(head)
    for key, label in (("BM_IsLeader", "ours: is_leader() (shared memory)"),
                       ("BM_Leadership", "ours: leadership() (shared memory)"),
                       ("BM_Snapshot", "ours: snapshot(), names the leader")):
        if key in ours:
            print("%-52s %10s %10s %10s %10s %5s" % (label, show_time_ns(ours[key]), "-", "-", "-",
                                                      "-"))
    seen = set()
    for peer in peers:
        for r in peer.get("read", []):
            if r["what"] in seen:
                continue
            seen.add(r["what"])
            s = stats([us * 1e3 for us in r["us"]])
            line = "%-52s %10s %10s %10s %10s %5d" % (
                r["what"], show_time_ns(s["median"]), show_time_ns(s["p90"]),
                show_time_ns(s["p99"]), show_time_ns(s["max"]), s["n"])
            for b in base.values():
                line += " %13s" % ratio(s["median"], b)
            print(line)
    print("    ours: the median of the repetitions' mean per call in a tight loop (Google"
          " Benchmark), C++,")
    print("    reading a real agent's record; peers: each read timed alone through the Python"
          " client")
    print("    (its overhead included), against the running election.")


if __name__ == "__main__":
    main()
