// The dashboard's only way to the platform: the registry's REST API under /dashboard/v1
// (the same routes as /v1, authenticated by the session cookie), and signing in and out.

export interface Session {
  name: string;
  app: string | null;
  readOnly: boolean;
  csrf: string;
}

/** An answer that was not a success, in the API's own words. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

let csrf = '';

/** The session whose CSRF token every change sends. */
export function rememberSession(session: Session | null): void {
  csrf = session?.csrf ?? '';
}

async function call<T>(method: string, url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-berth-csrf'] = csrf;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network_error', 'The registry did not answer: check that it runs, then try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'http_error', `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } }).error;
    if (res.status === 401 && url !== '/dashboard/session') onSignedOut?.();
    throw new ApiError(res.status, e?.code ?? 'http_error', e?.message ?? `HTTP ${res.status}`);
  }
  return parsed as T;
}

let onSignedOut: (() => void) | undefined;
/** What to do when an answer says the session is gone (expired, signed out elsewhere, token revoked). */
export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn;
}

export function signedOut(): void {
  onSignedOut?.();
}

export const api = {
  get: <T>(path: string) => call<T>('GET', `/dashboard/v1${path}`),
  post: <T>(path: string, body: unknown = {}) => call<T>('POST', `/dashboard/v1${path}`, body),
  patch: <T>(path: string, body: unknown) => call<T>('PATCH', `/dashboard/v1${path}`, body),
  del: <T>(path: string) => call<T>('DELETE', `/dashboard/v1${path}`),
  session: () => call<Session>('GET', '/dashboard/session'),
  signIn: (token: string) => call<Session>('POST', '/dashboard/session', { token }),
  signOut: () => call<void>('DELETE', '/dashboard/session'),
};

export const enc = encodeURIComponent;
