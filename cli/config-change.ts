import { Command } from 'commander';
import { connect } from './api-client.js';
import { JSON_FLAG, type CliContext } from './cli-context.js';
import { seconds } from './flag-values.js';
import { DEFAULT_WAIT_SECONDS, waitForRelease } from './rollout-watch.js';

export interface ConfigChangeFlags {
  wait: boolean;
  timeout: number;
  json?: boolean;
}

/** The flags of config:set and config:unset. */
export function addConfigChangeFlags(command: Command): Command {
  return command
    .option('--no-wait', 'return once the release is made, without waiting for it to run')
    .option('--timeout <seconds>', 'how long to wait', seconds, DEFAULT_WAIT_SECONDS)
    .option(...JSON_FLAG);
}

/** Sets and unsets variables as one new release, waits until it runs, and says what changed. */
export async function changeConfig(ctx: CliContext, name: string, change: { set?: Record<string, string>; unset?: string[] }, flags: ConfigChangeFlags): Promise<void> {
  const { output } = ctx;
  const client = connect(ctx.env);
  let release = await client.setConfig(name, change);
  output.note(`${name} v${release.version}: ${release.description}`);
  if (flags.wait) {
    await waitForRelease(client, output, name, release.version, { timeoutMs: flags.timeout * 1000 });
    release = (await client.listReleases(name)).find((r) => r.version === release.version) ?? release;
  }
  if (flags.json) return output.json(release);
  const what = [...Object.keys(change.set ?? {}).map((k) => `set ${k}`), ...(change.unset ?? []).map((k) => `unset ${k}`)].join(', ');
  output.line(`${name} v${release.version} ${output.status(release.status)}: ${what}`);
}
