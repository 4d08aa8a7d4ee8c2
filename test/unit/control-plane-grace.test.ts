// The hoster's judgement when it cannot reach Redis: keep the apps running only when Redis is away for (more than the reaper's share of) every machine and long enough for the reaper to hold expiries; fence when another machine reached Redis after this one lost it, when too few answer, or when it is too early to tell.
import { describe, expect, it } from 'vitest';
import { BACK_WITHIN_MS, judgeControlPlane, MARGIN_MS, type JudgeInput, type PeerView } from '../../hoster/control-plane-grace.js';

const reaper = { leaseMs: 15_000, silentMs: 2000, intervalMs: 1000, fraction: 0.5 };
/** Silence the reaper must have seen for a hold: its limit, one of its ticks, the margin. */
const TELLS = reaper.silentMs + reaper.intervalMs + MARGIN_MS;
const NOW = 100_000;

function judge(peers: PeerView[], over: Partial<JudgeInput> = {}) {
  return judgeControlPlane({ now: NOW, reachedAt: NOW - TELLS - 500, reaper, peers, ...over });
}

/** A peer whose proxy last reached Redis `agoMs` before NOW (null: never), and whose last probe failed 100 ms ago. */
function peer(machine: string, agoMs: number | null | undefined, holding = true, failedAgoMs: number | null = 100): PeerView {
  return {
    machine,
    holding,
    reachedAt: agoMs === undefined ? undefined : agoMs === null ? null : NOW - agoMs,
    failedAt: agoMs === undefined || failedAgoMs === null ? null : NOW - failedAgoMs,
    probeEveryMs: 250,
  };
}

describe('judgeControlPlane', () => {
  it('no other machine: Redis is away for the whole platform (one-machine berth up)', () => {
    expect(judge([])).toMatchObject({ kind: 'away' });
  });

  it('every peer that answers lost Redis when this machine did: away', () => {
    const lost = TELLS + 500;
    expect(judge([peer('m2', lost), peer('m3', lost + 200)])).toMatchObject({ kind: 'away' });
    // A peer whose proxy never reached Redis counts as silent too.
    expect(judge([peer('m2', null)])).toMatchObject({ kind: 'away' });
  });

  it('a peer reached Redis after this machine lost it: this machine is cut off, whatever the others say', () => {
    // m3's probes never failed (or last failed before this machine lost Redis): Redis was there for it.
    const verdict = judge([peer('m2', TELLS + 500), peer('m3', 100, true, null)]);
    expect(verdict).toMatchObject({ kind: 'cut_off' });
    expect(verdict.why).toContain('m3 reached Redis 100 ms ago');
    expect(judge([peer('m3', 100, true, TELLS + 1000)])).toMatchObject({ kind: 'cut_off' });
    // Even before the silence would tell anything.
    expect(judge([peer('m3', 50, true, null)], { reachedAt: NOW - 1200 })).toMatchObject({ kind: 'cut_off' });
  });

  it('a peer that reaches Redis again just after its own probes failed says Redis is back, not that this machine is cut off', () => {
    // A thaw: m2 and m3 failed until 600 ms ago and reach Redis since; this machine's write is still on its way.
    const verdict = judge([peer('m2', 100, true, 600), peer('m3', 50, true, 700)]);
    expect(verdict).toMatchObject({ kind: 'unsure' });
    expect(verdict.why).toContain('Redis answers m2, m3 again');
    // Reaching for longer than BACK_WITHIN_MS while this machine still cannot: cut off.
    expect(judge([peer('m2', 100, true, BACK_WITHIN_MS + 100)])).toMatchObject({ kind: 'cut_off' });
    // One peer just back, another that never lost Redis: cut off.
    expect(judge([peer('m2', 100, true, 600), peer('m3', 100, true, null)])).toMatchObject({ kind: 'cut_off' });
  });

  it('a peer whose contact is within the probes’ slack of this machine’s is not evidence of a cut', () => {
    // This machine last reached Redis 4800 ms ago; m2 800 ms later, inside 250 + 250 + margin.
    expect(judge([peer('m2', 4000)], { reachedAt: NOW - 4800 })).toMatchObject({ kind: 'away' });
    // Not a cut either while m2's own silence is still too short to count.
    expect(judge([peer('m2', 3200)], { reachedAt: NOW - 4000 })).toMatchObject({ kind: 'unsure' });
  });

  it('a hoster whose event loop stalled across the moment Redis froze is not cut off: its first unanswered write counts, not its last answered one', () => {
    // This machine last reached Redis 5000 ms ago, then stalled 1200 ms: its next write (unanswered) went out 3800 ms ago.
    // m2 and m3 PINGed Redis until it froze, 1100 ms after this machine's last answer, and fail since.
    const stalled = { reachedAt: NOW - 5000, lostAt: NOW - 3800 };
    expect(judge([peer('m2', 3900), peer('m3', 3950)], stalled)).toMatchObject({ kind: 'away' });
    // Judged from its last answer alone, that looked like Redis answering m2 after this machine lost it.
    expect(judge([peer('m2', 3900), peer('m3', 3950)], { reachedAt: NOW - 5000 })).toMatchObject({ kind: 'unsure' });
    // Truly cut: m3 reached Redis after this machine's first unanswered write, and never failed.
    expect(judge([peer('m2', 3900), peer('m3', 100, true, null)], stalled)).toMatchObject({ kind: 'cut_off' });
    // A peer that failed after this machine lost Redis and reached it again later came back: as strict as ever.
    expect(judge([peer('m2', 3900), { ...peer('m3', 100), failedAt: NOW - 3500 }], stalled)).toMatchObject({ kind: 'cut_off' });
    // A stall is believed up to LATE_MS: m3, which never failed, reached Redis 2100 ms after this machine last did.
    expect(judge([peer('m3', 2900, true, null)], { reachedAt: NOW - 5000, lostAt: NOW - 1000 })).toMatchObject({ kind: 'cut_off' });
  });

  it('a peer’s answer read late (a busy event loop) is judged at the earliest moment it can describe', () => {
    // m2's contact looks 1100 ms later than this machine's last, but this machine read its answer 900 ms after asking: it may have been 900 ms earlier.
    const late = { ...peer('m2', 3900), roundTripMs: 900 };
    expect(judge([late], { reachedAt: NOW - 5000 })).toMatchObject({ kind: 'away' });
    expect(judge([{ ...late, roundTripMs: 0 }], { reachedAt: NOW - 5000 })).toMatchObject({ kind: 'unsure' });
    // Up to LATE_MS: an answer that took 3 s says no more than one that took 1 s.
    expect(judge([{ ...peer('m3', 2900, true, null), roundTripMs: 3000 }], { reachedAt: NOW - 5000 })).toMatchObject({ kind: 'cut_off' });
  });

  it('peers exist but none answers (this machine is isolated from everyone): fence', () => {
    expect(judge([peer('m2', undefined), peer('m3', undefined)])).toMatchObject({ kind: 'unsure' });
    expect(judge([peer('m2', undefined)])).toMatchObject({ kind: 'unsure' });
  });

  it('away only with more than the reaper’s share of the machines holding claims silent', () => {
    const lost = TELLS + 500;
    // 2 of 3 silent (this one and m2; m3 does not answer): more than half.
    expect(judge([peer('m2', lost), peer('m3', undefined)])).toMatchObject({ kind: 'away' });
    // 2 of 4: not more than half.
    expect(judge([peer('m2', lost), peer('m3', undefined), peer('m4', undefined)])).toMatchObject({ kind: 'unsure' });
    // A quiet peer that holds no claims is counted by neither side; one that does not answer is unknown.
    expect(judge([peer('m2', lost, false), peer('m3', undefined)])).toMatchObject({ kind: 'unsure' });
    expect(judge([peer('m2', lost, false)])).toMatchObject({ kind: 'away' });
    // With a stricter reaper, a stricter judgement.
    expect(judge([peer('m2', lost), peer('m3', undefined)], { reaper: { ...reaper, fraction: 0.7 } })).toMatchObject({ kind: 'unsure' });
  });

  it('machines that Redis counts as holding claims, but that this one has not read yet, count against', () => {
    const lost = TELLS + 500;
    // Read the machines before the others joined: it knows of none, Redis counted three.
    expect(judge([], { holders: 3 })).toMatchObject({ kind: 'unsure' });
    expect(judge([], { holders: 1 })).toMatchObject({ kind: 'away' });
    // It knows m2 (silent), Redis counted three: 2 of 3.
    expect(judge([peer('m2', lost)], { holders: 3 })).toMatchObject({ kind: 'away' });
    expect(judge([peer('m2', lost)], { holders: 4 })).toMatchObject({ kind: 'unsure' });
  });

  it('a peer is silent only while its probes fail: one that merely stalled (no failure since its last answer) counts against', () => {
    const lost = TELLS + 500;
    expect(judge([peer('m2', lost, true, null)])).toMatchObject({ kind: 'unsure' });
    // Its last failure came before its last answer, or long ago: not failing now.
    expect(judge([peer('m2', lost, true, lost + 100)])).toMatchObject({ kind: 'unsure' });
    expect(judge([peer('m2', null, true, 5000)])).toMatchObject({ kind: 'unsure' });
    expect(judge([peer('m2', lost, true, 300)])).toMatchObject({ kind: 'away' });
  });

  it('too early: until the silence is longer than the reaper’s limit plus a tick, nothing says a hold began', () => {
    const verdict = judge([], { reachedAt: NOW - TELLS + 100 });
    expect(verdict).toMatchObject({ kind: 'unsure', early: true });
    // A peer silent for less than that is not yet counted as silent.
    expect(judge([peer('m2', TELLS - 300)], { reachedAt: NOW - TELLS - 100 })).toMatchObject({ kind: 'unsure' });
  });

  it('without the reapers’ settings, or before this machine ever reached Redis: fence', () => {
    expect(judge([], { reaper: undefined })).toMatchObject({ kind: 'unsure' });
    expect(judge([], { reachedAt: undefined })).toMatchObject({ kind: 'unsure' });
  });
});
