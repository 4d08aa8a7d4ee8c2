// The smallest berth app: plain Node HTTP, no dependencies. It says which instance and
// release answered, so that balancing and rollouts can be seen from outside.
const http = require('node:http');

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
const greeting = process.env.GREETING || 'Hello from berth';

const server = http.createServer((req, res) => {
  if (req.url === '/healthz' || req.url === `${process.env.BERTH_PATH}/healthz`) {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  const body = JSON.stringify({
    greeting,
    app: process.env.BERTH_APP,
    instance: process.env.BERTH_INSTANCE,
    release: process.env.BERTH_RELEASE,
    path: req.url,
  });
  res.writeHead(200, { 'content-type': 'application/json' }).end(`${body}\n`);
});

server.listen(port, host, () => console.log(`hello listening on ${host}:${port}`));
// Finish in-flight requests, then exit, when berth stops this instance.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
