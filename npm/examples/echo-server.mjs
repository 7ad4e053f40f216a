// Echo server: `node examples/echo-server.mjs --port PORT [--deflate] [--host HOST] [--max-payload BYTES]`.
// Echoes every message back as it came (text as text, binary as binary). Used by the
// interop tests, Autobahn (`--deflate`, 16 MiB messages), the browser test and the benchmarks.
// The largest message accepted is 64 MiB unless `--max-payload` says otherwise.
import { WebSocketServer } from '../index.mjs';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name, fallback) => {
  const i = args.indexOf(name);
  return i !== -1 && i + 1 < args.length ? args[i + 1] : fallback;
};

const port = Number(value('--port', '9001'));
const host = value('--host', '127.0.0.1');
const wss = new WebSocketServer({
  port,
  host,
  perMessageDeflate: flag('--deflate'),
  maxPayload: Number(value('--max-payload', String(64 * 1024 * 1024))),
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`echo server listening on ws://${host}:${port}${flag('--deflate') ? ' (permessage-deflate)' : ''}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
