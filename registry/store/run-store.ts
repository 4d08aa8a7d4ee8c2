import { randomBytes } from 'node:crypto';
import { BerthError } from '../../common/errors.js';
import type { RedisClient } from '../../common/redis-connection.js';
import type { Run, RunOutput, RunState } from '../../sdk/types.js';
import type { RegistryKeys } from './keys.js';
import { redisCall } from './lua-scripts.js';
import { runKeys, type RunKeys } from './run-keys.js';
import { claimRun, createRun, finishRun, reapRuns, renewRun, stopRun } from './run-scripts.js';

/** A run's time limit when none is asked for: 1 h. */
export const DEFAULT_RUN_TIMEOUT_MS = 60 * 60_000;
/** Longest time limit a run may ask for: 1 day. */
export const MAX_RUN_TIMEOUT_MS = 24 * 60 * 60_000;
/** Runs of one app kept in its list. */
export const RUNS_KEPT = 100;
/** How long a finished run (and its output stream) is kept: 1 day. */
export const FINISHED_RUN_KEPT_MS = 24 * 60 * 60_000;
/** Output entries kept per run (the app's log keeps its lines too). */
const OUTPUT_KEPT = 10_000;

export interface NewRun {
  app: string;
  release: number;
  command: readonly string[];
  interactive: boolean;
  detached: boolean;
  timeoutMs: number;
  cron?: string;
}

/** A hoster's claim on a run, as the scripts check it. */
export interface RunHolder {
  id: string;
  machine: string;
  epoch: number;
}

export interface RunEnd {
  state: Extract<RunState, 'exited' | 'failed' | 'stopped'>;
  exitCode: number | null;
  signal: string | null;
  reason: string | null;
}

/** One piece of a run's stream: output, an interactive run's bytes, or its end. */
export interface RunStreamEntry {
  id: string;
  stream: 'out' | 'err' | 'tty' | 'exit';
  data: Buffer;
}

/** Interactive input: keys, or a new window size. */
export type RunInput = { kind: 'keys'; data: Buffer } | { kind: 'resize'; cols: number; rows: number };

/**
 * One-off runs in Redis: a run is created pending, claimed by one hoster (a lease with a
 * fencing epoch, as instance claims), renewed while it runs, and finished once; its output goes
 * to a stream of its own that the CLI follows. Every change that can race is one script.
 */
export class RunStore {
  readonly keys: RunKeys;

  constructor(
    private readonly redis: RedisClient,
    registry: RegistryKeys,
  ) {
    this.keys = runKeys(registry);
  }

  async create(input: NewRun): Promise<Run> {
    const id = randomBytes(8).toString('hex');
    await createRun.run(this.redis, {
      keys: { run: this.keys.run(id), appRuns: this.keys.appRuns(input.app), pendingRuns: this.keys.pendingRuns },
      args: {
        id,
        app: input.app,
        release: input.release,
        command: JSON.stringify(input.command),
        interactive: input.interactive ? '1' : '0',
        detached: input.detached ? '1' : '0',
        timeoutMs: input.timeoutMs,
        cron: input.cron ?? '',
        keep: RUNS_KEPT,
      },
    });
    return (await this.get(id))!;
  }

  async get(id: string): Promise<Run | undefined> {
    const flat = await redisCall(() => this.redis.hgetall(this.keys.run(id)));
    return flat.id === undefined ? undefined : runOf(flat);
  }

  /** The app's runs, newest first. */
  async list(app: string, limit = RUNS_KEPT): Promise<Run[]> {
    const ids = await redisCall(() => this.redis.zrevrange(this.keys.appRuns(app), 0, limit - 1));
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.run(id));
    const replies = (await redisCall(() => pipeline.exec())) ?? [];
    return replies.map(([, flat]) => flat as Record<string, string>).filter((flat) => flat.id !== undefined).map(runOf);
  }

  /** Ids of the runs waiting for a hoster, oldest first. */
  pending(limit = 32): Promise<string[]> {
    return redisCall(() => this.redis.zrange(this.keys.pendingRuns, 0, limit - 1));
  }

  /** Claims a pending run for `machine`; its epoch, or undefined when another hoster took it first. */
  async claim(id: string, machine: string, leaseMs: number): Promise<number | undefined> {
    const epoch = await claimRun.run(this.redis, {
      keys: { pendingRuns: this.keys.pendingRuns, run: this.keys.run(id), runLeases: this.keys.runLeases, epoch: this.keys.epoch },
      args: { id, machine, leaseMs },
    });
    return epoch > 0 ? epoch : undefined;
  }

  /** Renews the holder's lease: 'lost' (stop now), 'ok', or 'stop' (asked to stop). */
  async renew(holder: RunHolder, leaseMs: number, started = false): Promise<'lost' | 'ok' | 'stop'> {
    const reply = await renewRun.run(this.redis, {
      keys: { run: this.keys.run(holder.id), runLeases: this.keys.runLeases },
      args: { machine: holder.machine, epoch: holder.epoch, leaseMs, started: started ? '1' : '0' },
    });
    return reply === 0 ? 'lost' : reply === 2 ? 'stop' : 'ok';
  }

  /** Records the run's end (and appends it to its output); false when the claim was no longer the holder's. */
  async finish(holder: RunHolder, end: RunEnd): Promise<boolean> {
    const reply = await finishRun.run(this.redis, {
      keys: { run: this.keys.run(holder.id), runLeases: this.keys.runLeases, runOutput: this.keys.runOutput(holder.id) },
      args: {
        machine: holder.machine,
        epoch: holder.epoch,
        state: end.state,
        exitCode: end.exitCode ?? '',
        signal: end.signal ?? '',
        reason: end.reason ?? '',
        keepMs: FINISHED_RUN_KEPT_MS,
      },
    });
    return reply === 1;
  }

  /** Asks the run to stop: 'stopped' (it had not started), 'stopping', the state it ended in, or 'missing'. */
  stop(id: string, reason: string): Promise<string> {
    return stopRun.run(this.redis, {
      keys: { run: this.keys.run(id), pendingRuns: this.keys.pendingRuns, runOutput: this.keys.runOutput(id) },
      args: { reason, keepMs: FINISHED_RUN_KEPT_MS },
    });
  }

  /**
   * Ends as lost the runs whose lease expired, and as failed (not_started) the runs pending for
   * longer than `startTimeoutMs` (0: never); their ids.
   */
  async reap(startTimeoutMs: number, batch = 100): Promise<{ lost: string[]; notStarted: string[] }> {
    const [lost, notStarted] = await reapRuns.run(this.redis, {
      keys: { runLeases: this.keys.runLeases, pendingRuns: this.keys.pendingRuns },
      args: { runFormat: this.keys.formats.run, runOutputFormat: this.keys.formats.runOutput, batch, keepMs: FINISHED_RUN_KEPT_MS, startTimeoutMs },
    });
    return { lost, notStarted };
  }

  /** Appends output of the run (the hoster, batched by the caller). */
  async appendOutput(id: string, entries: ReadonlyArray<{ stream: 'out' | 'err' | 'tty'; data: Buffer | string }>): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const e of entries) pipeline.xadd(this.keys.runOutput(id), 'MAXLEN', '~', OUTPUT_KEPT, '*', 's', e.stream, 'd', e.data);
    pipeline.pexpire(this.keys.runOutput(id), FINISHED_RUN_KEPT_MS + MAX_RUN_TIMEOUT_MS);
    const replies = (await redisCall(() => pipeline.exec())) ?? [];
    for (const [err] of replies) if (err) throw err;
  }

  /** The run's stream after `from` ('0' for all of it), waiting up to `blockMs` (use a blocking connection, and 0 not to wait). */
  async readOutput(redis: RedisClient, id: string, from: string, blockMs: number): Promise<RunStreamEntry[]> {
    const args: (string | number)[] = ['COUNT', 500];
    if (blockMs > 0) args.push('BLOCK', blockMs);
    const reply = (await (redis as unknown as { xreadBuffer: (...a: (string | number)[]) => Promise<unknown> }).xreadBuffer(...args, 'STREAMS', this.keys.runOutput(id), from)) as
      | [Buffer, [Buffer, Buffer[]][]][]
      | null;
    return (reply?.[0]?.[1] ?? []).map(([entryId, fields]) => {
      const f = fieldsOf(fields);
      const stream = f.s?.toString() ?? 'out';
      return { id: entryId.toString(), stream: stream === 'err' || stream === 'tty' || stream === 'exit' ? stream : 'out', data: f.d ?? Buffer.alloc(0) };
    });
  }

  /** Sends input to an interactive run (the registry, from the CLI's WebSocket). */
  async sendInput(id: string, input: RunInput): Promise<void> {
    const fields = input.kind === 'keys' ? ['k', input.data] : ['r', `${input.cols}x${input.rows}`];
    await redisCall(async () => {
      await this.redis.xadd(this.keys.runInput(id), 'MAXLEN', '~', OUTPUT_KEPT, '*', ...(fields as [string, Buffer | string]));
      await this.redis.pexpire(this.keys.runInput(id), MAX_RUN_TIMEOUT_MS);
    });
  }

  /** Input after `from`, waiting up to `blockMs` (the hoster, on a blocking connection). */
  async readInput(redis: RedisClient, id: string, from: string, blockMs: number): Promise<{ id: string; input: RunInput }[]> {
    const reply = (await (redis as unknown as { xreadBuffer: (...a: (string | number)[]) => Promise<unknown> }).xreadBuffer('COUNT', 500, 'BLOCK', blockMs, 'STREAMS', this.keys.runInput(id), from)) as
      | [Buffer, [Buffer, Buffer[]][]][]
      | null;
    const out: { id: string; input: RunInput }[] = [];
    for (const [entryId, fields] of reply?.[0]?.[1] ?? []) {
      const f = fieldsOf(fields);
      if (f.k !== undefined) out.push({ id: entryId.toString(), input: { kind: 'keys', data: f.k } });
      else if (f.r !== undefined) {
        const [cols, rows] = f.r.toString().split('x').map(Number);
        if (cols! > 0 && rows! > 0) out.push({ id: entryId.toString(), input: { kind: 'resize', cols: cols!, rows: rows! } });
      }
    }
    return out;
  }
}

/** A stream entry's end, as the CLI's NDJSON carries it. */
export function runOutputOf(entry: RunStreamEntry): RunOutput {
  if (entry.stream === 'exit') {
    const end = JSON.parse(entry.data.toString()) as Record<string, string>;
    return {
      exit: {
        state: end.state as RunState,
        exitCode: end.exitCode === '' || end.exitCode === undefined ? null : Number(end.exitCode),
        signal: end.signal || null,
        reason: end.reason || null,
      },
    };
  }
  return { stream: entry.stream === 'err' ? 'err' : 'out', data: entry.data.toString() };
}

function fieldsOf(fields: Buffer[]): Record<string, Buffer> {
  const f: Record<string, Buffer> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!.toString()] = fields[i + 1]!;
  return f;
}

function runOf(f: Record<string, string>): Run {
  const num = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));
  let command: string[] = [];
  try {
    command = JSON.parse(f.command ?? '[]') as string[];
  } catch {
    throw new BerthError('internal_error', `run ${f.id} holds a command that is not JSON`);
  }
  return {
    id: f.id!,
    app: f.app ?? '',
    release: Number(f.release ?? 0),
    command,
    interactive: f.interactive === '1',
    detached: f.detached === '1',
    timeoutMs: Number(f.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS),
    state: (f.state ?? 'pending') as RunState,
    createdAt: Number(f.createdAt ?? 0),
    machine: f.machine || null,
    startedAt: num(f.startedAt),
    finishedAt: num(f.finishedAt),
    exitCode: num(f.exitCode),
    signal: f.signal || null,
    reason: f.reason || null,
    cron: f.cron || null,
    cronTick: num(f.cronTick),
  };
}
