import { BerthClient } from '../sdk/berth-client.js';
import { credentialsPath, readCredentials, type Credentials } from './credentials.js';

/**
 * Where the API is and the token for it: `$BERTH_URL` and `$BERTH_TOKEN` first, else the
 * credentials file that `berth up` and `berth login` write. Each is looked up on its own, so
 * that a token in the environment can go with the URL in the file.
 */
export function resolveCredentials(env: NodeJS.ProcessEnv): Credentials {
  const path = credentialsPath(env);
  const saved = readCredentials(path);
  const url = nonEmpty(env.BERTH_URL) ?? saved?.url;
  const token = nonEmpty(env.BERTH_TOKEN) ?? saved?.token;
  if (url === undefined || token === undefined) {
    const missing = url === undefined && token === undefined ? 'No berth API is configured' : `No berth API ${url === undefined ? 'URL' : 'token'} is configured`;
    throw new Error(
      `${missing} (neither BERTH_URL/BERTH_TOKEN nor ${path} has it). Run \`berth up\` to start berth on this machine, or \`berth login --url URL --token TOKEN\` to use a running one.`,
    );
  }
  return { url, token };
}

/** A client of the API. Who made a change is the token's name: the API records that. */
export function apiClient(credentials: Credentials): BerthClient {
  return new BerthClient({ url: credentials.url, token: credentials.token });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Where the URL and the token came from, said by --verbose and berth status. */
export function credentialSources(env: NodeJS.ProcessEnv): { url: string; token: string } {
  const file = credentialsPath(env);
  return { url: nonEmpty(env.BERTH_URL) ? 'BERTH_URL' : file, token: nonEmpty(env.BERTH_TOKEN) ? 'BERTH_TOKEN' : file };
}

/**
 * The client for a command: credentials from the environment or the file, else a clear error.
 * With --verbose (BERTH_VERBOSE=1) it says on stderr which API it uses, and why.
 */
export function connect(env: NodeJS.ProcessEnv): BerthClient {
  const credentials = resolveCredentials(env);
  if (env.BERTH_VERBOSE === '1') {
    const from = credentialSources(env);
    process.stderr.write(`berth: API ${credentials.url} (from ${from.url}), token ${credentials.token.slice(0, 6)}… (from ${from.token})\n`);
  }
  return apiClient(credentials);
}
