// Small pieces every page uses: the API's errors as it words them, times, status badges.
import { html } from 'htm/preact';
import type { ApiError } from './api.js';
import type { AppDetails } from '../../sdk/types.js';

export function ErrorNote({ error }: { error: ApiError | undefined }) {
  if (error === undefined) return null;
  return html`<p class="error" role="alert"><span class="code">${error.code}</span> ${error.message}</p>`;
}

export function Loading() {
  return html`<p class="muted" aria-busy="true">Loading…</p>`;
}

export function Status({ value }: { value: string }) {
  return html`<span class=${`badge badge-${value}`} data-status=${value}>${value}</span>`;
}

export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || ms === 0) return '';
  const d = new Date(ms);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** A time of today as its clock time alone (a run's start and end), any other as when() gives it; the whole date in its title. */
export function Clock({ ms }: { ms: number }) {
  const d = new Date(ms);
  const today = d.toDateString() === new Date().toDateString();
  return html`<time datetime=${d.toISOString()} title=${when(ms)}>${today ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : when(ms)}</time>`;
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** The releases that serve now (those with running instances), and the current one while it rolls out. */
export function serving(app: AppDetails): string {
  const live = Object.keys(app.runningByRelease).map(Number).sort((a, b) => b - a).map((v) => `v${v}`);
  const current = app.current;
  const rolling = current !== null && current.status !== 'active' && !live.includes(`v${current.version}`) ? ` (v${current.version} ${current.status})` : '';
  return `${live.length === 0 ? '—' : live.join(', ')}${rolling}`;
}
