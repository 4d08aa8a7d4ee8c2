import { Command, InvalidArgumentError } from 'commander';
import { apiClient } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { credentialsPath, writeCredentials } from '../credentials.js';

export function loginCommand(ctx: CliContext): Command {
  return new Command('login')
    .description('Save the URL and token of a berth API for the other commands, after checking that they work.')
    .requiredOption('--url <url>', 'the registry API, e.g. https://berth.example.com:7070', apiUrl)
    .requiredOption('--token <token>', 'an API token (one of the registry\'s BERTH_TOKEN)')
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      `
The credentials go to $BERTH_HOME/credentials.json (default ~/.config/berth), readable by you
only; berth up writes the same file for the berth it starts. BERTH_URL and BERTH_TOKEN, when
set, take precedence over the file.

Example:
  $ berth login --url http://10.0.0.5:7070 --token "$(cat token.txt)"`,
    )
    .action(async (flags: { url: string; token: string; json?: boolean }) => {
      const credentials = { url: flags.url, token: flags.token };
      const client = apiClient(credentials);
      await client.health();
      // /healthz needs no token: an authenticated call proves the token too.
      await client.listMachines();
      const path = credentialsPath(ctx.env);
      writeCredentials(path, credentials);
      if (flags.json) ctx.output.json({ url: flags.url, credentials: path });
      else ctx.output.line(`logged in to ${flags.url} (saved in ${path})`);
    });
}

function apiUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError('Expected a URL like http://127.0.0.1:7070.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('Expected an http:// or https:// URL.');
  return text.replace(/\/+$/, '');
}
