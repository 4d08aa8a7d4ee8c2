// The floor of any Node reverse proxy here, for the proxy and TLS benchmarks: a request
// handler that forwards through berth's own undici agent and does nothing else (no routing,
// no checks, no metrics, no limits, no error answers beyond a bare 502). What berth costs
// beyond it is berth's; what it costs beyond nginx is Node's.
const { upstreamAgent } = await import('../../dist/forward/index.js');

/** A (req, res) handler for node:http or node:https that forwards everything to `origin`. */
export async function floorForwarder(origin) {
  const agent = upstreamAgent({ connectTimeoutMs: 2000, upstreamTimeoutMs: 60_000 });
  return (req, res) => {
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const lower = req.rawHeaders[i].toLowerCase();
      if (lower !== 'connection' && lower !== 'keep-alive') headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
    headers.push('x-forwarded-for', req.socket.remoteAddress);
    let resume;
    agent.dispatch(
      { origin, method: req.method, path: req.url, headers, body: null },
      {
        onConnect() {},
        onHeaders(status, raw, resumeReading) {
          const out = [];
          for (let i = 0; i < raw.length; i += 2) {
            const name = raw[i].toString('latin1');
            const lower = name.toLowerCase();
            if (lower !== 'connection' && lower !== 'keep-alive') out.push(name, raw[i + 1].toString('latin1'));
          }
          res.writeHead(status, out);
          resume = resumeReading;
          return true;
        },
        onData(chunk) {
          if (res.write(chunk)) return true;
          res.once('drain', resume);
          return false;
        },
        onComplete: () => res.end(),
        onError: () => (res.headersSent ? res.destroy() : res.writeHead(502).end()),
      },
    );
  };
}
