import type { Readable } from 'node:stream';
import { Command } from 'commander';
import { resolveCredentials } from '../api-client.js';
import type { CliContext } from '../cli-context.js';

/**
 * `berth git:credential get`: git's credential helper protocol (gitcredentials(7)). For the
 * berth API's own scheme and host it answers the CLI's token as the password, so that the token
 * is read from berth's credentials at each push and never written into .git/config; for any
 * other host it answers nothing (git asks on). `store` and `erase` change nothing.
 */
export function gitCredentialCommand(ctx: CliContext): Command {
  return new Command('git:credential')
    .description('A git credential helper answering the berth token for the berth API (berth git:remote --add installs it).')
    .argument('[action]', 'what git asks: get, store or erase', 'get')
    .addHelpText('after', '\nGit runs it; to try it by hand:\n  $ printf "protocol=http\\nhost=127.0.0.1:7070\\n\\n" | berth git:credential get')
    .action(async (action: string) => {
      if (action !== 'get') return;
      const asked = parseCredentialRequest(await readAll(ctx.stdin));
      const credentials = resolveCredentials(ctx.env);
      const api = new URL(credentials.url);
      if (asked.protocol !== api.protocol.replace(/:$/, '') || asked.host !== api.host) return;
      ctx.output.line(`username=berth\npassword=${credentials.token}`);
    });
}

/** The `key=value` lines git sends, up to the first blank line. */
export function parseCredentialRequest(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') break;
    const at = line.indexOf('=');
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1).replace(/\r$/, '');
  }
  return out;
}

async function readAll(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}
