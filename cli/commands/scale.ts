import { Command } from 'commander';
import type { App, AutoscalePolicy, AutoscaleRequest } from '../../sdk/types.js';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { collectCount, scaleCounts } from '../process-flags.js';
import { instanceCount, positiveNumber, seconds, wholeSeconds } from '../flag-values.js';
import { DEFAULT_WAIT_SECONDS, waitForInstances } from '../rollout-watch.js';

interface ScaleFlags {
  wait: boolean;
  timeout: number;
  json?: boolean;
  min?: number;
  max?: number;
  target?: number;
  targetInFlight?: number;
  cooldownUp?: number;
  cooldownDown?: number;
  off?: boolean;
  type?: string;
}

export function scaleCommand(ctx: CliContext): Command {
  return new Command('scale')
    .description('Set how many instances of an app run (waits until they do), or let the scaler choose between --min and --max.')
    .argument('<name>', 'the app')
    .argument('[counts...]', 'how many web instances (0 stops it without deleting it), or TYPE=N per process type: web=3 worker=2', collectCount)
    .option('--min <n>', 'automatic scaling: fewest instances (1 or more)', instanceCount)
    .option('--max <n>', 'automatic scaling: most instances', instanceCount)
    .option('--target <cores>', 'automatic scaling: CPU per instance to aim for, in cores (default 0.6)', positiveNumber)
    .option('--target-in-flight <n>', 'automatic scaling: also aim for this many requests in flight per instance', positiveNumber)
    .option('--cooldown-up <seconds>', 'automatic scaling: no growth this long after a change (default 30)', wholeSeconds)
    .option('--cooldown-down <seconds>', 'automatic scaling: no shrinking this long after a change (default 120)', wholeSeconds)
    .option('--off', 'turn automatic scaling off (the app keeps the instances it has)')
    .option('--type <type>', 'automatic scaling: the process type it is about (default web), e.g. worker')
    .option('--no-wait', 'return at once, without waiting for the instances')
    .option('--timeout <seconds>', 'how long to wait', seconds, DEFAULT_WAIT_SECONDS)
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      '\nExamples:\n  $ berth scale shop 3\n  $ berth scale shop web=3 worker=2              # per process type (the Procfile\'s)\n  $ berth scale shop 0                          # stop it, keep its releases\n  $ berth scale shop --min 2 --max 6 --target 0.6 # berth scaler keeps it between 2 and 6\n  $ berth scale shop --type worker --min 1 --max 4 # its workers, on their CPU\n  $ berth scale shop --off                      # back to a fixed number\n  $ berth scale shop --type worker --off',
    )
    .action(async (name: string, words: string[] | undefined, flags: ScaleFlags) => {
      const { output } = ctx;
      const client = connect(ctx.env);
      const counts = words === undefined || words.length === 0 ? undefined : scaleCounts(words, name);
      const policyFlags = [flags.min, flags.max, flags.target, flags.targetInFlight, flags.cooldownUp, flags.cooldownDown].some((v) => v !== undefined);
      const modes = [counts !== undefined, policyFlags, flags.off === true].filter(Boolean).length;
      if (modes !== 1) throw new Error(`Give a number of instances, or --min/--max/--target, or --off: e.g. berth scale ${name} 3, or berth scale ${name} --min 1 --max 4.`);
      if (flags.type !== undefined && counts !== undefined) throw new Error(`--type is for automatic scaling: give counts per type as TYPE=N instead, e.g. berth scale ${name} ${flags.type}=2.`);
      const type = flags.type ?? 'web';
      const what = type === 'web' ? name : `${name}'s ${type}`;
      if (flags.off) {
        const app = await client.removeAutoscale(name, flags.type);
        if (flags.json) return output.json(app);
        return output.line(`${what}: automatic scaling off, ${wantedOf(app, type)} instance(s) wanted`);
      }
      if (policyFlags) {
        const current = policyOf(await client.getApp(name), type);
        const min = flags.min ?? current?.min;
        const max = flags.max ?? current?.max;
        if (min === undefined || max === undefined) throw new Error(`Give both --min and --max to turn automatic scaling on, e.g. berth scale ${name}${flags.type === undefined ? '' : ` --type ${flags.type}`} --min 1 --max 4.`);
        const policy: AutoscaleRequest = {
          ...(flags.type === undefined ? {} : { type: flags.type }),
          min,
          max,
          targetCpu: flags.target ?? current?.targetCpu,
          targetInFlight: flags.targetInFlight ?? current?.targetInFlight,
          cooldownUpSeconds: flags.cooldownUp ?? current?.cooldownUpSeconds,
          cooldownDownSeconds: flags.cooldownDown ?? current?.cooldownDownSeconds,
        };
        const app = await client.setAutoscale(name, policy);
        if (flags.json) return output.json(app);
        return output.line(`${what}: scales automatically, ${describePolicy(policyOf(app, type)!)} (now ${wantedOf(app, type)} wanted)`);
      }
      // `berth scale NAME 3` (web alone) stays the plain instances change it always was.
      const webOnly = Object.keys(counts!).length === 1 && counts!.web !== undefined;
      let app = await client.scaleApp(name, webOnly ? { instances: counts!.web } : { formation: counts! });
      if (flags.wait) app = await waitForInstances(client, output, name, { timeoutMs: flags.timeout * 1000 });
      if (flags.json) return output.json(app);
      output.line(`${name}: ${app.running}/${app.instances} running`);
    });
}

/** The policy of a process type: web's is `autoscale`, another type's its `autoscaleByType` entry. */
function policyOf(app: App, type: string): AutoscalePolicy | null {
  return type === 'web' ? app.autoscale : (app.autoscaleByType?.[type] ?? null);
}

/** Instances wanted of a process type (web's is `instances`; another type's its formation entry, 1 when none). */
function wantedOf(app: App, type: string): number {
  return type === 'web' ? app.instances : (app.formation?.[type] ?? 1);
}

/** One line for a policy, as `berth scale` and `berth info` show it. */
export function describePolicy(p: AutoscalePolicy): string {
  const targets = [`${p.targetCpu} CPU`, ...(p.targetInFlight === undefined ? [] : [`${p.targetInFlight} in flight`])].join(' or ');
  return `${p.min}-${p.max} instances, target ${targets} per instance, cool-down ${p.cooldownUpSeconds}s up / ${p.cooldownDownSeconds}s down`;
}
