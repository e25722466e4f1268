// Names of things the API refers to by id (packages, profiles, groups, devices), read once
// and kept for a short while so tables can show names instead of ids.

import { allPages, getOrNull, mapLimited } from './api.js';

const TTL_MS = 10000;
const lists = new Map(); // path -> {at, promise}

function cachedList(path) {
  const hit = lists.get(path);
  if (hit && Date.now() - hit.at < TTL_MS) return hit.promise;
  const promise = allPages(path).then(({ items }) => new Map(items.map((i) => [i.id, i])));
  promise.catch(() => lists.delete(path));
  lists.set(path, { at: Date.now(), promise });
  return promise;
}

/** Every package by id. */
export const packages = () => cachedList('/packages');
/** Every device profile by id. */
export const profiles = () => cachedList('/profiles');
/** Every group by id. */
export const groups = () => cachedList('/groups');

/** Forgets the lists (after a change made from the dashboard). */
export function invalidate(path) {
  if (path) lists.delete(path);
  else lists.clear();
}

const devices = new Map(); // id -> device view (names do not change)

/** The devices of `ids` by id, read from the API where not known yet. */
export async function devicesById(ids) {
  const missing = [...new Set(ids)].filter((id) => !devices.has(id));
  await mapLimited(missing, 6, async (id) => {
    const d = await getOrNull(`/devices/${id}`);
    if (d) devices.set(id, d);
  });
  return devices;
}

/** A device's name, or its id while unknown. */
export function deviceName(id) {
  return devices.get(id)?.name ?? id;
}

/** Remembers devices read in a list. */
export function rememberDevices(list) {
  for (const d of list) devices.set(d.id, d);
}
