import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** What the CLI needs to reach the API: written by `berth up` (and later `berth login`). */
export interface Credentials {
  url: string;
  token: string;
}

/** `$BERTH_HOME/credentials.json`, else `~/.config/berth/credentials.json`. */
export function credentialsPath(env: NodeJS.ProcessEnv): string {
  const home = env.BERTH_HOME ? env.BERTH_HOME : join(homedir(), '.config', 'berth');
  return join(home, 'credentials.json');
}

export function writeCredentials(path: string, credentials: Credentials): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function readCredentials(path: string): Credentials | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Credentials>;
    return typeof parsed.url === 'string' && typeof parsed.token === 'string' ? { url: parsed.url, token: parsed.token } : undefined;
  } catch {
    return undefined;
  }
}
