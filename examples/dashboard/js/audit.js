// The audit log: who did what to which resource and when, newest first, filtered by actor,
// action, target and time.

import { allPages } from './api.js';
import { emptyState, field, h, redraw, replace, table } from './dom.js';
import { TIME_ZONE, time } from './format.js';

const SHOWN = 200;
const filters = { actor: '', action: '', target: '', from: '', to: '' };

/** A campaign target links to its page; others are text. */
function targetCell(e) {
  const m = /^campaign ([0-9a-f-]{36})$/i.exec(e.target);
  return m ? h('a', { href: `#/campaigns/${m[1]}`, text: e.target }) : e.target;
}

const toIso = (v) => (v ? new Date(v).toISOString() : '');

export function auditView(main) {
  const inputs = {
    actor: h('input', { id: 'a-actor', value: filters.actor, placeholder: 'api-key:admin', autocomplete: 'off' }),
    action: h('input', { id: 'a-action', value: filters.action, placeholder: 'campaign.', list: 'a-actions', autocomplete: 'off' }),
    target: h('input', { id: 'a-target', value: filters.target, placeholder: 'an id, or “device”', autocomplete: 'off' }),
    from: h('input', { id: 'a-from', type: 'datetime-local', value: filters.from }),
    to: h('input', { id: 'a-to', type: 'datetime-local', value: filters.to }),
  };
  const datalist = h('datalist', { id: 'a-actions' }, ['campaign.', 'package.', 'assignment.', 'device.', 'update.', 'schedule.', 'profile.', 'group.'].map((v) => h('option', { value: v })));
  const list = h('div', { id: 'audit-list', 'aria-live': 'polite' });
  const note = h('p', { class: 'small muted' });
  let shown = SHOWN;

  const view = {
    async refresh() {
      const got = await allPages('/audit', {
        actor: filters.actor.trim(), action: filters.action.trim(), target: filters.target.trim(),
        from: toIso(filters.from), to: toIso(filters.to),
      }, { maxPages: 20 });
      const entries = got.items.slice().reverse();
      note.textContent = `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}${got.complete ? '' : ' (the oldest ones; narrow the time range to see later ones)'}, newest first.`;
      redraw(list, JSON.stringify([filters, shown, entries.length, entries[0]?.id]), () => {
        if (!entries.length) {
          replace(list, Object.values(filters).some(Boolean)
            ? emptyState('Nothing matches these filters.', 'Widen the time range or clear a filter.')
            : emptyState('The audit log is empty.', 'Every action taken through the management API (uploads, assignments, campaign actions…) is written here with the key that did it.'));
          return;
        }
        replace(list, table([
          { label: 'When', cell: (e) => time(e.at) },
          { label: 'Actor', cell: (e) => e.actor },
          { label: 'Action', cell: (e) => h('code', { text: e.action }) },
          { label: 'Target', cell: targetCell },
          {
            label: 'Details',
            cell: (e) => (e.details && Object.keys(e.details).length
              ? h('details', {}, h('summary', { text: 'Show' }), h('pre', { text: JSON.stringify(e.details, null, 2) }))
              : ''),
          },
        ], entries.slice(0, shown), { caption: 'Audit log, newest first' }),
        entries.length > shown ? h('p', {}, h('button', { type: 'button', class: 'secondary', text: `Show ${Math.min(SHOWN, entries.length - shown)} more`, on: { click: () => { shown += SHOWN; view.refresh(); } } })) : null);
      });
    },
  };

  const apply = (e) => {
    e.preventDefault();
    for (const [k, el] of Object.entries(inputs)) filters[k] = el.value;
    shown = SHOWN;
    view.refresh().catch(() => {});
  };
  const clear = () => {
    for (const [k, el] of Object.entries(inputs)) {
      el.value = '';
      filters[k] = '';
    }
    shown = SHOWN;
    view.refresh().catch(() => {});
  };
  replace(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'Audit log' })),
    h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log', on: { submit: apply } },
      field('Actor (exact)', inputs.actor), field('Action starts with', inputs.action), datalist,
      field('Target contains', inputs.target), field(`From (${TIME_ZONE})`, inputs.from), field('To', inputs.to),
      h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'primary', text: 'Apply' }), h('button', { type: 'button', class: 'secondary', text: 'Clear', on: { click: clear } }))),
    note, list);
  return view;
}
