import { Command } from 'commander';
import { apiClient, credentialSources, resolveCredentials } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';

export function statusCommand(ctx: CliContext): Command {
  return new Command('status')
    .description('Say which berth API this CLI talks to, with which token (its first 6 characters), and whether it answers.')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nThe URL and the token come from BERTH_URL and BERTH_TOKEN, else from the credentials file.\n\nExample:\n  $ berth status')
    .action(async (flags: { json?: boolean }) => {
      const { output } = ctx;
      const credentials = resolveCredentials(ctx.env);
      const from = credentialSources(ctx.env);
      const grant = await apiClient(credentials).whoAmI();
      const status = { url: credentials.url, urlFrom: from.url, token: `${credentials.token.slice(0, 6)}…`, tokenFrom: from.token, ...grant };
      if (flags.json) return output.json(status);
      output.line(`API:   ${status.url}   (from ${status.urlFrom})`);
      output.line(`token: ${status.token}   (from ${status.tokenFrom})`);
      output.line(`as:    ${grant.name}: ${grant.readOnly ? 'reads' : 'reads and changes'} ${grant.app === null ? 'every app' : `the app ${grant.app} only`}`);
    });
}
