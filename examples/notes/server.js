// Notes in PostgreSQL, reached through DATABASE_URL (berth addons:create notes postgres).
// GET <path>/notes lists them, POST <path>/notes with a text body adds one.
const http = require('node:http');
const { Pool } = require('pg');

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
const base = process.env.BERTH_PATH && process.env.BERTH_PATH !== '/' ? process.env.BERTH_PATH : '';
const pool = process.env.DATABASE_URL ? new Pool({ connectionString: process.env.DATABASE_URL, max: 4 }) : undefined;

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
      if (body.length > 10_000) reject(new Error('a note is at most 10,000 characters'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/healthz' || path === `${base}/healthz`) return send(res, 200, { ok: true });
  if (path !== `${base}/notes`) return send(res, 404, { error: 'try GET or POST /notes' });
  if (pool === undefined) return send(res, 503, { error: 'no database: berth addons:create notes postgres' });
  try {
    if (req.method === 'POST') {
      const text = (await readBody(req)).trim();
      if (text === '') return send(res, 400, { error: 'the body is the note: send some text' });
      const { rows } = await pool.query('INSERT INTO notes (text) VALUES ($1) RETURNING id, text', [text]);
      return send(res, 201, { ...rows[0], instance: process.env.BERTH_INSTANCE });
    }
    const { rows } = await pool.query('SELECT id, text FROM notes ORDER BY id');
    return send(res, 200, { notes: rows, instance: process.env.BERTH_INSTANCE });
  } catch (err) {
    console.error(`notes: ${err.message}`);
    return send(res, 500, { error: err.message });
  }
});

server.listen(port, host, () => console.log(`notes listening on ${host}:${port}${pool ? ' with a database' : ', no database yet'}`));

process.on('SIGTERM', () => {
  server.close(async () => {
    await pool?.end().catch(() => undefined);
    process.exit(0);
  });
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10_000).unref();
});
