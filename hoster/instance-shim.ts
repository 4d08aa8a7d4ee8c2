#!/usr/bin/env node
// One app instance's keeper, a process of its own: it runs the app and stops it before the
// hoster's lease could run out, even when the hoster is gone (killed, frozen, cut off), so an
// app never outlives its claim. A restarted hoster re-adopts it through its Unix socket.
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { oomKills } from './cgroup-limits.js';
import { onLines, send, type HosterToShim, type ShimSpec, type ShimToHoster } from './shim-protocol.js';

const MAX_LINE = 8 * 1024;
const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ShimSpec;
rmSync(process.argv[2]!, { force: true });

const now = () => performance.now();
// Counted from this process's start (performance.now() is 0 then), so the time Node took to
// boot does not stretch the lease.
let deadline = spec.leaseValidForMs - spec.stopGraceMs;
let stopping: 'stopped' | 'lease_deadline' | undefined;
const hosters = new Set<Socket>();

function log(line: string): void {
  try {
    appendFileSync(spec.logFile, `${new Date().toISOString()} [berth] ${line}\n`);
  } catch {
    // the log is best effort
  }
}

/**
 * What the app said and did before the hoster that spawned this shim connected, replayed to it
 * after the hello: an app that fails at once (a bad NODE_OPTIONS, a missing file) may print and
 * exit before then, and the hoster must hear that exit as a crash, with its lines, rather than
 * find no shim (which it would count as this machine's failure, not the release's).
 */
const backlog: ShimToHoster[] = [];
const MAX_BACKLOG = 1000;
/** How long an ended shim waits for the hoster's first connection: as long as the hoster tries. */
const FIRST_HOSTER_WAIT_MS = 10_000;
let helloed = false;
let finishWhenHelloed: (() => void) | undefined;

function broadcast(message: ShimToHoster): void {
  if (!helloed) {
    backlog.push(message);
    if (backlog.length > MAX_BACKLOG) backlog.shift();
  }
  for (const s of hosters) send(s, message);
}

const shell = 'shell' in spec.command;
const app = spawn(shell ? '/bin/sh' : (spec.command as { file: string }).file, shell ? ['-c', (spec.command as { shell: string }).shell] : (spec.command as { args: string[] }).args, {
  cwd: spec.cwd,
  env: spec.env,
  uid: spec.uid,
  gid: spec.gid,
  // Its own process group, so that stopping it reaches everything it started.
  detached: true,
  stdio: ['ignore', 'pipe', 'pipe'],
});

// The app joins its cgroup before it has done much: its children, forked later, follow it. (Node's
// spawn cannot do it between fork and exec; what the app allocates in its first moments is
// charged to the shim's cgroup instead, which the limit can spare.)
const oomKillsAtStart = readOomKills();
if (app.pid !== undefined) {
  for (const dir of spec.cgroups ?? []) {
    try {
      writeFileSync(join(dir, 'cgroup.procs'), String(app.pid));
    } catch (err) {
      log(`could not put the app in its cgroup ${dir} (${(err as Error).message}): stopping it, its limits would not hold`);
      process.kill(-app.pid, 'SIGKILL');
    }
  }
}

function readOomKills(): number {
  if (spec.oomFile === undefined) return 0;
  try {
    return oomKills(readFileSync(spec.oomFile, 'utf8'));
  } catch {
    return 0;
  }
}

function forward(stream: NodeJS.ReadableStream, s: 'out' | 'err'): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    partial += chunk;
    let end;
    while ((end = partial.indexOf('\n')) >= 0) {
      emit(partial.slice(0, end), s);
      partial = partial.slice(end + 1);
    }
    if (partial.length > MAX_LINE) {
      emit(partial, s);
      partial = '';
    }
  });
  stream.on('end', () => partial && emit(partial, s));
}

function emit(line: string, s: 'out' | 'err'): void {
  const l = line.slice(0, MAX_LINE);
  try {
    appendFileSync(spec.logFile, `${l}\n`);
  } catch {
    // the file is best effort; the hoster still gets the line
  }
  broadcast({ t: 'log', s, l });
}

forward(app.stdout!, 'out');
forward(app.stderr!, 'err');

function stopApp(why: 'stopped' | 'lease_deadline', graceMs: number): void {
  if (stopping !== undefined || app.exitCode !== null || app.signalCode !== null) return;
  stopping = why;
  log(why === 'lease_deadline' ? 'lease not renewed in time: stopping the app before it could be claimed elsewhere' : 'stop requested by the hoster');
  killGroup('SIGTERM');
  setTimeout(() => killGroup('SIGKILL'), graceMs).unref();
}

function killGroup(signal: NodeJS.Signals): void {
  try {
    if (app.pid !== undefined) process.kill(-app.pid, signal);
  } catch {
    // already gone
  }
}

app.once('error', (err) => {
  log(`cannot start the app: ${err.message}`);
  broadcast({ t: 'exit', code: 127, signal: null, why: 'exited' });
  finish(127);
});

/** How long after the app's exit its pipes may still be read before the exit is reported anyway. */
const LAST_OUTPUT_MS = 1000;
let reported = false;

app.once('exit', (code, signal) => {
  // Children the app left behind in its group go with it.
  killGroup('SIGKILL');
  // Its last lines may still be in the pipes ('exit' can come before them): the hoster hears of
  // the exit after them ('close'), or after LAST_OUTPUT_MS should something still hold a pipe.
  const report = () => {
    if (reported) return;
    reported = true;
    const why = stopping ?? 'exited';
    const oom = readOomKills() > oomKillsAtStart;
    log(`app exited (${signal ?? `code ${code}`}; ${why}${oom ? '; over its memory limit: killed by the kernel' : ''})`);
    broadcast({ t: 'exit', code, signal, why, ...(oom ? { oom } : {}) });
    finish(0);
  };
  app.once('close', report);
  setTimeout(report, LAST_OUTPUT_MS).unref();
});

function finish(code: number): void {
  if (!helloed) {
    const timer = setTimeout(() => finishNow(code), FIRST_HOSTER_WAIT_MS);
    finishWhenHelloed = () => {
      clearTimeout(timer);
      finishNow(code);
    };
    return;
  }
  finishNow(code);
}

function finishNow(code: number): void {
  clearInterval(watchdog);
  server.close();
  for (const s of hosters) s.end();
  rmSync(spec.socketPath, { force: true });
  setTimeout(() => process.exit(code), 50).unref();
}

// Measured on the monotonic clock: a wall-clock jump cannot stretch a lease.
const watchdog = setInterval(() => {
  if (now() >= deadline) stopApp('lease_deadline', spec.stopGraceMs);
}, 50);

const server = createServer((socket) => {
  hosters.add(socket);
  socket.on('close', () => hosters.delete(socket));
  socket.on('error', () => socket.destroy());
  send(socket, { t: 'hello', instance: spec.instance, service: spec.service, epoch: spec.epoch, port: spec.port, pid: process.pid, appPid: app.pid ?? 0 });
  if (!helloed) {
    helloed = true;
    for (const m of backlog.splice(0)) send(socket, m);
    finishWhenHelloed?.();
  }
  onLines<HosterToShim>(socket, (m) => {
    if (m.t === 'lease' && typeof m.validForMs === 'number') deadline = now() + m.validForMs - spec.stopGraceMs;
    else if (m.t === 'stop') stopApp('stopped', typeof m.graceMs === 'number' ? m.graceMs : spec.stopGraceMs);
  });
});
// Should the shim itself fail, the app must not run on without a deadline: take it down too.
function die(err: unknown): void {
  log(`the shim failed (${err instanceof Error ? err.message : String(err)}): stopping the app`);
  killGroup('SIGKILL');
  process.exit(1);
}
server.on('error', die);
process.on('uncaughtException', die);
rmSync(spec.socketPath, { force: true });
server.listen(spec.socketPath);

// The shim is not the app: signals for it mean "stop the app".
process.on('SIGTERM', () => stopApp('stopped', spec.stopGraceMs));
process.on('SIGINT', () => stopApp('stopped', spec.stopGraceMs));
process.on('SIGHUP', () => undefined);
