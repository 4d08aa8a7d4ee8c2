import { html } from 'htm/preact';
import { api } from './api.js';
import { useLive } from './live.js';
import type { ScaleDecision } from '../../sdk/types.js';
import { ErrorNote, Loading, when } from './view-parts.js';

/** The scaler's recent decisions with the numbers that made them, newest first. */
export function ScalerPage() {
  const log = useLive(() => api.get<{ decisions: ScaleDecision[] }>('/scaler/log?limit=50'), [], { when: (e) => e.kind === 'scaler-decision' });
  return html`
    <h1>Scaler</h1>
    <${ErrorNote} error=${log.error} />
    ${log.data === undefined && log.error === undefined ? html`<${Loading} />` : null}
    ${log.data?.decisions.length === 0 ? html`<p>No decision yet: the scaler acts on apps with a policy (<code>berth scale APP --min 1 --max 4</code>).</p>` : null}
    ${log.data !== undefined && log.data.decisions.length > 0
      ? html`<div class="scroll"><table>
          <caption class="visually-hidden">Scaler decisions</caption>
          <thead><tr><th scope="col">When</th><th scope="col">App</th><th scope="col">Change</th><th scope="col">Cause</th><th scope="col">Why</th><th scope="col">Inputs</th></tr></thead>
          <tbody>${log.data.decisions.map(
            (d) => html`<tr>
              <td>${when(d.at)}</td><td>${d.app}</td><td>${d.from} → ${d.to}</td><td>${d.cause}</td><td>${d.reason}</td>
              <td class="small">running ${d.inputs.running} of ${d.inputs.wanted}; CPU/instance ${d.inputs.cpuPerInstance ?? '?'}${d.inputs.inFlightPerInstance === null ? '' : `; in flight/instance ${d.inputs.inFlightPerInstance}`}; loads ${Object.entries(d.inputs.machineLoads).map(([m, l]) => `${m}=${l ?? '?'}`).join(' ')}</td>
            </tr>`,
          )}</tbody>
        </table></div>`
      : null}
  `;
}
