import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import type { AppDetails, Instance } from '../../sdk/types.js';
import { Status } from './view-parts.js';

const WEB = 'web';

/** One process type as the page shows it: its command, instances wanted and running. */
interface ProcessRow {
  type: string;
  command: string | null;
  wanted: number;
  running: number;
  /** Its scaling policy, when the scaler decides its count. */
  policy: AppDetails['autoscale'];
}

/**
 * The app's process types: web and the current release's others (its Procfile's lines or
 * --process), each with its count as the app's formation gives it (a type it leaves out runs 1,
 * as berth info says) and its running instances of the current release.
 */
function processRows(app: AppDetails, instances: Instance[]): ProcessRow[] {
  const others = Object.entries(app.current?.processes ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const running = (type: string) => instances.filter((i) => (i.process ?? WEB) === type && i.state === 'running' && i.release === app.release).length;
  return [
    { type: WEB, command: app.current?.command ?? null, wanted: app.instances, running: running(WEB), policy: app.autoscale },
    ...others.map(([type, command]) => ({ type, command, wanted: app.formation?.[type] ?? 1, running: running(type), policy: app.autoscaleByType?.[type] ?? null })),
  ];
}

/** The process types with a scale control each (the call `berth scale NAME TYPE=N` makes), for a token that may change the app. */
export function Processes({ app, instances, canAct, busy, onScale }: { app: AppDetails; instances: Instance[]; canAct: boolean; busy: boolean; onScale: (type: string, count: number) => void }) {
  const rows = processRows(app, instances);
  const current = app.current;
  return html`
    <div class="scroll"><table class="processes">
      <caption class="visually-hidden">Process types</caption>
      <thead><tr><th scope="col">Type</th><th scope="col">Command</th><th scope="col">Running</th>${canAct ? html`<th scope="col">Scale</th>` : null}</tr></thead>
      <tbody>${rows.map((p) => html`<tr data-process=${p.type}>
        <th scope="row">${p.type}</th>
        <td>${p.command === null ? html`<span class="muted">the default (the Procfile's web: line, npm start, server.js or index.js)</span>` : html`<code>${p.command}</code>`}</td>
        <td><span data-field="process-running">${p.running}</span> of <span data-field="process-wanted">${p.wanted}</span>${p.policy !== null ? html` <span class="small">(the scaler's: ${p.policy.min}–${p.policy.max})</span>` : null}</td>
        ${canAct ? html`<td><${ScaleForm} type=${p.type} wanted=${p.wanted} busy=${busy} onScale=${onScale} /></td>` : null}
      </tr>`)}</tbody>
    </table></div>
    ${current?.releaseCommand
      ? html`<p class="small" data-field="release-command">Release command <code>${current.releaseCommand}</code>, run once before v${current.version} started:
          ${current.releaseTask === undefined ? ' not finished yet' : html` <${Status} value=${current.releaseTask.status} /> ${current.releaseTask.detail.split('\n')[0]} on ${current.releaseTask.machine}`}</p>`
      : null}
  `;
}

function ScaleForm({ type, wanted, busy, onScale }: { type: string; wanted: number; busy: boolean; onScale: (type: string, n: number) => void }) {
  const [value, setValue] = useState(String(wanted));
  useEffect(() => setValue(String(wanted)), [wanted]);
  const id = `scale-${type}`;
  return html`<form class="inline" onSubmit=${(e: Event) => { e.preventDefault(); onScale(type, Number(value)); }}>
    <label for=${id} class="visually-hidden">Instances of ${type}</label>
    <input id=${id} name=${id} type="number" min="0" step="1" inputmode="numeric" required value=${value} onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} />
    <button type="submit" disabled=${busy}>Scale ${type}</button>
  </form>`;
}
