// Backpressure: a client that stops reading while the server sends 1 GiB (SLOW_READER_BYTES to
// change). The server produces only while bufferedAmount is under a mark and waits for 'drain'
// otherwise, so its memory stays bounded; send callbacks stop while the reader is stalled; and
// once the reader resumes every message arrives, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from '../index.mjs';

const TOTAL = Number(process.env.SLOW_READER_BYTES || 1024 ** 3);
const CHUNK = 1024 * 1024;
const MARK = 8 * 1024 * 1024;

// The RSS bound leaves room for frames already written but not yet collected by V8 (growth
// measured: 40–50 MiB). It used to fail on fresh clones (295–771 MiB): large outputs went to JS
// as external buffers over Rust Vecs, freed whenever V8 collected them, and glibc's heap
// fragmented around them; they are copied into Node-allocated buffers now (`output_buffer` in
// crates/node/src/addon.rs).
test('slow reader: bounded memory, stalled callbacks, nothing lost', { timeout: 180_000 }, async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  // Whatever fails below, the server and the client go away, so the file cannot hang.
  let client;
  let sampler;
  let closed = false;
  t.after(() => {
    clearInterval(sampler);
    client?.kill();
    if (closed) return;
    for (const ws of wss.clients ?? []) ws.terminate();
    wss.close();
  });
  let sent = 0;
  let callbacks = 0;
  let maxBuffered = 0;
  let maxRss = 0;
  const baseRss = process.memoryUsage().rss;
  wss.on('connection', (ws) => {
    const chunk = Buffer.alloc(CHUNK, 0x5a);
    const pump = () => {
      while (sent < TOTAL && ws.readyState === ws.OPEN) {
        if (ws.bufferedAmount > MARK) {
          maxBuffered = Math.max(maxBuffered, ws.bufferedAmount);
          ws.once('drain', pump);
          return;
        }
        chunk.writeUInt32BE(sent / CHUNK, 0); // send() copies into the frame: reuse is safe
        ws.send(chunk, () => callbacks++);
        sent += CHUNK;
      }
    };
    pump();
  });
  sampler = setInterval(() => (maxRss = Math.max(maxRss, process.memoryUsage().rss)), 20);
  client = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/slow-client.cjs', import.meta.url)), `ws://127.0.0.1:${wss.address().port}`, String(TOTAL)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  client.stdout.on('data', (d) => (out += d));
  while (!out.includes('paused')) await sleep(10);

  await sleep(500);
  const stalled = { sent, callbacks };
  await sleep(500);
  assert.equal(callbacks, stalled.callbacks, 'no send callback fires while the reader is stalled');
  assert.equal(sent, stalled.sent, 'the producer waits for drain');
  assert.ok(maxBuffered > MARK, `bufferedAmount grew past the mark (${maxBuffered})`);
  assert.ok(sent < 64 * CHUNK, `production stopped early (${sent} bytes queued)`);

  client.stdin.write('resume\n');
  await once(client, 'close');
  clearInterval(sampler);
  const result = JSON.parse(out.trim().split('\n').pop());
  assert.deepEqual(result, { received: TOTAL, messages: TOTAL / CHUNK, inOrder: true });
  assert.equal(sent, TOTAL);
  const growth = (maxRss - baseRss) / 1024 / 1024;
  t.diagnostic(`server RSS grew by ${growth.toFixed(0)} MiB`);
  assert.ok(growth < 256, `server RSS grew by ${growth.toFixed(0)} MiB`);
  closed = true;
  await new Promise((resolve) => wss.close(resolve));
});
