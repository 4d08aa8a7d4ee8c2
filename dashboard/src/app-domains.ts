import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { Domain, DomainCertificate } from '../../sdk/types.js';
import { Status, when } from './view-parts.js';

/** What a certificate's state means, in the words of berth domains:list. */
function CertificateCell({ c }: { c: DomainCertificate }) {
  return html`<${Status} value=${c.state} />
    ${c.state === 'none' ? html` <span class="small">the balancer's own certificate serves it</span>` : null}
    ${c.state === 'issued' ? html` <span data-field="not-after">until ${when(c.notAfter)}</span>${c.source === 'operator' ? ' (operator)' : ''}` : null}
    ${c.issuer ? html`<div class="small" data-field="issuer">${c.issuer}</div>` : null}
    ${c.state === 'failed' ? html`<div class="small" data-field="certificate-error">${c.error ?? 'unknown error'}${c.retryAt === undefined ? '' : ` (next try ${when(c.retryAt)})`}</div>` : null}`;
}

/**
 * The app's own domains (berth domains:list NAME) with where each stands with its certificate,
 * and for a token that may change the app, the calls berth domains:add and domains:remove make.
 */
export function Domains({ domains, canAct, busy, onAdd, onRemove }: { domains: Domain[]; canAct: boolean; busy: boolean; onAdd: (domain: string, path: string) => Promise<boolean>; onRemove: (domain: string) => void }) {
  const [domain, setDomain] = useState('');
  const [path, setPath] = useState('/');
  return html`
    ${domains.length === 0
      ? html`<p class="muted">No domain of its own: it answers on the platform's host only.</p>`
      : html`<div class="scroll"><table class="domains">
          <caption class="visually-hidden">Domains and their certificates</caption>
          <thead><tr><th scope="col">Domain</th><th scope="col">Path</th><th scope="col">Certificate</th><th scope="col">Added</th>${canAct ? html`<th scope="col"><span class="visually-hidden">Action</span></th>` : null}</tr></thead>
          <tbody>${domains.map((d) => html`<tr data-domain=${d.domain}>
            <th scope="row"><code>${d.domain}</code></th>
            <td><code>${d.path}</code></td>
            <td data-field="certificate"><${CertificateCell} c=${d.certificate} /></td>
            <td>${when(d.createdAt)}</td>
            ${canAct ? html`<td><button type="button" class="small-button" disabled=${busy} aria-label=${`Remove domain ${d.domain}`} onClick=${() => onRemove(d.domain)}>Remove</button></td>` : null}
          </tr>`)}</tbody>
        </table></div>`}
    ${canAct ? html`<form class="inline" onSubmit=${async (e: Event) => {
        e.preventDefault();
        // Emptied once added; kept to correct when the API refused it.
        if (await onAdd(domain.trim(), path.trim() || '/')) { setDomain(''); setPath('/'); }
      }}>
      <label for="domain-name">Domain</label>
      <input id="domain-name" name="domain" required autocomplete="off" placeholder="shop.example.com" value=${domain} onInput=${(e: Event) => setDomain((e.target as HTMLInputElement).value)} />
      <label for="domain-path">Path</label>
      <input id="domain-path" name="path" autocomplete="off" value=${path} onInput=${(e: Event) => setPath((e.target as HTMLInputElement).value)} />
      <button type="submit" disabled=${busy}>Add domain</button>
    </form>
    <p class="small">Create its DNS record first (an A or CNAME record pointing at the balancers).</p>` : null}
  `;
}
