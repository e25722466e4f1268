// Devices: current and target versions and their effective packages (which assignment level
// decided), page by page, by profile or group; a device's updates and history on demand.

import { get, getOrNull, mapLimited } from './api.js';
import { actionButton, emptyState, field, h, redraw, replace, select, table } from './dom.js';
import { openDialog } from './dialog.js';
import { badge, packageName, time } from './format.js';
import { cancelDevice, retryDevice, showHistory } from './campaign_devices.js';
import * as names from './names.js';

const PAGE = 25;
const filters = { scope: '' };

const running = (v) => (v ? `${v.title} ${v.version}` : '—');

function effectiveCell(e) {
  if (!e?.package) return h('span', { class: 'muted', text: 'nothing assigned' });
  return h('span', { title: e.reason }, packageName(e.package), h('span', { class: 'small muted', text: ` (${e.level?.toLowerCase()})` }));
}

function targetCell(latest) {
  if (!latest) return h('span', { class: 'muted', text: '—' });
  return h('span', {}, `${latest.target_title} ${latest.target_version} `, badge(latest.state),
    latest.progress !== null && latest.progress !== undefined && latest.state === 'DOWNLOADING' ? h('span', { class: 'small', text: ` ${latest.progress} %` }) : null);
}

async function showDevice(d, after) {
  const [effective, updates] = await Promise.all([
    get(`/devices/${d.id}/effective-packages`),
    get(`/devices/${d.id}/updates`, { limit: 1000 }),
  ]);
  const rows = updates.items.slice().reverse();
  const { close } = openDialog(`Device ${d.name}`, [
    h('h3', { text: 'Effective packages' }),
    table([
      { label: 'Kind', cell: (e) => e.kind.toLowerCase() },
      { label: 'Package', cell: effectiveCell },
      { label: 'Why', cell: (e) => e.reason },
    ], effective, { caption: 'Effective packages' }),
    h('h3', { text: 'Updates, newest first' }),
    rows.length ? table([
      { label: 'Target', cell: (u) => `${u.target_title} ${u.target_version}` },
      { label: 'Kind', cell: (u) => u.kind.toLowerCase() },
      { label: 'State', cell: (u) => badge(u.state) },
      { label: 'Attempt', cell: (u) => String(u.attempt) },
      { label: 'Campaign', cell: (u) => (u.campaign_id ? h('a', { href: `#/campaigns/${u.campaign_id}`, text: 'open', on: { click: () => close() } }) : 'assignment') },
      { label: 'Changed', cell: (u) => time(u.state_changed_at) },
      {
        label: 'Actions',
        cell: (u) => h('div', { class: 'row-actions' },
          actionButton('History', () => showHistory(u, d.name), { class: 'secondary small-button' }),
          ['UPDATED', 'FAILED', 'CANCELED'].includes(u.state) ? null : actionButton('Cancel', async () => { if (await cancelDevice(u, d.name)) { close(); after(); } }, { class: 'danger small-button' }),
          u.state === 'FAILED' || u.state === 'CANCELED' ? actionButton('Retry', async () => { await retryDevice(u, d.name); close(); after(); }, { class: 'secondary small-button' }) : null),
      },
    ], rows, { caption: 'Updates of the device' }) : h('p', { text: 'No update yet: assign a package to it, its group or its profile, or include it in a campaign.' }),
  ], { wide: true });
}

export function devicesView(main) {
  const scope = h('select', { id: 'device-scope' }, h('option', { value: '', text: 'Every device' }));
  const list = h('div', { id: 'devices-list', 'aria-live': 'polite' });
  const pager = h('div', { class: 'pager' });
  const cursors = [undefined];
  let page = 0;
  let scopesKey = '';

  const view = {
    async refresh() {
      const [profiles, groups] = await Promise.all([names.profiles(), names.groups()]);
      const key = JSON.stringify([[...profiles.keys()], [...groups.keys()]]);
      if (key !== scopesKey) {
        scopesKey = key;
        replace(scope, h('option', { value: '', text: 'Every device' }),
          profiles.size ? h('optgroup', { label: 'Profile' }, [...profiles.values()].map((p) => h('option', { value: `profile:${p.id}`, text: p.name }))) : null,
          groups.size ? h('optgroup', { label: 'Group' }, [...groups.values()].map((g) => h('option', { value: `group:${g.id}`, text: g.name }))) : null);
        scope.value = filters.scope;
      }
      const [kind, id] = filters.scope.split(':');
      const got = kind === 'group'
        ? await get(`/groups/${id}/devices`, { limit: PAGE, cursor: cursors[page] })
        : await get('/devices', { limit: PAGE, cursor: cursors[page], profile: kind === 'profile' ? id : undefined });
      names.rememberDevices(got.items);
      const details = await mapLimited(got.items, 6, async (d) => {
        const [effective, fw, sw] = await Promise.all([
          get(`/devices/${d.id}/effective-packages`),
          getOrNull(`/devices/${d.id}/updates/FIRMWARE`),
          getOrNull(`/devices/${d.id}/updates/SOFTWARE`),
        ]);
        const by = Object.fromEntries(effective.map((e) => [e.kind, e]));
        return { device: d, fwEff: by.FIRMWARE, swEff: by.SOFTWARE, fw, sw };
      });
      redraw(list, JSON.stringify([filters, page, details]), () => {
        if (!details.length) {
          replace(list, filters.scope
            ? emptyState('No device here.', 'Choose “Every device” or another profile or group.')
            : emptyState('No devices yet.', 'Devices are created through the management API (POST /devices or a CSV import to /devices/import) or by the fleet simulator; they appear here at once.'));
        } else {
          replace(list, table([
            { label: 'Device', cell: (r) => actionButton(r.device.name, () => showDevice(r.device, () => { list.dataset.drawn = ''; view.refresh(); }), { class: 'link', 'aria-label': `Details of ${r.device.name}` }) },
            { label: 'Profile', cell: (r) => profiles.get(r.device.profile_id)?.name ?? r.device.profile_id },
            { label: 'Groups', cell: (r) => r.device.groups.map((g) => groups.get(g)?.name ?? g).join(', ') },
            { label: 'Current firmware', cell: (r) => running(r.device.current_firmware) },
            { label: 'Target firmware', cell: (r) => targetCell(r.fw) },
            { label: 'Effective firmware', cell: (r) => effectiveCell(r.fwEff) },
            { label: 'Current software', cell: (r) => running(r.device.current_software) },
            { label: 'Target software', cell: (r) => targetCell(r.sw) },
            { label: 'Effective software', cell: (r) => effectiveCell(r.swEff) },
            { label: 'Created', cell: (r) => time(r.device.created_at) },
          ], details, { caption: 'Devices', rowAttrs: (r) => ({ dataset: { device: r.device.name } }) }));
        }
        replace(pager,
          page > 0 ? h('button', { type: 'button', class: 'secondary', text: 'Previous page', on: { click: () => { page--; again(); } } }) : null,
          h('span', { class: 'small muted', text: ` Page ${page + 1} ` }),
          got.next_cursor ? h('button', { type: 'button', class: 'secondary', text: 'Next page', on: { click: () => { cursors[page + 1] = got.next_cursor; page++; again(); } } }) : null);
      });
    },
  };
  const again = () => view.refresh().catch(() => {});
  scope.addEventListener('change', () => {
    filters.scope = scope.value;
    cursors.length = 1;
    page = 0;
    again();
  });
  replace(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'Devices' })),
    h('p', { class: 'small muted', text: 'Current: what the device reports running. Target: its latest update and where it is. Effective: what its assignments say it should run, and which level decided (hover for why).' }),
    h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter devices' }, field('Show', scope)),
    list, pager);
  return view;
}
