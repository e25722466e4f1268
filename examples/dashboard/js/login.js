// Login: the operator pastes an API key; it is checked against the API and kept in this tab's
// sessionStorage only (gone when the tab closes).

import { request, session } from './api.js';
import { field, h, replace } from './dom.js';

export function loginView(main, done) {
  const input = h('input', { type: 'password', name: 'api-key', autocomplete: 'off', spellcheck: 'false', required: true, id: 'api-key' });
  const error = h('p', { class: 'form-error', role: 'alert', id: 'login-error' });
  const submit = h('button', { type: 'submit', class: 'primary', text: 'Log in' });
  const form = h('form', { class: 'card login', 'aria-labelledby': 'login-title', novalidate: true },
    h('h1', { id: 'login-title', text: 'Log in' }),
    h('p', { text: 'Paste an API key of the management API. The server prints an admin key on its first start; an admin creates others.' }),
    field('API key', input, 'Kept in this browser tab only, until you log out or close the tab.'),
    error,
    h('p', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = 'Enter an API key.';
      input.focus();
      return;
    }
    submit.disabled = true;
    error.textContent = '';
    try {
      await request('GET', '/campaigns', { params: { limit: 1 }, key });
      session.set(key);
      done();
    } catch (err) {
      error.textContent = err.status === 401
        ? `That key is not accepted: ${err.message}`
        : `Could not check the key: ${err.message}`;
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, form);
  input.focus();
  return {};
}
