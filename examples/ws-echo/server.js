// A WebSocket echo server for berth, with the ws package: every message comes back as sent
// (text as text, binary as binary). A plain HTTP GET answers "ws-echo" (so does the health
// check); the upgrade is accepted on any path, so it works with or without berth's prefix.
const http = require('node:http');
const { WebSocketServer } = require('ws');

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';

const server = http.createServer((req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET only\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' }).end('ws-echo\n');
});

const wss = new WebSocketServer({ server, maxPayload: 1024 * 1024 });
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('error', (err) => console.error(`socket error: ${err.message}`));
});

server.listen(port, host, () => console.log(`ws-echo listening on ${host}:${port}`));

// On SIGTERM: stop accepting, close every socket with 1001 (going away), then exit.
process.on('SIGTERM', () => {
  console.log('SIGTERM: closing');
  for (const socket of wss.clients) socket.close(1001, 'server stopping');
  wss.close();
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5_000).unref();
});
