#!/usr/bin/python3
"""Times one "who leads" read against a running election, for scripts/bench-peers, and prints
the per-read times as JSON: {"what": ..., "us": [...]}.

  etcd  Election.Leader()'s request: a Range over the election prefix, sorted by create
        revision, limit 1; linearizable (etcd's default: the member confirms with the etcd
        Raft leader first) or, with --serializable, answered by the member alone.
  zk    get_children of the election node, then get of the lowest-numbered child, whose data
        names the leader: the fewest reads a ZooKeeper client needs to name it (served by the
        connected server, without sync()).

Each read is a blocking call through the Python client, as an app in Python would make it, so
the figure includes the client's own overhead as well as the round trip.

    read_cost.py etcd --endpoint 127.0.0.1:2379 --prefix /bench/election [--serializable]
                      [--reads 2000]
    read_cost.py zk --hosts 127.0.0.1:2181 --path /bench/election [--reads 2000]
"""
import argparse
import json
import re
import time


def etcd_reader(args):
    import etcd3
    from etcd3 import etcdrpc, utils

    host, port = args.endpoint.rsplit(":", 1)
    client = etcd3.client(host=host, port=int(port), timeout=5)
    prefix = args.prefix.rstrip("/") + "/"
    # python3-etcd3's get_prefix sends no limit, so the request is built as clientv3 would.
    request = etcdrpc.RangeRequest(key=utils.to_bytes(prefix),
                                   range_end=utils.increment_last_byte(utils.to_bytes(prefix)),
                                   limit=1, sort_order=etcdrpc.RangeRequest.ASCEND,
                                   sort_target=etcdrpc.RangeRequest.CREATE,
                                   serializable=args.serializable)

    def read():
        kvs = client.kvstub.Range(request, client.timeout, credentials=client.call_credentials,
                                  metadata=client.metadata).kvs
        return kvs[0].value.decode() if kvs else None
    kind = "serializable" if args.serializable else "linearizable"
    return "etcd Range(prefix, first by create), " + kind, read


def zk_reader(args):
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=args.hosts)
    zk.start(timeout=15)
    sequence = re.compile(r"(\d{10})$")

    def read():
        children = zk.get_children(args.path)
        if not children:
            return None
        first = min(children, key=lambda c: sequence.search(c).group(1))
        return zk.get(args.path + "/" + first)[0].decode()
    return "zk get_children + get of the first child", read


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="system", required=True)
    e = sub.add_parser("etcd")
    e.add_argument("--endpoint", required=True)
    e.add_argument("--prefix", required=True)
    e.add_argument("--serializable", action="store_true")
    z = sub.add_parser("zk")
    z.add_argument("--hosts", required=True)
    z.add_argument("--path", required=True)
    for s in (e, z):
        s.add_argument("--reads", type=int, default=2000)
        s.add_argument("--warm-up", type=int, default=200)
    args = p.parse_args()
    what, read = (etcd_reader if args.system == "etcd" else zk_reader)(args)
    leader = None
    for _ in range(args.warm_up):
        leader = read()
    us = []
    for _ in range(args.reads):
        t0 = time.perf_counter()
        read()
        us.append((time.perf_counter() - t0) * 1e6)
    print(json.dumps({"what": what, "leader": leader, "us": us}))


if __name__ == "__main__":
    main()
