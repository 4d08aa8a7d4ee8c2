/**
 * The lines of `.gitignore` and `.berthignore` files, deciding which files a bundle leaves out.
 * A documented subset of gitignore:
 *
 * - blank lines and lines starting with `#` are skipped (`\#` for a name starting with `#`);
 * - `name` matches a file or directory of that name at any depth below the ignore file;
 * - `dir/` (a trailing slash) matches directories only;
 * - a pattern with a slash elsewhere (`/build`, `docs/*.md`) is anchored to the ignore file's
 *   folder;
 * - `*` matches anything but `/`, `?` one character but `/`; `**` matches across folders
 *   (`**` alone, `**\/x`, `a/**`, `a/**\/b`);
 * - `!pattern` takes a file back in; the last matching line wins, and a file inside a folder
 *   that is left out cannot be taken back (as in git);
 * - `\` escapes the next character; `[...]` classes are not supported (taken literally).
 */
export class IgnoreRules {
  private readonly rules: Rule[] = [];

  /** Adds the lines of an ignore file found in `base`: '' for the bundle's folder, else 'a/b'. */
  add(text: string, base = ''): void {
    for (const raw of text.split(/\r?\n/)) {
      const rule = compileRule(raw, base);
      if (rule !== undefined) this.rules.push(rule);
    }
  }

  /** True when `path` ('/'-separated, relative to the bundle's folder) is left out. */
  ignores(path: string, isDirectory: boolean): boolean {
    let ignored = false;
    for (const rule of this.rules) {
      if (rule.directoryOnly && !isDirectory) continue;
      if (rule.base !== '' && !path.startsWith(`${rule.base}/`)) continue;
      const relative = rule.base === '' ? path : path.slice(rule.base.length + 1);
      if (rule.pattern.test(relative)) ignored = !rule.negate;
    }
    return ignored;
  }
}

interface Rule {
  base: string;
  negate: boolean;
  directoryOnly: boolean;
  pattern: RegExp;
}

function compileRule(raw: string, base: string): Rule | undefined {
  let line = raw.replace(/(?<!\\)\s+$/, '');
  if (line === '' || line.startsWith('#')) return undefined;
  let negate = false;
  if (line.startsWith('!')) {
    negate = true;
    line = line.slice(1);
  }
  let directoryOnly = false;
  if (line.endsWith('/') && !line.endsWith('\\/')) {
    directoryOnly = true;
    line = line.replace(/\/+$/, '');
  }
  if (line === '') return undefined;
  // As in git: a slash at the start or in the middle ties the pattern to the file's folder.
  const anchored = line.includes('/');
  if (line.startsWith('/')) line = line.slice(1);
  const body = globToRegExpSource(line);
  return { base, negate, directoryOnly, pattern: new RegExp(`^${anchored ? '' : '(?:.*/)?'}${body}$`, 's') };
}

/** Translates one glob (no leading `!`, no trailing `/`) into a regular expression's source. */
export function globToRegExpSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '\\' && i + 1 < glob.length) {
      out += escapeRegExp(glob[++i]!);
    } else if (c === '*') {
      const doubleStar = glob[i + 1] === '*';
      const startsSegment = i === 0 || glob[i - 1] === '/';
      const after = i + 2;
      if (doubleStar && startsSegment && after === glob.length) {
        out += '.*';
        i = after - 1;
      } else if (doubleStar && startsSegment && glob[after] === '/') {
        // `**/` may also match no folder at all: `a/**/b` matches `a/b`.
        out += '(?:.*/)?';
        i = after;
      } else {
        // Other runs of stars are plain stars (as in git).
        while (glob[i + 1] === '*') i++;
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else {
      out += escapeRegExp(c);
    }
  }
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
