// What the Monitor knows of the cluster, built only from what the nodes push: each node's own
// `status`, `election`, `stats` and `query` events. No DOM and no network here; monitor.js feeds
// events in and draws what changed.

const HISTORY_SECONDS = 60;
const collator = new Intl.Collator(undefined, { numeric: true });
const LOG_LIMIT = 300;

// One node as it describes itself.
export class NodeState {
  constructor(url, id) {
    this.url = url;
    this.id = id || shortName(url);
    this.connection = 'connecting';  // 'open' | 'connecting' | 'closed', of its event stream
    this.status = null;              // its last `status` event
    this.statusAt = 0;               // when that arrived (page clock, ms)
    this.stats = null;               // its last `stats` event
    this.history = [];               // [{at, writes, queries, forwards}] per stats event
    this.lastQuery = null;           // its last sampled `query` event, with `at`
    this.queriesSeen = 0;
  }

  get role() { return this.status ? this.status.role : 'unknown'; }
  get term() { return this.status ? this.status.term : null; }
  get leaderUrl() { return this.status ? this.status.leader : null; }
  get unplugged() { return !!(this.status && this.status.unplugged); }
  get stale() { return !!(this.status && this.status.stale); }

  // Whether this node drops its link to `url` (a link unplug, or the whole node unplugged).
  dropsLinkTo(url) {
    return !!(this.status && (this.status.unplugged_peers || []).includes(url));
  }

  // This node's view of a peer: {reachable, last_heard_ms} or undefined when it has not said.
  peer(url) {
    if (!this.status) return undefined;
    return (this.status.peers || []).find((p) => p.url === url);
  }

  // The lease left now, counting down from the last report; null when there is no lease.
  leaseRemaining(now) {
    const s = this.status;
    if (!s || !s.lease_valid || typeof s.lease_remaining_ms !== 'number') return null;
    return Math.max(0, s.lease_remaining_ms - (now - this.statusAt));
  }

  // Per-second rates over the last stats interval.
  rates() {
    const s = this.stats;
    if (!s) return null;
    const per = 1000 / (s.interval_ms || 1000);
    const cache = (c) => ({ hits: (c?.hits || 0) * per, misses: (c?.misses || 0) * per });
    return {
      writes: (s.writes || 0) * per,
      queries: (s.queries || 0) * per,
      forwards: (s.forwards || 0) * per,
      entityCache: cache(s.entity_cache),
      associationCache: cache(s.association_cache),
    };
  }
}

export class ClusterModel {
  constructor(now = () => Date.now()) {
    this.now = now;
    this.nodes = new Map();  // url -> NodeState, in the order first seen
    this.log = [];           // newest first: {at, kind, node, text}
    this.leader = null;      // {url, id, term} as the nodes agree, see deriveLeader
    this.listeners = new Set();
  }

  onChange(f) { this.listeners.add(f); }

  // The nodes by id, n2 before n10.
  ordered() {
    return [...this.nodes.values()].sort((a, b) => collator.compare(a.id, b.id));
  }

  changed(what) { for (const f of this.listeners) f(what); }

  node(url, id) {
    url = normalUrl(url);
    let n = this.nodes.get(url);
    if (!n) {
      n = new NodeState(url, id);
      this.nodes.set(url, n);
      this.changed('nodes');
    } else if (id && n.id !== id) {
      n.id = id;
      this.changed('nodes');
    }
    return n;
  }

  nameOf(url) {
    if (!url) return 'nobody';
    const n = this.nodes.get(normalUrl(url));
    return n ? n.id : shortName(url);
  }

  // The answer of GET /api/timeline/cluster: who is in the cluster, before any event arrives.
  applyCluster(cluster) {
    for (const n of cluster.nodes || []) this.node(n.url, n.id);
    for (const url of [cluster.leader, ...(cluster.followers || []),
      ...(cluster.unreachable || []), ...(cluster.unplugged || [])]) {
      if (url) this.node(url);
    }
  }

  connection(url, state) {
    url = normalUrl(url);
    const n = this.node(url);
    if (n.connection === state) return;
    const was = n.connection;
    n.connection = state;
    if (state === 'open') this.record('connection', url, 'events connected');
    else if (was === 'open') this.record('connection', url, 'events lost; reconnecting');
    this.deriveLeader();
    this.changed('node');
  }

  apply(type, data) {
    if (!data || typeof data !== 'object' || !data.node) return undefined;
    data = normalUrls(data);
    switch (type) {
      case 'status': return this.applyStatus(data);
      case 'election': return this.applyElection(data);
      case 'stats': return this.applyStats(data);
      case 'query': return this.applyQuery(data);
      default: return undefined;
    }
  }

  applyStatus(s) {
    const n = this.node(s.node, s.id);
    const before = n.status;
    for (const p of s.peers || []) {
      if (p.url) this.node(p.url, p.id);
    }
    if (before) this.recordStatusChanges(n, before, s);
    n.status = s;
    n.statusAt = this.now();
    this.deriveLeader();
    this.changed('node');
  }

  recordStatusChanges(n, before, after) {
    if (before.unplugged !== after.unplugged) {
      this.record('unplug', n.url, after.unplugged ? 'is unplugged' : 'is plugged in again');
    }
    if (before.stale !== after.stale) {
      this.record('stale', n.url, after.stale ? 'agent went stale' : 'agent is back');
    }
    for (const p of after.peers || []) {
      const old = (before.peers || []).find((q) => q.url === p.url);
      if (old && old.reachable !== p.reachable) {
        const peer = this.nameOf(p.url);
        this.record(p.reachable ? 'reachability-up' : 'reachability-down', n.url,
          p.reachable ? `reaches ${peer} again` : `cannot reach ${peer}`);
      }
    }
    const droppedBefore = new Set(before.unplugged_peers || []);
    const droppedAfter = new Set(after.unplugged_peers || []);
    for (const url of droppedAfter) {
      if (!droppedBefore.has(url) && url !== n.url) this.record('unplug', n.url, `drops its link to ${this.nameOf(url)}`);
    }
    for (const url of droppedBefore) {
      if (!droppedAfter.has(url) && url !== n.url) this.record('unplug', n.url, `restores its link to ${this.nameOf(url)}`);
    }
  }

  applyElection(e) {
    const n = this.node(e.node);
    const at = typeof e.at === 'number' ? e.at : this.now();
    const term = `term ${e.term}`;
    let text;
    switch (e.kind) {
      case 'leader': text = `became leader (${term})`; break;
      case 'follower':
        text = e.leader ? `follows ${this.nameOf(e.leader)} (${term})`
          : `follower, no leader known (${term})`;
        break;
      case 'candidate': text = `stands for election (${term})`; break;
      case 'pre-candidate': text = `asks whether it could win (pre-vote, ${term})`; break;
      default: text = `${e.kind} (${term})`;
    }
    this.record(`election-${e.kind}`, e.node, text, at);
    // The status event that follows carries the whole state; until it comes, patch what this
    // one says so the cards never lag the log.
    if (n.status) {
      n.status = { ...n.status, term: e.term, leader: e.leader ?? null,
        role: e.kind === 'leader' || e.kind === 'follower' || e.kind === 'candidate'
          || e.kind === 'pre-candidate' ? e.kind : n.status.role };
      this.deriveLeader();
    }
    this.changed('node');
  }

  applyStats(s) {
    const n = this.node(s.node);
    n.stats = s;
    const per = 1000 / (s.interval_ms || 1000);
    n.history.push({ at: this.now(), writes: (s.writes || 0) * per, queries: (s.queries || 0) * per,
      forwards: (s.forwards || 0) * per });
    if (n.history.length > HISTORY_SECONDS) n.history.splice(0, n.history.length - HISTORY_SECONDS);
    this.changed('stats');
  }

  applyQuery(q) {
    const n = this.node(q.node);
    n.lastQuery = { ...q, at: this.now() };
    n.queriesSeen += 1;
    this.changed('query');
  }

  // The leader as the cluster reports it: of every leader a node names (itself, when it leads),
  // the one named at the highest term; at equal terms a node's claim for itself beats a
  // follower's report. A deposed leader that has not heard of the new term yet therefore loses
  // to the new one, and a node that lost its event stream is not asked.
  deriveLeader() {
    let best = null;
    for (const n of this.nodes.values()) {
      if (n.connection !== 'open' || !n.status || n.stale) continue;
      const url = n.role === 'leader' ? n.url : n.leaderUrl;
      if (!url) continue;
      const claim = { url, term: n.term ?? -1, own: n.role === 'leader' && url === n.url };
      if (!best || claim.term > best.term || (claim.term === best.term && claim.own && !best.own)) {
        best = claim;
      }
    }
    const before = this.leader;
    this.leader = best ? { url: best.url, id: this.nameOf(best.url), term: best.term } : null;
    const was = before ? before.url : null;
    const is = this.leader ? this.leader.url : null;
    if (was !== is) {
      const text = is
        ? `leader: ${was ? `${this.nameOf(was)} → ` : ''}${this.nameOf(is)} (term ${this.leader.term})`
        : `no leader known (was ${this.nameOf(was)})`;
      this.record('leader-change', null, text);
      this.changed('leader');
    }
  }

  record(kind, url, text, at = this.now()) {
    this.log.unshift({ at, kind, node: url ? this.nameOf(url) : '', text });
    if (this.log.length > LOG_LIMIT) this.log.length = LOG_LIMIT;
    this.changed('log');
  }
}

// "n0"-like label for a URL nobody has named yet: the port, else the host.
export function shortName(url) {
  try {
    const u = new URL(url);
    return u.port ? `:${u.port}` : u.hostname;
  } catch {
    return String(url);
  }
}

// The same node named with and without a trailing slash is one node.
export function normalUrl(url) {
  return typeof url === 'string' ? url.replace(/\/+$/, '') : url;
}

function normalUrls(d) {
  const out = { ...d, node: normalUrl(d.node) };
  if ('leader' in d) out.leader = normalUrl(d.leader) || null;
  if (Array.isArray(d.unplugged_peers)) out.unplugged_peers = d.unplugged_peers.map(normalUrl);
  if (Array.isArray(d.peers)) out.peers = d.peers.map((p) => ({ ...p, url: normalUrl(p.url) }));
  return out;
}
