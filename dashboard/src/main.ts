// The berth dashboard: a small preact + htm app bundled by esbuild, served by the registry
// at /dashboard, talking only to the REST API (/dashboard/v1) and its event stream.
import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, rememberSession, signedOut, whenSignedOut, type Session } from './api.js';
import { AppPage } from './app-page.js';
import { AppsPage } from './apps-page.js';
import { publishEvent } from './live.js';
import { MachinesPage } from './machines-page.js';
import { ScalerPage } from './scaler-page.js';
import { followEvents } from './streams.js';
import { ErrorNote } from './view-parts.js';
import './dashboard.css';

/** The page named by the URL's fragment: #/apps, #/apps/NAME, #/machines, #/scaler. */
function useRoute(): string[] {
  const read = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await api.signIn(token));
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'error', String(err)));
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="sign-in" id="main">
    <h1>berth</h1>
    <form onSubmit=${submit}>
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required autofocus value=${token} onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)} />
      <p class="hint" id="token-hint">A berth token: the admin token <code>berth up</code> wrote to the CLI's credentials, or one made with <code>berth tokens:create</code> (read-only ones see but cannot change).</p>
      <button type="submit" disabled=${busy}>Sign in</button>
      <${ErrorNote} error=${error} />
    </form>
  </main>`;
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const [live, setLive] = useState(false);
  useEffect(() => followEvents(publishEvent, setLive, signedOut), []);
  const [first = 'apps', second] = route;
  let page;
  if (first === 'apps' && second !== undefined) page = html`<${AppPage} name=${second} session=${session} />`;
  else if (first === 'machines') page = html`<${MachinesPage} />`;
  else if (first === 'scaler') page = html`<${ScalerPage} />`;
  else page = html`<${AppsPage} />`;
  const link = (to: string, label: string) => html`<a href=${`#/${to}`} aria-current=${first === to ? 'page' : undefined}>${label}</a>`;
  return html`
    <a class="skip" href="#main" onClick=${(e: Event) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand">berth</span>
      <nav aria-label="Pages">${link('apps', 'Apps')} ${link('machines', 'Machines')} ${link('scaler', 'Scaler')}</nav>
      <span class="who">
        <span class=${live ? 'live on' : 'live'} role="status" data-live=${live}>${live ? 'live' : 'reconnecting…'}</span>
        <span data-field="who">${session.name}${session.app === null ? '' : ` (${session.app})`}${session.readOnly ? ' · read-only' : ''}</span>
        <button type="button" onClick=${onSignOut}>Sign out</button>
      </span>
    </header>
    <main id="main" tabindex="-1">${page}</main>
  `;
}

function Dashboard() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  useEffect(() => {
    whenSignedOut(() => setSession(null));
    api.session().then(setSession, () => setSession(null));
  }, []);
  rememberSession(session ?? null);
  if (session === undefined) return html`<p class="muted">Loading…</p>`;
  if (session === null) return html`<${SignIn} onSignedIn=${setSession} />`;
  const signOut = () => api.signOut().finally(() => setSession(null));
  return html`<${Shell} session=${session} onSignOut=${signOut} />`;
}

render(html`<${Dashboard} />`, document.getElementById('root')!);
