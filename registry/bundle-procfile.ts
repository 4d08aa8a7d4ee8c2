import { Parser, type ReadEntry } from 'tar';
import { BerthError } from '../common/errors.js';
import { parseProcfile, type Procfile } from '../common/procfile.js';

/** A Procfile larger than this is not one. */
const MAX_PROCFILE_BYTES = 64 * 1024;

/**
 * Reads the Procfile at the root of a stored bundle (a .tar.gz), without unpacking anything
 * to disk: the registry records a release's process types when it makes the release, so that
 * every way a bundle arrives (berth publish, the SDK, a bare REST upload, git push) yields the
 * same types, and a bad line is refused at once with nothing changed. `{}` when the bundle
 * has no Procfile. The hoster unpacks and checks the bundle properly; this reads one entry.
 */
export async function readBundleProcfile(chunks: AsyncIterable<Buffer>): Promise<Procfile> {
  let text: string | undefined;
  let failure: unknown;
  const parser = new Parser({
    filter: (path) => /^(\.\/)?Procfile$/.test(path),
    onReadEntry: (entry: ReadEntry) => {
      if (entry.type !== 'File' || (entry.size ?? 0) > MAX_PROCFILE_BYTES) {
        entry.resume();
        if (entry.type === 'File') failure = new BerthError('invalid_procfile', `The Procfile is over ${MAX_PROCFILE_BYTES / 1024} KiB: keep one short line per process type.`);
        return;
      }
      const parts: Buffer[] = [];
      entry.on('data', (b: Buffer) => parts.push(b));
      entry.on('end', () => {
        text = Buffer.concat(parts).toString('utf8');
      });
    },
  });
  const done = new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', (err: unknown) => reject(err));
  });
  try {
    for await (const chunk of chunks) parser.write(chunk);
    parser.end();
    await done;
  } catch (err) {
    if (err instanceof BerthError) throw err;
    // The hoster's unpacker gives the full verdict (bundle_rejected) when it installs.
    return {};
  }
  if (failure !== undefined) throw failure;
  return text === undefined ? {} : parseProcfile(text);
}
