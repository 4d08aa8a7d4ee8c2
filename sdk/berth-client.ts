import { BerthApiError } from './api-error.js';
import type { Attributes, ClaimRequest, Instance, Machine, RegistryEvent } from './types.js';

export interface BerthClientOptions {
  /** The registry API's base URL, e.g. http://127.0.0.1:7070 */
  url: string;
  token: string;
  /** Per-attempt timeout. @default 10000 */
  timeoutMs?: number;
  /** Extra attempts for calls that are safe to repeat. @default 3 */
  retries?: number;
  /** Injected fetch (for tests or old runtimes). @default globalThis.fetch */
  fetch?: typeof fetch;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRIES = 3;

interface CallOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Safe to send again after a network failure or a 503. */
  idempotent: boolean;
}

/**
 * A typed client of the berth REST API, for Node and browsers. Calls that are safe to repeat
 * are retried with backoff on network failures and 503s; a claim is made safe to repeat by a
 * request id that the registry remembers.
 */
export class BerthClient {
  private readonly base: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: BerthClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = options.retries ?? DEFAULT_RETRIES;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** RegisterInstance: records a new unclaimed instance of `service`. */
  registerInstance(service: string, input: { path: string; attributes?: Attributes; files?: string }): Promise<Instance> {
    return this.call('POST', `/v1/services/${enc(service)}/instances`, { body: input, idempotent: false });
  }

  /** UnregisterInstance by id. */
  unregisterInstance(service: string, id: string): Promise<Instance> {
    return this.call('DELETE', `/v1/services/${enc(service)}/instances/${enc(id)}`, { idempotent: false });
  }

  /** UnregisterInstance(service, path, [host], [port]): removes one matching instance. */
  unregisterMatching(service: string, match: { path: string; host?: string; port?: number }): Promise<Instance> {
    return this.call('DELETE', `/v1/services/${enc(service)}/instances`, { query: match, idempotent: false });
  }

  /** GetServiceInfo: every instance of `service`. */
  async getServiceInfo(service: string): Promise<Instance[]> {
    const out = await this.call<{ instances: Instance[] }>('GET', `/v1/services/${enc(service)}`, { idempotent: true });
    return out.instances;
  }

  getInstance(service: string, id: string): Promise<Instance> {
    return this.call('GET', `/v1/services/${enc(service)}/instances/${enc(id)}`, { idempotent: true });
  }

  /** ListServices: names of services with instances. */
  async listServices(): Promise<string[]> {
    return (await this.call<{ services: string[] }>('GET', '/v1/services', { idempotent: true })).services;
  }

  /** ListUnclaimedServices: a service name once per unclaimed instance. */
  async listUnclaimedServices(): Promise<string[]> {
    return (await this.call<{ services: string[] }>('GET', '/v1/unclaimed', { idempotent: true })).services;
  }

  /** ClaimService: claims one unclaimed instance; `nothing_to_claim` (409) when there is none. */
  claimService(service: string, claim: ClaimRequest): Promise<Instance> {
    const body = { ...claim, requestId: claim.requestId ?? newRequestId() };
    return this.call('POST', `/v1/services/${enc(service)}/claim`, { body, idempotent: true });
  }

  /** Reports the holder's instance as running (routable). Safe to repeat. */
  markRunning(service: string, id: string, holder: { machine: string; epoch: number; pid: number }): Promise<Instance> {
    return this.call('POST', `/v1/services/${enc(service)}/instances/${enc(id)}/running`, { body: holder, idempotent: true });
  }

  /** Extends the holder's lease; `stale_epoch` when the claim is gone. Safe to repeat. */
  async renewLease(service: string, id: string, holder: { machine: string; epoch: number; leaseMs?: number }): Promise<number> {
    const out = await this.call<{ leaseUntil: number }>('POST', `/v1/services/${enc(service)}/instances/${enc(id)}/renew`, {
      body: holder,
      idempotent: true,
    });
    return out.leaseUntil;
  }

  /** Gives the holder's claim back with a reason. */
  releaseInstance(service: string, id: string, holder: { machine: string; epoch: number; reason: string }): Promise<Instance> {
    return this.call('POST', `/v1/services/${enc(service)}/instances/${enc(id)}/release`, { body: holder, idempotent: false });
  }

  async listMachines(): Promise<Machine[]> {
    return (await this.call<{ machines: Machine[] }>('GET', '/v1/machines', { idempotent: true })).machines;
  }

  async health(): Promise<{ status: string }> {
    return this.call('GET', '/healthz', { idempotent: true });
  }

  /**
   * Follows the event stream (server-sent events) from `from`, or from now. Yields events;
   * a `resync` event means events were lost: reload full state, then keep reading.
   */
  async *events(options: { from?: string; signal?: AbortSignal } = {}): AsyncGenerator<RegistryEvent | { kind: 'resync'; from: string }> {
    const query = options.from !== undefined ? `?from=${enc(options.from)}` : '';
    const res = await this.fetchImpl(`${this.base}/v1/events${query}`, {
      headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
      signal: options.signal,
    });
    if (!res.ok || res.body === null) throw await errorFrom(res);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) kind = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data === '' || kind === 'ready') continue;
        if (kind === 'resync') yield { kind: 'resync', from: (JSON.parse(data) as { from: string }).from };
        else yield JSON.parse(data) as RegistryEvent;
      }
    }
  }

  private async call<T>(method: string, path: string, options: CallOptions): Promise<T> {
    let url = `${this.base}${path}`;
    if (options.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(options.query)) if (v !== undefined) q.set(k, String(v));
      const s = q.toString();
      if (s) url += `?${s}`;
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const attempts = options.idempotent ? this.retries + 1 : 1;
    let lastError: BerthApiError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await delay(Math.min(100 * 2 ** attempt, 2000) * (0.5 + Math.random() / 2));
      let res: Response;
      try {
        res = await this.fetchImpl(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (err) {
        lastError = new BerthApiError('network_error', 0, `Cannot reach the berth API at ${this.base}: ${describe(err)}. Check BERTH_URL and that the registry runs.`, { cause: err });
        continue;
      }
      if (res.ok) return (await res.json()) as T;
      lastError = await errorFrom(res);
      if (res.status !== 503) break;
    }
    throw lastError!;
  }
}

async function errorFrom(res: Response): Promise<BerthApiError> {
  const text = await res.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') {
      return new BerthApiError(parsed.error.code, res.status, String(parsed.error.message ?? parsed.error.code));
    }
  } catch {
    // not JSON: fall through
  }
  return new BerthApiError('http_error', res.status, `The berth API answered ${res.status} ${res.statusText}: ${text.slice(0, 200)}`);
}

function newRequestId(): string {
  return globalThis.crypto.randomUUID().replace(/-/g, '');
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
