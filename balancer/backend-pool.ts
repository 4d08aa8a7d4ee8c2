import { request } from 'node:http';
import { DRAINING_HEADER, UpstreamHealth, type AttemptBook } from '../forward/index.js';

/** A proxy that said it drains is checked this often until one answers healthy there again (its restart). */
const DRAINING_CHECK_MS = 250;

/** One machine's proxy, as the balancer sees it. */
export interface Backend {
  url: string;
  host: string;
  port: number;
  /** `http://host:port` (URL.origin: an IPv6 address keeps its brackets), what requests are dispatched to. */
  origin: string;
  /** The machine it belongs to, when known from the registry (for route-aware choice). */
  machine: string | null;
  /** Where it came from: the static list, the registry, or both. */
  sources: Set<'static' | 'registry'>;
  /** Last active health check result (false from when it says it is draining, see draining()). */
  healthy: boolean;
  /**
   * It said it is draining (a proxy stopping), and no health check passed since: never chosen,
   * not even when no other is healthy (its listener may close under a new connection); requests
   * wait for it instead, as for a proxy that refuses (see BalancerForwarder).
   */
  draining: boolean;
  /** Attempts sent to it, and refused connections (in flight and set-asides are the pool's health model's). */
  requests: number;
  errors: number;
}

export interface BackendPoolOptions {
  /** Active health checks of each proxy's /_berth/health this often. @default 2000 */
  healthIntervalMs?: number;
  /** Never eject more than this share of backends at once (the rest may be fine). @default 0.5 */
  maxEjectedShare?: number;
}

/**
 * The proxies the balancer spreads over: a static list and/or the live machines of the
 * registry. Active health checks decide who is healthy; connection failures eject a backend
 * for a while (doubling: forward's health model), but never more than a bounded share at
 * once, and recovery re-admits it.
 */
export class BackendPool implements AttemptBook<Backend> {
  /** Requests in flight and ejections (set-asides) of each backend. */
  readonly health = new UpstreamHealth<Backend>({ firstSetAsideMs: 1000, maxSetAsideMs: 30_000 });
  private readonly byUrl = new Map<string, Backend>();
  private timer: NodeJS.Timeout | undefined;
  private drainingTimer: NodeJS.Timeout | undefined;
  private readonly checking = new Set<Backend>();
  private closed = false;
  private readonly healthIntervalMs: number;
  private readonly maxEjectedShare: number;

  constructor(options: BackendPoolOptions = {}) {
    this.healthIntervalMs = options.healthIntervalMs ?? 2000;
    this.maxEjectedShare = options.maxEjectedShare ?? 0.5;
  }

  get all(): Backend[] {
    return [...this.byUrl.values()];
  }

  /** Replaces the backends of one source (others keep theirs). */
  setSource(source: 'static' | 'registry', entries: { url: string; machine: string | null }[]): void {
    const wanted = new Map(entries.map((e) => [normalize(e.url), e]));
    for (const [url, b] of this.byUrl) {
      if (b.sources.has(source) && !wanted.has(url)) {
        b.sources.delete(source);
        if (b.sources.size === 0) this.byUrl.delete(url);
      }
    }
    for (const [url, e] of wanted) {
      let b = this.byUrl.get(url);
      if (b === undefined) {
        const u = new URL(url);
        b = { url, host: u.hostname, port: Number(u.port || 80), origin: u.origin, machine: e.machine, sources: new Set(), healthy: true, draining: false, requests: 0, errors: 0 };
        this.byUrl.set(url, b);
      }
      b.sources.add(source);
      if (e.machine !== null) b.machine = e.machine;
    }
  }

  byMachine(machine: string): Backend | undefined {
    for (const b of this.byUrl.values()) if (b.machine === machine) return b;
    return undefined;
  }

  usable(b: Backend, now: number): boolean {
    return b.healthy && this.health.usable(b, now);
  }

  /** Ejected for this long from now (0: not ejected). */
  ejectedForMs(b: Backend, now: number): number {
    return Math.max(0, this.health.of(b).setAsideUntil - now);
  }

  started(b: Backend): void {
    b.requests++;
    this.health.started(b);
  }

  answered(b: Backend): void {
    this.health.answered(b);
  }

  finished(b: Backend): void {
    this.health.finished(b);
  }

  /**
   * It said it is draining: unhealthy and never chosen until a health check passes again (its
   * own says 503 while it drains; a restarted one 200), checked every DRAINING_CHECK_MS till
   * then. True when it was not known to drain until now.
   */
  draining(b: Backend): boolean {
    b.healthy = false;
    if (b.draining) return false;
    b.draining = true;
    this.checkDrainingSoon();
    return true;
  }

  /** Some proxy drains (and none answered healthy there since): a request may wait for it. */
  anyDraining(): boolean {
    for (const b of this.byUrl.values()) if (b.draining) return true;
    return false;
  }

  /** A connection to it failed: eject it for a while, unless too many are ejected already. */
  refused(b: Backend, now: number, code: string): void {
    b.errors++;
    const ejected = this.all.filter((x) => this.health.of(x).setAsideUntil > now).length;
    const eject = (ejected + 1) / Math.max(1, this.byUrl.size) <= this.maxEjectedShare || this.byUrl.size === 1;
    this.health.failed(b, now, `connection failed (${code})`, eject);
  }

  startHealthChecks(): void {
    const tick = async () => {
      await Promise.all(this.all.map((b) => this.check(b)));
      this.timer = setTimeout(() => void tick(), this.healthIntervalMs);
      this.timer.unref();
    };
    void tick();
  }

  close(): void {
    clearTimeout(this.timer);
    clearTimeout(this.drainingTimer);
    this.closed = true;
  }

  /** Checks the draining proxies often, so that requests held for one go as soon as it is back. */
  private checkDrainingSoon(): void {
    if (this.drainingTimer !== undefined || this.closed) return;
    this.drainingTimer = setTimeout(() => {
      this.drainingTimer = undefined;
      const draining = this.all.filter((b) => b.draining);
      if (draining.length === 0) return;
      void Promise.all(draining.map((b) => this.check(b))).then(() => this.checkDrainingSoon());
    }, DRAINING_CHECK_MS);
    this.drainingTimer.unref();
  }

  private check(b: Backend): Promise<void> {
    // One check of a backend at a time (the regular round and the draining one overlap).
    if (this.checking.has(b)) return Promise.resolve();
    this.checking.add(b);
    return new Promise<void>((resolve) => {
      const req = request({ host: b.host, port: b.port, path: '/_berth/health', timeout: Math.min(2000, this.healthIntervalMs), agent: false }, (res) => {
        res.resume();
        const ok = res.statusCode === 200 && res.headers[DRAINING_HEADER] === undefined;
        if (ok && !b.healthy) this.health.answered(b);
        b.healthy = ok;
        if (ok) b.draining = false;
        else if (res.headers[DRAINING_HEADER] !== undefined && !b.draining) {
          b.draining = true;
          this.checkDrainingSoon();
        }
        resolve();
      });
      req.once('timeout', () => req.destroy());
      req.once('error', () => {
        b.healthy = false;
        resolve();
      });
      req.end();
    }).finally(() => this.checking.delete(b));
  }
}

function normalize(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}
