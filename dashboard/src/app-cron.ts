import { html } from 'htm/preact';
import type { CronJob } from '../../sdk/types.js';
import { api, enc } from './api.js';
import { useLive } from './live.js';
import { Clock, ErrorNote, Loading, Status, when } from './view-parts.js';

// A tick makes no event on the registry's stream: the jobs are read again a second after the
// next tick is due (so that its run shows as their last), and at least every 10 s (to see jobs
// added or removed elsewhere).
const LONGEST_WAIT_MS = 10_000;
const SHORTEST_WAIT_MS = 1000;

function untilNextTick(jobs: CronJob[] | undefined): number {
  const next = Math.min(...(jobs ?? []).map((j) => j.nextAt ?? Infinity));
  return Math.max(SHORTEST_WAIT_MS, Math.min(LONGEST_WAIT_MS, next - Date.now() + 1000));
}

/** The app's scheduled jobs (berth cron:list): schedule, command, next tick and the last tick's run, as the cron API gives them. */
export function CronJobs({ app }: { app: string }) {
  const jobs = useLive(() => api.get<{ jobs: CronJob[] }>(`/apps/${enc(app)}/cron`).then((r) => r.jobs), [app], { when: () => false, everyMs: untilNextTick });
  if (jobs.data === undefined) return jobs.error === undefined ? html`<${Loading} />` : html`<${ErrorNote} error=${jobs.error} />`;
  if (jobs.data.length === 0) return html`<p class="muted">No cron job: <code>berth cron:add ${app} "*/5 * * * *" -- COMMAND</code> adds one.</p>`;
  return html`<div class="scroll"><table class="cron">
    <caption class="visually-hidden">Cron jobs</caption>
    <thead><tr><th scope="col">Job</th><th scope="col">Schedule (UTC)</th><th scope="col">Command</th><th scope="col">Next tick</th><th scope="col">Last tick's run</th></tr></thead>
    <tbody>${jobs.data.map((j) => html`<tr data-cron=${j.id}>
      <th scope="row"><code>${j.id}</code></th>
      <td><code data-field="schedule">${j.schedule}</code></td>
      <td><code>${j.command.join(' ')}</code></td>
      <td data-field="next">${j.nextAt === null ? 'never' : when(j.nextAt)}</td>
      <td data-field="last">${j.lastRun === null
        ? html`<span class="muted">none yet</span>`
        : html`<code>${j.lastRun.id}</code> <${Status} value=${j.lastRun.state} />${j.lastRun.exitCode === null ? '' : ` exit ${j.lastRun.exitCode}`} <span class="small"><${Clock} ms=${j.lastRun.finishedAt ?? j.lastRun.createdAt} /></span>`}</td>
    </tr>`)}</tbody>
  </table></div>`;
}
