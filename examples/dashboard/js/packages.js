// Packages: upload with progress, list with search by title and kind, delete.

import { allPages, del, upload } from './api.js';
import { actionButton, emptyState, field, h, notify, redraw, replace, select, showError, table } from './dom.js';
import { confirmAction } from './dialog.js';
import { formatBytes, time } from './format.js';
import * as names from './names.js';

const filters = { title: '', kind: '' };

/** Title and version guessed from a file name such as `sensor-fw-1.2.0.bin`. */
export function guessFromFileName(fileName) {
  const base = fileName.replace(/\.[A-Za-z0-9]{1,5}$/, '');
  const m = base.match(/^(.*?)[-_ ]v?(\d+(?:\.\d+)*(?:[-+][0-9A-Za-z.]+)?)$/);
  return m ? { title: m[1], version: m[2] } : { title: base, version: '' };
}

function uploadForm(onDone) {
  const file = h('input', { type: 'file', id: 'p-file', required: true });
  const kind = select([['FIRMWARE', 'Firmware'], ['SOFTWARE', 'Software']], 'FIRMWARE', { id: 'p-kind' });
  const title = h('input', { id: 'p-title', required: true, autocomplete: 'off' });
  const version = h('input', { id: 'p-version', required: true, autocomplete: 'off' });
  const description = h('input', { id: 'p-description', autocomplete: 'off' });
  const tag = h('input', { id: 'p-tag', autocomplete: 'off' });
  const bar = h('progress', { id: 'p-progress', max: '100', value: '0', hidden: true, 'aria-label': 'Upload progress' });
  const status = h('span', { id: 'p-status', class: 'small', role: 'status' });
  const error = h('p', { class: 'form-error', role: 'alert', id: 'p-error' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'p-submit', text: 'Upload' });
  const cancel = h('button', { type: 'button', class: 'secondary', text: 'Cancel upload', hidden: true });
  let running = null;

  file.addEventListener('change', () => {
    const f = file.files[0];
    if (!f) return;
    const guess = guessFromFileName(f.name);
    if (!title.value) title.value = guess.title;
    if (!version.value) version.value = guess.version;
  });
  cancel.addEventListener('click', () => running?.abort());

  const form = h('form', { class: 'card form', id: 'upload-form', novalidate: true, 'aria-labelledby': 'upload-h' },
    h('h2', { id: 'upload-h', text: 'Upload a package' }),
    h('div', { class: 'grid3' },
      field('File', file), field('Kind', kind), field('Title', title, 'Filled in from the file name when empty.'),
      field('Version', version), field('Description', description), field('Tag', tag, 'Sent to devices as fw_tag / sw_tag.')),
    h('p', { class: 'small muted', text: 'The server computes the SHA-256 checksum while the file streams in; devices verify it.' }),
    error,
    h('div', { class: 'actions' }, submit, cancel, bar, status));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const f = file.files[0];
    const missing = !f ? [file, 'Choose a file.'] : !title.value.trim() ? [title, 'Give a title.'] : !version.value.trim() ? [version, 'Give a version.'] : null;
    if (missing) {
      error.textContent = missing[1];
      missing[0].focus();
      return;
    }
    submit.disabled = true;
    cancel.hidden = false;
    bar.hidden = false;
    bar.value = 0;
    const params = {
      kind: kind.value, title: title.value.trim(), version: version.value.trim(), file_name: f.name,
      description: description.value.trim(), tag: tag.value.trim(), content_type: f.type || undefined,
    };
    running = upload('/packages', params, f, (sent, total) => {
      bar.value = Math.round((100 * sent) / total);
      status.textContent = `${bar.value} % · ${formatBytes(sent)} of ${formatBytes(total)}`;
    });
    try {
      const p = await running.promise;
      bar.value = 100;
      status.textContent = `Uploaded ${p.title} ${p.version} (${formatBytes(p.size)}).`;
      notify(`Uploaded ${p.title} ${p.version}. Create a campaign to roll it out.`, 'info');
      form.reset();
      names.invalidate('/packages');
      onDone();
    } catch (err) {
      status.textContent = '';
      bar.value = 0;
      error.textContent = `${err.message}${err.code && err.code !== 'aborted' ? ` (${err.code})` : ''}`;
      if (err.code !== 'aborted') showError(err, 'Upload');
    } finally {
      running = null;
      submit.disabled = false;
      cancel.hidden = true;
      bar.hidden = bar.value !== 100;
    }
  });
  return form;
}

async function deletePackage(p, refresh) {
  if (!(await confirmAction(`Delete ${p.title} ${p.version}?`, 'The content and its record are deleted. Packages still assigned or used by a campaign cannot be deleted.', 'Delete', { danger: true }))) return;
  try {
    await del(`/packages/${p.id}`);
  } catch (e) {
    if (e.code === 'package_in_use' && Array.isArray(e.details?.uses)) {
      const uses = e.details.uses.slice(0, 5).map((u) => `${u.by} ${u.id}`).join('; ');
      throw Object.assign(new Error(`${e.message} Used by: ${uses}${e.details.uses.length > 5 ? '…' : ''}. Remove those uses first.`), { code: e.code });
    }
    throw e;
  }
  notify(`Deleted ${p.title} ${p.version}.`, 'info');
  names.invalidate('/packages');
  await refresh();
}

export function packagesView(main) {
  const title = h('input', { type: 'search', id: 'package-search', placeholder: 'Part of a title', value: filters.title, autocomplete: 'off' });
  const kind = select([['', 'Any kind'], ['FIRMWARE', 'Firmware'], ['SOFTWARE', 'Software']], filters.kind, { id: 'package-kind' });
  const list = h('div', { id: 'package-list', 'aria-live': 'polite' });
  const note = h('p', { class: 'small muted' });
  const view = {
    async refresh() {
      const got = await allPages('/packages', { title: filters.title.trim(), kind: filters.kind }, { maxPages: 5 });
      const items = got.items.slice().reverse();
      note.textContent = `${items.length} package${items.length === 1 ? '' : 's'}${got.complete ? '' : ' (the first pages)'}, newest first`;
      redraw(list, JSON.stringify([filters, items]), () => {
        if (!items.length) {
          replace(list, filters.title || filters.kind
            ? emptyState('No package matches.', 'Change the title text or the kind.')
            : emptyState('No packages yet.', 'Choose a file in the form above and upload it; then create a campaign to roll it out.'));
          return;
        }
        replace(list, table([
          { label: 'Title', cell: (p) => p.title },
          { label: 'Version', cell: (p) => p.version },
          { label: 'Kind', cell: (p) => p.kind.toLowerCase() },
          { label: 'Size', cell: (p) => (p.url ? 'external' : formatBytes(p.size)) },
          { label: 'Checksum', cell: (p) => (p.checksum ? h('code', { title: p.checksum, text: `${p.checksum_algorithm} ${p.checksum.slice(0, 12)}…` }) : '—') },
          { label: 'Created', cell: (p) => [time(p.created_at), h('div', { class: 'small muted', text: p.created_by })] },
          { label: 'Actions', cell: (p) => actionButton('Delete', () => deletePackage(p, view.refresh), { class: 'danger small-button', 'aria-label': `Delete ${p.title} ${p.version}` }) },
        ], items, { caption: 'Packages', rowAttrs: (p) => ({ dataset: { package: `${p.title} ${p.version}` } }) }));
      });
    },
  };
  const again = () => {
    list.dataset.drawn = '';
    view.refresh().catch((e) => showError(e, 'Packages'));
  };
  let typing = 0;
  title.addEventListener('input', () => {
    filters.title = title.value;
    clearTimeout(typing);
    typing = setTimeout(again, 250);
  });
  kind.addEventListener('change', () => {
    filters.kind = kind.value;
    again();
  });
  replace(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'Packages' })),
    uploadForm(again),
    h('section', { 'aria-labelledby': 'packages-h' },
      h('h2', { id: 'packages-h', text: 'Stored packages' }),
      h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter packages' }, field('Search by title', title), field('Kind', kind)),
      note, list));
  return view;
}
