// Modal dialogs on the native <dialog> element: focus moves in and back, Escape closes.

import { h } from './dom.js';

/**
 * Opens a modal dialog with `title`, `body` (nodes) and buttons. Answers `{dialog, close}`;
 * `onClose` runs when it closes, however that happens.
 */
export function openDialog(title, body, { actions = [], onClose, wide = false } = {}) {
  const opener = document.activeElement;
  const titleId = `dlg-${Math.random().toString(36).slice(2, 9)}`;
  const close = () => dialog.open && dialog.close();
  const dialog = h('dialog', { class: wide ? 'dialog wide' : 'dialog', 'aria-labelledby': titleId },
    h('div', { class: 'dialog-head' },
      h('h2', { id: titleId, text: title }),
      h('button', { type: 'button', class: 'link', 'aria-label': 'Close', text: 'Close', on: { click: close } })),
    h('div', { class: 'dialog-body' }, body),
    actions.length ? h('div', { class: 'dialog-actions' }, actions) : null);
  dialog.addEventListener('close', () => {
    dialog.remove();
    onClose?.();
    if (opener && document.contains(opener)) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

/** Asks to confirm an action; answers true when confirmed. */
export function confirmAction(title, text, confirmLabel, { danger = false } = {}) {
  return new Promise((resolve) => {
    let answer = false;
    const ok = h('button', { type: 'button', class: danger ? 'danger' : 'primary', text: confirmLabel, dataset: { confirm: '' } });
    const cancel = h('button', { type: 'button', class: 'secondary', text: 'Keep as is' });
    const { close } = openDialog(title, h('p', { text }), {
      actions: [cancel, ok],
      onClose: () => resolve(answer),
    });
    ok.addEventListener('click', () => {
      answer = true;
      close();
    });
    cancel.addEventListener('click', close);
    cancel.focus();
  });
}
