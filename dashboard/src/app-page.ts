import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, enc, type Session } from './api.js';
import { useLive } from './live.js';
import { followLogs } from './streams.js';
import { appCpuPoints, HourChart } from './load-chart.js';
import { CronJobs } from './app-cron.js';
import { Addons } from './app-addons.js';
import { Domains } from './app-domains.js';
import { Processes } from './app-processes.js';
import { Runs } from './app-runs.js';
import type { AppDetails, Domain, Instance, LogLine, MachineLoadHistory, Release } from '../../sdk/types.js';
import { ErrorNote, Loading, serving, Status, when } from './view-parts.js';

const MAX_LOG_LINES = 500;

interface AppView {
  app: AppDetails;
  releases: Release[];
  instances: Instance[];
  env: Record<string, string>;
  domains: Domain[];
}

async function load(name: string): Promise<AppView> {
  const n = enc(name);
  const [app, { releases }, { instances }, { env }, { domains }] = await Promise.all([
    api.get<AppDetails>(`/apps/${n}`),
    api.get<{ releases: Release[] }>(`/apps/${n}/releases`),
    api.get<{ instances: Instance[] }>(`/apps/${n}/instances`),
    api.get<{ env: Record<string, string> }>(`/apps/${n}/config`).catch(() => ({ env: {} })),
    api.get<{ domains: Domain[] }>(`/apps/${n}/domains`),
  ]);
  return { app, releases, instances, env, domains };
}

/** What the last action did, or the API's error, announced to screen readers. */
type Outcome = { ok: string } | { error: ApiError } | undefined;

/** One app: its process types, instances by machine, domains, add-ons, releases, config, runs, cron jobs, live logs, and (for a token that may) its actions. */
export function AppPage({ name, session }: { name: string; session: Session }) {
  const view = useLive(() => load(name), [name], { when: (e) => e.service === undefined || e.service === name });
  const [outcome, setOutcome] = useState<Outcome>(undefined);
  const [busy, setBusy] = useState(false);
  const canAct = !session.readOnly;

  /** Runs one action; true when the API took it. */
  const act = async (what: string, run: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setOutcome(undefined);
    try {
      await run();
      setOutcome({ ok: what });
      view.reload();
      return true;
    } catch (err) {
      setOutcome({ error: err instanceof ApiError ? err : new ApiError(0, 'error', String(err)) });
      return false;
    } finally {
      setBusy(false);
    }
  };

  if (view.error !== undefined && view.data === undefined) return html`<h1>${name}</h1><${ErrorNote} error=${view.error} />`;
  if (view.data === undefined) return html`<h1>${name}</h1><${Loading} />`;
  const { app, releases, instances, env, domains } = view.data;
  const n = enc(name);

  return html`
    <h1>${app.name} <${Status} value=${app.status} /></h1>
    <p class="summary">
      <span>${app.url === null ? app.path : html`<a href=${app.url} rel="noreferrer">${app.url}</a>`}</span>
      <span>serving <span data-field="serving">${serving(app)}</span></span>
      <span><span data-field="running">${app.running}</span> of <span data-field="wanted">${app.instances}</span> running${app.current === null ? '' : ` v${app.current.version}`}</span>
      ${app.autoscale === null ? null : html`<span>autoscaled ${app.autoscale.min}–${app.autoscale.max}</span>`}
    </p>
    <div class="outcome" aria-live="polite">
      ${outcome !== undefined && 'ok' in outcome ? html`<p class="ok" role="status">${outcome.ok}</p>` : null}
      ${outcome !== undefined && 'error' in outcome ? html`<${ErrorNote} error=${outcome.error} />` : null}
    </div>

    ${canAct
      ? html`<section aria-labelledby="actions-h" class="actions">
          <h2 id="actions-h">Actions</h2>
          <button type="button" disabled=${busy} onClick=${() => act('Restarting: a new release with the same code and configuration.', () => api.post(`/apps/${n}/restart`))}>Restart</button>
        </section>`
      : html`<p class="muted">This token is read-only: it sees the app but cannot change it.</p>`}

    <section aria-labelledby="processes-h">
      <h2 id="processes-h">Process types</h2>
      <${Processes} app=${app} instances=${instances} canAct=${canAct} busy=${busy}
        onScale=${(type: string, count: number) => act(`Scaled ${type} to ${count}.`, () =>
          // What berth scale sends: web's count as instances (berth scale NAME 3), the others' as the formation (berth scale NAME worker=2).
          api.patch(`/apps/${n}`, type === 'web' ? { instances: count } : { formation: { [type]: count } }))} />
    </section>

    <section aria-labelledby="instances-h">
      <h2 id="instances-h">Instances</h2>
      <${InstancesByMachine} instances=${instances} />
    </section>

    <section aria-labelledby="domains-h">
      <h2 id="domains-h">Domains</h2>
      <${Domains} domains=${domains} canAct=${canAct} busy=${busy}
        onAdd=${(domain: string, path: string) => act(`Added ${domain}: ${name} answers on it once its DNS record points at the balancers.`, () => api.post(`/apps/${n}/domains`, { domain, path }))}
        onRemove=${(domain: string) => act(`Removed ${domain}.`, () => api.del(`/apps/${n}/domains/${enc(domain)}`))} />
    </section>

    <section aria-labelledby="addons-h">
      <h2 id="addons-h">Add-ons</h2>
      <${Addons} app=${name} attached=${app.addons ?? []} scoped=${session.app !== null} />
    </section>

    <section aria-labelledby="cpu-h">
      <h2 id="cpu-h">CPU over the last hour</h2>
      <${AppCpu} app=${name} />
    </section>

    <section aria-labelledby="releases-h">
      <h2 id="releases-h">Releases</h2>
      <div class="scroll"><table class="releases">
        <caption class="visually-hidden">Releases, newest first</caption>
        <thead><tr><th scope="col">Release</th><th scope="col">Status</th><th scope="col">Commit</th><th scope="col">What changed</th><th scope="col">Who</th><th scope="col">When</th>${canAct ? html`<th scope="col"><span class="visually-hidden">Action</span></th>` : null}</tr></thead>
        <tbody>${releases.map(
          (r) => html`<tr data-release=${r.version}>
            <th scope="row">v${r.version}</th>
            <td><${Status} value=${r.status} />${r.reason ? html`<div class="small">${r.reason}</div>` : null}</td>
            <td data-field="commit">${r.commit === undefined ? html`<span class="muted">—</span>` : html`<code title=${r.commit}>${r.commit.slice(0, 7)}</code>`}</td>
            <td>${r.description}</td>
            <td>${r.createdBy}</td>
            <td>${when(r.createdAt)}</td>
            ${canAct
              ? html`<td>${app.current?.version !== r.version
                  ? html`<button type="button" disabled=${busy} onClick=${() => act(`Rolling back to v${r.version}.`, () => api.post(`/apps/${n}/rollback`, { version: r.version }))}>Roll back to v${r.version}</button>`
                  : html`<span class="muted">current</span>`}</td>`
              : null}
          </tr>`,
        )}</tbody>
      </table></div>
    </section>

    <section aria-labelledby="config-h">
      <h2 id="config-h">Config vars</h2>
      <${ConfigVars} env=${env} heldBy=${Object.fromEntries((app.addons ?? []).map((a) => [a.variable, a.name]))} canAct=${canAct} busy=${busy}
        onSet=${(key: string, value: string) => act(`Set ${key}: a new release.`, () => api.patch(`/apps/${n}/config`, { set: { [key]: value } }))}
        onUnset=${(key: string) => act(`Unset ${key}: a new release.`, () => api.patch(`/apps/${n}/config`, { unset: [key] }))} />
    </section>

    <section aria-labelledby="runs-h">
      <h2 id="runs-h">One-off runs</h2>
      <${Runs} app=${name} canAct=${canAct} busy=${busy} act=${act} />
    </section>

    <section aria-labelledby="cron-h">
      <h2 id="cron-h">Cron jobs</h2>
      <${CronJobs} app=${name} />
    </section>

    <section aria-labelledby="logs-h">
      <h2 id="logs-h">Logs</h2>
      <${Logs} app=${name} />
    </section>

    ${canAct ? html`<section aria-labelledby="delete-h" class="danger"><h2 id="delete-h">Delete</h2>
      <${DeleteForm} name=${name} busy=${busy} onDelete=${() => act(`Deleting ${name}: its instances stop, then it is gone.`, async () => {
        await api.del(`/apps/${n}`);
        location.hash = '#/apps';
      })} /></section>` : null}
  `;
}

/** The app's CPU cores over the hour, from the machines' sampled GetCulprit reports. */
function AppCpu({ app }: { app: string }) {
  const history = useLive(() => api.get<{ machines: MachineLoadHistory[] }>('/machines/load'), [app], { everyMs: 15_000, when: () => false });
  if (history.error !== undefined) return html`<${ErrorNote} error=${history.error} />`;
  if (history.data === undefined) return html`<${Loading} />`;
  const points = appCpuPoints(history.data.machines, app);
  return html`<${HourChart} points=${points} now=${Date.now()} what="CPU cores" />
    <p class="small">CPU cores used by its instances on every machine, latest ${points.at(-1)?.value ?? '?'}.</p>`;
}

function InstancesByMachine({ instances }: { instances: Instance[] }) {
  if (instances.length === 0) return html`<p class="muted">No instance.</p>`;
  const byMachine = new Map<string, Instance[]>();
  for (const i of instances) {
    const m = i.machine ?? '(not placed yet)';
    byMachine.set(m, [...(byMachine.get(m) ?? []), i]);
  }
  return html`${[...byMachine].map(([machine, list]) => html`<div class="scroll"><table class="instances" data-machine=${machine}>
    <caption>${machine}: ${list.length} ${list.length === 1 ? 'instance' : 'instances'}</caption>
    <thead><tr><th scope="col">Instance</th><th scope="col">Type</th><th scope="col">State</th><th scope="col">Release</th><th scope="col">Health</th><th scope="col">Failed on</th><th scope="col">Restarts</th></tr></thead>
    <tbody>${list.map((i) => html`<tr data-instance=${i.id}>
      <th scope="row"><code>${i.id.slice(0, 8)}</code>${i.port === null ? null : html` <span class="muted">:${i.port}</span>`}</th>
      <td data-field="process">${i.process ?? 'web'}</td>
      <td><${Status} value=${i.state} /></td>
      <td>${i.release === null ? '—' : `v${i.release}`}</td>
      <td>${i.state === 'running' ? ((i.process ?? 'web') === 'web' ? 'passing' : 'supervised (no port, no check)') : i.reason ?? (i.state === 'crashed' ? 'crashed' : 'not checked yet')}${i.reasonDetail ? html`<div class="small">${i.reasonDetail}</div>` : null}</td>
      <td data-field="failed-on">${i.failedOn.length === 0 ? html`<span class="muted">—</span>` : i.failedOn.join(', ')}</td>
      <td data-field="restarts" title="Started again in place under this claim (epoch ${i.epoch}) after a crash or a failed health check">${i.restarts ?? 0}</td>
    </tr>`)}</tbody>
  </table></div>`)}`;
}

/** The config vars; one that holds an add-on's URL is the add-on's to change (attach, detach), so it has no Unset. */
function ConfigVars({ env, heldBy, canAct, busy, onSet, onUnset }: { env: Record<string, string>; heldBy: Record<string, string>; canAct: boolean; busy: boolean; onSet: (k: string, v: string) => void; onUnset: (k: string) => void }) {
  const [revealed, setRevealed] = useState(false);
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const names = Object.keys(env).sort();
  return html`
    ${names.length === 0 ? html`<p class="muted">No config var.</p>` : html`
      <button type="button" aria-pressed=${revealed} onClick=${() => setRevealed(!revealed)}>${revealed ? 'Hide values' : 'Reveal values'}</button>
      <dl class="config">${names.map((k) => html`<div class="config-row" data-var=${k}>
        <dt><code>${k}</code></dt>
        <dd><code data-field="value">${revealed ? env[k] : '••••••'}</code>
          ${heldBy[k] !== undefined
            ? html` <span class="small" data-field="held-by">from the add-on ${heldBy[k]} (berth addons:detach ${heldBy[k]} to remove)</span>`
            : canAct ? html` <button type="button" class="small-button" disabled=${busy} aria-label=${`Unset ${k}`} onClick=${() => onUnset(k)}>Unset</button>` : null}</dd>
      </div>`)}</dl>`}
    ${canAct ? html`<form class="inline" onSubmit=${(e: Event) => { e.preventDefault(); onSet(key.trim(), value); }}>
      <label for="config-key">Name</label>
      <input id="config-key" name="key" required autocomplete="off" pattern="[A-Z_][A-Z0-9_]*" title="Capital letters, digits and _" value=${key} onInput=${(e: Event) => setKey((e.target as HTMLInputElement).value)} />
      <label for="config-value">Value</label>
      <input id="config-value" name="value" autocomplete="off" value=${value} onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} />
      <button type="submit" disabled=${busy}>Set</button>
    </form>` : null}
  `;
}

function Logs({ app }: { app: string }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    setLines([]);
    setError(undefined);
    let pending: LogLine[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      const add = pending;
      pending = [];
      setLines((old) => [...old, ...add].slice(-MAX_LOG_LINES));
    };
    return followLogs(app, (l) => {
      pending.push(l);
      timer ??= setTimeout(flush, 100);
    }, setError);
  }, [app]);
  useEffect(() => {
    const el = box.current;
    if (el !== null) el.scrollTop = el.scrollHeight;
  }, [lines]);
  return html`
    ${error === undefined ? null : html`<p class="error" role="alert">${error}</p>`}
    <pre class="logs" ref=${box} tabindex="0" aria-label=${`Logs of ${app}, following`} data-lines=${lines.length}>${lines.map((l) => `${new Date(l.time).toISOString().slice(11, 19)} ${l.instance.slice(0, 8)}${l.process === undefined || l.process === 'web' ? '' : `/${l.process}`} ${l.stream} ${l.line}\n`).join('')}</pre>
  `;
}

function DeleteForm({ name, busy, onDelete }: { name: string; busy: boolean; onDelete: () => void }) {
  const [typed, setTyped] = useState('');
  return html`<form class="inline" onSubmit=${(e: Event) => { e.preventDefault(); if (typed === name) onDelete(); }}>
    <label for="delete-confirm">Type <strong>${name}</strong> to delete it and stop every instance</label>
    <input id="delete-confirm" autocomplete="off" value=${typed} onInput=${(e: Event) => setTyped((e.target as HTMLInputElement).value)} />
    <button type="submit" class="danger-button" disabled=${busy || typed !== name}>Delete ${name}</button>
  </form>`;
}
