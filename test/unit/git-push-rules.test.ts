// The pure parts of git push deploys: pkt-line framing, the ref updates receive-pack hands on, which branch deploys and why others are refused, the token of a git request, and the credential helper's reading of git's request.
import { describe, expect, it } from 'vitest';
import { parseCredentialRequest } from '../../cli/commands/git-credential.js';
import { gitRemoteUrl } from '../../cli/commands/git-remote.js';
import { gitRequestToken } from '../../registry/git/git-auth.js';
import { FLUSH, PktLineReader, pktLine } from '../../registry/git/pkt-line.js';
import { oneLine } from '../../registry/git/proc-receive-session.js';
import { asksForSideband, SidebandRelay } from '../../registry/git/sideband.js';
import { branchNameProblem, deployBranches, parseRefUpdate, refVerdict, repositoryApp, ZERO_OID } from '../../registry/git/ref-update.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('pkt-line', () => {
  it('frames a line with its length in four hex digits, the digits included', () => {
    expect(pktLine('version=1\0').toString('latin1')).toBe('000eversion=1\0');
    expect(pktLine('').toString()).toBe('0004');
    expect(FLUSH.toString()).toBe('0000');
    expect(() => pktLine('x'.repeat(70_000))).toThrow(/at most/);
  });

  it('reads packets across chunk boundaries, flushes as null, one trailing newline dropped', () => {
    const reader = new PktLineReader();
    const bytes = Buffer.concat([pktLine('version=1\n'), FLUSH, pktLine(`${ZERO_OID} ${A} refs/heads/main`), FLUSH]);
    const packets = [];
    for (let i = 0; i < bytes.length; i += 7) packets.push(...reader.push(bytes.subarray(i, i + 7)));
    expect(packets).toEqual(['version=1', null, `${ZERO_OID} ${A} refs/heads/main`, null]);
  });

  it('refuses bytes that are not pkt-lines', () => {
    expect(() => new PktLineReader().push(Buffer.from('zz12hello'))).toThrow(/not a pkt-line/);
    expect(() => new PktLineReader().push(Buffer.from('0002'))).toThrow(/length/);
  });
});

describe('sideband', () => {
  it('sees whether a push asks for a sideband in its first command', () => {
    expect(asksForSideband(pktLine(`${ZERO_OID} ${A} refs/heads/main\0report-status side-band-64k agent=git/2.39`))).toBe(true);
    expect(asksForSideband(pktLine(`${ZERO_OID} ${A} refs/heads/main\0report-status`))).toBe(false);
    expect(asksForSideband(Buffer.from('00'))).toBe(false);
  });

  it('slips a progress line in between whole packets only, never inside one', () => {
    const out: Buffer[] = [];
    const relay = new SidebandRelay((b) => out.push(b));
    const first = pktLine('\x01first packet');
    const second = pktLine('\x01second');
    relay.push(first.subarray(0, 5));
    relay.say('berth says');
    expect(Buffer.concat(out).toString()).toBe('');
    relay.push(Buffer.concat([first.subarray(5), second.subarray(0, 3)]));
    relay.push(second.subarray(3));
    relay.push(FLUSH);
    relay.end();
    const reader = new PktLineReader();
    expect(reader.push(Buffer.concat(out))).toEqual(['\x01first packet', '\x02berth says', '\x01second', null]);
  });

  it('passes bytes that are not pkt-lines through untouched', () => {
    const out: Buffer[] = [];
    const relay = new SidebandRelay((b) => out.push(b));
    relay.push(Buffer.from('zzzz not a packet'));
    relay.say('dropped');
    relay.push(Buffer.from(' more'));
    relay.end();
    expect(Buffer.concat(out).toString()).toBe('zzzz not a packet more');
  });
});

describe('ref updates', () => {
  it('parses "<old> <new> <ref>" and refuses anything else', () => {
    expect(parseRefUpdate(`${A} ${B} refs/heads/main`)).toEqual({ oldOid: A, newOid: B, ref: 'refs/heads/main' });
    expect(() => parseRefUpdate(`${A} ${B}`)).toThrow(/not a ref update/);
    expect(() => parseRefUpdate(`${A} xyz refs/heads/main`)).toThrow(/not a ref update/);
    expect(() => parseRefUpdate(`${A} ${B} main`)).toThrow(/not a ref update/);
    expect(() => parseRefUpdate(`${A} ${B} refs/heads/main extra`)).toThrow(/not a ref update/);
  });

  it('deploys main or master until a branch is set, then only that one', () => {
    expect(deployBranches(null)).toEqual(['main', 'master']);
    expect(deployBranches('production')).toEqual(['production']);
    expect(refVerdict({ oldOid: ZERO_OID, newOid: A, ref: 'refs/heads/main' }, 'shop', deployBranches(null))).toEqual({ deploy: true, branch: 'main' });
    expect(refVerdict({ oldOid: A, newOid: B, ref: 'refs/heads/master' }, 'shop', deployBranches(null))).toEqual({ deploy: true, branch: 'master' });
    expect(refVerdict({ oldOid: A, newOid: B, ref: 'refs/heads/main' }, 'shop', ['production'])).toEqual({
      deploy: false,
      reason: 'shop deploys from production only: push it there (git push berth main:production), or make it the deploy branch (berth git:branch shop main)',
    });
  });

  it('refuses other branches, tags and the deletion of the deploy branch, saying what to do', () => {
    const branches = deployBranches(null);
    const feature = refVerdict({ oldOid: ZERO_OID, newOid: A, ref: 'refs/heads/feature' }, 'shop', branches);
    expect(feature).toEqual({ deploy: false, reason: expect.stringContaining('shop deploys from main or master only: push it there (git push berth feature:main)') });
    expect(refVerdict({ oldOid: ZERO_OID, newOid: A, ref: 'refs/tags/v1' }, 'shop', branches)).toEqual({ deploy: false, reason: expect.stringContaining('berth deploys branches only') });
    expect(refVerdict({ oldOid: A, newOid: ZERO_OID, ref: 'refs/heads/main' }, 'shop', branches)).toEqual({ deploy: false, reason: expect.stringContaining('berth delete shop') });
  });

  it('takes branch names git takes, within what a URL and a shell carry', () => {
    for (const ok of ['main', 'release/2026-12', 'feature_x.y']) expect(branchNameProblem(ok), ok).toBeUndefined();
    for (const bad of ['', '-x', '/x', 'x/', 'x.', 'x.lock', 'a..b', 'a//b', 'a/.b', 'HEAD', 'a b', 'a~1', 'a:b', 'x'.repeat(201)]) {
      expect(branchNameProblem(bad), bad).toBeDefined();
    }
  });

  it('names the app of /git/<app>.git as the API names apps', () => {
    expect(repositoryApp('shop.git')).toBe('shop');
    for (const bad of ['shop', 'Shop.git', '../x.git', '.git', 'a b.git']) expect(repositoryApp(bad), bad).toBeUndefined();
  });

  it('keeps a rejection reason to one pkt-line', () => {
    expect(oneLine('release v7 failed:\ncrash_loop\r\n')).toBe('release v7 failed: crash_loop');
    expect(oneLine('x'.repeat(1000))).toHaveLength(400);
  });
});

describe('credentials of a git request', () => {
  const basic = (userPass: string) => ({ headers: { authorization: `Basic ${Buffer.from(userPass).toString('base64')}` } });

  it('takes the password of HTTP Basic, whatever the user name, or a bearer token', () => {
    expect(gitRequestToken(basic('berth:tok123'))).toBe('tok123');
    expect(gitRequestToken(basic('anyone:a:b'))).toBe('a:b');
    expect(gitRequestToken({ headers: { authorization: 'Bearer tok456' } })).toBe('tok456');
  });

  it('has none without a header, an empty password or another scheme', () => {
    expect(gitRequestToken({ headers: {} })).toBeUndefined();
    expect(gitRequestToken(basic('berth:'))).toBeUndefined();
    expect(gitRequestToken(basic('berth'))).toBeUndefined();
    expect(gitRequestToken({ headers: { authorization: 'Digest x' } })).toBeUndefined();
  });

  it('the CLI reads what git asks its helper, up to the blank line', () => {
    expect(parseCredentialRequest('protocol=http\nhost=127.0.0.1:7070\npath=git/shop.git\n\nignored=1\n')).toEqual({ protocol: 'http', host: '127.0.0.1:7070', path: 'git/shop.git' });
    expect(gitRemoteUrl('http://10.0.0.5:7070/', 'shop')).toBe('http://10.0.0.5:7070/git/shop.git');
  });
});
