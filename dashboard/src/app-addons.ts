import { html } from 'htm/preact';
import type { Addon, AppAddon } from '../../sdk/types.js';
import { api } from './api.js';
import { useLive } from './live.js';
import { ago, ErrorNote, Status } from './view-parts.js';

// An add-on's state, data size and connections change without an event on the registry's
// stream (its hoster reports the server every 2 s and measures it every BERTH_ADDON_USAGE_MS,
// 15 s by default): read again every few seconds.
const ADDONS_EVERY_MS = 5000;

/** Decimal units, as berth addons:info prints them. */
function size(n: number): string {
  if (n < 1000) return `${n} B`;
  return n < 1_000_000 ? `${(n / 1000).toFixed(1)} kB` : `${(n / 1_000_000).toFixed(1)} MB`;
}

/**
 * The add-ons attached to the app (berth info's "add-ons"), with where each runs, its data size
 * and its connections (berth addons:info). A token scoped to the app reaches no add-on route (an
 * add-on may serve several apps): it sees the name, kind, variable and state only.
 */
export function Addons({ app, attached, scoped }: { app: string; attached: AppAddon[]; scoped: boolean }) {
  const details = useLive(() => (scoped || attached.length === 0 ? Promise.resolve([] as Addon[]) : api.get<{ addons: Addon[] }>('/addons').then((r) => r.addons)), [app, scoped, attached.length], { when: () => false, everyMs: ADDONS_EVERY_MS });
  if (attached.length === 0) return html`<p class="muted">No add-on: <code>berth addons:create ${app} postgres</code> gives it a database.</p>`;
  const byName = new Map((details.data ?? []).map((a) => [a.name, a]));
  return html`
    ${details.error === undefined ? null : html`<${ErrorNote} error=${details.error} />`}
    <div class="scroll"><table class="addons">
      <caption class="visually-hidden">Add-ons attached to ${app}</caption>
      <thead><tr><th scope="col">Add-on</th><th scope="col">Kind</th><th scope="col">Variable</th><th scope="col">State</th><th scope="col">Machine</th><th scope="col">Data size</th><th scope="col">Connections</th></tr></thead>
      <tbody>${attached.map((a) => {
        const d = byName.get(a.name);
        const usage = d?.usage ?? null;
        const unknown = html`<span class="muted">—</span>`;
        return html`<tr data-addon=${a.name}>
          <th scope="row"><code>${a.name}</code></th>
          <td>${a.kind}</td>
          <td><code>${a.variable}</code></td>
          <td><${Status} value=${d?.state ?? a.state} />${d !== undefined && d.detail !== '' ? html`<div class="small">${d.detail}</div>` : null}</td>
          <td data-field="machine">${d === undefined ? unknown : `${d.machine} (${d.host}:${d.port})`}</td>
          <td data-field="size">${usage === null ? unknown : html`${size(usage.bytes)} <span class="small">${ago(usage.measuredAt)}</span>`}</td>
          <td data-field="connections">${usage === null ? unknown : usage.connections}</td>
        </tr>`;
      })}</tbody>
    </table></div>`;
}
