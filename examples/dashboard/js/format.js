// How values read: times in the browser's time zone, sizes, states as badges.

import { h } from './dom.js';

export const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';

const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const short = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const relative = typeof Intl.RelativeTimeFormat === 'function' ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }) : null;

/** A time as the browser's locale writes it, in its time zone. */
export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : full.format(d);
}

/** A clock time (for chart axes and "updated at"). */
export function formatClock(date) {
  return short.format(date);
}

/** "3 minutes ago", "in 2 hours". */
export function formatRelative(iso) {
  if (!iso || !relative) return '';
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  const units = [['year', 31536000], ['month', 2592000], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size || unit === 'second') return relative.format(Math.round(seconds / size), unit);
  }
  return '';
}

/** A <time> element: local time, the ISO time in its title. */
export function time(iso, empty = '—') {
  if (!iso) return h('span', { class: 'muted', text: empty });
  return h('time', { datetime: iso, title: `${iso} (UTC) · ${formatRelative(iso)}`, text: formatTime(iso) });
}

/** 1.5 MB. */
export function formatBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** 12.5 %. */
export function percent(part, total) {
  if (!total) return '0 %';
  const p = (100 * part) / total;
  return `${p >= 10 || p === 0 ? Math.round(p) : p.toFixed(1)} %`;
}

const TONE = {
  DRAFT: 'neutral', SCHEDULED: 'info', RUNNING: 'active', PAUSED: 'warn', FINISHED: 'good',
  STOPPED: 'neutral', FAILED: 'bad', ARCHIVED: 'neutral',
  QUEUED: 'neutral', INITIATED: 'active', DOWNLOADING: 'active', DOWNLOADED: 'active',
  VERIFIED: 'active', UPDATING: 'active', UPDATED: 'good', CANCELED: 'warn',
};

/** A campaign or update state as a badge (the word is always written, colour only helps). */
export function badge(state) {
  return h('span', { class: `badge tone-${TONE[state] || 'neutral'}`, dataset: { state }, text: state });
}

/** The status cards of a campaign, in order: key, label, what it counts. */
export const CARDS = [
  ['not_started', 'Not started', 'Queued, not yet released to the device'],
  ['ongoing', 'Ongoing', 'Released: initiated, downloading, downloaded, verified or updating'],
  ['successful', 'Successful', 'Updated'],
  ['failed', 'Failed', 'Failed (may be retried)'],
  ['canceled', 'Canceled', 'Canceled by an operator, a stop or a newer assignment'],
];

/** Update states per status card. */
export const STATES_OF_CARD = {
  not_started: ['QUEUED'],
  ongoing: ['INITIATED', 'DOWNLOADING', 'DOWNLOADED', 'VERIFIED', 'UPDATING'],
  successful: ['UPDATED'],
  failed: ['FAILED'],
  canceled: ['CANCELED'],
};

export const UPDATE_STATES = Object.values(STATES_OF_CARD).flat();

export const CAMPAIGN_STATES = ['DRAFT', 'SCHEDULED', 'RUNNING', 'PAUSED', 'FINISHED', 'STOPPED', 'FAILED', 'ARCHIVED'];

/** Whether an update state is final. */
export const isTerminal = (state) => ['UPDATED', 'FAILED', 'CANCELED'].includes(state);

/** "sensor-fw 1.2.0". */
export function packageName(p) {
  return p ? `${p.title} ${p.version}` : '';
}

/** A wave's size in words. */
export function waveSize(size) {
  if (!size) return 'all devices';
  if (size.type === 'count') return `${size.value} device${size.value === 1 ? '' : 's'}`;
  if (size.type === 'percent') return `${size.value} % of the devices`;
  return 'the rest';
}

/** When a wave starts, in words. */
export function waveAdvance(advance, index) {
  if (index === 0) return 'with the campaign';
  const parts = [];
  if (advance?.success_percent !== null && advance?.success_percent !== undefined) {
    parts.push(`when ${advance.success_percent} % of the earlier waves are updated`);
  }
  if (advance?.after !== null && advance?.after !== undefined) {
    parts.push(`${formatDuration(advance.after)} after the previous wave`);
  }
  parts.push(parts.length ? 'or by an operator' : 'by an operator');
  return parts.join(', ');
}

/** 90000 ms as "1 min 30 s". */
export function formatDuration(ms) {
  let s = Math.round(Number(ms) / 1000);
  const out = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]]) {
    if (s >= size) {
      out.push(`${Math.floor(s / size)} ${unit}`);
      s %= size;
    }
  }
  return out.join(' ') || '0 s';
}
