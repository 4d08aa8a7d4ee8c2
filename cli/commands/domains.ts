import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import type { DomainCertificate } from '../../sdk/index.js';

/** domains:add, domains:remove and domains:list: an app's own hosts. */
export function domainsAddCommand(ctx: CliContext): Command {
  return new Command('domains:add')
    .description("Serve an app on its own domain too (a DNS name whose record points at the balancers).")
    .argument('<name>', 'the app')
    .argument('<domain>', 'the domain: shop.example.com, or *.example.com for every name one level under it')
    .option('--path <prefix>', 'the path prefix the app answers on inside the domain', '/')
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      '\nCreate the DNS record first: shop.example.com. A (or CNAME) pointing at your balancers.\nExamples:\n  $ berth domains:add shop shop.example.com\n  $ berth domains:add api example.com --path /api',
    )
    .action(async (name: string, domain: string, flags: { path: string; json?: boolean }) => {
      const added = await connect(ctx.env).addDomain(name, domain, { path: flags.path });
      if (flags.json) return ctx.output.json(added);
      ctx.output.note(`${added.app} answers on ${added.domain}${added.path === '/' ? '' : added.path} (${certificateText(added.certificate)}).`);
    });
}

export function domainsRemoveCommand(ctx: CliContext): Command {
  return new Command('domains:remove')
    .description('Stop serving an app on one of its domains.')
    .argument('<name>', 'the app')
    .argument('<domain>', 'the domain')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth domains:remove shop shop.example.com')
    .action(async (name: string, domain: string, flags: { json?: boolean }) => {
      await connect(ctx.env).removeDomain(name, domain);
      if (flags.json) return ctx.output.json({ removed: { app: name, domain } });
      ctx.output.note(`${name} no longer answers on ${domain}.`);
    });
}

export function domainsListCommand(ctx: CliContext): Command {
  return new Command('domains:list')
    .description("List the apps' own domains (of one app, or of all) and where each stands with its certificate.")
    .argument('[name]', 'only this app')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExamples:\n  $ berth domains:list\n  $ berth domains:list shop')
    .action(async (name: string | undefined, flags: { json?: boolean }) => {
      const domains = await connect(ctx.env).listDomains(name);
      if (flags.json) return ctx.output.json(domains);
      if (domains.length === 0) return ctx.output.note(`No domains${name === undefined ? '' : ` for ${name}`}: add one with berth domains:add NAME DOMAIN.`);
      ctx.output.table(
        ['DOMAIN', 'APP', 'PATH', 'CERTIFICATE'],
        domains.map((d) => [d.domain, d.app, d.path, certificateText(d.certificate)]),
      );
    });
}

/** `pending`, `issued until …`, `failed: <the CA's words>`, as domains:list shows them. */
export function certificateText(c: DomainCertificate): string {
  switch (c.state) {
    case 'none':
      return "the balancer's own certificate";
    case 'pending':
      return 'pending';
    case 'issued':
      return `issued until ${c.notAfter === undefined ? '?' : new Date(c.notAfter).toISOString().slice(0, 16).replace('T', ' ')} UTC${c.source === 'operator' ? ' (operator)' : ''}`;
    case 'failed':
      return `failed: ${c.error ?? 'unknown error'}${c.retryAt === undefined ? '' : ` (next try ${new Date(c.retryAt).toISOString().slice(11, 19)} UTC)`}`;
  }
}
