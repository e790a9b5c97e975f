// Checks of the console's two models (no DOM, no network), run inside the browser on the very
// files a graphserver serves: console_test.mjs hands this file to the page and calls run().
// Each check is one behaviour; run() answers the names of those that failed, with why.

import { ClusterModel, normalUrl } from '/console/cluster_model.js';
import { displayName, parseTime, unifiedTimeline } from '/console/timeline_model.js';

const A = 'http://127.0.0.1:1001';
const B = 'http://127.0.0.1:1002';
const C = 'http://127.0.0.1:1003';

function status(node, id, role, term, leader, extra = {}) {
  return {
    node, id, role, term, leader, leader_id: '', lease_valid: role === 'leader',
    lease_remaining_ms: role === 'leader' ? 1000 : null, stale: false, unplugged: false,
    unplugged_peers: [], peers: [], ...extra,
  };
}

// A model of three open nodes on a clock the check moves by hand.
function cluster() {
  const clock = { now: 1000 };
  const m = new ClusterModel(() => clock.now);
  m.applyCluster({ nodes: [{ id: 'n0', url: A }, { id: 'n1', url: B }, { id: 'n2', url: C }] });
  for (const u of [A, B, C]) m.connection(u, 'open');
  return { m, clock };
}

function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: ${a}, expected ${e}`);
}

const checks = {
  'the leader is the one its followers and itself name'() {
    const { m } = cluster();
    m.apply('status', status(A, 'n0', 'leader', 3, A));
    m.apply('status', status(B, 'n1', 'follower', 3, A));
    eq(m.leader && m.leader.id, 'n0', 'leader');
  },
  'a deposed leader still claiming its old term loses to the new term'() {
    const { m } = cluster();
    m.apply('status', status(A, 'n0', 'leader', 3, A));
    m.apply('status', status(B, 'n1', 'leader', 4, B));
    eq(m.leader && m.leader.id, 'n1', 'leader');
    eq(m.log.filter((e) => e.kind === 'leader-change').length, 2, 'leader changes logged');
  },
  "at equal terms a node's own claim beats a follower's report"() {
    const { m } = cluster();
    m.apply('status', status(C, 'n2', 'follower', 5, A));
    m.apply('status', status(B, 'n1', 'leader', 5, B));
    eq(m.leader && m.leader.id, 'n1', 'leader');
  },
  'a node whose stream is lost, or whose agent is stale, is not asked'() {
    const { m } = cluster();
    m.apply('status', status(A, 'n0', 'leader', 7, A));
    m.connection(A, 'connecting');
    eq(m.leader, null, 'leader with its stream lost');
    m.connection(A, 'open');
    m.apply('status', status(A, 'n0', 'leader', 7, A, { stale: true }));
    eq(m.leader, null, 'leader of a stale agent');
  },
  'an election event moves the card before the next status arrives'() {
    const { m } = cluster();
    m.apply('status', status(B, 'n1', 'follower', 2, A));
    m.apply('election', { node: B, kind: 'candidate', term: 3, leader: null, at: 5 });
    eq([m.nodes.get(B).role, m.nodes.get(B).term], ['candidate', 3], 'role and term');
    const line = m.log.find((e) => e.kind === 'election-candidate');
    eq(line && line.text, 'stands for election (term 3)', 'log line');
    eq(line && line.at, 5, 'the event keeps the time the node gave it');
    eq(m.leader, null, 'leader once its only follower stands for election');
  },
  'a peer going silent and a link cut are logged'() {
    const { m } = cluster();
    const peers = (up) => [{ id: 'n1', url: B, reachable: up, last_heard_ms: up ? 5 : null }];
    m.apply('status', status(A, 'n0', 'leader', 1, A, { peers: peers(true) }));
    m.apply('status', status(A, 'n0', 'leader', 1, A, { peers: peers(false), unplugged_peers: [B] }));
    const texts = m.log.map((e) => e.text);
    if (!texts.includes('cannot reach n1')) throw new Error(`log: ${texts}`);
    if (!texts.includes('drops its link to n1')) throw new Error(`log: ${texts}`);
    eq(m.nodes.get(A).dropsLinkTo(B), true, 'dropsLinkTo');
  },
  'a URL with a trailing slash is the same node'() {
    const { m } = cluster();
    m.apply('status', status(`${A}/`, 'n0', 'leader', 1, `${A}/`));
    eq(m.nodes.size, 3, 'nodes');
    eq(normalUrl(`${A}//`), A, 'normalUrl');
  },
  'rates are per second whatever the interval'() {
    const { m } = cluster();
    m.apply('stats', { node: A, interval_ms: 500, entity_cache: { hits: 4, misses: 1 }, writes: 10, queries: 3, forwards: 0 });
    const r = m.nodes.get(A).rates();
    eq([r.writes, r.queries, r.entityCache.hits, r.associationCache.misses], [20, 6, 8, 0], 'rates');
  },
  'the lease counts down from its last report and stops at zero'() {
    const { m, clock } = cluster();
    m.apply('status', status(A, 'n0', 'leader', 1, A));
    clock.now += 400;
    eq(m.nodes.get(A).leaseRemaining(clock.now), 600, 'after 400 ms');
    clock.now += 5000;
    eq(m.nodes.get(A).leaseRemaining(clock.now), 0, 'long after');
    eq(m.nodes.get(B).leaseRemaining(clock.now), null, 'a node with no status');
  },
  'a user with no posted or liked key has an empty timeline'() {
    eq(unifiedTimeline({ id: 1, type: 'user' }), [], 'items');
  },
  'posts and likes merge newest first by when they were linked'() {
    const items = unifiedTimeline({
      posted: [{ id: 1, linked: '2026-01-01T10:00:00Z' }, { id: 2, linked: '2026-01-01T12:00:00Z' }],
      liked: [{ id: 3, linked: '2026-01-01T11:00:00.500Z', postedby: [] }],
    });
    eq(items.map((i) => `${i.kind}:${i.post.id}`), ['posted:2', 'liked:3', 'posted:1'], 'order');
  },
  'a time without a zone is UTC'() {
    eq(parseTime('2026-01-01 00:00:00'), Date.UTC(2026, 0, 1), 'MySQL DATETIME');
    eq(parseTime('2026-01-01T01:00:00+01:00'), Date.UTC(2026, 0, 1), 'with an offset');
    eq(Number.isNaN(parseTime(undefined)), true, 'missing');
  },
  'a user is named by first and last name, else name, else id'() {
    eq(displayName({ id: 1, firstName: 'Ann', lastName: 'Lee' }), 'Ann Lee', 'full');
    eq(displayName({ id: 2, name: 'bob' }), 'bob', 'the bot\'s users');
    eq(displayName({ id: 3 }), 'user 3', 'nothing');
  },
};

export function run() {
  const failed = [];
  for (const [name, check] of Object.entries(checks)) {
    try {
      check();
    } catch (e) {
      failed.push(`${name}: ${e.message}`);
    }
  }
  return { count: Object.keys(checks).length, failed };
}
