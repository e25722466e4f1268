// A campaign's devices: filtered by status card or state, page by page, each with its
// history and cancel/retry actions.

import { get, post } from './api.js';
import { actionButton, emptyState, field, h, notify, redraw, replace, select, table } from './dom.js';
import { confirmAction, openDialog } from './dialog.js';
import { CARDS, UPDATE_STATES, badge, isTerminal, time } from './format.js';
import * as names from './names.js';

const PAGE = 50;

/** An update's history as a table, in a dialog. */
export async function showHistory(update, deviceLabel) {
  const history = await get(`/updates/${update.id}/history`);
  const rows = history.slice().reverse();
  openDialog(`History of ${deviceLabel}: ${update.target_title} ${update.target_version}`, [
    h('p', { class: 'small muted', text: `Update ${update.id}, attempt ${update.attempt}, now ${update.state}. Newest first.` }),
    rows.length ? table([
      { label: 'When', cell: (e) => time(e.at) },
      { label: 'Attempt', cell: (e) => String(e.attempt) },
      { label: 'Change', cell: (e) => [badge(e.from), ' → ', badge(e.to)] },
      { label: 'By', cell: (e) => e.source },
      { label: 'Event', cell: (e) => e.event },
      { label: 'Outcome', cell: (e) => e.outcome },
      { label: 'Message', cell: (e) => e.message ?? '' },
    ], rows, { caption: 'Update history' }) : h('p', { text: 'No events yet.' }),
  ], { wide: true });
}

/** Cancels a device's live update of the update's kind, after asking. */
export async function cancelDevice(update, deviceLabel) {
  if (!(await confirmAction(`Cancel the update of ${deviceLabel}?`, `The device is told to stop updating to ${update.target_title} ${update.target_version}. It can be retried later.`, 'Cancel update', { danger: true }))) return false;
  await post(`/devices/${update.device_id}/updates/${update.kind}/cancel`, { reason: 'canceled from the dashboard' });
  notify(`Canceled the update of ${deviceLabel}.`, 'info');
  return true;
}

/** Gives a device's failed or canceled update a new attempt. */
export async function retryDevice(update, deviceLabel) {
  const u = await post(`/devices/${update.device_id}/updates/${update.kind}/retry`, {});
  notify(`${deviceLabel}: attempt ${u.attempt} queued.`, 'info');
}

export function campaignDevices(campaignId) {
  const filterOptions = [['', 'Every device'], ...CARDS.map(([k, l]) => [`status:${k}`, `${l} (card)`]), ...UPDATE_STATES.map((s) => [`state:${s}`, `State ${s}`])];
  const filter = select(filterOptions, '', { id: 'device-filter' });
  const list = h('div', { id: 'device-table', 'aria-live': 'polite' });
  const pager = h('div', { class: 'pager' });
  const element = h('section', { class: 'card', 'aria-labelledby': 'devices-h' },
    h('div', { class: 'section-head' }, h('h2', { id: 'devices-h', text: 'Devices' }), field('Show', filter)),
    list, pager);
  const cursors = [undefined];
  let page = 0;
  let listener = () => {};
  let campaign = null;

  const setFilter = (value) => {
    filter.value = value;
    cursors.length = 1;
    page = 0;
    listener();
  };
  filter.addEventListener('change', () => setFilter(filter.value));

  const draw = (items, next) => {
    const live = campaign && !['FINISHED', 'STOPPED', 'FAILED', 'ARCHIVED'].includes(campaign.state);
    if (!items.length) {
      replace(list, filter.value
        ? emptyState('No device in this state right now.', 'Choose “Every device” or another state; the list updates on its own.')
        : campaign?.state === 'DRAFT' || campaign?.state === 'SCHEDULED'
          ? emptyState('The devices are chosen when the campaign starts.', 'Start the campaign to see its devices here.')
          : emptyState('This campaign has no devices.', 'Its target matched no device: check the profile, groups and versions, or copy it with another target.'));
    } else {
      const refresh = () => listener();
      replace(list, table([
        { label: 'Device', cell: (u) => names.deviceName(u.device_id) },
        { label: 'State', cell: (u) => badge(u.state) },
        { label: 'Progress', cell: (u) => (u.progress !== null && u.progress !== undefined ? `${u.progress} %` : '') },
        { label: 'Wave', cell: (u) => String(u.wave + 1) },
        { label: 'Attempt', cell: (u) => String(u.attempt) },
        { label: 'Error', cell: (u) => u.error ?? '' },
        { label: 'Changed', cell: (u) => time(u.state_changed_at) },
        {
          label: 'Actions',
          cell: (u) => {
            const label = names.deviceName(u.device_id);
            return h('div', { class: 'row-actions' },
              actionButton('History', () => showHistory(u, label), { class: 'secondary small-button', 'aria-label': `History of ${label}` }),
              !isTerminal(u.state) ? actionButton('Cancel', async () => { if (await cancelDevice(u, label)) refresh(); }, { class: 'danger small-button', 'aria-label': `Cancel the update of ${label}`, dataset: { act: 'cancel' } }) : null,
              live && (u.state === 'FAILED' || u.state === 'CANCELED') ? actionButton('Retry', async () => { await retryDevice(u, label); refresh(); }, { class: 'secondary small-button', 'aria-label': `Retry the update of ${label}`, dataset: { act: 'retry' } }) : null);
          },
        },
      ], items, { caption: 'Devices of the campaign', rowAttrs: (u) => ({ dataset: { device: names.deviceName(u.device_id), state: u.state } }) }));
    }
    replace(pager,
      page > 0 ? h('button', { type: 'button', class: 'secondary', text: 'Previous page', on: { click: () => { page--; listener(); } } }) : null,
      h('span', { class: 'small muted', text: ` Page ${page + 1} ` }),
      next ? h('button', { type: 'button', class: 'secondary', text: 'Next page', on: { click: () => { cursors[page + 1] = next; page++; listener(); } } }) : null);
  };

  return {
    element,
    status: () => (filter.value.startsWith('status:') ? filter.value.slice(7) : ''),
    filterStatus: (key) => setFilter(key ? `status:${key}` : ''),
    onFilter: (f) => { listener = f; },
    async refresh(c) {
      campaign = c;
      const [kind, value] = filter.value.split(':');
      const params = { limit: PAGE, cursor: cursors[page] };
      if (kind === 'status') params.status = value;
      if (kind === 'state') params.state = value;
      const got = await get(`/campaigns/${campaignId}/devices`, params);
      await names.devicesById(got.items.map((u) => u.device_id));
      redraw(element, JSON.stringify([filter.value, page, c.state, got]), () => draw(got.items, got.next_cursor));
    },
  };
}
