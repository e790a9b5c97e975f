// The Timeline page: one user's own posts and the posts they liked, newest first, with who liked
// or wrote each, and what the query cost.

import { getTimeline, home, randomUsers } from './api.js';
import { dateAndTime, fill, h, millis } from './dom.js';
import { displayName, unifiedTimeline } from './timeline_model.js';

export function createTimeline() {
  const idInput = h('input', {
    type: 'number', min: '1', inputmode: 'numeric', placeholder: 'user id',
    'data-testid': 'user-id', 'aria-label': 'user id',
  });
  const form = h('form', {
    class: 'picker',
    onsubmit: (e) => {
      e.preventDefault();
      if (idInput.value) location.hash = `#/timeline/${idInput.value}`;
    },
  },
  idInput,
  h('button', { type: 'submit', 'data-testid': 'show-user' }, 'Show'),
  h('button', {
    type: 'button', 'data-testid': 'random-user',
    onclick: async () => {
      try {
        const ids = await randomUsers(1);
        if (Array.isArray(ids) && ids.length) location.hash = `#/timeline/${ids[0]}`;
        else show(h('p', { class: 'notice' }, 'There are no users yet.'));
      } catch (e) {
        show(h('p', { class: 'notice' }, `Could not pick a user: ${e.message}`));
      }
    },
  }, 'Random user'));
  const body = h('div', { class: 'timeline-body', 'data-testid': 'timeline' });
  const root = h('section', { class: 'timeline-page' }, form, body);

  const show = (...children) => fill(body, ...children);
  let loading = 0;

  async function load(userId) {
    idInput.value = userId || '';
    if (!userId) {
      show(h('p', { class: 'hint' }, 'Pick a user by id, or a random one.'));
      return;
    }
    const ticket = ++loading;
    body.dataset.state = 'loading';
    const started = performance.now();
    try {
      const timeline = await getTimeline(userId);
      if (ticket !== loading) return;
      const roundTrip = performance.now() - started;
      show(render(timeline, roundTrip));
      body.dataset.state = 'ready';
    } catch (e) {
      if (ticket !== loading) return;
      body.dataset.state = 'error';
      show(h('p', { class: 'notice', 'data-testid': 'timeline-error' },
        e.status === 404 ? `There is no user ${userId}.` : `Could not load the timeline: ${e.message}`));
    }
  }

  return { element: root, load };
}

function render(timeline, roundTrip) {
  const owner = (timeline.entities || [])[0];
  if (!owner) return h('p', { class: 'notice' }, 'The answer held no user.');
  const stats = timeline.stats || {};
  const items = unifiedTimeline(owner);
  return [
    h('h1', { 'data-testid': 'timeline-owner', dataset: { userId: owner.id } }, displayName(owner)),
    h('p', { class: 'stats', 'data-testid': 'timeline-stats' },
      `query ${millis(stats.timeRunning)} running, of which ${millis(stats.timeFetching)} fetching, `
      + `in ${stats.calls ?? '–'} calls · endpoint ${millis(timeline.overallTime)} overall · `
      + `browser round trip ${millis(roundTrip)} · asked ${home}`),
    items.length
      ? h('ol', { class: 'posts' }, items.map((item) => renderItem(owner, item)))
      : h('p', { class: 'hint', 'data-testid': 'timeline-empty' }, `${displayName(owner)} has not posted or liked anything yet.`),
  ];
}

function userLink(user) {
  return h('a', { href: `#/timeline/${user.id}`, dataset: { userId: user.id } }, displayName(user));
}

function renderItem(owner, { kind, post, at }) {
  const likers = post.likedby || [];
  const authors = post.postedby || [];
  const action = kind === 'posted' ? 'posted' : 'liked a post';
  return h('li', { class: `post ${kind}`, 'data-testid': 'timeline-item', dataset: { kind, postId: post.id } },
    h('div', { class: 'post-head' },
      h('time', { datetime: post.linked || '' }, dateAndTime(at)), ' ',
      h('strong', {}, displayName(owner)), ' ', action),
    h('p', { class: 'text' }, post.text ?? ''),
    kind === 'posted' && likers.length
      ? h('div', { class: 'liked-by', 'data-testid': 'liked-by' }, 'liked by ', joinLinks(likers))
      : null,
    kind === 'liked'
      ? h('div', { class: 'posted-by', 'data-testid': 'posted-by' }, 'posted by ', authors.length ? joinLinks(authors) : 'someone')
      : null);
}

function joinLinks(users) {
  const out = [];
  users.forEach((u, i) => {
    if (i) out.push(i === users.length - 1 ? ' and ' : ', ');
    out.push(userLink(u));
  });
  return out;
}
