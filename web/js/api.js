// The people's API of the gateway (docs/api.md, docs/reports.md) with the token of this tab.  The
// token lives in sessionStorage (this tab only, gone when it closes) and goes out as
// `Authorization: Bearer`; nothing else is stored.

const KEY = 'park.token';

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

/** Percent-encodes one path segment (a plate 浙A12345, a bill id LOT-A~3~b). */
export const seg = (s) => encodeURIComponent(s);

/** A query string of the set values of params ('' when none). */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

async function send(method, path, body, accept) {
  const headers = { Authorization: 'Bearer ' + (token() || ''), Accept: accept };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method, headers, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', e.message);
  }
  return r;
}

/** method path [body]: the answer's JSON; an ApiError for any status but 2xx. */
export async function api(method, path, body) {
  const r = await send(method, path, body, 'application/json');
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!r.ok) {
    throw new ApiError(r.status, data?.error ?? 'http_' + r.status, data?.message ?? text);
  }
  return data;
}

/** GET path as text (CSV). */
export async function apiText(path, accept) {
  const r = await send('GET', path, undefined, accept);
  const text = await r.text();
  if (!r.ok) throw new ApiError(r.status, 'http_' + r.status, text);
  return text;
}
