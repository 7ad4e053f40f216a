// Connection churn: 20,000 connect / upgrade / one message / close cycles against our server,
// run in a child process. Afterwards (garbage collected, finalizers run) the server is back to
// its file descriptors and within 10% + 10 MB of its resident set before the churn: sessions
// and their buffers go when their connection closes, not at some later collection, and the
// heap they used is reused rather than kept. CHURN_CYCLES changes the count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const CYCLES = Number(process.env.CHURN_CYCLES || 20_000);
/** Cycles before the baseline, so that code, JIT and pools the server keeps are counted in it. */
const WARM = Number(process.env.CHURN_WARM || 2_000);
const CONCURRENCY = 32;
const MESSAGE = Buffer.alloc(1024, 'x');

/**
 * V8 grows its young generation (up to 16 MB per semi-space) as the allocation rate rises,
 * which on its own adds 15-30 MB of RSS during the churn for ws and for us alike: fixed at
 * that size from the start, it is part of the baseline, and the growth measured is what the
 * server keeps.
 */
const V8_FLAGS = ['--min-semi-space-size=16', '--max-semi-space-size=16'];

/** The churn server (`args`: `--ws` for ws 8), with a `stats()` that asks it for its numbers. */
async function startServer(args) {
  const child = spawn(process.execPath, [...V8_FLAGS, '--expose-gc', fileURLToPath(new URL('./fixtures/churn-server.mjs', import.meta.url)), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the churn server exited');
    return JSON.parse(value);
  };
  const { port } = await next();
  const stats = () => {
    child.stdin.write('stats\n');
    return next();
  };
  return { child, port, stats };
}

/** One cycle: connect, upgrade, echo one message, close (the client starts the close). */
function cycle(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => ws.send(MESSAGE));
    ws.on('message', () => ws.close(1000));
    ws.on('close', resolve);
    ws.on('error', reject);
  });
}

async function churn(url, n) {
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      await cycle(url);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Stats once the server has let go of every connection (its side closes after ours). */
async function settled(stats) {
  for (;;) {
    const s = await stats();
    if (s.clients === 0) return s;
  }
}

test(`churn: ${CYCLES} connect/message/close cycles leave fds and memory where they were`, { timeout: 300_000 }, async (t) => {
  const server = await startServer(process.env.CHURN_WS ? ['--ws'] : []);
  t.after(() => server.child.kill());
  const url = `ws://127.0.0.1:${server.port}/`;
  await churn(url, WARM);
  const before = await settled(server.stats);
  await churn(url, CYCLES);
  const after = await settled(server.stats);
  const mb = (n) => (n / 1048576).toFixed(1);
  t.diagnostic(`RSS ${mb(before.rss)} MB -> ${mb(after.rss)} MB (V8 heap ${mb(before.heapTotal)} -> ${mb(after.heapTotal)}, external ${mb(before.external)} -> ${mb(after.external)}), fds ${before.fds} -> ${after.fds}`);
  assert.equal(after.fds, before.fds, 'file descriptors back to the baseline');
  assert.ok(after.rss <= before.rss * 1.1 + 10 * 1048576, `RSS ${mb(before.rss)} MB -> ${mb(after.rss)} MB`);
});
