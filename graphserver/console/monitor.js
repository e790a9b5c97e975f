// The Monitor page: a card per node, the links between them, and the events as they happen,
// pushed by every node over Server-Sent Events. The page asks for the cluster once, then only
// listens; the browser's EventSource reconnects by itself.

import { eventsUrl, getCluster, home, setUnplugged } from './api.js';
import { ClusterModel } from './cluster_model.js';
import { clockTime, fill, h, millis, setText } from './dom.js';

const EVENT_TYPES = ['status', 'election', 'stats', 'query'];
const REOPEN_AFTER_MS = 2000;  // when a stream was refused outright, EventSource gives up

export function createMonitor() {
  const model = new ClusterModel();
  const view = new MonitorView(model);
  const streams = new Map();

  function listen(url) {
    if (streams.has(url)) return;
    const open = () => {
      const es = new EventSource(eventsUrl(url));
      streams.set(url, es);
      es.onopen = () => model.connection(url, 'open');
      es.onerror = () => {
        if (es.readyState === EventSource.CLOSED) {
          model.connection(url, 'closed');
          setTimeout(open, REOPEN_AFTER_MS);
        } else {
          model.connection(url, 'connecting');
        }
      };
      for (const type of EVENT_TYPES) {
        es.addEventListener(type, (e) => {
          let data;
          try {
            data = JSON.parse(e.data);
          } catch {
            return;
          }
          model.apply(type, data);
        });
      }
    };
    open();
  }

  // A node named in a peer list is listened to as well, so the page finds every node even if
  // the first answer missed one.
  model.onChange((what) => {
    if (what === 'nodes') for (const url of model.nodes.keys()) listen(url);
  });

  async function start() {
    try {
      model.applyCluster(await getCluster(home));
    } catch (e) {
      view.problem(`could not ask ${home} for the cluster: ${e.message}`);
    }
    model.node(home);
    for (const url of model.nodes.keys()) listen(url);
  }

  view.onUnplugNode = async (url, unplugged) => {
    const name = model.nameOf(url);
    // As the original does: every node is told, so the others drop their links to it too.
    const targets = [...model.nodes.keys()];
    model.record('action', null, `${unplugged ? 'unplugging' : 'plugging in'} ${name}: telling all ${targets.length} nodes`);
    const results = await Promise.allSettled(targets.map((t) => setUnplugged(t, url, unplugged)));
    results.forEach((r, i) => {
      if (r.status === 'rejected') model.record('problem', targets[i], `refused: ${r.reason.message}`);
    });
  };

  view.onUnplugLink = async (from, to, unplugged) => {
    model.record('action', from, `${unplugged ? 'cutting' : 'restoring'} its link to ${model.nameOf(to)}`);
    try {
      await setUnplugged(from, to, unplugged);
    } catch (e) {
      model.record('problem', from, `refused: ${e.message}`);
    }
  };

  start();
  return { element: view.root, model };
}

class MonitorView {
  constructor(model) {
    this.model = model;
    this.cards = new Map();  // url -> {root, refs}
    this.onUnplugNode = null;
    this.onUnplugLink = null;

    this.leaderName = h('strong', { 'data-testid': 'cluster-leader', 'data-node-id': '' }, '…');
    this.leaderTerm = h('span', { class: 'muted' });
    this.totals = h('span', { class: 'totals', 'data-testid': 'cluster-totals' });
    this.notice = h('div', { class: 'notice', hidden: true, 'data-testid': 'monitor-problem' });
    this.cardsBox = h('div', { class: 'cards', 'data-testid': 'nodes' });
    this.matrix = h('table', { class: 'matrix', 'data-testid': 'link-matrix' });
    this.logList = h('ol', { class: 'log', 'data-testid': 'event-log' });
    this.root = h('section', { class: 'monitor', 'data-testid': 'monitor' },
      h('div', { class: 'summary' },
        h('span', {}, 'Leader ', this.leaderName, ' ', this.leaderTerm), this.totals),
      this.notice,
      this.cardsBox,
      h('div', { class: 'lower' },
        h('section', { class: 'panel' },
          h('h2', {}, 'Links'),
          h('p', { class: 'hint' }, 'Row reaches column? Click a cell to cut or restore that one link (the row node drops it).'),
          this.matrix),
        h('section', { class: 'panel log-panel' }, h('h2', {}, 'Events'), this.logList)));

    this.dirty = new Set();
    model.onChange((what) => this.schedule(what));
    // The lease counts down between reports; only the page's own clock drives this.
    setInterval(() => this.drawLeases(), 200);
  }

  problem(text) {
    this.notice.hidden = false;
    setText(this.notice, text);
  }

  // Changes arrive in bursts (a status after an election, stats from every node each second):
  // draw once per frame, or after 100 ms if frames are not running (a hidden tab).
  schedule(what) {
    this.dirty.add(what);
    if (this.pending) return;
    this.pending = true;
    const run = () => {
      if (!this.pending) return;
      this.pending = false;
      const dirty = this.dirty;
      this.dirty = new Set();
      this.draw(dirty);
    };
    requestAnimationFrame(run);
    setTimeout(run, 100);
  }

  draw(dirty) {
    if (dirty.has('nodes')) {
      for (const n of this.model.ordered()) {
        if (!this.cards.has(n.url)) this.cards.set(n.url, this.makeCard(n));
        this.cardsBox.append(this.cards.get(n.url).root);  // moves it into id order
      }
      this.drawMatrixFrame();
    }
    this.drawSummary();
    for (const n of this.model.nodes.values()) this.drawCard(n, dirty);
    this.drawMatrix();
    if (dirty.has('log') || dirty.has('nodes')) this.drawLog();
    this.drawLeases();
  }

  drawSummary() {
    const leader = this.model.leader;
    setText(this.leaderName, leader ? leader.id : 'none');
    this.leaderName.dataset.nodeId = leader ? leader.id : '';
    this.leaderName.dataset.url = leader ? leader.url : '';
    setText(this.leaderTerm, leader ? `term ${leader.term}` : '');
    let writes = 0;
    let queries = 0;
    for (const n of this.model.nodes.values()) {
      const r = n.rates();
      if (r) { writes += r.writes; queries += r.queries; }
    }
    setText(this.totals, `cluster: ${rate(writes)} writes/s · ${rate(queries)} queries/s`);
  }

  makeCard(n) {
    const refs = {};
    const field = (label, key) => {
      refs[key] = h('dd', { 'data-field': key });
      return [h('dt', {}, label), refs[key]];
    };
    refs.name = h('h3', {}, n.id);
    refs.role = h('span', { class: 'role', 'data-testid': `role-${n.id}` });
    refs.crown = h('span', {
      class: 'crown', 'data-testid': `leader-indicator-${n.id}`, hidden: true,
      title: 'the leader the cluster reports (the highest term any node names)',
    }, '★ leader');
    refs.plug = h('button', {
      class: 'switch', role: 'switch', type: 'button', 'data-testid': `unplug-${n.id}`,
      title: 'Unplug the whole node: it leaves the election and every other node drops its link to it',
      onclick: () => {
        if (!this.onUnplugNode) return;
        const unplug = !n.unplugged;
        refs.plug.dataset.pending = 'true';
        Promise.resolve(this.onUnplugNode(n.url, unplug)).finally(() => delete refs.plug.dataset.pending);
      },
    });
    refs.spark = h('div', { class: 'spark' });
    refs.query = h('div', { class: 'last-query', 'data-field': 'last-query' });
    const root = h('article', { class: 'node', dataset: { nodeId: n.id, url: n.url } },
      h('header', {}, refs.name, refs.role, refs.crown, refs.plug),
      h('div', { class: 'url' }, h('a', { href: `${n.url}/`, target: '_blank', rel: 'noopener' }, n.url)),
      h('dl', {},
        field('term', 'term'), field('leader', 'leader'), field('lease', 'lease'),
        field('agent', 'agent'), field('peers', 'peers'), field('rates', 'rates'),
        field('entity cache', 'entity-cache'), field('assoc. cache', 'association-cache')),
      refs.spark, refs.query);
    return { root, refs, lastQueryAt: 0 };
  }

  drawCard(n, dirty) {
    const card = this.cards.get(n.url);
    if (!card) return;
    const { root, refs } = card;
    const s = n.status;
    const isLeader = !!this.model.leader && this.model.leader.url === n.url;
    setText(refs.name, n.id);
    root.dataset.nodeId = n.id;
    root.dataset.role = n.role;
    root.dataset.leader = String(isLeader);
    root.dataset.connection = n.connection;
    root.dataset.unplugged = String(n.unplugged);
    root.dataset.stale = String(n.stale);
    refs.role.dataset.testid = `role-${n.id}`;
    refs.crown.dataset.testid = `leader-indicator-${n.id}`;
    refs.plug.dataset.testid = `unplug-${n.id}`;
    setText(refs.role, n.connection === 'open' ? n.role : `${n.role} (${n.connection === 'closed' ? 'no events' : 'connecting'})`);
    refs.crown.hidden = !isLeader;
    refs.plug.setAttribute('aria-checked', String(!n.unplugged));
    setText(refs.plug, n.unplugged ? 'unplugged' : 'plugged');

    setText(refs.term, s ? s.term : '–');
    setText(refs.leader, s ? (s.leader ? this.model.nameOf(s.leader) : 'none known') : '–');
    setText(refs.agent, s ? (s.stale ? 'stale (not heard from)' : 'alive') : '–');
    fill(refs.peers, s ? (s.peers || []).map((p) => h('span', {
      class: `peer ${p.reachable ? 'up' : 'down'}`,
      dataset: { peerId: this.model.nameOf(p.url), reachable: String(!!p.reachable) },
      title: p.last_heard_ms == null ? 'never heard from' : `last heard ${p.last_heard_ms} ms ago`,
    }, `${this.model.nameOf(p.url)} ${p.reachable ? '✓' : '✗'}`)) : '–');

    const r = n.rates();
    setText(refs.rates, r ? `${rate(r.writes)} writes/s · ${rate(r.queries)} queries/s · ${rate(r.forwards)} fwd/s` : '–');
    setText(refs['entity-cache'], r ? cacheText(r.entityCache) : '–');
    setText(refs['association-cache'], r ? cacheText(r.associationCache) : '–');
    if (dirty.has('stats') || dirty.has('nodes')) fill(refs.spark, sparkline(n.history));

    const q = n.lastQuery;
    if (q && q.at !== card.lastQueryAt) {
      card.lastQueryAt = q.at;
      setText(refs.query, `query: ${count(q.entities, 'entity', 'entities')}, ${count(q.calls, 'call', 'calls')}, ${millis(q.timeRunning)} (${n.queriesSeen} sampled)`);
      // Restart the fade, as the original's status lines faded over three seconds.
      refs.query.classList.remove('flash');
      void refs.query.offsetWidth;
      refs.query.classList.add('flash');
    }
  }

  drawLeases() {
    const now = Date.now();
    for (const n of this.model.nodes.values()) {
      const card = this.cards.get(n.url);
      if (!card) continue;
      const s = n.status;
      const left = n.leaseRemaining(now);
      let text = '–';
      // A node reports the time left only along with some other change, and reports at once
      // when the lease stops being valid; so a count-down that ran out means it was renewed.
      if (s) {
        text = !s.lease_valid ? 'none'
          : left > 0 ? `valid, ~${Math.round(left)} ms left` : 'valid, renewed';
      }
      setText(card.refs.lease, text);
      card.refs.lease.dataset.valid = String(!!(s && s.lease_valid));
    }
  }

  drawMatrixFrame() {
    const nodes = this.model.ordered();
    const head = h('tr', {}, h('th', {}, ''), nodes.map((n) => h('th', { scope: 'col' }, n.id)));
    const rows = nodes.map((from) => h('tr', {},
      h('th', { scope: 'row' }, from.id),
      nodes.map((to) => {
        if (from.url === to.url) return h('td', { class: 'self' }, '·');
        return h('td', {},
          h('button', {
            type: 'button', class: 'link',
            dataset: { from: from.url, to: to.url },
            onclick: () => {
              if (this.onUnplugLink) this.onUnplugLink(from.url, to.url, !from.dropsLinkTo(to.url));
            },
          }));
      })));
    fill(this.matrix, h('thead', {}, head), h('tbody', {}, rows));
  }

  drawMatrix() {
    for (const button of this.matrix.querySelectorAll('button.link')) {
      const from = this.model.nodes.get(button.dataset.from);
      const to = this.model.nodes.get(button.dataset.to);
      if (!from || !to) continue;
      const peer = from.peer(to.url);
      const cut = from.dropsLinkTo(to.url);
      const state = cut ? 'cut' : peer === undefined ? 'unknown' : peer.reachable ? 'up' : 'down';
      button.dataset.testid = `link-${from.id}-${to.id}`;
      button.dataset.state = state;
      button.setAttribute('aria-pressed', String(cut));
      button.title = `${from.id} → ${to.id}: ${state === 'cut' ? 'link cut (click to restore)'
        : state === 'up' ? 'reachable (click to cut)' : state === 'down' ? 'unreachable (click to cut)'
          : 'not reported yet'}${peer && peer.last_heard_ms != null ? `, heard ${peer.last_heard_ms} ms ago` : ''}`;
      setText(button, state === 'cut' ? '✂' : state === 'up' ? '✓' : state === 'down' ? '✗' : '?');
    }
  }

  drawLog() {
    fill(this.logList, this.model.log.slice(0, 120).map((e) => h('li', { class: `log-${e.kind}`, dataset: { kind: e.kind } },
      h('time', {}, clockTime(e.at)), ' ', h('span', { class: 'who' }, e.node), ' ', e.text)));
  }
}

function count(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function rate(x) {
  if (x >= 100) return String(Math.round(x));
  return x.toFixed(1).replace(/\.0$/, '');
}

function cacheText(c) {
  const total = c.hits + c.misses;
  if (!total) return 'idle';
  return `${Math.round((100 * c.hits) / total)}% hits (${rate(c.hits)}/s hit, ${rate(c.misses)}/s miss)`;
}

const SVG = 'http://www.w3.org/2000/svg';

// Writes (solid) and queries (dashed) per second over the last minute.
function sparkline(history) {
  const width = 180;
  const height = 32;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('aria-label', 'writes and queries per second, last minute');
  if (history.length < 2) return svg;
  const max = Math.max(1, ...history.map((p) => Math.max(p.writes, p.queries)));
  const step = width / 59;
  const x0 = width - step * (history.length - 1);
  for (const [key, cls] of [['queries', 'q'], ['writes', 'w']]) {
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('class', cls);
    line.setAttribute('points', history.map((p, i) =>
      `${(x0 + i * step).toFixed(1)},${(height - 2 - (p[key] / max) * (height - 4)).toFixed(1)}`).join(' '));
    svg.append(line);
  }
  const label = document.createElementNS(SVG, 'text');
  label.setAttribute('x', '2');
  label.setAttribute('y', '10');
  label.textContent = `max ${rate(max)}/s`;
  svg.append(label);
  return svg;
}
