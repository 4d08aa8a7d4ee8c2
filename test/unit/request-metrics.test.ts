// The proxy's metrics render as valid Prometheus text: HELP/TYPE per family, counters by status class and error kind, cumulative histogram buckets, and label values escaped.
import { describe, expect, it } from 'vitest';
import { DEFAULT_DURATION_BUCKETS, RequestMetrics, escapeLabelValue } from '../../forward/request-metrics.js';

/** Sample lines (no comments) as name{labels} → value. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), line.slice(space + 1));
  }
  return out;
}

describe('RequestMetrics', () => {
  it('renders HELP and TYPE once per family, even before any request', () => {
    const text = new RequestMetrics().render();
    expect(text.split('\n').filter((l) => l.startsWith('# TYPE'))).toEqual([
      '# TYPE berth_proxy_requests_total counter',
      '# TYPE berth_proxy_request_duration_seconds histogram',
      '# TYPE berth_proxy_upstream_errors_total counter',
    ]);
    expect(text.split('\n').filter((l) => l.startsWith('# HELP'))).toHaveLength(3);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('counts requests by app and status class', () => {
    const m = new RequestMetrics();
    m.request('shop', 200, 0.001);
    m.request('shop', 204, 0.001);
    m.request('shop', 503, 0.001);
    m.request('blog', 404, 0.001);
    const s = samples(m.render());
    expect(s.get('berth_proxy_requests_total{app="shop",class="2xx"}')).toBe('2');
    expect(s.get('berth_proxy_requests_total{app="shop",class="5xx"}')).toBe('1');
    expect(s.get('berth_proxy_requests_total{app="shop",class="4xx"}')).toBe('0');
    expect(s.get('berth_proxy_requests_total{app="blog",class="4xx"}')).toBe('1');
    // Out-of-range statuses get their own class, shown only once seen.
    expect(s.has('berth_proxy_requests_total{app="shop",class="other"}')).toBe(false);
    m.request('shop', 0, 0.001);
    expect(samples(m.render()).get('berth_proxy_requests_total{app="shop",class="other"}')).toBe('1');
  });

  it('fills histogram buckets cumulatively, with +Inf, _sum and _count', () => {
    const m = new RequestMetrics();
    for (const seconds of [0.001, 0.005, 0.02, 0.3, 7, 60]) m.request('shop', 200, seconds);
    const s = samples(m.render());
    const bucket = (le: string) => Number(s.get(`berth_proxy_request_duration_seconds_bucket{app="shop",le="${le}"}`));
    // A duration equal to a bound falls in that bucket (le is "less or equal").
    expect(bucket('0.005')).toBe(2);
    expect(bucket('0.01')).toBe(2);
    expect(bucket('0.025')).toBe(3);
    expect(bucket('0.25')).toBe(3);
    expect(bucket('0.5')).toBe(4);
    expect(bucket('5')).toBe(4);
    expect(bucket('10')).toBe(5);
    expect(bucket('+Inf')).toBe(6);
    const les = [...s.keys()].filter((k) => k.includes('_bucket{app="shop"')).map((k) => /le="([^"]+)"/.exec(k)![1]);
    expect(les).toEqual([...DEFAULT_DURATION_BUCKETS.map(String), '+Inf']);
    const counts = les.map((le) => bucket(le!));
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(Number(s.get('berth_proxy_request_duration_seconds_count{app="shop"}'))).toBe(6);
    expect(Number(s.get('berth_proxy_request_duration_seconds_sum{app="shop"}'))).toBeCloseTo(67.326, 9);
  });

  it('counts a negative or NaN duration as zero rather than poisoning the sum', () => {
    const m = new RequestMetrics();
    m.request('shop', 200, -1);
    m.request('shop', 200, Number.NaN);
    const s = samples(m.render());
    expect(s.get('berth_proxy_request_duration_seconds_sum{app="shop"}')).toBe('0');
    expect(s.get('berth_proxy_request_duration_seconds_bucket{app="shop",le="0.005"}')).toBe('2');
  });

  it('counts upstream errors by kind, every kind present from the first', () => {
    const m = new RequestMetrics();
    m.upstreamError('shop', 'refused');
    m.upstreamError('shop', 'refused');
    m.upstreamError('shop', 'timeout');
    const s = samples(m.render());
    expect(s.get('berth_proxy_upstream_errors_total{app="shop",kind="refused"}')).toBe('2');
    expect(s.get('berth_proxy_upstream_errors_total{app="shop",kind="timeout"}')).toBe('1');
    expect(s.get('berth_proxy_upstream_errors_total{app="shop",kind="reset"}')).toBe('0');
    expect(s.get('berth_proxy_upstream_errors_total{app="shop",kind="bad_response"}')).toBe('0');
  });

  it('escapes backslash, double quote and newline in label values', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const m = new RequestMetrics();
    m.request('we"ird\\app\nx', 200, 0.001);
    const text = m.render();
    expect(text).toContain('berth_proxy_requests_total{app="we\\"ird\\\\app\\nx",class="2xx"} 1\n');
    // Every sample stays on one line: the newline in the name did not split it.
    for (const line of text.split('\n')) if (line !== '') expect(line).toMatch(/^(# (HELP|TYPE) |berth_proxy_[a-z_]+\{app="(?:[^"\\]|\\.)*"(,[a-z]+="[^"]*")?\} \S+$)/);
  });

  it('refuses buckets that are empty, unsorted or not finite', () => {
    expect(() => new RequestMetrics({ buckets: [] })).toThrow(/buckets/);
    expect(() => new RequestMetrics({ buckets: [1, 0.5] })).toThrow(/ascending/);
    expect(() => new RequestMetrics({ buckets: [1, Infinity] })).toThrow(/finite/);
    const m = new RequestMetrics({ buckets: [0.1, 1] });
    m.request('shop', 200, 0.5);
    const les = [...samples(m.render()).keys()].filter((k) => k.includes('_bucket')).map((k) => /le="([^"]+)"/.exec(k)![1]);
    expect(les).toEqual(['0.1', '1', '+Inf']);
  });
});
