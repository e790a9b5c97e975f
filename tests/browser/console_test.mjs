// Drives the graphserver's console in headless Chromium against a running cluster and checks,
// in order, after the models' own checks (model_checks.mjs):
//   (a) the Monitor shows every node and exactly one leader, the one the cluster API names;
//   (b) clicking the leader's unplug switch moves leadership, and the page shows the new leader
//       within 1 s of GET /api/timeline/cluster (polled from here, outside the browser) first
//       naming it;
//   (c) the Timeline renders a user made here through the graph API: own posts newest first,
//       "liked by" on them, "posted by" on liked posts, the query's timings, and a user with no
//       posts at all.
// Screenshots of each stage go to ARTIFACTS. tests/browser/run starts the cluster and calls this.
//
// Between (a) and (b) it checks that every node's stats reach the page (and, with LOAD_RATE > 0,
// writes and sampled queries); between (b) and (c), that a cell of the links matrix cuts and
// restores one link, at the row's node only.
//
//   INSTAFACE_URLS=http://127.0.0.1:A,http://127.0.0.1:B,... ARTIFACTS=dir node console_test.mjs

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const urls = (process.env.INSTAFACE_URLS || '').split(',').filter(Boolean);
const artifacts = process.env.ARTIFACTS || path.resolve('browser-artifacts');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const failoverLimitMs = Number(process.env.FAILOVER_LIMIT_MS || 15000);  // a shared, noisy machine
const showWithinMs = Number(process.env.SHOW_WITHIN_MS || 1000);
const loadRate = Number(process.env.LOAD_RATE || 0);  // a bot is writing and querying meanwhile

if (urls.length < 3) {
  console.error('console_test: INSTAFACE_URLS must name at least 3 graphservers');
  process.exit(2);
}
fs.mkdirSync(artifacts, { recursive: true });

const results = [];
const log = (...a) => console.log('console_test:', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function step(name, f) {
  const t0 = Date.now();
  try {
    await f();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    log(`ok      ${name} (${Date.now() - t0} ms)`);
    return true;
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: e.stack || String(e) });
    log(`FAILED  ${name}: ${e.message}`);
    return false;
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// --- the API, from outside the browser ---

async function api(base, route, { method = 'GET', body, timeoutMs = 3000 } = {}) {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: response.status, json, headers: response.headers };
}

// A write, retried while the cluster has no leader to take it (503) or drops the connection.
async function write(route, body = {}) {
  const deadline = Date.now() + 20000;
  let last;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    const base = urls[attempt % urls.length];
    try {
      last = await api(base, route, { method: 'POST', body, timeoutMs: 6000 });
      if (last.status === 200 || last.status === 201) return last.json;
      if (last.status !== 503) break;
    } catch (e) {
      last = { status: 0, json: e.message };
    }
    await sleep(200);
  }
  throw new Error(`POST ${route} failed: ${last ? `${last.status} ${JSON.stringify(last.json)}` : 'no answer'}`);
}

const createEntity = async (type, attrs) => {
  const id = await write(`/api/graph/entities/${type}/create`, attrs);
  const n = Number(id);
  assert(Number.isInteger(n) && n > 0, `create ${type} answered ${JSON.stringify(id)}`);
  return n;
};
const associate = (type, from, to) => write(`/api/graph/associations/${type}/from/${from}/to/${to}`, {});

async function clusterViews() {
  return Promise.all(urls.map(async (u) => {
    try {
      const r = await api(u, '/api/timeline/cluster', { timeoutMs: 1000 });
      return r.status === 200 ? r.json : null;
    } catch {
      return null;
    }
  }));
}

// The leader every node agrees on, or null.
async function agreedLeader() {
  const views = await clusterViews();
  const leaders = new Set(views.map((v) => (v ? v.leader : null)));
  return leaders.size === 1 && !leaders.has(null) && !leaders.has(undefined) ? [...leaders][0] : null;
}

async function waitFor(what, limitMs, f, everyMs = 100) {
  const deadline = Date.now() + limitMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${limitMs} ms${last instanceof Error ? ` (${last.message})` : ''}`);
}

// --- the page ---

const browser = await chromium.launch({
  executablePath: chromiumPath,
  // Root in a container has no user namespace for Chromium's sandbox.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`); });

async function shot(name) {
  const file = path.join(artifacts, `${name}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true });
    log(`screenshot ${file}`);
  } catch (e) {
    log(`screenshot ${name} failed: ${e.message}`);
  }
  return file;
}

// What the page shows: each card's id, own role, whether it is marked leader, its connection.
const cards = () => page.$$eval('article.node', (els) => els.map((el) => ({
  id: el.dataset.nodeId,
  url: el.dataset.url,
  role: el.dataset.role,
  leader: el.dataset.leader === 'true',
  connection: el.dataset.connection,
  unplugged: el.dataset.unplugged === 'true',
})));

let leaderUrl = null;
let leaderId = null;

try {
  const loaded = await step('the console loads from a graphserver at /', async () => {
    const r = await api(urls[0], '/');
    assert(r.status === 200, `GET / answered ${r.status}`);
    assert(/text\/html/.test(r.headers.get('content-type') || ''), `GET / is ${r.headers.get('content-type')}`);
    const js = await api(urls[0], '/console/app.js');
    assert(js.status === 200 && /javascript/.test(js.headers.get('content-type') || ''),
      `GET /console/app.js answered ${js.status} ${js.headers.get('content-type')}`);
    await page.goto(`${urls[0]}/#/monitor`);
  });
  if (!loaded) throw new Error('no console to test');

  await step("the console's models pass their checks, run in the page on the served files", async () => {
    const checks = fs.readFileSync(new URL('./model_checks.mjs', import.meta.url));
    await page.route('**/__model_checks__.mjs', (route) =>
      route.fulfill({ status: 200, contentType: 'text/javascript', body: checks }));
    const { count, failed } = await page.evaluate(async () => (await import('/__model_checks__.mjs')).run());
    assert(failed.length === 0, `${failed.length} of ${count} failed:\n  ${failed.join('\n  ')}`);
    log(`${count} model checks passed`);
  });

  await step('(a) the Monitor shows exactly one leader among the nodes', async () => {
    leaderUrl = await waitFor('all nodes agree on a leader (API)', 15000, agreedLeader);
    const seen = await waitFor('the page shows every node with one leader', 15000, async () => {
      const c = await cards();
      const open = c.filter((x) => x.connection === 'open');
      const marked = c.filter((x) => x.leader);
      const claiming = c.filter((x) => x.role === 'leader');
      return c.length === urls.length && open.length === urls.length && marked.length === 1
        && claiming.length === 1 && marked[0].url === leaderUrl ? c : null;
    });
    leaderId = seen.find((x) => x.leader).id;
    const banner = await page.getAttribute('[data-testid="cluster-leader"]', 'data-url');
    assert(banner === leaderUrl, `the summary names ${banner}, the API ${leaderUrl}`);
    const indicators = await page.locator('[data-testid^="leader-indicator-"]:visible').count();
    assert(indicators === 1, `${indicators} leader indicators visible`);
    log(`leader ${leaderId} at ${leaderUrl}; cards ${seen.map((x) => `${x.id}=${x.role}`).join(' ')}`);
  });

  await step('stats arrive from every node each second, and sampled queries under load', async () => {
    await page.waitForFunction(() => {
      const rates = [...document.querySelectorAll('article.node [data-field="rates"]')];
      return rates.length > 0 && rates.every((el) => /writes\/s/.test(el.textContent));
    }, null, { timeout: 5000 });
    if (loadRate > 0) {
      await page.waitForFunction(() => {
        const total = document.querySelector('[data-testid="cluster-totals"]').textContent;
        const queried = [...document.querySelectorAll('[data-field="last-query"]')]
          .some((el) => /^query: \d+ entit/.test(el.textContent));
        return !/^cluster: 0 writes/.test(total) && queried;
      }, null, { timeout: 10000 });
    }
    await shot('monitor');
  });

  await step('(b) unplugging the leader in the page moves leadership, shown within 1 s of the API', async () => {
    assert(leaderUrl && leaderId, 'no leader from (a)');
    // Timestamps of every change of the leader the page shows, on the page's clock (the same
    // machine's clock as this process's).
    await page.evaluate(() => {
      const el = document.querySelector('[data-testid="cluster-leader"]');
      window.leaderShown = [{ url: el.dataset.url, at: Date.now() }];
      new MutationObserver(() => {
        window.leaderShown.push({ url: el.dataset.url, at: Date.now() });
      }).observe(el, { attributes: true, attributeFilter: ['data-url'] });
    });

    // Poll every node's cluster API, each node in a loop of its own so that a slow one delays
    // no other, until one names a new leader. The time kept is when that request was sent: the
    // earliest the node can have said so, which makes the check below the strictest.
    let apiFirst = null;
    let polling = true;
    const poller = Promise.all(urls.map(async (u) => {
      while (polling && !apiFirst) {
        const sent = Date.now();
        try {
          const r = await api(u, '/api/timeline/cluster', { timeoutMs: 1000 });
          const named = r.status === 200 && r.json ? r.json.leader : null;
          if (!apiFirst && named && named !== leaderUrl) {
            apiFirst = { url: named, at: sent, answered: Date.now(), by: u };
          }
        } catch {
          // Unplugged or busy: the other nodes' loops carry on.
        }
        await sleep(10);
      }
    }));

    const clicked = Date.now();
    await page.click(`[data-testid="unplug-${leaderId}"]`);
    try {
      await waitFor('the cluster API names a new leader', failoverLimitMs, async () => apiFirst, 20);
      const newUrl = apiFirst.url;
      const shown = await waitFor('the page shows the new leader', failoverLimitMs, async () => {
        const changes = await page.evaluate(() => window.leaderShown);
        return changes.find((c) => c.url === newUrl && c.at >= clicked);
      }, 20);
      const lag = shown.at - apiFirst.at;
      log(`${apiFirst.by}'s cluster API named ${newUrl} ${apiFirst.at - clicked}-${apiFirst.answered - clicked} ms `
        + `after the click; the page showed it ${shown.at - clicked} ms after the click (${lag} ms after the API)`);
      assert(lag <= showWithinMs, `the page showed the new leader ${lag} ms after the API (limit ${showWithinMs} ms)`);
      await waitFor('the old leader shows as unplugged', 5000, async () =>
        (await cards()).find((c) => c.url === leaderUrl && c.unplugged));
      await page.waitForTimeout(300);
      await shot('monitor-failover');
    } finally {
      polling = false;
      await poller;
    }

    // Plug it back in through the page, and let the cluster settle before (c) writes.
    await page.click(`[data-testid="unplug-${leaderId}"]`);
    await waitFor('the old leader is plugged in again', 10000, async () =>
      (await cards()).find((c) => c.url === leaderUrl && !c.unplugged));
    leaderUrl = await waitFor('all nodes agree on a leader again', failoverLimitMs, agreedLeader);
  });

  await step("cutting one link in the matrix tells only the row's node, and the cell shows it", async () => {
    const all = await cards();
    const [from, to] = all.filter((c) => c.url !== leaderUrl);  // two followers: no election
    assert(from && to, 'two followers to cut a link between');
    const cell = `[data-testid="link-${from.id}-${to.id}"]`;
    const unplugged = async (u) => (await api(u, '/api/graph/unplugged')).json;
    await page.click(cell);
    await page.waitForSelector(`${cell}[data-state="cut"]`, { timeout: 5000 });
    const atFrom = await unplugged(from.url);
    const atTo = await unplugged(to.url);
    assert(Array.isArray(atFrom) && atFrom.includes(to.url), `${from.id} treats as unplugged: ${JSON.stringify(atFrom)}`);
    assert(Array.isArray(atTo) && atTo.length === 0, `${to.id} was told too: ${JSON.stringify(atTo)}`);
    await page.click(cell);
    await page.waitForSelector(`${cell}:not([data-state="cut"])`, { timeout: 5000 });
    const after = await unplugged(from.url);
    assert(Array.isArray(after) && after.length === 0, `${from.id} still drops: ${JSON.stringify(after)}`);
  });

  await step('(c) the Timeline renders a user made through the API', async () => {
    const tag = Date.now().toString(36);
    const ann = await createEntity('user', { firstName: 'Ann', lastName: `Lee-${tag}` });
    const bob = await createEntity('user', { firstName: 'Bob', lastName: `Ray-${tag}` });
    const cat = await createEntity('user', { firstName: 'Cat', lastName: `Nobody-${tag}` });
    // A user with no posts and no likes: the answer has no "posted" or "liked" key at all. Looked
    // at first, before the bot (which may post as anyone) is likely to have found this user.
    await page.goto(`${urls[1]}/#/timeline/${cat}`);
    await page.waitForSelector('[data-testid="timeline"][data-state="ready"]', { timeout: 10000 });
    const asked = (await api(urls[1], `/api/timeline/${cat}`)).json.entities[0];
    const shown = await page.locator('[data-testid="timeline-item"]').count();
    if (!('posted' in asked) && !('liked' in asked)) {
      assert(shown === 0 && await page.isVisible('[data-testid="timeline-empty"]'),
        'a user with no posted or liked key is not shown as having none');
    } else {
      log(`the bot reached ${cat} first; comparing with the API instead`);
      const n = (asked.posted || []).length + (asked.liked || []).length;
      assert(shown === n, `${shown} items shown for ${cat}, the API has ${n}`);
    }
    await associate('friend', ann, bob);
    await associate('friend', bob, ann);
    const post = async (user, text) => {
      const id = await createEntity('status', { text });
      await associate('posted', user, id);
      await associate('postedby', id, user);
      return id;
    };
    const like = async (user, status) => {
      await associate('liked', user, status);
      await associate('likedby', status, user);
    };
    // Spaced out so that every link has its own time, whatever the column's precision.
    const first = await post(ann, `Ann's first post ${tag}`);
    await sleep(1100);
    const bobs = await post(bob, `Bob says hello ${tag}`);
    await like(bob, first);
    await sleep(1100);
    const second = await post(ann, `Ann's <b>second</b> post ${tag}`);
    await sleep(1100);
    await like(ann, bobs);
    log(`made users ann=${ann} bob=${bob} cat=${cat}; posts ${first}, ${second}; ann likes ${bobs}`);
    // A node that did not take these writes may serve an association list it cached before them
    // for up to its cache's TTL (1 s, docs/graphserver.md); the bot reads random timelines, Ann's
    // among them. Let that pass, so the page shows the writes wherever it asks.
    await sleep(1100);

    await page.click('[data-testid="nav-timeline"]');
    await page.fill('[data-testid="user-id"]', String(ann));
    await page.click('[data-testid="show-user"]');
    await page.waitForSelector('[data-testid="timeline"][data-state="ready"]', { timeout: 10000 });
    const owner = await page.textContent('[data-testid="timeline-owner"]');
    assert(owner === `Ann Lee-${tag}`, `the timeline's owner reads "${owner}"`);
    const items = await page.$$eval('[data-testid="timeline-item"]', (els) => els.map((el) => ({
      kind: el.dataset.kind,
      id: Number(el.dataset.postId),
      text: el.querySelector('.text').textContent,
      time: el.querySelector('time').getAttribute('datetime'),
      likedBy: el.querySelector('[data-testid="liked-by"]')?.textContent ?? null,
      likerIds: [...el.querySelectorAll('[data-testid="liked-by"] a[data-user-id]')]
        .map((a) => Number(a.dataset.userId)),
      postedBy: el.querySelector('[data-testid="posted-by"]')?.textContent ?? null,
    })));
    log(`timeline: ${items.map((i) => `${i.kind}:${i.id}`).join(' ')}`);
    const times = items.map((i) => Date.parse(i.time.includes('T') ? i.time : `${i.time.replace(' ', 'T')}Z`));
    assert(times.every((t, i) => i === 0 || times[i - 1] >= t), `times not newest first: ${items.map((i) => i.time)}`);
    // The bot, when running, may post as any user, these included: look at ours only.
    const ours = items.filter((i) => [first, second, bobs].includes(i.id));
    const order = ours.map((i) => `${i.kind}:${i.id}`).join(' ');
    assert(order === `liked:${bobs} posted:${second} posted:${first}`, `timeline order is ${order}`);
    const [liked, newer, older] = ours;
    assert(liked.postedBy === `posted by Bob Ray-${tag}`, `the liked post says "${liked.postedBy}"`);
    assert(liked.text === `Bob says hello ${tag}`, `the liked post reads "${liked.text}"`);
    // The bot may like these posts too: every liker shown must be one the API names (read after
    // the page, so it can only know more), and Bob must be among those of the first post.
    const answer = (await api(urls[1], `/api/timeline/${ann}`)).json.entities[0];
    const likersOf = (id) => ((answer.posted || []).find((p) => p.id === id)?.likedby || [])
      .map((u) => u.id);
    for (const [item, id] of [[older, first], [newer, second]]) {
      const known = likersOf(id);
      assert(item.likerIds.every((u) => known.includes(u)),
        `post ${id} shows likers ${item.likerIds}, the API has ${known}`);
      assert((item.likedBy === null) === (item.likerIds.length === 0),
        `post ${id} says "${item.likedBy}" for likers ${item.likerIds}`);
    }
    assert(older.likerIds.includes(bob) && older.likedBy.startsWith('liked by ') &&
      older.likedBy.includes(`Bob Ray-${tag}`), `Ann's first post says "${older.likedBy}"`);
    assert(newer.text === `Ann's <b>second</b> post ${tag}`, `markup in a post must show as text: "${newer.text}"`);
    const bolded = await page.locator('[data-testid="timeline-item"] b').count();
    assert(bolded === 0, 'a post\'s markup was rendered as HTML');
    const stats = await page.textContent('[data-testid="timeline-stats"]');
    assert(/running/.test(stats) && /calls/.test(stats) && /overall/.test(stats) && !/–/.test(stats),
      `the timings read "${stats}"`);
    await shot('timeline');

    // "liked by" links to the liker's own timeline.
    await page.click(`[data-testid="liked-by"] a[data-user-id="${bob}"]`);
    await page.waitForFunction((t) => document.querySelector('[data-testid="timeline-owner"]')?.textContent === t,
      `Bob Ray-${tag}`, { timeout: 10000 });


    // The random-user button lands on some user's timeline.
    await page.click('[data-testid="random-user"]');
    await page.waitForFunction(() => /^#\/timeline\/\d+$/.test(location.hash)
      && document.querySelector('[data-testid="timeline"]')?.dataset.state === 'ready', null, { timeout: 10000 });
  });

  await step('the page raised no script errors', async () => {
    // A stream cut by an unplugged node's restart may log a failed EventSource; that is not ours.
    const ours = pageErrors.filter((e) => !/EventSource|net::ERR_|Failed to load resource/.test(e));
    assert(ours.length === 0, ours.join('\n'));
  });
} catch (e) {
  if (e.message !== 'no console to test') throw e;
} finally {
  if (results.some((r) => !r.ok)) await shot('failure');
  await browser.close();
}

fs.writeFileSync(path.join(artifacts, 'results.json'), JSON.stringify(results, null, 2));
const failed = results.filter((r) => !r.ok);
log(`${results.length - failed.length} passed, ${failed.length} failed; artifacts in ${artifacts}`);
for (const f of failed) console.error(`\n${f.name}\n${f.error}`);
process.exit(failed.length ? 1 : 0);
