import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { ago } from '../output.js';

/** tokens:create, tokens:list and tokens:revoke: named tokens, for every app or one, read-only or not. */
export function tokensCreateCommand(ctx: CliContext): Command {
  return new Command('tokens:create')
    .description('Make a named API token: for every app or only one (--app), read-only or not. It is shown this once.')
    .argument('<name>', "the token's name (who made each release, in berth releases and berth audit)")
    .option('--app <app>', 'it may read and change this app only (publishing it included)')
    .option('--read-only', 'it may only read')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExamples:\n  $ berth tokens:create ci-shop --app shop      # a deploy token for one app\n  $ berth tokens:create dashboard --read-only')
    .action(async (name: string, flags: { app?: string; readOnly?: boolean; json?: boolean }) => {
      const { output } = ctx;
      const made = await connect(ctx.env).createToken(name, { ...(flags.app === undefined ? {} : { app: flags.app }), readOnly: flags.readOnly === true });
      if (flags.json) return output.json(made);
      output.note(`Token ${made.name}: ${describe(made)}. It is shown only now: keep it (BERTH_TOKEN, or berth login --token).`);
      output.line(made.token);
    });
}

export function tokensListCommand(ctx: CliContext): Command {
  return new Command('tokens:list')
    .description('List the named API tokens and what each may do (never the tokens themselves).')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nThe BERTH_TOKEN tokens of the registry are not listed: they are the admin tokens.\n\nExample:\n  $ berth tokens:list')
    .action(async (flags: { json?: boolean }) => {
      const { output } = ctx;
      const tokens = await connect(ctx.env).listTokens();
      if (flags.json) return output.json(tokens);
      if (tokens.length === 0) return output.note('No named tokens: make one with berth tokens:create NAME.');
      output.table(
        ['NAME', 'APP', 'ACCESS', 'BY', 'MADE'],
        tokens.map((t) => [t.name, t.app ?? '(every app)', t.readOnly ? 'read-only' : 'read-write', t.createdBy, ago(t.createdAt)]),
      );
    });
}

export function tokensRevokeCommand(ctx: CliContext): Command {
  return new Command('tokens:revoke')
    .description('Revoke a named token: every registry refuses it from the next request on.')
    .argument('<name>', "the token's name")
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth tokens:revoke ci-shop')
    .action(async (name: string, flags: { json?: boolean }) => {
      const revoked = await connect(ctx.env).revokeToken(name);
      if (flags.json) return ctx.output.json(revoked);
      ctx.output.note(`Revoked ${revoked.name} (${describe(revoked)}).`);
    });
}

function describe(t: { app: string | null; readOnly: boolean }): string {
  return `${t.readOnly ? 'reads' : 'reads and changes'} ${t.app === null ? 'every app' : `the app ${t.app} only`}`;
}
