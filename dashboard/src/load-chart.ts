import { html } from 'htm/preact';
import type { LoadSample, MachineLoadHistory } from '../../sdk/types.js';

const W = 300;
const H = 60;
const HOUR_MS = 3600_000;

export interface Point {
  at: number;
  value: number;
}

/**
 * A small line of the last hour (oldest left, now right), with an optional dashed reference
 * line (a machine at capacity), and a text equivalent for screen readers.
 */
export function HourChart({ points, now, what, reference }: { points: Point[]; now: number; what: string; reference?: number }) {
  const shown = points.filter((p) => now - p.at <= HOUR_MS);
  const top = Math.max((reference ?? 0) * 1.25, 0.01, ...shown.map((p) => p.value));
  const x = (at: number) => W - ((now - at) / HOUR_MS) * W;
  const y = (v: number) => H - (v / top) * H;
  const latest = shown.at(-1)?.value;
  const peak = shown.length === 0 ? undefined : Math.max(...shown.map((p) => p.value));
  const label = shown.length === 0 ? `No ${what} samples yet in the last hour` : `${what} over the last hour: latest ${latest}, highest ${peak}, ${shown.length} samples`;
  return html`<svg class="chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label} preserveAspectRatio="none" data-samples=${shown.length}>
    ${reference === undefined ? null : html`<line class="capacity" x1="0" x2=${W} y1=${y(reference)} y2=${y(reference)} />`}
    ${shown.length > 1 ? html`<polyline class="load" points=${shown.map((p) => `${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ')} />` : null}
    ${shown.length === 1 ? html`<circle class="load-dot" cx=${x(shown[0]!.at)} cy=${y(shown[0]!.value)} r="2" />` : null}
  </svg>`;
}

/** A machine's load per CPU (1.0, at capacity, dashed). */
export function LoadChart({ samples, now }: { samples: LoadSample[]; now: number }) {
  const points = samples.filter((s) => s.load !== null).map((s) => ({ at: s.at, value: s.load! }));
  return html`<${HourChart} points=${points} now=${now} what="Load per CPU" reference=${1} />`;
}

/**
 * An app's CPU cores over the hour, summed over every machine: one registry samples all
 * machines in one go, so samples within a second of each other are one moment.
 */
export function appCpuPoints(machines: MachineLoadHistory[], app: string): Point[] {
  const byMoment = new Map<number, number>();
  for (const m of machines) {
    for (const s of m.samples) {
      if (s.apps === undefined || s.error !== null) continue;
      const moment = Math.round(s.at / 1000) * 1000;
      byMoment.set(moment, (byMoment.get(moment) ?? 0) + (s.apps[app] ?? 0));
    }
  }
  return [...byMoment].sort((a, b) => a[0] - b[0]).map(([at, value]) => ({ at, value: Math.round(value * 1000) / 1000 }));
}
