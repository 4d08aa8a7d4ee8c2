/** What the balancer reads of a TLS ClientHello to choose between a domain's RSA and ECDSA certificates. */
export interface ClientHello {
  /** The SNI name as sent (undefined: none). */
  servername: string | undefined;
  /** Whether an ECDSA certificate would do for this client: it offers an ECDSA signature scheme and, below TLS 1.3, an ECDHE-ECDSA suite. */
  acceptsEcdsa: boolean;
}

/** The most of a ClientHello that is read: larger ones are passed on unread. */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_SIGNATURE_ALGORITHMS = 0x000d;
const EXT_SUPPORTED_VERSIONS = 0x002b;
const TLS13 = 0x0304;
/** ecdsa_sha1, ecdsa_secp256r1_sha256, ecdsa_secp384r1_sha384, ecdsa_secp521r1_sha512 (RFC 8446 4.2.3). */
const ECDSA_SCHEMES = new Set([0x0203, 0x0403, 0x0503, 0x0603]);
/** TLS 1.2 suites that an ECDSA certificate can serve: ECDHE_ECDSA_* (RFC 8422, 5289, 7905). */
const ECDSA_SUITES = new Set([0xc009, 0xc00a, 0xc023, 0xc024, 0xc02b, 0xc02c, 0xcca9, 0xc0ac, 0xc0ad, 0xc0ae, 0xc0af]);

/**
 * Reads a ClientHello from the first bytes a client sent: 'more' while it is not all there,
 * undefined when these bytes are not one (the TLS server then answers them as it would).
 * Handshake records may be fragmented: their bodies are joined.
 */
export function parseClientHello(data: Buffer): ClientHello | 'more' | undefined {
  const body: Buffer[] = [];
  let have = 0;
  let at = 0;
  let need = -1;
  while (need < 0 || have < need) {
    if (data.length < at + 5) return data.length >= MAX_CLIENT_HELLO_BYTES ? undefined : 'more';
    if (data[at] !== HANDSHAKE) return undefined;
    const length = data.readUInt16BE(at + 3);
    if (data.length < at + 5 + length) return data.length >= MAX_CLIENT_HELLO_BYTES ? undefined : 'more';
    body.push(data.subarray(at + 5, at + 5 + length));
    have += length;
    at += 5 + length;
    if (need < 0 && have >= 4) {
      const head = Buffer.concat(body);
      if (head[0] !== CLIENT_HELLO) return undefined;
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_CLIENT_HELLO_BYTES) return undefined;
    }
  }
  try {
    return readHello(Buffer.concat(body).subarray(4, need));
  } catch {
    // Lengths that run past the message: not a ClientHello this can read.
    return undefined;
  }
}

function readHello(m: Buffer): ClientHello {
  let at = 2 + 32; // legacy_version, random
  at += 1 + m.readUInt8(at); // session id
  const suitesLength = m.readUInt16BE(at);
  const suites = new Set<number>();
  for (let i = 0; i < suitesLength; i += 2) suites.add(m.readUInt16BE(at + 2 + i));
  at += 2 + suitesLength;
  at += 1 + m.readUInt8(at); // compression methods
  let servername: string | undefined;
  let schemes: Set<number> | undefined;
  let tls13 = false;
  const end = at + 2 + (at < m.length ? m.readUInt16BE(at) : 0);
  at += 2;
  while (at + 4 <= end && at + 4 <= m.length) {
    const type = m.readUInt16BE(at);
    const length = m.readUInt16BE(at + 2);
    const ext = m.subarray(at + 4, at + 4 + length);
    if (ext.length !== length) throw new RangeError('extension past the end');
    if (type === EXT_SERVER_NAME && ext.length >= 5 && ext[2] === 0) servername = ext.subarray(5, 5 + ext.readUInt16BE(3)).toString('latin1');
    else if (type === EXT_SIGNATURE_ALGORITHMS && ext.length >= 2) {
      schemes = new Set();
      for (let i = 2; i + 1 < 2 + ext.readUInt16BE(0) && i + 1 < ext.length; i += 2) schemes.add(ext.readUInt16BE(i));
    } else if (type === EXT_SUPPORTED_VERSIONS && ext.length >= 1) {
      for (let i = 1; i + 1 < 1 + ext[0]! && i + 1 < ext.length; i += 2) if (ext.readUInt16BE(i) === TLS13) tls13 = true;
    }
    at += 4 + length;
  }
  // Without the extension a TLS 1.2 client takes what its suites allow (RFC 5246 7.4.1.4.1).
  const ecdsaScheme = schemes === undefined || [...schemes].some((s) => ECDSA_SCHEMES.has(s));
  const ecdsaSuite = tls13 || [...suites].some((s) => ECDSA_SUITES.has(s));
  return { servername, acceptsEcdsa: ecdsaScheme && ecdsaSuite };
}
