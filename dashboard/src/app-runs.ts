import { html } from 'htm/preact';
import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import type { Run, RunOutput } from '../../sdk/types.js';
import { api, enc } from './api.js';
import { useLive } from './live.js';
import { Clock, ErrorNote, Loading, Status } from './view-parts.js';

// A run's changes make no event on the registry's stream: the list is read again every second
// while one of its runs is under way, and every 5 s otherwise (to see new ones).
const ACTIVE_POLL_MS = 1000;
const IDLE_POLL_MS = 5000;
/** Runs shown until the list is asked for whole (the API keeps the last 100). */
const SHOWN = 20;

const active = (r: Pick<Run, 'state'>) => r.state === 'pending' || r.state === 'starting' || r.state === 'running';

/** How a run ended, as `berth runs` words it: its exit code or signal, and why when not by exiting. */
function ending(r: Pick<Run, 'exitCode' | 'signal' | 'reason'>): string {
  const how = r.exitCode !== null ? `exit ${r.exitCode}` : r.signal ?? '';
  return [how, r.reason ?? ''].filter(Boolean).join(', ') || '—';
}

/** The app's recent one-off runs (berth run, cron ticks), newest first, with their output on demand and, for a token that may, a stop button for one under way. */
export function Runs({ app, canAct, busy, act }: { app: string; canAct: boolean; busy: boolean; act: (what: string, run: () => Promise<unknown>) => void }) {
  const n = enc(app);
  const runs = useLive(() => api.get<{ runs: Run[] }>(`/apps/${n}/runs`).then((r) => r.runs), [app], {
    when: () => false,
    everyMs: (list) => (list?.some(active) ? ACTIVE_POLL_MS : IDLE_POLL_MS),
  });
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());
  const [all, setAll] = useState(false);
  const toggle = (id: string) => {
    const next = new Set(open);
    if (!next.delete(id)) next.add(id);
    setOpen(next);
  };
  if (runs.data === undefined) return runs.error === undefined ? html`<${Loading} />` : html`<${ErrorNote} error=${runs.error} />`;
  if (runs.data.length === 0) return html`<p class="muted">No run yet: <code>berth run ${app} -- COMMAND</code> starts one.</p>`;
  const shown = all ? runs.data : runs.data.slice(0, SHOWN);
  return html`<div class="scroll"><table class="runs">
    <caption class="visually-hidden">One-off runs, newest first</caption>
    <thead><tr><th scope="col">Run</th><th scope="col">Command</th><th scope="col">State</th><th scope="col">Exit</th><th scope="col">Machine</th><th scope="col">Started</th><th scope="col">Finished</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
    <tbody>${shown.map((r) => html`<${Fragment} key=${r.id}>
      <tr data-run=${r.id}>
        <th scope="row"><code>${r.id}</code> <span class="small">v${r.release}</span></th>
        <td><code>${r.command.join(' ')}</code>${r.interactive ? ' (-it)' : ''}${r.cron === null ? null : html`<div class="small">cron job ${r.cron}</div>`}</td>
        <td><${Status} value=${r.state} /></td>
        <td data-field="exit">${ending(r)}</td>
        <td>${r.machine ?? '—'}</td>
        <td>${r.startedAt === null ? html`<span class="muted">asked <${Clock} ms=${r.createdAt} /></span>` : html`<${Clock} ms=${r.startedAt} />`}</td>
        <td>${r.finishedAt === null ? '—' : html`<${Clock} ms=${r.finishedAt} />`}</td>
        <td class="buttons">
          <button type="button" class="small-button" aria-expanded=${open.has(r.id)} aria-controls=${`run-output-${r.id}`} aria-label=${`${open.has(r.id) ? 'Hide' : 'Show'} output of run ${r.id}`} onClick=${() => toggle(r.id)}>${open.has(r.id) ? 'Hide output' : 'Show output'}</button>
          ${canAct && active(r)
            ? html` <button type="button" class="small-button" disabled=${busy} aria-label=${`Stop run ${r.id}`} onClick=${() => act(`Stopping run ${r.id}.`, async () => { await api.post(`/apps/${n}/runs/${r.id}/stop`); runs.reload(); })}>Stop</button>`
            : null}
        </td>
      </tr>
      ${open.has(r.id) ? html`<tr class="run-output-row"><td colspan="8"><${Output} app=${app} run=${r} /></td></tr>` : null}
    <//>`)}
    </tbody>
  </table></div>
  ${runs.data.length > SHOWN ? html`<button type="button" class="small-button" aria-pressed=${all} onClick=${() => setAll(!all)}>${all ? `Show the newest ${SHOWN}` : `Show all ${runs.data.length} runs`}</button>` : null}`;
}

/** A run's output from its start (GET …/output, read again while it runs; never followed, since a follower leaving an attached run would stop it). */
function Output({ app, run }: { app: string; run: Run }) {
  const output = useLive(() => api.get<{ output: RunOutput[] }>(`/apps/${enc(app)}/runs/${run.id}/output`).then((r) => r.output), [app, run.id], {
    when: () => false,
    everyMs: (pieces) => (pieces !== undefined && pieces.some((p) => 'exit' in p) ? undefined : ACTIVE_POLL_MS),
  });
  if (output.data === undefined) return output.error === undefined ? html`<${Loading} />` : html`<${ErrorNote} error=${output.error} />`;
  let text = '';
  for (const p of output.data) text += 'exit' in p ? `\n— ${p.exit.state} (${ending(p.exit)})\n` : p.data;
  return html`
    ${run.interactive ? html`<p class="small">An interactive run: its terminal was not recorded, only its end.</p>` : null}
    <pre class="logs run-output" id=${`run-output-${run.id}`} data-run=${run.id} tabindex="0" aria-label=${`Output of run ${run.id}`}>${text === '' ? '(no output yet)' : text}</pre>`;
}
