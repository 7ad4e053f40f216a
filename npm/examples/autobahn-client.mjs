// Autobahn|Testsuite client loop for our npm WebSocket client (see
// /work/shared/autobahn/README.md): AUTOBAHN_URL and AUTOBAHN_AGENT come from client-test.sh.
import { WebSocket } from '../index.mjs';

const base = process.env.AUTOBAHN_URL || 'ws://127.0.0.1:9001';
const agent = process.env.AUTOBAHN_AGENT || 'lowbit-node';

function run(url, onOpen) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: true, maxPayload: 64 * 1024 * 1024 });
    ws.on('error', () => {});
    if (onOpen) ws.on('open', () => onOpen(ws));
    ws.on('message', (data, isBinary) => {
      if (ws.onCase) ws.onCase(data);
      else ws.send(data, { binary: isBinary });
    });
    ws.on('close', () => resolve(ws));
  });
}

let count = 0;
await new Promise((resolve) => {
  const ws = new WebSocket(`${base}/getCaseCount`);
  ws.on('message', (data) => { count = Number(data.toString()); });
  ws.on('close', resolve);
  ws.on('error', resolve);
});
for (let i = 1; i <= count; i++) {
  await run(`${base}/runCase?case=${i}&agent=${encodeURIComponent(agent)}`);
}
await run(`${base}/updateReports?agent=${encodeURIComponent(agent)}`);
console.log(`ran ${count} cases`);
