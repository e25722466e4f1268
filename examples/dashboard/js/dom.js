// Small DOM helpers: elements built without HTML strings (nothing from the API is ever parsed
// as markup), messages, empty states and tables.

/**
 * Makes an element. `attrs`: `class`, `text`, `on` ({event: handler}), `dataset`, boolean
 * properties (`hidden`, `disabled`, `checked`, `selected`, `required`), `value`, anything else
 * as an attribute. Children: nodes, strings, numbers, arrays; null and false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (['hidden', 'disabled', 'checked', 'selected', 'required', 'multiple', 'open'].includes(k)) el[k] = Boolean(v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const messages = () => document.getElementById('messages');

/**
 * Shows a message at the top of the page. Errors are announced at once (role=alert) and stay
 * until dismissed; information fades after a while. Equal messages are not repeated.
 */
export function notify(text, kind = 'error') {
  const box = messages();
  if (!box) return;
  for (const old of box.children) {
    if (old.dataset.text === text) return;
  }
  const item = h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status', dataset: { text } },
    h('span', { text }),
    h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss message', text: 'Dismiss', on: { click: () => item.remove() } }));
  box.append(item);
  if (kind !== 'error') setTimeout(() => item.remove(), 6000);
}

/** Shows an API error (or any error) as a message. */
export function showError(e, what) {
  const text = e?.code && e.code !== 'network' && e.code !== 'aborted'
    ? `${what ? `${what}: ` : ''}${e.message} (${e.code})`
    : `${what ? `${what}: ` : ''}${e?.message ?? e}`;
  notify(text, 'error');
}

/** Removes the messages about failed polls once a poll works again. */
export function clearMessages(filter = () => true) {
  for (const el of [...(messages()?.children ?? [])]) if (filter(el)) el.remove();
}

/** A box that says there is nothing here and what to do next. */
export function emptyState(title, text, ...actions) {
  return h('div', { class: 'empty', role: 'note' },
    h('p', { class: 'empty-title', text: title }),
    text ? h('p', { text }) : null,
    actions.length ? h('p', { class: 'actions' }, actions) : null);
}

/**
 * A table: `columns` are `{label, cell(row) -> node|string, class?}`; `caption` is read to
 * screen readers. It scrolls sideways on a narrow window.
 */
export function table(columns, rows, { caption, rowAttrs } = {}) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption || 'Table' },
    h('table', {},
      caption ? h('caption', { class: 'visually-hidden', text: caption }) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class, text: c.label })))),
      h('tbody', {}, rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {},
        columns.map((c) => h('td', { class: c.class, 'data-label': c.label }, c.cell(r))))))));
}

/** A labelled form field wrapping `control`. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint`, text: hint }) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), control, hintEl);
}

/** A select with `options` as `[value, label]` pairs. */
export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map(([v, l]) => h('option', { value: v, selected: v === value, text: l })));
}

/** A button that runs `action` while showing it is busy, and reports its error. */
export function actionButton(label, action, attrs = {}) {
  const button = h('button', { type: 'button', ...attrs, text: label });
  button.addEventListener('click', async () => {
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      await action();
    } catch (e) {
      showError(e, label);
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  });
  return button;
}

const focusKey = (el) => el.getAttribute('aria-label') || el.id || el.dataset.card || el.textContent;

/**
 * Redraws `container` with `draw()` unless `key` (a summary of what is drawn) is the same as
 * last time, and gives focus back to the equivalent control, so live updates do not throw a
 * keyboard user out of a table.
 */
export function redraw(container, key, draw) {
  if (key !== undefined && container.dataset.drawn === key) return;
  const active = document.activeElement;
  const had = active && active !== container && container.contains(active) ? focusKey(active) : null;
  draw();
  if (key !== undefined) container.dataset.drawn = key;
  if (had) {
    const match = [...container.querySelectorAll('button, a, input, select, [tabindex]')].find((e) => focusKey(e) === had);
    match?.focus({ preventScroll: true });
  }
}
