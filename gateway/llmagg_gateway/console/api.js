// The admin routes, called with the admin key as a bearer token: never a cookie, so no other site's page
// can make a request that carries it. The key lives in this tab's sessionStorage only.
const KEY = "llmagg.adminKey";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "";
  }
}

export function signedIn() {
  return Boolean(sessionStorage.getItem(KEY));
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

async function call(method, path, body, key = sessionStorage.getItem(KEY)) {
  const headers = { Authorization: `Bearer ${key}`, Accept: "application/json" };
  const init = { method, headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json"; // admin actions must be JSON (the gateway answers 415)
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

// Checks the key on an admin route before keeping it: a client key gets the gateway's 403.
export async function signIn(key) {
  await call("GET", "/v1/admin/routing", undefined, key);
  sessionStorage.setItem(KEY, key);
}

export const get = (path) => call("GET", path);
export const patch = (path, body) => call("PATCH", path, body);
export const post = (path, body) => call("POST", path, body);

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== "") search.append(name, String(item));
    }
  }
  return search.toString();
}

// This deployment's settings (the gateway renders them; no key needed, nothing secret): where traces are.
let settingsOnce = null;
export function settings() {
  settingsOnce ??= fetch("/ui/settings.json", { cache: "no-store", credentials: "omit" }).then((r) => r.json())
    .catch((error) => { settingsOnce = null; throw error; });
  return settingsOnce;
}

export const usage = (params) => get(`/v1/usage?${query(params)}`);
