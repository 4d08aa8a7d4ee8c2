// Long-lived reads: the event stream (server-sent events, read with fetch so that every event
// kind arrives without naming each) and an app's followed logs (newline-delimited JSON).
import type { EventKind, LogLine, RegistryEvent } from '../../sdk/types.js';

async function readLines(res: Response, signal: AbortSignal, onLine: (line: string) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      onLine(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  }
}

/** A registry event, or `resync`: the stream says the client fell behind (reload everything). */
export type StreamEvent = Omit<RegistryEvent, 'kind'> & { kind: EventKind | 'resync' };

/**
 * Follows GET /dashboard/v1/events until stopped, reconnecting from the last id seen after a
 * cut (and calling onEvent with a `resync` when the stream says the client fell behind).
 */
export function followEvents(onEvent: (e: StreamEvent) => void, onState: (live: boolean) => void, onSignedOut: () => void): () => void {
  const stop = new AbortController();
  let last = '';
  (async () => {
    while (!stop.signal.aborted) {
      try {
        const res = await fetch(`/dashboard/v1/events${last === '' ? '' : `?from=${encodeURIComponent(last)}`}`, { signal: stop.signal, headers: { accept: 'text/event-stream' } });
        if (res.status === 401) {
          // The session ended: following again would only be refused again.
          stop.abort();
          onSignedOut();
          return;
        }
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        onState(true);
        let kind = '';
        let data = '';
        await readLines(res, stop.signal, (line) => {
          if (line.startsWith('event: ')) kind = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
          else if (line === '') {
            if (kind !== '' && data !== '') {
              const parsed = JSON.parse(data) as StreamEvent & { from?: string };
              if (kind === 'ready' || kind === 'resync') last = parsed.from ?? last;
              else last = parsed.id;
              if (kind !== 'ready') onEvent({ ...parsed, kind: kind as StreamEvent['kind'] });
            }
            kind = '';
            data = '';
          }
        });
      } catch {
        // cut, or stopped: try again below unless stopped
      }
      onState(false);
      if (!stop.signal.aborted) await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return () => stop.abort();
}

/** Follows an app's logs (GET …/logs?follow=1, what `berth logs -f` reads) until stopped. */
export function followLogs(app: string, onLine: (l: LogLine) => void, onError: (message: string) => void): () => void {
  const stop = new AbortController();
  (async () => {
    try {
      const res = await fetch(`/dashboard/v1/apps/${encodeURIComponent(app)}/logs?lines=200&follow=1`, { signal: stop.signal });
      if (!res.ok) {
        const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
        throw new Error(body.error?.message ?? `HTTP ${res.status}`);
      }
      await readLines(res, stop.signal, (line) => {
        if (line.trim() !== '') onLine(JSON.parse(line) as LogLine);
      });
      if (!stop.signal.aborted) onError('The log stream ended: reopen the page to follow again.');
    } catch (err) {
      if (!stop.signal.aborted) onError(err instanceof Error ? err.message : String(err));
    }
  })();
  return () => stop.abort();
}
