// The management API client: bearer key from sessionStorage, JSON in and out, every error
// turned into an ApiError carrying the API's {code, message}.

const meta = (name, fallback) =>
  document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') || fallback;

/** The management API's prefix on this origin. */
export const PREFIX = meta('ota-api-prefix', '/api/ota/v1').replace(/\/+$/, '');
/** How often the open view polls, in milliseconds. */
export const POLL_MS = Math.max(500, Number(meta('ota-poll-ms', '3000')) || 3000);

const KEY = 'ota-dashboard.api-key';

export const session = {
  key: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An error answer (or no answer) of the API. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let unauthorized = () => {};
/** Called with the error when the API answers 401 (the key was revoked or is wrong). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

function query(params) {
  if (!params) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The full URL of an API path. */
export function url(path, params) {
  return PREFIX + path + query(params);
}

function errorOf(status, statusText, text, headers) {
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  let message = body?.message || `${status} ${statusText || 'error'}`;
  const retry = headers?.get?.('retry-after');
  if (status === 503 && retry) message += ` (retry in ${retry} s)`;
  return new ApiError(status, body?.code || `http_${status}`, message, body?.details);
}

/**
 * Calls the API. `body` is sent as JSON unless `raw` (a string or Blob) is given with its
 * `contentType`. Answers the parsed JSON (null for 204).
 */
export async function request(method, path, { params, body, raw, contentType, key } = {}) {
  const headers = { Accept: 'application/json' };
  const token = key ?? session.key();
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (raw !== undefined) {
    payload = raw;
    headers['Content-Type'] = contentType || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(url(path, params), { method, headers, body: payload, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network', `Cannot reach the server (${e.message}). Check that it is running; the dashboard retries on its own.`);
  }
  const text = await response.text();
  if (!response.ok) {
    const error = errorOf(response.status, response.statusText, text, response.headers);
    if (response.status === 401 && key === undefined) unauthorized(error);
    throw error;
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(response.status, 'invalid_answer', `The server answered ${path} with something that is not JSON`);
  }
}

export const get = (path, params) => request('GET', path, { params });
export const post = (path, body = {}) => request('POST', path, { body });
export const put = (path, body) => request('PUT', path, { body });
export const del = (path) => request('DELETE', path);

/** GET, answering null instead of failing on 404. */
export async function getOrNull(path, params) {
  try {
    return await get(path, params);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

/**
 * Reads a list page by page (keyset cursors) until its end or `maxPages`; answers
 * `{items, complete}`.
 */
export async function allPages(path, params = {}, { limit = 1000, maxPages = 10 } = {}) {
  const items = [];
  let cursor;
  for (let page = 0; page < maxPages; page++) {
    const got = await get(path, { ...params, limit, cursor });
    items.push(...got.items);
    if (!got.next_cursor) return { items, complete: true };
    cursor = got.next_cursor;
  }
  return { items, complete: false };
}

/**
 * Uploads `file` as the raw body of a POST, reporting progress (`onProgress(sent, total)`).
 * Answers `{promise, abort}`; the promise resolves to the parsed answer.
 */
export function upload(path, params, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', url(path, params));
    const token = session.key();
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
        } catch {
          reject(new ApiError(xhr.status, 'invalid_answer', 'The server answered the upload with something that is not JSON'));
        }
        return;
      }
      const headers = { get: (h) => xhr.getResponseHeader(h) };
      const error = errorOf(xhr.status, xhr.statusText, xhr.responseText, headers);
      if (xhr.status === 401) unauthorized(error);
      reject(error);
    });
    xhr.addEventListener('error', () =>
      reject(new ApiError(0, 'network', 'The upload was cut off: the server could not be reached or closed the connection.')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'Upload canceled.')));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

/** Runs `task(item)` for every item with at most `width` at once; answers the results. */
export async function mapLimited(items, width, task) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}
