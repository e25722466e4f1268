// The dashboard's entry: login gate, hash routes, navigation, and the polling that keeps the
// open view live.

import { POLL_MS, onUnauthorized, session } from './api.js';
import { clearMessages, h, notify, replace, showError } from './dom.js';
import { TIME_ZONE, formatClock } from './format.js';
import { loginView } from './login.js';
import { campaignsView } from './campaigns.js';
import { campaignFormView } from './campaign_form.js';
import { campaignDetailView } from './campaign_detail.js';
import { packagesView } from './packages.js';
import { devicesView } from './devices.js';
import { auditView } from './audit.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const sessionBox = document.getElementById('session');
const live = document.getElementById('live');

const ROUTES = [
  [/^campaigns\/new$/, 'campaigns', (m) => campaignFormView(m, null)],
  [/^campaigns\/([0-9a-f-]{36})\/edit$/i, 'campaigns', (m, id) => campaignFormView(m, id)],
  [/^campaigns\/([0-9a-f-]{36})$/i, 'campaigns', (m, id) => campaignDetailView(m, id)],
  [/^(campaigns)?$/, 'campaigns', (m) => campaignsView(m)],
  [/^packages$/, 'packages', (m) => packagesView(m)],
  [/^devices$/, 'devices', (m) => devicesView(m)],
  [/^audit$/, 'audit', (m) => auditView(m)],
];

let current = null; // {view, timer, generation}
let generation = 0;

function routeOf(hash) {
  const path = hash.replace(/^#\/?/, '').replace(/\?.*$/, '');
  for (const [pattern, section, make] of ROUTES) {
    const m = path.match(pattern);
    if (m) return { section, make: (el) => make(el, m[1]) };
  }
  return null;
}

function stop() {
  if (!current) return;
  clearTimeout(current.timer);
  current.view?.dispose?.();
  current = null;
}

function setLive(text) {
  live.textContent = text;
}

async function poll(gen) {
  if (!current || current.generation !== gen) return;
  if (document.hidden) {
    setLive('Paused while the tab is hidden');
  } else if (current.view?.refresh) {
    try {
      await current.view.refresh();
      if (!current || current.generation !== gen) return;
      clearMessages((el) => el.dataset.poll === '1');
      setLive(`Live · updated ${formatClock(new Date())}`);
    } catch (e) {
      if (!current || current.generation !== gen) return;
      if (e.status === 401) return;
      setLive('Not updating: see the message above');
      showError(e, 'Could not refresh');
      const last = document.getElementById('messages').lastElementChild;
      if (last) last.dataset.poll = '1';
    }
  }
  if (current && current.generation === gen) {
    current.timer = setTimeout(() => poll(gen), current.view?.pollMs ?? POLL_MS);
  }
}

function render() {
  stop();
  const gen = ++generation;
  if (!session.key()) {
    nav.hidden = true;
    sessionBox.hidden = true;
    current = { generation: gen, view: loginView(main, () => { location.hash = '#/campaigns'; render(); }) };
    return;
  }
  nav.hidden = false;
  sessionBox.hidden = false;
  const route = routeOf(location.hash);
  if (!route) {
    replace(main, h('h1', { text: 'Not found' }), h('p', {}, 'Nothing lives at this address. ', h('a', { href: '#/campaigns', text: 'Go to the campaigns' }), '.'));
    return;
  }
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.section === route.section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  current = { generation: gen, view: route.make(main), timer: 0 };
  setLive('Loading…');
  const heading = main.querySelector('h1');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
  poll(gen);
}

onUnauthorized((e) => {
  session.clear();
  notify(`Your API key is no longer accepted (${e.message}). Log in again.`, 'error');
  render();
});

document.getElementById('logout').addEventListener('click', () => {
  session.clear();
  clearMessages();
  notify('Logged out. The key was removed from this tab.', 'info');
  render();
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && current) {
    clearTimeout(current.timer);
    poll(current.generation);
  }
});

window.addEventListener('hashchange', render);

document.getElementById('footer').textContent =
  `Times are shown in your browser's time zone (${TIME_ZONE}). The view refreshes every ${Math.round(POLL_MS / 100) / 10} s.`;

render();
