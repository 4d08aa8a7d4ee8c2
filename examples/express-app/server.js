// A tiny Express 4 app for berth. It says which instance and release answered, so that
// balancing and rollouts can be seen from outside, and stops cleanly on SIGTERM.
const express = require('express');

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
const base = process.env.BERTH_PATH || '';

const app = express();
app.disable('x-powered-by');

// The health check answers with or without the app's path prefix (berth can strip it or not).
const healthz = (req, res) => res.type('text/plain').send('ok\n');
app.get('/healthz', healthz);
if (base !== '' && base !== '/') app.get(`${base}/healthz`, healthz);

app.use((req, res) => {
  res.json({
    app: process.env.BERTH_APP,
    instance: process.env.BERTH_INSTANCE,
    release: process.env.BERTH_RELEASE,
    method: req.method,
    path: req.originalUrl,
  });
});

const server = app.listen(port, host, () => console.log(`express-app listening on ${host}:${port}`));

// Finish in-flight requests, then exit, when berth stops this instance.
process.on('SIGTERM', () => {
  console.log('SIGTERM: closing');
  server.close(() => process.exit(0));
  // Idle keep-alive connections would hold close() open: end them, and give up after 10 s.
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10_000).unref();
});
