import { html } from 'htm/preact';
import type { LoadSample } from './types.js';

const W = 300;
const H = 60;

/**
 * A machine's load per CPU over the last hour as a small line (1.0, at capacity, dashed),
 * with a text equivalent for screen readers.
 */
export function LoadChart({ samples, now }: { samples: LoadSample[]; now: number }) {
  const points = samples.filter((s) => s.load !== null && now - s.at <= 3600_000);
  const top = Math.max(1.25, ...points.map((s) => s.load!));
  const x = (at: number) => W - ((now - at) / 3600_000) * W;
  const y = (load: number) => H - (load / top) * H;
  const latest = points.at(-1)?.load;
  const peak = points.length === 0 ? undefined : Math.max(...points.map((s) => s.load!));
  const label = points.length === 0 ? 'No load samples yet in the last hour' : `Load per CPU over the last hour: latest ${latest}, highest ${peak}, ${points.length} samples`;
  return html`<svg class="chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label} preserveAspectRatio="none" data-samples=${points.length}>
    <line class="capacity" x1="0" x2=${W} y1=${y(1)} y2=${y(1)} />
    ${points.length > 1 ? html`<polyline class="load" points=${points.map((s) => `${x(s.at).toFixed(1)},${y(s.load!).toFixed(1)}`).join(' ')} />` : null}
    ${points.length === 1 ? html`<circle class="load-dot" cx=${x(points[0]!.at)} cy=${y(points[0]!.load!)} r="2" />` : null}
  </svg>`;
}
