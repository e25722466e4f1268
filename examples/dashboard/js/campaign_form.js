// Creating and editing a campaign: package, target, waves, error threshold, pace, times.

import { get, post, put, request } from './api.js';
import { emptyState, field, h, notify, replace, select, showError } from './dom.js';
import { TIME_ZONE, packageName } from './format.js';
import * as names from './names.js';

/** "1, 10%, rest" as waves; throws with a message saying what to write. */
export function parseWaves(text, successPercent, afterMinutes) {
  const tokens = text.split(/[,;\s]+/).map((t) => t.trim()).filter(Boolean);
  if (!tokens.length) return null;
  return tokens.map((t, i) => {
    let size;
    if (/^rest$/i.test(t)) size = { type: 'rest' };
    else if (/^\d+(\.\d+)?%$/.test(t)) size = { type: 'percent', value: Number(t.slice(0, -1)) };
    else if (/^\d+$/.test(t)) size = { type: 'count', value: Number(t) };
    else throw new Error(`Wave ${i + 1}: “${t}” is not a size; write a number of devices (10), a percentage (10%) or “rest”.`);
    const advance = {};
    if (i > 0 && successPercent !== '') advance.success_percent = Number(successPercent);
    if (i > 0 && afterMinutes !== '') advance.after = Math.round(Number(afterMinutes) * 60000);
    return Object.keys(advance).length ? { size, advance } : { size };
  });
}

/** The waves of a spec back as text. */
function wavesText(waves) {
  return (waves || []).map((w) => (w.size.type === 'rest' ? 'rest' : w.size.type === 'percent' ? `${w.size.value}%` : String(w.size.value))).join(', ');
}

/** A datetime-local value (browser time zone) from an ISO time, and back. */
const toLocalInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const fromLocalInput = (v) => (v ? new Date(v).toISOString() : null);

export function campaignFormView(main, id) {
  const editing = Boolean(id);
  const form = h('form', { class: 'card form', novalidate: true, id: 'campaign-form' });
  const error = h('div', { class: 'form-error', role: 'alert', id: 'campaign-form-error' });
  replace(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/campaigns', text: 'Campaigns' }), ' / ', editing ? 'Edit' : 'New campaign'),
    h('h1', { text: editing ? 'Edit campaign' : 'New campaign' }),
    h('div', { id: 'campaign-form-slot' }, h('p', { class: 'loading', text: 'Loading packages, profiles and groups…' })));
  const slot = main.querySelector('#campaign-form-slot');

  const build = async () => {
    const [packages, profiles, groups, existing] = await Promise.all([
      names.packages(), names.profiles(), names.groups(), editing ? get(`/campaigns/${id}`) : null,
    ]);
    if (!packages.size) {
      replace(slot, emptyState('There is no package to roll out yet.', 'Upload the firmware or software first; then come back to create the campaign.',
        h('a', { href: '#/packages', class: 'button', text: 'Upload a package' })));
      return;
    }
    const spec = existing?.spec ?? {};
    const target = spec.target ?? { type: 'selection' };
    const pkgOptions = [['', 'Choose a package'], ...[...packages.values()].reverse().map((p) => [p.id, `${packageName(p)} (${p.kind.toLowerCase()})`])];
    const c = {
      name: h('input', { id: 'c-name', name: 'name', required: true, maxlength: '255', value: spec.name ?? '' }),
      description: h('textarea', { id: 'c-description', rows: '2', maxlength: '4096' }),
      pkg: select(pkgOptions, spec.package_id ?? '', { id: 'c-package', required: true }),
      targetSel: h('input', { type: 'radio', name: 'target', id: 'c-target-selection', value: 'selection', checked: target.type !== 'device_list' }),
      targetList: h('input', { type: 'radio', name: 'target', id: 'c-target-list', value: 'device_list', checked: target.type === 'device_list' }),
      profile: select([['', 'Any profile'], ...[...profiles.values()].map((p) => [p.id, p.name])], target.profile ?? '', { id: 'c-profile' }),
      groups: h('fieldset', { class: 'checks' }, h('legend', { text: 'Groups (any of them)' }),
        groups.size ? [...groups.values()].map((g) => h('label', { class: 'check' },
          h('input', { type: 'checkbox', value: g.id, checked: (target.groups ?? []).includes(g.id), dataset: { group: g.name } }), ` ${g.name}`))
          : h('p', { class: 'small muted', text: 'No groups yet.' })),
      sources: h('input', { id: 'c-sources', value: (target.source_versions ?? []).join(', '), placeholder: '1.0, 1.1' }),
      deviceNames: h('textarea', { id: 'c-devices', rows: '4', placeholder: 'sensor-1\nsensor-2' }),
      dynamic: h('input', { type: 'checkbox', id: 'c-dynamic', checked: spec.dynamic ?? false }),
      waves: h('input', { id: 'c-waves', value: wavesText(spec.waves), placeholder: '10%, rest' }),
      advancePct: h('input', { id: 'c-advance', type: 'number', min: '0', max: '100', step: 'any', value: spec.waves?.[1]?.advance?.success_percent ?? '' }),
      advanceAfter: h('input', { id: 'c-advance-after', type: 'number', min: '0', step: 'any', value: spec.waves?.[1]?.advance?.after ? spec.waves[1].advance.after / 60000 : '' }),
      thrPct: h('input', { id: 'c-threshold', type: 'number', min: '0', max: '100', step: 'any', value: spec.error_threshold?.percent ?? '' }),
      thrMin: h('input', { id: 'c-threshold-min', type: 'number', min: '1', step: '1', value: spec.error_threshold?.min_finished ?? '10' }),
      thrAction: select([['pause', 'Pause the campaign'], ['fail', 'Fail the campaign']], spec.error_threshold?.action ?? 'pause', { id: 'c-threshold-action' }),
      rate: h('input', { id: 'c-rate', type: 'number', min: '1', step: '1', value: spec.pacing?.rate ? Math.round((spec.pacing.rate.count * 60000) / spec.pacing.rate.per_ms) : '' }),
      maxInProgress: h('input', { id: 'c-max-in-progress', type: 'number', min: '1', step: '1', value: spec.pacing?.max_in_progress ?? '' }),
      startAt: h('input', { id: 'c-start', type: 'datetime-local', value: toLocalInput(spec.start_at) }),
      finishAt: h('input', { id: 'c-finish', type: 'datetime-local', value: toLocalInput(spec.finish_at) }),
    };
    c.description.value = spec.description ?? '';
    const selectionBox = h('div', { class: 'grid2' }, field('Profile', c.profile), field('Only devices running', c.sources, 'Comma-separated versions; empty: any version.'), c.groups,
      h('div', { class: 'field' }, h('label', { class: 'check' }, c.dynamic, ' Take devices that join the target while it runs')));
    const listBox = h('div', {}, field('Device names, one per line', c.deviceNames, editing ? 'Leave empty to keep the list uploaded before.' : 'Unknown names are listed after creating.'));
    const syncTarget = () => {
      selectionBox.hidden = !c.targetSel.checked;
      listBox.hidden = !c.targetList.checked;
    };
    c.targetSel.addEventListener('change', syncTarget);
    c.targetList.addEventListener('change', syncTarget);
    syncTarget();

    const create = h('button', { type: 'submit', class: 'primary', id: 'c-submit', text: editing ? 'Save' : 'Create draft' });
    const createStart = editing ? null : h('button', { type: 'submit', class: 'secondary', id: 'c-submit-start', text: 'Create and start', dataset: { start: '1' } });

    replace(form,
      h('fieldset', {}, h('legend', { text: 'What' }),
        field('Name', c.name), field('Package', c.pkg), field('Description', c.description)),
      h('fieldset', {}, h('legend', { text: 'Which devices' }),
        h('div', { class: 'radios', role: 'radiogroup', 'aria-label': 'Target' },
          h('label', { class: 'check' }, c.targetSel, ' Profile and groups'),
          h('label', { class: 'check' }, c.targetList, ' An explicit device list')),
        selectionBox, listBox),
      h('fieldset', {}, h('legend', { text: 'Waves and thresholds' }),
        h('div', { class: 'grid2' },
          field('Wave sizes', c.waves, 'For example “10, 25%, rest”. Empty: one wave with every device.'),
          field('Next wave when earlier waves are updated (%)', c.advancePct, 'Empty: not by success rate.'),
          field('…or this many minutes after the previous wave', c.advanceAfter, 'Empty: an operator starts each later wave.'),
          field('Error threshold (% failed)', c.thrPct, 'Empty: no threshold.'),
          field('…once this many devices finished', c.thrMin),
          field('…then', c.thrAction))),
      h('fieldset', {}, h('legend', { text: 'Pace and time' }),
        h('div', { class: 'grid2' },
          field('Devices released per minute', c.rate, 'Empty: as fast as the server allows.'),
          field('At most in progress at once', c.maxInProgress, 'Empty: no limit.'),
          field(`Start at (${TIME_ZONE})`, c.startAt, 'Empty: when you start it.'),
          field(`Finish by (${TIME_ZONE})`, c.finishAt, 'Empty: no end time.'))),
      error,
      h('p', { class: 'actions' }, create, createStart, ' ', h('a', { href: editing ? `#/campaigns/${id}` : '#/campaigns', class: 'button secondary', text: 'Cancel' })));
    replace(slot, form);

    const bodyOf = () => {
      if (!c.name.value.trim()) throw Object.assign(new Error('Give the campaign a name.'), { focus: c.name });
      if (!c.pkg.value) throw Object.assign(new Error('Choose the package to roll out.'), { focus: c.pkg });
      let waves;
      try {
        waves = parseWaves(c.waves.value, c.advancePct.value, c.advanceAfter.value);
      } catch (e) {
        throw Object.assign(e, { focus: c.waves });
      }
      const chosenGroups = [...c.groups.querySelectorAll('input:checked')].map((i) => i.value);
      const body = {
        name: c.name.value.trim(),
        description: c.description.value.trim() || null,
        package_id: c.pkg.value,
        target: c.targetList.checked
          ? { type: 'device_list' }
          : { type: 'selection', profile: c.profile.value || null, groups: chosenGroups, source_versions: c.sources.value.split(',').map((s) => s.trim()).filter(Boolean) },
        start_at: fromLocalInput(c.startAt.value),
        finish_at: fromLocalInput(c.finishAt.value),
        dynamic: c.targetSel.checked && c.dynamic.checked,
      };
      if (waves) body.waves = waves;
      if (c.thrPct.value !== '') body.error_threshold = { percent: Number(c.thrPct.value), min_finished: Number(c.thrMin.value || 1), action: c.thrAction.value };
      // Start from the pace saved before (its ramp and catch-up stay), then apply the form.
      const pacing = { ...(existing?.spec.pacing ?? {}) };
      if (c.rate.value !== '') pacing.rate = { count: Number(c.rate.value), per_ms: 60000 };
      else delete pacing.rate;
      if (c.maxInProgress.value !== '') pacing.max_in_progress = Number(c.maxInProgress.value);
      else delete pacing.max_in_progress;
      if (!pacing.rate) delete pacing.ramp;
      if (Object.keys(pacing).length) body.pacing = pacing;
      if (existing) {
        body.policy = existing.spec.policy;
        body.windows = existing.spec.windows;
      }
      return body;
    };

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const start = e.submitter?.dataset.start === '1';
      error.textContent = '';
      let body;
      try {
        body = bodyOf();
      } catch (err) {
        error.textContent = err.message;
        err.focus?.focus();
        return;
      }
      for (const b of form.querySelectorAll('button')) b.disabled = true;
      try {
        const saved = editing ? await put(`/campaigns/${id}`, body) : await post('/campaigns', body);
        const list = c.deviceNames.value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
        if (body.target.type === 'device_list' && list.length) {
          const csv = `DeviceName\n${list.map((n) => (/[",\n]/.test(n) ? `"${n.replace(/"/g, '""')}"` : n)).join('\n')}\n`;
          const report = await request('PUT', `/campaigns/${saved.id}/devices`, { raw: csv, contentType: 'text/csv' });
          const skipped = report.skipped ?? [];
          notify(`Device list: ${report.accepted} taken${skipped.length ? `, ${skipped.length} skipped (${skipped.slice(0, 5).map((s) => `line ${s.line} ${s.name}: ${s.reason}`).join('; ')})` : ''}.`, skipped.length ? 'error' : 'info');
        }
        let started = false;
        if (start) {
          try {
            await post(`/campaigns/${saved.id}/start`);
            started = true;
          } catch (err) {
            showError(err, `“${saved.name}” was created as a draft but could not start`);
          }
        }
        notify(editing ? `Saved “${saved.name}”.` : started ? `Created and started “${saved.name}”.` : `Created “${saved.name}” as a draft: start it when ready.`, 'info');
        location.hash = `#/campaigns/${saved.id}`;
      } catch (err) {
        error.textContent = `${err.message}${err.code ? ` (${err.code})` : ''}`;
        showError(err, editing ? 'Saving the campaign' : 'Creating the campaign');
      } finally {
        for (const b of form.querySelectorAll('button')) b.disabled = false;
      }
    });
    c.name.focus();
  };
  build().catch((e) => {
    replace(slot, h('p', { class: 'form-error', role: 'alert', text: `Could not load the form: ${e.message}` }));
  });
  return {};
}
