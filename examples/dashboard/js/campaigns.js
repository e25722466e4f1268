// The campaign list: status, name, package, target, start/finish, created; filtered by status
// and searched by name; a progress bar per campaign from its statistics.

import { allPages, getOrNull, mapLimited } from './api.js';
import { emptyState, field, h, redraw, replace, select, table } from './dom.js';
import { CAMPAIGN_STATES, badge, packageName, percent, time } from './format.js';
import * as names from './names.js';

// Filters survive moving to another view and back.
const filters = { state: '', search: '' };

/** The target of a campaign in words, with names for the ids. */
export function targetText(c, profiles, groups) {
  const t = c.spec?.target;
  const devices = c.wave_sizes?.length ? ` · ${c.wave_sizes.reduce((a, b) => a + b, 0)} devices` : '';
  if (!t) return '';
  if (t.type === 'device_list') return `Device list${devices}`;
  const parts = [];
  if (t.profile) parts.push(`profile ${profiles?.get(t.profile)?.name ?? t.profile}`);
  if (t.groups?.length) parts.push(`group${t.groups.length > 1 ? 's' : ''} ${t.groups.map((g) => groups?.get(g)?.name ?? g).join(', ')}`);
  if (t.source_versions?.length) parts.push(`from ${t.source_versions.join(', ')}`);
  if (c.spec?.dynamic) parts.push('dynamic');
  return parts.join(' · ') + devices;
}

/** A small stacked bar of the status cards. */
export function progressBar(total, label) {
  if (!total || !total.total) return h('span', { class: 'muted', text: '—' });
  const seg = (key, n) => {
    const s = h('span', { class: `seg seg-${key}` });
    s.style.width = `${(100 * n) / total.total}%`;
    return s;
  };
  return h('div', { class: 'progress-cell' },
    h('div', { class: 'bar', role: 'img', 'aria-label': label },
      seg('successful', total.successful), seg('failed', total.failed), seg('canceled', total.canceled), seg('ongoing', total.ongoing)),
    h('span', { class: 'small', text: `${total.successful}/${total.total} updated${total.failed ? `, ${total.failed} failed` : ''}` }));
}

function startCell(c) {
  if (c.started_at) return h('span', {}, h('span', { class: 'small muted', text: 'started ' }), time(c.started_at));
  if (c.spec?.start_at) return h('span', {}, h('span', { class: 'small muted', text: 'starts ' }), time(c.spec.start_at));
  return h('span', { class: 'muted', text: 'when started' });
}

function finishCell(c) {
  if (c.ended_at) return h('span', {}, h('span', { class: 'small muted', text: 'ended ' }), time(c.ended_at));
  if (c.spec?.finish_at) return h('span', {}, h('span', { class: 'small muted', text: 'by ' }), time(c.spec.finish_at));
  return h('span', { class: 'muted', text: '—' });
}

export function campaignsView(main) {
  const stateSelect = select([['', 'All but archived'], ...CAMPAIGN_STATES.map((s) => [s, s[0] + s.slice(1).toLowerCase()]), ['*', 'All, archived too']], filters.state, { id: 'campaign-state-filter' });
  const search = h('input', { type: 'search', id: 'campaign-search', placeholder: 'Part of a name', value: filters.search, autocomplete: 'off' });
  const body = h('div', { id: 'campaign-list', 'aria-live': 'polite', 'aria-busy': 'true' });
  const count = h('p', { class: 'small muted', id: 'campaign-count' });
  let all = null;
  let extra = { packages: new Map(), profiles: new Map(), groups: new Map(), stats: new Map(), complete: true };

  const draw = () => {
    if (!all) return;
    const q = filters.search.trim().toLowerCase();
    const shown = all.filter((c) => !q || c.name.toLowerCase().includes(q));
    count.textContent = `${shown.length} of ${all.length} campaign${all.length === 1 ? '' : 's'}${extra.complete ? '' : ' (only the first pages were read)'}`;
    if (!all.length) {
      replace(body, filters.state
        ? emptyState('No campaign in this state.', 'Choose another status, or create a campaign.', h('a', { href: '#/campaigns/new', class: 'button', text: 'New campaign' }))
        : emptyState('No campaigns yet.', 'A campaign rolls a package out to devices. Upload a package first, then create a campaign for it.',
          h('a', { href: '#/packages', class: 'button secondary', text: 'Upload a package' }), ' ',
          h('a', { href: '#/campaigns/new', class: 'button', text: 'New campaign' })));
      return;
    }
    if (!shown.length) {
      replace(body, emptyState(`No campaign name contains “${filters.search}”.`, 'Change the search text or clear it.',
        h('button', { type: 'button', class: 'secondary', text: 'Clear the search', on: { click: () => { search.value = ''; filters.search = ''; draw(); search.focus(); } } })));
      return;
    }
    replace(body, table([
      { label: 'Name', cell: (c) => h('a', { href: `#/campaigns/${c.id}`, text: c.name }) },
      { label: 'Status', cell: (c) => [badge(c.state), c.state_reason ? h('div', { class: 'small muted', text: c.state_reason }) : null] },
      { label: 'Progress', cell: (c) => progressBar(extra.stats.get(c.id)?.total, `Progress of ${c.name}`) },
      { label: 'Package', cell: (c) => packageName(extra.packages.get(c.package_id)) || h('span', { class: 'muted', text: 'deleted package' }) },
      { label: 'Target', cell: (c) => targetText(c, extra.profiles, extra.groups) },
      { label: 'Start', cell: startCell },
      { label: 'Finish', cell: finishCell },
      { label: 'Created', cell: (c) => [time(c.created_at), h('div', { class: 'small muted', text: c.created_by })] },
    ], shown, { caption: 'Campaigns, newest first', rowAttrs: (c) => ({ dataset: { campaign: c.id, name: c.name } }) }));
  };

  stateSelect.addEventListener('change', () => {
    filters.state = stateSelect.value;
    all = null;
    body.setAttribute('aria-busy', 'true');
    view.refresh().catch(() => {});
  });
  search.addEventListener('input', () => {
    filters.search = search.value;
    body.dataset.drawn = '';
    draw();
  });

  replace(main,
    h('div', { class: 'page-head' },
      h('h1', { text: 'Campaigns' }),
      h('a', { href: '#/campaigns/new', class: 'button', text: 'New campaign' })),
    h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter campaigns' },
      field('Status', stateSelect),
      field('Search by name', search)),
    count,
    body);

  const view = {
    async refresh() {
      const params = filters.state === '*' ? { include_archived: true } : { state: filters.state };
      const [list, packages, profiles, groups] = await Promise.all([
        allPages('/campaigns', params, { maxPages: 5 }),
        names.packages(), names.profiles(), names.groups(),
      ]);
      const items = list.items.slice().reverse();
      const withStats = items.filter((c) => c.state !== 'DRAFT').slice(0, 100);
      const stats = await mapLimited(withStats, 6, (c) => getOrNull(`/campaigns/${c.id}/stats`));
      extra = { packages, profiles, groups, complete: list.complete, stats: new Map(withStats.map((c, i) => [c.id, stats[i]])) };
      all = items;
      body.setAttribute('aria-busy', 'false');
      redraw(body, JSON.stringify([filters, items, [...extra.stats.values()]]), draw);
    },
  };
  return view;
}
