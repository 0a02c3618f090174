// The console's one way to the API: same origin, the user's token as a Bearer token, the stated
// purpose as X-Purpose, and the API's one error shape turned into an ApiError a page can show.
// The token lives in sessionStorage only: gone when the tab closes, never in a cookie (so no
// request can carry it without this code adding it), never in localStorage.

const TOKEN_KEY = 'portcullis.token';
const PURPOSE_KEY = 'portcullis.purpose';

export function signedIn() {
  return Boolean(sessionStorage.getItem(TOKEN_KEY));
}

export function signIn(token, purpose) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  sessionStorage.setItem(PURPOSE_KEY, purpose.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(PURPOSE_KEY);
}

export function purpose() {
  return sessionStorage.getItem(PURPOSE_KEY) || '';
}

export function setPurpose(text) {
  sessionStorage.setItem(PURPOSE_KEY, text.trim());
}

export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }

  // "403 self_approval: you requested this export" (+ the request id the logs and audit carry).
  describe() {
    let text = `${this.status} ${this.code}`;
    if (this.message) text += `: ${this.message}`;
    if (this.requestId) text += ` (request ${this.requestId})`;
    return text;
  }
}

// GET/POST path (same origin) -> parsed JSON body. Throws ApiError for any non-2xx status, for a
// network failure (status 0) and for a body that is not the JSON it should be.
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const stated = purpose();
  // HTTP header values must be Latin-1; the API records the purpose verbatim, so refuse rather
  // than mangle it.
  if (stated) {
    if (!/^[\x20-\x7e]*$/.test(stated)) {
      throw new ApiError(0, 'invalid_purpose', 'the purpose may only use printable ASCII');
    }
    headers['X-Purpose'] = stated;
  }
  let init = { method, headers, credentials: 'omit', cache: 'no-store', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init = { ...init, body: JSON.stringify(body) };
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', `the server could not be reached (${e.message})`, '');
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const error = json && typeof json.error === 'object' && json.error ? json.error : {};
    throw new ApiError(
      response.status,
      typeof error.code === 'string' ? error.code : 'http_error',
      typeof error.message === 'string' ? error.message : response.statusText,
      typeof error.request_id === 'string' ? error.request_id : '',
    );
  }
  if (json === null) {
    throw new ApiError(response.status, 'bad_response', `expected JSON from ${path}`, '');
  }
  return json;
}
