// The .gitignore/.berthignore subset the bundle packer honours: names, dir/, *.ext, **, anchors, negation, comments, nested files.
import { describe, expect, it } from 'vitest';
import { IgnoreRules } from '../../sdk/ignore-rules.js';

function rules(text: string, base = ''): IgnoreRules {
  const r = new IgnoreRules();
  r.add(text, base);
  return r;
}

describe('ignore rules', () => {
  it('matches a bare name at any depth, as a file or a folder', () => {
    const r = rules('secret.txt\nbuild\n');
    expect(r.ignores('secret.txt', false)).toBe(true);
    expect(r.ignores('a/b/secret.txt', false)).toBe(true);
    expect(r.ignores('build', true)).toBe(true);
    expect(r.ignores('src/build', false)).toBe(true);
    expect(r.ignores('secret.txt.bak', false)).toBe(false);
    expect(r.ignores('my-secret.txt', false)).toBe(false);
  });

  it('matches a trailing-slash pattern against folders only', () => {
    const r = rules('logs/\n');
    expect(r.ignores('logs', true)).toBe(true);
    expect(r.ignores('app/logs', true)).toBe(true);
    expect(r.ignores('logs', false)).toBe(false);
  });

  it('matches *.ext and ? within one segment', () => {
    const r = rules('*.log\nfile?.tmp\n');
    expect(r.ignores('debug.log', false)).toBe(true);
    expect(r.ignores('deep/er/x.log', false)).toBe(true);
    expect(r.ignores('debug.log.txt', false)).toBe(false);
    expect(r.ignores('file1.tmp', false)).toBe(true);
    expect(r.ignores('file12.tmp', false)).toBe(false);
  });

  it('anchors a pattern with a slash to the ignore file\'s folder', () => {
    const r = rules('/dist\ndocs/*.md\n');
    expect(r.ignores('dist', true)).toBe(true);
    expect(r.ignores('src/dist', true)).toBe(false);
    expect(r.ignores('docs/a.md', false)).toBe(true);
    expect(r.ignores('docs/deep/a.md', false)).toBe(false);
    expect(r.ignores('x/docs/a.md', false)).toBe(false);
  });

  it('matches ** across folders', () => {
    const r = rules('**/fixtures\na/**/z.txt\ncache/**\n');
    expect(r.ignores('fixtures', true)).toBe(true);
    expect(r.ignores('test/unit/fixtures', true)).toBe(true);
    expect(r.ignores('a/z.txt', false)).toBe(true);
    expect(r.ignores('a/b/c/z.txt', false)).toBe(true);
    expect(r.ignores('b/a/z.txt', false)).toBe(false);
    expect(r.ignores('cache/x', false)).toBe(true);
    expect(r.ignores('cache/x/y', false)).toBe(true);
    expect(r.ignores('cache', true)).toBe(false);
    expect(rules('**\n').ignores('any/thing', false)).toBe(true);
  });

  it('takes a file back with !, the last matching line winning', () => {
    const r = rules('*.env\n!example.env\n');
    expect(r.ignores('prod.env', false)).toBe(true);
    expect(r.ignores('example.env', false)).toBe(false);
    const again = rules('!example.env\n*.env\n');
    expect(again.ignores('example.env', false)).toBe(true);
  });

  it('skips comments and blank lines, and honours escapes and trailing spaces', () => {
    const r = rules('# a comment\n\n   \n\\#notes\n\\!important\nspaced.txt   \r\n');
    expect(r.ignores('# a comment', false)).toBe(false);
    expect(r.ignores('#notes', false)).toBe(true);
    expect(r.ignores('!important', false)).toBe(true);
    expect(r.ignores('spaced.txt', false)).toBe(true);
  });

  it('treats regular-expression characters and [classes] literally', () => {
    const r = rules('a+b(1).txt\n[abc].txt\n');
    expect(r.ignores('a+b(1).txt', false)).toBe(true);
    expect(r.ignores('aab1.txt', false)).toBe(false);
    expect(r.ignores('[abc].txt', false)).toBe(true);
    expect(r.ignores('a.txt', false)).toBe(false);
  });

  it('applies a nested ignore file only below its own folder, after the outer ones', () => {
    const r = new IgnoreRules();
    r.add('*.log\n');
    r.add('!keep.log\n/local.txt\n', 'sub');
    expect(r.ignores('sub/keep.log', false)).toBe(false);
    expect(r.ignores('keep.log', false)).toBe(true);
    expect(r.ignores('sub/local.txt', false)).toBe(true);
    expect(r.ignores('local.txt', false)).toBe(false);
    expect(r.ignores('sub/deeper/local.txt', false)).toBe(false);
    expect(r.ignores('subway/keep.log', false)).toBe(true);
  });
});
