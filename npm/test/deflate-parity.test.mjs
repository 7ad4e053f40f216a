// Bytes on the wire against ws: our server and a ws 8 server each send every group of the
// deflate corpus (test/fixtures/deflate-corpus.mjs) to a raw client that offers what ws's
// client offers and counts the frames' bytes. At levels 1, 6 and the default, ours must be at
// most 1.05x ws's. The ws sizes measured here must also equal the fixture core's Rust test
// reads (crates/core/tests/fixtures/ws-deflate-sizes.txt); WRITE_WS_DEFLATE_SIZES=1 rewrites it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { WebSocketServer as WsServer } from 'ws';
import { WebSocketServer } from '../index.mjs';
import { groups, fingerprint } from './fixtures/deflate-corpus.mjs';

const FIXTURE = new URL('../../crates/core/tests/fixtures/ws-deflate-sizes.txt', import.meta.url);
const MAX_RATIO = 1.05;
// The same option object goes to both servers, with ws's names.
const LEVELS = [
  ['1', { zlibDeflateOptions: { level: 1 } }],
  ['6', { zlibDeflateOptions: { level: 6 } }],
  ['default', true],
];

/** Frame bytes a server writes for `messages`, read by a raw client with ws's offer. */
async function wireBytes(Server, perMessageDeflate, messages) {
  const wss = new Server({ port: 0, host: '127.0.0.1', perMessageDeflate });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    for (const m of messages) ws.send(m);
  });
  const sock = net.connect(wss.address().port, '127.0.0.1');
  sock.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
    'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n');
  let buf = Buffer.alloc(0);
  let head = true;
  let total = 0;
  let fins = 0;
  let extensions = '';
  for await (const chunk of sock) {
    buf = Buffer.concat([buf, chunk]);
    if (head) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) continue;
      extensions = /sec-websocket-extensions: *([^\r]*)/i.exec(buf.subarray(0, end).toString())?.[1] ?? '';
      buf = buf.subarray(end + 4);
      head = false;
    }
    // Whole frames only: FIN bit, 7-bit length, 16- or 64-bit extended length (unmasked).
    for (;;) {
      if (buf.length < 2) break;
      const len7 = buf[1] & 0x7f;
      const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      if (buf.length < 2 + extra) break;
      const len = len7 === 126 ? buf.readUInt16BE(2) : len7 === 127 ? Number(buf.readBigUInt64BE(2)) : len7;
      if (buf.length < 2 + extra + len) break;
      total += 2 + extra + len;
      if (buf[0] & 0x80) fins++;
      buf = buf.subarray(2 + extra + len);
    }
    if (fins === messages.length) break;
  }
  sock.destroy();
  for (const c of wss.clients) c.terminate();
  await new Promise((resolve) => wss.close(resolve));
  assert.match(extensions, /^permessage-deflate/, 'deflate negotiated');
  return total;
}

test('bytes on the wire: ours at most 1.05x ws at the same level, and the fixture is ws\'s', async () => {
  const corpus = groups();
  const lines = ['# Bytes on the wire (frame headers and payloads) a ws 8 server writes for each group of the',
    '# deflate corpus, by level; measured by npm/test/deflate-parity.test.mjs, read by deflate_parity.rs.',
    `# ws ${(await import('ws/package.json', { with: { type: 'json' } })).default.version}, Node ${process.version}.`];
  for (const [name, msgs] of corpus) lines.push(`corpus ${name} ${fingerprint(msgs).join(' ')}`);
  const failures = [];
  for (const [label, pmd] of LEVELS) {
    for (const [name, msgs] of corpus) {
      const ws = await wireBytes(WsServer, pmd, msgs);
      const ours = await wireBytes(WebSocketServer, pmd, msgs);
      lines.push(`ws ${label} ${name} ${ws}`);
      const ratio = ours / ws;
      console.log(`level ${label.padStart(7)} ${name.padStart(11)}: ours ${ours} ws ${ws} (${ratio.toFixed(3)}x)`);
      if (ratio > MAX_RATIO) failures.push(`level ${label} ${name}: ${ours} vs ws ${ws} (${ratio.toFixed(3)}x)`);
    }
  }
  const measured = lines.join('\n') + '\n';
  if (process.env.WRITE_WS_DEFLATE_SIZES) fs.writeFileSync(FIXTURE, measured);
  const sizes = (text) => text.split('\n').filter((l) => /^(corpus|ws) /.test(l));
  assert.deepEqual(sizes(fs.readFileSync(FIXTURE, 'utf8')), sizes(measured), 'the fixture is what ws writes now');
  assert.deepEqual(failures, [], `more than ${MAX_RATIO}x ws`);
});
