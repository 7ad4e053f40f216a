// A small client: `node examples/client.mjs ws://127.0.0.1:9001/` sends a few messages to an
// echo server, prints what comes back, and closes.
import { WebSocket } from '../index.mjs';

const url = process.argv[2] || 'ws://127.0.0.1:9001/';
const ws = new WebSocket(url);
const messages = ['hello', 'lowbit websockets from Node', 'x'.repeat(4096)];
let i = 0;
ws.on('open', () => {
  console.log(`connected to ${url} (extensions: ${ws.extensions || 'none'})`);
  ws.send(messages[i]);
});
ws.on('message', (data, isBinary) => {
  const text = data.toString();
  console.log(`echo ${isBinary ? 'binary' : 'text'} (${data.length} bytes): ${text.length > 40 ? text.slice(0, 40) + '…' : text}`);
  if (++i < messages.length) ws.send(messages[i]);
  else ws.close(1000, 'done');
});
ws.on('close', (code, reason) => console.log(`closed: ${code} ${reason}`));
ws.on('error', (err) => {
  console.error(`error: ${err.message}`);
  process.exitCode = 1;
});
