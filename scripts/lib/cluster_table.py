"""Prints a cluster's state as a table: node, URL, role, term, leader, reachable peers.

    cluster_table.py [--ctl INSTAFACECTL] ID URL SOCKET [ID URL SOCKET ...]

Role, term and leader come from each agent (instafacectl status --json over its socket); the
peers a node reaches come from its graphserver (GET /api/timeline/cluster, or the list of peers
it cannot reach, GET /api/graph/unreachable). Whatever cannot be asked shows as "?", so the
table prints even while a node is down.
"""
import json
import subprocess
import sys
import urllib.request


def agent_status(ctl, socket):
    if not ctl:
        return {}
    try:
        out = subprocess.run([ctl, "--socket", socket, "--timeout-ms", "2000", "status", "--json"],
                             capture_output=True, text=True, timeout=5, check=True).stdout
        return json.loads(out)
    except (subprocess.SubprocessError, OSError, ValueError):
        return {}


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


def reachable_peers(url, nodes):
    """The ids of the other nodes that the node at url reaches, or None if it cannot say."""
    view = get_json(url + "/api/timeline/cluster")
    if isinstance(view, dict) and isinstance(view.get("nodes"), list):
        ids = {u: i for i, u, _ in nodes}
        return [n.get("id") or ids.get(n.get("url"), n.get("url"))
                for n in view["nodes"] if n.get("url") != url and n.get("reachable")]
    silent = get_json(url + "/api/graph/unreachable")
    if isinstance(silent, dict):  # {"unreachable": [peer ids], ...}
        silent = silent.get("unreachable")
    if not isinstance(silent, list):
        return None
    return [i for i, u, _ in nodes if u != url and u not in silent and i not in silent]


def main(argv):
    ctl = ""
    if argv[:1] == ["--ctl"]:
        ctl, argv = argv[1], argv[2:]
    nodes = [argv[i:i + 3] for i in range(0, len(argv) - 2, 3)]
    rows = [("node", "URL", "role", "term", "leader", "reaches")]
    for node_id, url, socket in nodes:
        s = agent_status(ctl, socket)
        role = s.get("role", "?")
        if s.get("stale"):
            role += " (stale)"
        term = str(s.get("term", "?"))
        leader = s.get("leader_id") or ("none" if s else "?")
        peers = reachable_peers(url, nodes)
        reaches = "?" if peers is None else ", ".join(peers) or "none"
        rows.append((node_id, url, role, term, leader, reaches))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main(sys.argv[1:])
