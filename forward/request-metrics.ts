import { BerthError } from '../common/errors.js';

/** Request durations in seconds, from a fast local hit to a slow upstream. */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/** What to send as Content-Type with render()'s output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type UpstreamErrorKind = 'refused' | 'reset' | 'timeout' | 'bad_response';

const ERROR_KINDS: readonly UpstreamErrorKind[] = ['refused', 'reset', 'timeout', 'bad_response'];
const KIND_INDEX: Record<UpstreamErrorKind, number> = { refused: 0, reset: 1, timeout: 2, bad_response: 3 };
/** Indexed by the status's hundreds; index 0 collects statuses outside 100-599. */
const CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

const REQUESTS = 'berth_proxy_requests_total';
const DURATION = 'berth_proxy_request_duration_seconds';
const UPSTREAM_ERRORS = 'berth_proxy_upstream_errors_total';

export interface RequestMetricsOptions {
  /** Upper bounds of the duration histogram, in seconds, ascending. @default DEFAULT_DURATION_BUCKETS */
  buckets?: readonly number[];
}

/** One app's numbers, with every label set rendered once when the app is first seen. */
interface AppSeries {
  app: string;
  requests: number[];
  requestLines: string[];
  /** Requests per bucket (not cumulative: one slot per request); the last slot is +Inf. */
  buckets: number[];
  bucketLines: string[];
  sum: number;
  count: number;
  sumLine: string;
  countLine: string;
  errors: number[];
  errorLines: string[];
}

/** One app's numbers as plain data: what a proxy worker sends to be added up with the others'. */
export interface AppMetricsSnapshot {
  app: string;
  requests: number[];
  buckets: number[];
  sum: number;
  count: number;
  errors: number[];
}

/**
 * The proxy's counters and request-duration histogram per app, in Prometheus text format.
 * Recording costs a map lookup and a few additions; strings are built only when an app is
 * first seen and on render(). `app` must be a route's app name, never raw request input:
 * each distinct value is a series kept for the life of the process.
 */
export class RequestMetrics {
  private readonly bounds: readonly number[];
  private readonly boundLabels: readonly string[];
  private readonly apps = new Map<string, AppSeries>();

  constructor(options: RequestMetricsOptions = {}) {
    const bounds = options.buckets ?? DEFAULT_DURATION_BUCKETS;
    if (bounds.length === 0 || !bounds.every((b, i) => Number.isFinite(b) && b > 0 && (i === 0 || b > bounds[i - 1]!))) {
      throw new BerthError('invalid_config', `RequestMetrics: buckets must be finite positive numbers in ascending order (got ${JSON.stringify(bounds)}).`);
    }
    this.bounds = [...bounds];
    this.boundLabels = [...bounds.map(formatNumber), '+Inf'];
  }

  /** One request answered (or abandoned) with `status` after `seconds`. */
  request(app: string, status: number, seconds: number): void {
    const s = this.apps.get(app) ?? this.series(app);
    const hundreds = (status / 100) | 0;
    s.requests[hundreds >= 1 && hundreds <= 5 ? hundreds : 0]!++;
    // A clock step can give a negative or NaN duration; one would poison the sum for good.
    const d = seconds >= 0 ? seconds : 0;
    let i = 0;
    while (i < this.bounds.length && d > this.bounds[i]!) i++;
    s.buckets[i]!++;
    s.sum += d;
    s.count++;
  }

  upstreamError(app: string, kind: UpstreamErrorKind): void {
    const s = this.apps.get(app) ?? this.series(app);
    const i = KIND_INDEX[kind];
    if (i !== undefined) s.errors[i]!++;
  }

  /** Every app's numbers, to be added to another RequestMetrics with the same buckets. */
  snapshot(): AppMetricsSnapshot[] {
    return [...this.apps.values()].map((s) => ({ app: s.app, requests: [...s.requests], buckets: [...s.buckets], sum: s.sum, count: s.count, errors: [...s.errors] }));
  }

  /** Adds another process's numbers (a daemon's workers are added up for /metrics). */
  add(snapshot: readonly AppMetricsSnapshot[]): void {
    for (const other of snapshot) {
      const s = this.apps.get(other.app) ?? this.series(other.app);
      if (other.buckets.length !== s.buckets.length) continue; // another bucket layout: not comparable
      other.requests.forEach((n, i) => (s.requests[i]! += n));
      other.buckets.forEach((n, i) => (s.buckets[i]! += n));
      other.errors.forEach((n, i) => (s.errors[i]! += n));
      s.sum += other.sum;
      s.count += other.count;
    }
  }

  render(): string {
    const series = [...this.apps.values()].sort((a, b) => (a.app < b.app ? -1 : a.app > b.app ? 1 : 0));
    const out: string[] = [];
    out.push(`# HELP ${REQUESTS} Requests the proxy answered, by app and status class.`, `# TYPE ${REQUESTS} counter`);
    for (const s of series) {
      for (let c = 0; c < CLASSES.length; c++) {
        // Statuses outside 100-599 are rare enough to show only once one happened.
        if (c === 0 && s.requests[0] === 0) continue;
        out.push(s.requestLines[c]! + formatNumber(s.requests[c]!));
      }
    }
    out.push(`# HELP ${DURATION} Time from a request's arrival to the end of its response, by app.`, `# TYPE ${DURATION} histogram`);
    for (const s of series) {
      let cumulative = 0;
      for (let b = 0; b < s.buckets.length; b++) {
        cumulative += s.buckets[b]!;
        out.push(s.bucketLines[b]! + formatNumber(cumulative));
      }
      out.push(s.sumLine + formatNumber(s.sum), s.countLine + formatNumber(s.count));
    }
    out.push(`# HELP ${UPSTREAM_ERRORS} Requests whose upstream failed, by app and kind of failure.`, `# TYPE ${UPSTREAM_ERRORS} counter`);
    for (const s of series) {
      for (let k = 0; k < ERROR_KINDS.length; k++) out.push(s.errorLines[k]! + formatNumber(s.errors[k]!));
    }
    return out.join('\n') + '\n';
  }

  private series(app: string): AppSeries {
    const label = `app="${escapeLabelValue(app)}"`;
    const s: AppSeries = {
      app,
      requests: CLASSES.map(() => 0),
      requestLines: CLASSES.map((c) => `${REQUESTS}{${label},class="${c}"} `),
      buckets: this.boundLabels.map(() => 0),
      bucketLines: this.boundLabels.map((le) => `${DURATION}_bucket{${label},le="${le}"} `),
      sum: 0,
      count: 0,
      sumLine: `${DURATION}_sum{${label}} `,
      countLine: `${DURATION}_count{${label}} `,
      errors: ERROR_KINDS.map(() => 0),
      errorLines: ERROR_KINDS.map((k) => `${UPSTREAM_ERRORS}{${label},kind="${k}"} `),
    };
    this.apps.set(app, s);
    return s;
  }
}

/** A label value as the text format needs it: backslash, double quote and newline escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

function formatNumber(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

/**
 * /metrics of one of several worker processes: every worker's numbers added up (`gather` asks
 * them all, this one included), or this worker's own when they cannot be had in time.
 */
export async function totalMetricsText(local: RequestMetrics, gather: () => Promise<unknown[] | undefined>): Promise<string> {
  const snapshots = (await gather()) as AppMetricsSnapshot[][] | undefined;
  if (snapshots === undefined) return local.render();
  const total = new RequestMetrics();
  for (const s of snapshots) total.add(s);
  return total.render();
}
