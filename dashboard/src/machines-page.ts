import { html } from 'htm/preact';
import { api, enc } from './api.js';
import { LoadChart } from './load-chart.js';
import { useLive } from './live.js';
import type { AppDetails, Instance, MachineLoadHistory } from '../../sdk/types.js';
import { ago, ErrorNote, Loading } from './view-parts.js';

interface MachinesView {
  machines: MachineLoadHistory[];
  instances: Array<Instance & { app: string }>;
}

async function load(): Promise<MachinesView> {
  const [{ machines }, { apps }] = await Promise.all([api.get<{ machines: MachineLoadHistory[] }>('/machines/load'), api.get<{ apps: AppDetails[] }>('/apps')]);
  const lists = await Promise.all(apps.map((a) => api.get<{ instances: Instance[] }>(`/apps/${enc(a.name)}/instances`).then((r) => r.instances.map((i) => ({ ...i, app: a.name })))));
  return { machines, instances: lists.flat() };
}

/** Every machine: CPUs, load and culprit (as sampled from its proxy), its instances, an hour of load. */
export function MachinesPage() {
  const view = useLive(load, [], { everyMs: 15_000 });
  const now = Date.now();
  return html`
    <h1>Machines</h1>
    <${ErrorNote} error=${view.error} />
    ${view.data === undefined && view.error === undefined ? html`<${Loading} />` : null}
    ${view.data?.machines.length === 0 ? html`<p>No machine has reported in: start a hoster (<code>berth hoster</code>, or <code>berth up</code>).</p>` : null}
    <div class="cards">
      ${view.data?.machines.map((m) => {
        const last = m.samples.at(-1);
        const here = view.data!.instances.filter((i) => i.machine === m.name);
        return html`<section class="card" aria-labelledby=${`m-${m.name}`} data-machine=${m.name}>
          <h2 id=${`m-${m.name}`}>${m.name}</h2>
          <dl class="facts">
            <dt>CPUs</dt><dd>${m.facts.cpus ?? last?.cpus ?? '?'}</dd>
            <dt>Load per CPU</dt><dd data-field="load">${last?.load ?? m.facts.load ?? '?'}${last?.error ? html` <span class="error">(${last.error})</span>` : null}</dd>
            <dt>Culprit</dt><dd data-field="culprit">${last?.culprit ? `${last.culprit.app} (${Math.round(last.culprit.cpuShare * 100)} % CPU)` : 'none'}</dd>
            <dt>Memory</dt><dd>${m.facts.freeMemoryMb ?? '?'} MB free of ${m.facts.memoryMb ?? '?'}</dd>
            <dt>Heartbeat</dt><dd>${ago(m.heartbeatAt)}</dd>
          </dl>
          <${LoadChart} samples=${m.samples} now=${now} />
          <h3>Instances (${here.length})</h3>
          ${here.length === 0 ? html`<p class="muted">none</p>` : html`<ul class="plain">${here.map((i) => html`<li><a href=${`#/apps/${enc(i.app)}`}>${i.app}</a> v${i.release ?? '?'} <span class="muted">${i.state}</span></li>`)}</ul>`}
        </section>`;
      })}
    </div>
  `;
}
