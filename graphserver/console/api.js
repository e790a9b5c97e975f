// The graphserver's HTTP API as the console uses it. A node's name everywhere is its base URL
// (http://127.0.0.1:PORT); every node answers CORS requests, so the page served by one node
// talks to all of them directly.

// The node that served the page, unless ?node=http://... names another (handy when the page is
// opened from a file or from a development server).
export const home = (() => {
  const named = new URLSearchParams(location.search).get('node');
  if (named) return named.replace(/\/+$/, '');
  return location.protocol.startsWith('http') ? location.origin : 'http://127.0.0.1:8080';
})();

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(url, init = {}) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach ${url}: ${e.message}`);
  }
  const text = await response.text();
  let body;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!response.ok) {
    const message = body && typeof body === 'object' && body.error ? body.error : text;
    throw new ApiError(response.status, `${response.status} ${message || response.statusText}`);
  }
  return body;
}

function jsonInit(method, body) {
  return {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  };
}

export const getJson = (node, path) => call(`${node}${path}`);
export const putJson = (node, path, body) => call(`${node}${path}`, jsonInit('PUT', body));
export const postJson = (node, path, body = {}) => call(`${node}${path}`, jsonInit('POST', body));

export const getCluster = (node = home) => getJson(node, '/api/timeline/cluster');
export const getTimeline = (userId, node = home) =>
  getJson(node, `/api/timeline/${encodeURIComponent(userId)}`);
export const randomUsers = (count = 1, node = home) =>
  postJson(node, `/api/graph/random/user/${count}`);

// Tells `at` to treat `node` as unplugged (or not). `at` = `node` unplugs the whole node;
// another node drops (or restores) its link to it.
export const setUnplugged = (at, node, unplugged) =>
  putJson(at, '/api/graph/unplugged', { node, unplugged });

export const eventsUrl = (node) => `${node}/api/graph/events`;
