// Building DOM nodes without innerHTML: every string given as a child becomes a text node, so
// text that came from the server (a status update saying "<script>") is shown, never run.

// h('a', {href: '#/x', dataset: {nodeId: 'n0'}, onclick: f}, 'text', child, [more, children])
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// Replaces everything inside el with the children given.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Sets a text node's content only when it changed, so a once-a-second refresh does not disturb
// a selection or restart a CSS transition.
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

const clock = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
});

// 18:04:05.123, local time.
export function clockTime(ms) {
  const d = new Date(ms);
  return `${clock.format(d)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function dateAndTime(ms) {
  return Number.isFinite(ms) ? dateTime.format(new Date(ms)) : '';
}

// A number of milliseconds as people read it: 0.42 ms, 12.3 ms, 340 ms.
export function millis(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}
