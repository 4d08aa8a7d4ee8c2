import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';

const day = (t: number | undefined) => (t === undefined ? '-' : new Date(t).toISOString().slice(0, 16).replace('T', ' '));

/** certs, certs:add and certs:remove: the certificates of the apps' domains. */
export function certsCommand(ctx: CliContext): Command {
  return new Command('certs')
    .description("List the certificates of the apps' domains (ACME's and operators'), with issuer and expiry.")
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth certs')
    .action(async (flags: { json?: boolean }) => {
      const certs = await connect(ctx.env).listCertificates();
      if (flags.json) return ctx.output.json(certs);
      if (certs.length === 0) return ctx.output.note('No certificates: turn ACME on (BERTH_ACME_EMAIL) or add one with berth certs:add DOMAIN --cert FILE --key FILE.');
      // A domain with an RSA certificate beside its ECDSA one has a row for each.
      ctx.output.table(
        ['DOMAIN', 'SOURCE', 'STATE', 'ISSUER', 'KEY', 'EXPIRES (UTC)', 'LAST ERROR'],
        certs.flatMap((c) => [
          [c.domain, c.source, c.state, c.issuer ?? '-', c.keyType ?? '-', day(c.notAfter), c.error ?? ''],
          ...(c.second === undefined ? [] : [[c.domain, c.source, c.state, c.second.issuer, c.second.keyType, day(c.second.notAfter), '']]),
        ]),
      );
    });
}

export function certsAddCommand(ctx: CliContext): Command {
  return new Command('certs:add')
    .description("Serve your own certificate for a domain (it takes precedence over ACME's); an RSA and an ECDSA one may be served side by side.")
    .argument('<domain>', 'the domain it is for')
    .requiredOption('--cert <file>', 'PEM certificate, followed by its chain')
    .requiredOption('--key <file>', 'its PEM private key (unencrypted)')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth certs:add shop.example.com --cert shop.pem --key shop-key.pem')
    .action(async (domain: string, flags: { cert: string; key: string; json?: boolean }) => {
      const read = (file: string) => {
        try {
          return readFileSync(file, 'utf8');
        } catch (err) {
          throw new Error(`Cannot read ${file}: ${(err as Error).message}.`);
        }
      };
      const added = await connect(ctx.env).addCertificate(domain, { cert: read(flags.cert), key: read(flags.key) });
      if (flags.json) return ctx.output.json(added);
      const served = [added, ...(added.second === undefined ? [] : [added.second])].map((c) => `${c.keyType?.toUpperCase() ?? '?'} ${c.issuer ?? '?'}, until ${day(c.notAfter)} UTC`);
      ctx.output.note(`${added.domain}: your certificate${served.length > 1 ? 's' : ''} (${served.join('; ')}) ${served.length > 1 ? 'are' : 'is'} served by every balancer.`);
    });
}

export function certsRemoveCommand(ctx: CliContext): Command {
  return new Command('certs:remove')
    .description("Stop serving your own certificates for a domain, RSA and ECDSA (ACME, when on, obtains one again).")
    .argument('<domain>', 'the domain')
    .option(...JSON_FLAG)
    .action(async (domain: string, flags: { json?: boolean }) => {
      await connect(ctx.env).removeCertificate(domain);
      if (flags.json) return ctx.output.json({ removed: { domain } });
      ctx.output.note(`${domain}: your certificate is no longer served.`);
    });
}
