import { html } from 'htm/preact';
import { api } from './api.js';
import { useLive } from './live.js';
import type { AppDetails } from '../../sdk/types.js';
import { ErrorNote, Loading, serving, Status } from './view-parts.js';

/** Every app: its status, serving release, instances running of those wanted, and URL. */
export function AppsPage() {
  const apps = useLive(() => api.get<{ apps: AppDetails[] }>('/apps'), []);
  return html`
    <h1>Apps</h1>
    <${ErrorNote} error=${apps.error} />
    ${apps.data === undefined && apps.error === undefined ? html`<${Loading} />` : null}
    ${apps.data?.apps.length === 0 ? html`<p>No app yet: publish one with <code>berth publish ./folder --path /name</code>.</p>` : null}
    ${apps.data !== undefined && apps.data.apps.length > 0
      ? html`<div class="scroll"><table class="apps">
          <caption class="visually-hidden">Apps</caption>
          <thead><tr><th scope="col">App</th><th scope="col">Status</th><th scope="col">Serving</th><th scope="col">Instances</th><th scope="col">URL</th></tr></thead>
          <tbody>
            ${apps.data.apps.map(
              (a) => html`<tr data-app=${a.name}>
                <th scope="row"><a href=${`#/apps/${encodeURIComponent(a.name)}`}>${a.name}</a></th>
                <td><${Status} value=${a.status} /></td>
                <td data-field="serving">${serving(a)}</td>
                <td><span data-field="running">${a.running}</span> of <span data-field="wanted">${a.instances}</span> running${a.current === null ? '' : ` v${a.current.version}`}</td>
                <td>${a.url === null ? a.path : html`<a href=${a.url} rel="noreferrer">${a.url}</a>`}</td>
              </tr>`,
            )}
          </tbody>
        </table></div>`
      : null}
  `;
}
