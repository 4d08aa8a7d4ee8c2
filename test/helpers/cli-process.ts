import { spawn } from 'node:child_process';
import { CLI_MAIN } from './daemon-process.js';

/** How one run of the `berth` command ended. */
export interface CliRun {
  /** Exit code, or the signal's name. */
  code: number | string;
  stdout: string;
  stderr: string;
}

/**
 * Runs the compiled `berth` command to completion as a user would (`node dist/cli/main.js
 * ...args`), with only `env` (and PATH) in its environment and stdin closed; kills it and
 * fails if it has not finished within `deadlineMs`.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv, options: { deadlineMs?: number; cwd?: string } = {}): Promise<CliRun> {
  const deadlineMs = options.deadlineMs ?? 30_000;
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd: options.cwd, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`berth ${args.join(' ')} did not finish within ${deadlineMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, deadlineMs);
    child.once('error', reject);
    // 'close', not 'exit': all of the output has been read by then.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    });
  });
}
