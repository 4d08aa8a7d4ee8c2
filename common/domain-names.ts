import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { z } from 'zod';

/**
 * Domain names as berth accepts them for an app's own hosts (berth domains:add). One
 * definition, so that the API, the CLI and the certificate checks agree. A name is stored in
 * its ASCII form, lowercase, without a trailing dot: raw Unicode (`bücher.example`) is
 * converted to punycode (`xn--bcher-kva.example`) with node's domainToASCII, and punycode
 * is accepted as written. A wildcard covers one level: `*.example.com` answers
 * `shop.example.com`, not `a.shop.example.com` nor `example.com`.
 */
export const MAX_DOMAIN_LENGTH = 253;

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A domain in the form it is stored and matched in, or why it is not one. */
export function parseDomain(input: string): { domain: string } | { problem: string } {
  let name = input.trim();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '') return { problem: 'is empty: give a name such as shop.example.com' };
  if (isIP(name) !== 0 || isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0) {
    return { problem: 'is an IP address: a domain is a DNS name (such as shop.example.com) whose record points at the balancers' };
  }
  const wildcard = name.startsWith('*.');
  const rest = wildcard ? name.slice(2) : name;
  if (rest.includes('*')) return { problem: 'may use "*" only as its whole first label (*.example.com)' };
  // domainToASCII lowercases, and converts Unicode labels to punycode; it answers '' for what no DNS name can be.
  const ascii = /^[\x21-\x7e]*$/.test(rest) ? rest.toLowerCase() : domainToASCII(rest);
  if (ascii === '') return { problem: 'is not a valid domain name (it cannot be converted to punycode)' };
  if (ascii.length + (wildcard ? 2 : 0) > MAX_DOMAIN_LENGTH) return { problem: `must be at most ${MAX_DOMAIN_LENGTH} characters` };
  const labels = ascii.split('.');
  if (labels.length < 2) return { problem: 'needs at least two labels (shop.example.com, not shop)' };
  for (const label of labels) {
    if (!LABEL.test(label)) return { problem: `has an invalid label "${label}": labels are 1-63 of a-z, 0-9 and "-", not starting or ending with "-"` };
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return { problem: 'ends in a numeric label: it would read as an IP address' };
  return { domain: wildcard ? `*.${ascii}` : ascii };
}

export const domainSchema = z.string().transform((input, ctx) => {
  const parsed = parseDomain(input);
  if ('problem' in parsed) {
    ctx.addIssue({ code: 'custom', message: parsed.problem });
    return z.NEVER;
  }
  return parsed.domain;
});
