// One campaign: its state and actions, the status cards, the progress chart, waves and
// thresholds, and its devices.

import { allPages, get, post } from './api.js';
import { actionButton, h, notify, redraw, replace, table } from './dom.js';
import { confirmAction } from './dialog.js';
import { CARDS, badge, formatDuration, packageName, percent, time, waveAdvance, waveSize } from './format.js';
import { progressChart, seriesFromSamples, seriesFromUpdates } from './chart.js';
import { targetText } from './campaigns.js';
import { campaignDevices } from './campaign_devices.js';
import * as names from './names.js';

// Statistics sampled while pages were open, per campaign (the API keeps no time series).
const samples = new Map();
const RECONSTRUCT_MAX = 2000;

const ACTIONS = {
  start: ['Start', 'Start the campaign now (or at its start time, when it has one in the future)?'],
  pause: ['Pause', 'Pause the campaign? Devices already notified go on; nothing more is released.'],
  resume: ['Resume', 'Resume releasing updates?'],
  stop: ['Stop', 'Stop the campaign? Every pending and ongoing device update is canceled. This cannot be undone.'],
  'advance-wave': ['Start next wave', 'Start the next wave now?'],
  'retry-failed': ['Retry failed', 'Give every failed device a new attempt?'],
  archive: ['Archive', 'Archive the campaign? It is kept in full and hidden from the default list.'],
};

function actionsFor(c) {
  const more = c.current_wave + 1 < Math.max(c.wave_sizes.length, c.spec?.waves?.length ?? 0);
  switch (c.state) {
    case 'DRAFT': return ['start'];
    case 'SCHEDULED': return ['stop'];
    case 'RUNNING': return ['pause', more && 'advance-wave', 'retry-failed', 'stop'].filter(Boolean);
    case 'PAUSED': return ['resume', more && 'advance-wave', 'retry-failed', 'stop'].filter(Boolean);
    case 'FINISHED': case 'STOPPED': case 'FAILED': return ['archive'];
    default: return [];
  }
}

function thresholdText(t) {
  if (!t) return 'None: failures never pause or fail the campaign.';
  return `${t.action === 'fail' ? 'Fail' : 'Pause'} the campaign when ${t.percent} % of finished devices failed, once ${t.min_finished} finished.`;
}

function pacingText(p) {
  if (!p) return 'The server’s pace.';
  const parts = [];
  if (p.rate) parts.push(`${p.rate.count} per ${formatDuration(p.rate.per_ms)}`);
  if (p.max_in_progress) parts.push(`at most ${p.max_in_progress} in progress`);
  if (p.ramp) parts.push('ramping up');
  return parts.length ? parts.join(', ') : 'No limit of its own (the server’s pace applies).';
}

export function campaignDetailView(main, id) {
  const head = h('div', { class: 'title-row' }, h('h1', { text: 'Campaign' }));
  const meta = h('div', { class: 'meta', id: 'campaign-meta' });
  const actions = h('div', { class: 'actions', id: 'campaign-actions', role: 'group', 'aria-label': 'Campaign actions' });
  const cards = h('div', { class: 'cards', id: 'status-cards' });
  const chartBox = h('section', { class: 'card', 'aria-labelledby': 'chart-h' }, h('h2', { id: 'chart-h', text: 'Progress over time' }), h('div', { id: 'chart' }));
  const wavesBox = h('section', { class: 'card', 'aria-labelledby': 'waves-h' }, h('h2', { id: 'waves-h', text: 'Waves and thresholds' }), h('div', { id: 'waves' }));
  const devices = campaignDevices(id);
  replace(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/campaigns', text: 'Campaigns' }), ' / ', h('span', { id: 'crumb-name', text: '…' })),
    head, meta, actions,
    h('section', { 'aria-labelledby': 'cards-h' }, h('h2', { id: 'cards-h', class: 'visually-hidden', text: 'Status' }), cards),
    chartBox, wavesBox,
    devices.element);

  let lastStatsKey = '';
  let updates = null;
  let campaign = null;

  const act = async (action) => {
    const [label, question] = ACTIONS[action];
    if (!(await confirmAction(`${label}: ${campaign.name}`, question, label, { danger: action === 'stop' }))) return;
    const answer = await post(`/campaigns/${id}/${action}`);
    notify(action === 'retry-failed' ? `${answer.retried} device${answer.retried === 1 ? '' : 's'} retried.` : `${label}: done, the campaign is ${answer.state}.`, 'info');
    await view.refresh();
  };

  const drawHead = (c, packages, profiles, groups) => {
    replace(head, h('h1', { tabindex: '-1' }, c.name), badge(c.state));
    main.querySelector('#crumb-name').textContent = c.name;
    const pkg = packages.get(c.package_id);
    replace(meta, h('dl', { class: 'facts' },
      h('dt', { text: 'Package' }), h('dd', { text: pkg ? `${packageName(pkg)} (${c.kind.toLowerCase()})` : `deleted (${c.package_id})` }),
      h('dt', { text: 'Target' }), h('dd', { text: targetText(c, profiles, groups) || '—' }),
      c.state_reason ? [h('dt', { text: 'Why' }), h('dd', { text: c.state_reason })] : null,
      h('dt', { text: 'Created' }), h('dd', {}, time(c.created_at), ` by ${c.created_by}`),
      h('dt', { text: 'Start' }), h('dd', {}, c.started_at ? time(c.started_at) : c.spec.start_at ? ['scheduled for ', time(c.spec.start_at)] : 'when an operator starts it'),
      h('dt', { text: 'Finish' }), h('dd', {}, c.ended_at ? time(c.ended_at) : c.spec.finish_at ? ['by ', time(c.spec.finish_at)] : 'when every device is done'),
      c.spec.description ? [h('dt', { text: 'Description' }), h('dd', { text: c.spec.description })] : null));
    const buttons = actionsFor(c).map((a) => actionButton(ACTIONS[a][0], () => act(a), { class: a === 'stop' ? 'danger' : a === 'start' || a === 'resume' ? 'primary' : 'secondary', dataset: { action: a } }));
    if (c.state === 'DRAFT' || c.state === 'SCHEDULED') buttons.push(h('a', { href: `#/campaigns/${id}/edit`, class: 'button secondary', text: 'Edit' }));
    buttons.push(actionButton('Copy', async () => {
      const copy = await post(`/campaigns/${id}/copy`, {});
      notify(`Copied as the draft “${copy.name}”.`, 'info');
      location.hash = `#/campaigns/${copy.id}`;
    }, { class: 'secondary', dataset: { action: 'copy' } }));
    replace(actions, buttons);
  };

  const drawCards = (total) => {
    replace(cards, CARDS.map(([key, label, what]) => {
      const n = total[key];
      const pressed = devices.status() === key;
      return h('button', { type: 'button', class: `status-card card-${key}`, 'aria-pressed': String(pressed), title: `${what}. Show these devices.`, dataset: { card: key }, on: { click: () => devices.filterStatus(pressed ? '' : key) } },
        h('span', { class: 'card-label', text: label }),
        h('span', { class: 'card-count', dataset: { count: String(n) }, text: String(n) }),
        h('span', { class: 'card-pct', text: percent(n, total.total) }));
    }), h('div', { class: 'status-total small muted' }, `${total.total} devices in all`));
  };

  const drawChart = (c, stats) => {
    const box = main.querySelector('#chart');
    if (!c.started_at) {
      replace(box, h('p', { class: 'muted', text: 'The chart starts when the campaign starts. Start it with the button above.' }));
      return;
    }
    const keys = [['successful', 'Successful', ['UPDATED']], ['failed', 'Failed', ['FAILED']], ['canceled', 'Canceled', ['CANCELED']]];
    const from = new Date(c.started_at).getTime();
    const to = c.ended_at ? new Date(c.ended_at).getTime() : Date.now();
    let series;
    let note;
    if (updates) {
      series = seriesFromUpdates(updates, keys);
      note = 'Each device counted when it reached its state.';
    } else {
      const list = samples.get(id) ?? [];
      series = seriesFromSamples(list, [...keys, ['ongoing', 'Ongoing']]);
      note = `A large campaign: the chart shows what this page saw since ${list.length ? new Date(list[0].at).toLocaleTimeString() : 'now'}.`;
    }
    replace(box, progressChart(series, { from, to: Math.max(to, from + 1000), yMax: stats.total.total, title: `Progress of ${c.name}` }), h('p', { class: 'small muted', text: note }));
  };

  const drawWaves = (c, stats) => {
    const specWaves = c.spec.waves?.length ? c.spec.waves : [{ size: { type: 'rest' } }];
    const rows = specWaves.map((w, i) => ({ w, i, size: c.wave_sizes[i], counts: stats.waves[i] }));
    replace(main.querySelector('#waves'),
      table([
        { label: 'Wave', cell: (r) => `${r.i + 1}${c.state !== 'DRAFT' && c.state !== 'SCHEDULED' && r.i === c.current_wave ? ' (current)' : ''}` },
        { label: 'Size', cell: (r) => (r.size !== undefined ? `${r.size} (${waveSize(r.w.size)})` : waveSize(r.w.size)) },
        { label: 'Starts', cell: (r) => waveAdvance(r.w.advance, r.i) },
        { label: 'Updated', cell: (r) => (r.counts ? `${r.counts.successful} (${percent(r.counts.successful, r.counts.total)})` : '—') },
        { label: 'Failed', cell: (r) => (r.counts ? String(r.counts.failed) : '—') },
        { label: 'Ongoing', cell: (r) => (r.counts ? String(r.counts.ongoing) : '—') },
      ], rows, { caption: 'Waves' }),
      h('dl', { class: 'facts' },
        h('dt', { text: 'Error threshold' }), h('dd', { text: thresholdText(c.spec.error_threshold) }),
        h('dt', { text: 'Failed so far' }), h('dd', { text: `${percent(stats.total.failed, stats.total.finished)} of ${stats.total.finished} finished` }),
        h('dt', { text: 'Pace' }), h('dd', { text: pacingText(c.spec.pacing) }),
        c.skipped?.length ? [h('dt', { text: 'Not taken' }), h('dd', { text: c.skipped.map((s) => `${s.count} ${s.reason}`).join('; ') })] : null));
  };

  const view = {
    async refresh() {
      const [c, stats, packages, profiles, groups] = await Promise.all([
        get(`/campaigns/${id}`), get(`/campaigns/${id}/stats`), names.packages(), names.profiles(), names.groups(),
      ]);
      campaign = c;
      const key = JSON.stringify([c.state, c.updated_at, stats.total]);
      const list = samples.get(id) ?? [];
      list.push({ at: Date.now(), total: stats.total });
      if (list.length > 2000) list.shift();
      samples.set(id, list);
      if (key !== lastStatsKey) {
        updates = stats.total.total <= RECONSTRUCT_MAX && c.started_at
          ? (await allPages(`/campaigns/${id}/devices`, {}, { maxPages: 2 })).items
          : null;
        redraw(actions, undefined, () => drawHead(c, packages, profiles, groups));
        drawWaves(c, stats);
      }
      redraw(cards, JSON.stringify([stats.total, devices.status()]), () => drawCards(stats.total));
      drawChart(c, stats);
      await devices.refresh(c, key !== lastStatsKey);
      lastStatsKey = key;
    },
    dispose() {},
  };
  devices.onFilter(() => {
    lastStatsKey = '';
    view.refresh().catch(() => {});
  });
  return view;
}
