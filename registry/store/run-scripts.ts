import { defineScript } from './lua-scripts.js';

/** The Lua scripts of one-off runs and cron ticks (`scripts/<name>-<keys>.lua`), declared as script-declarations.ts declares the others. */

export const createRun = defineScript<number>()({
  name: 'createRun',
  keys: ['run', 'appRuns', 'pendingRuns'],
  args: ['id', 'app', 'release', 'command', 'interactive', 'detached', 'timeoutMs', 'cron', 'keep'],
});

export const claimRun = defineScript<number>()({
  name: 'claimRun',
  keys: ['pendingRuns', 'run', 'runLeases', 'epoch'],
  args: ['id', 'machine', 'leaseMs'],
});

export const renewRun = defineScript<0 | 1 | 2>()({
  name: 'renewRun',
  keys: ['run', 'runLeases'],
  args: ['machine', 'epoch', 'leaseMs', 'started'],
});

export const finishRun = defineScript<0 | 1>()({
  name: 'finishRun',
  keys: ['run', 'runLeases', 'runOutput'],
  args: ['machine', 'epoch', 'state', 'exitCode', 'signal', 'reason', 'keepMs'],
});

export const stopRun = defineScript<string>()({
  name: 'stopRun',
  keys: ['run', 'pendingRuns', 'runOutput'],
  args: ['reason', 'keepMs'],
});

export const reapRuns = defineScript<[string[], string[]]>()({
  name: 'reapRuns',
  keys: ['runLeases', 'pendingRuns'],
  args: ['runFormat', 'runOutputFormat', 'batch', 'keepMs', 'startTimeoutMs'],
});

export const fireCronTick = defineScript<0 | 1>()({
  name: 'fireCronTick',
  keys: ['tick', 'cron', 'run', 'appRuns', 'pendingRuns'],
  args: ['tickMs', 'tickTtlMs', 'runId', 'app', 'release', 'command', 'timeoutMs', 'cronId', 'keep'],
});

export const addCron = defineScript<number>()({
  name: 'addCron',
  keys: ['cron', 'appCrons', 'crons'],
  args: ['id', 'app', 'schedule', 'command', 'timeoutMs'],
});

export const removeCron = defineScript<0 | 1>()({
  name: 'removeCron',
  keys: ['cron', 'appCrons', 'crons'],
  args: ['id', 'app'],
});

export const RUN_SCRIPTS = [createRun, claimRun, renewRun, finishRun, stopRun, reapRuns, fireCronTick, addCron, removeCron] as const;
