// The console's entry point: two pages behind hash routes, #/monitor (the default) and
// #/timeline/<userId>. The Monitor is made once and keeps listening while the Timeline shows,
// so its event log has no gaps.

import { home } from './api.js';
import { createMonitor } from './monitor.js';
import { createTimeline } from './timeline.js';

const main = document.getElementById('view');
const links = document.querySelectorAll('nav a[data-route]');
document.getElementById('home').textContent = home;

let monitor = null;
let timeline = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const page = parts[0] === 'timeline' ? 'timeline' : 'monitor';
  for (const a of links) a.setAttribute('aria-current', String(a.dataset.route === page));
  document.body.dataset.page = page;
  if (page === 'monitor') {
    if (!monitor) {
      monitor = createMonitor();
      main.append(monitor.element);
    }
    monitor.element.hidden = false;
    if (timeline) timeline.element.hidden = true;
    document.title = 'Instaface · Monitor';
  } else {
    if (!timeline) {
      timeline = createTimeline();
      main.append(timeline.element);
    }
    timeline.element.hidden = false;
    if (monitor) monitor.element.hidden = true;
    document.title = 'Instaface · Timeline';
    timeline.load(decodeURIComponent(parts[1] || ''));
  }
}

window.addEventListener('hashchange', route);
route();
// Open the Monitor's streams even when the page opens on a timeline.
if (!monitor) {
  monitor = createMonitor();
  monitor.element.hidden = true;
  main.append(monitor.element);
}
