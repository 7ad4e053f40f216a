// A real browser as the client of our echo servers: headless Chromium (Debian's package,
// driven over the DevTools protocol by playwright-core) opens WebSockets from an http page on
// loopback and checks every echo, its close codes and reasons, and the permessage-deflate
// answer. `cargo xtask test` starts every face's echo server and runs this once for all:
//
//   node test/browser/run.mjs NAME,URL,deflate|plain,LIMIT ...
//
// NAME labels the report, URL is the echo server, `deflate` means the server must accept
// Chromium's permessage-deflate offer (`plain`: it must not), LIMIT is the server's largest
// message in bytes (a message one byte longer must close the connection with 1009).
// CHROMIUM overrides the browser's path (default /usr/bin/chromium).
import { createServer } from 'node:http';
import { once } from 'node:events';
import { chromium } from 'playwright-core';

const targets = process.argv.slice(2).map((arg) => {
  const [name, url, mode, limit] = arg.split(',');
  if (!name || !url || !['deflate', 'plain'].includes(mode) || !(Number(limit) > 0)) {
    console.error(`bad target ${JSON.stringify(arg)}: expected NAME,URL,deflate|plain,LIMIT`);
    process.exit(2);
  }
  return { name, url, deflate: mode === 'deflate', limit: Number(limit) };
});
if (targets.length === 0) {
  console.error('usage: node test/browser/run.mjs NAME,URL,deflate|plain,LIMIT ...');
  process.exit(2);
}

/**
 * Runs in the page: what a browser application would do. Returns a list of failures (empty
 * when everything held) and what it saw, as plain data.
 */
async function scenario({ url, deflate, limit }) {
  const failures = [];
  const fail = (what) => failures.push(what);

  /** Opens a socket that records every message and its close event. */
  async function open() {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const state = { ws, received: [], close: null, wake: null };
    ws.onmessage = (e) => {
      state.received.push(e.data);
      state.wake?.();
    };
    state.closed = new Promise((resolve) => {
      ws.onclose = (e) => {
        state.close = { code: e.code, reason: e.reason, wasClean: e.wasClean };
        resolve(state.close);
        state.wake?.();
      };
    });
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    ws.onerror = null;
    return state;
  }

  /** Waits until `n` messages arrived or the socket closed. */
  async function receive(state, n) {
    while (state.received.length < n && state.close === null) {
      await new Promise((resolve) => (state.wake = resolve));
    }
    state.wake = null;
  }

  /** Deterministic bytes: random-looking (incompressible) or a repeating pattern. */
  function bytes(n, seed, random = true) {
    const b = new Uint8Array(n);
    let x = seed * 2654435761 >>> 0 || 1;
    for (let i = 0; i < n; i++) {
      if (random) {
        x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
        b[i] = x & 0xff;
      } else b[i] = i % 251;
    }
    return b;
  }
  /** Text of `n` UTF-16 units with 2-, 3- and 4-byte UTF-8 characters at shifting offsets. */
  function text(n) {
    const unit = 'lowbit héllo wörld ☃ ✓ 😀 — the quick brown fox 0123456789 ';
    let s = unit.repeat(Math.ceil(n / unit.length) + 1).slice(0, n);
    // Never end on half a surrogate pair: that would not be the string we meant to send.
    if (/[\ud800-\udbff]$/.test(s)) s = s.slice(0, -1) + 'x';
    return s;
  }
  const utf8 = (s) => new TextEncoder().encode(s).length;

  function describe(m) {
    return typeof m === 'string' ? `text(${utf8(m)} B)` : `binary(${m.byteLength} B)`;
  }
  function same(sent, got) {
    if (typeof sent === 'string') return typeof got === 'string' && got === sent;
    if (!(got instanceof ArrayBuffer)) return false;
    const a = sent instanceof Uint8Array ? sent : new Uint8Array(sent);
    const b = new Uint8Array(got);
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  // 1. Echo: every size class of the length field, frames the servers fragment at odd UTF-8
  //    offsets, compressible and incompressible data, and a message of exactly the limit, all
  //    sent before any echo is read (the servers must keep their order and lose nothing).
  const messages = [
    '', 'a', 'héllo wörld ☃ 😀', text(125), text(126), text(127), text(65535), text(65536), text(70001),
    text(1 << 20),
    new Uint8Array(0), bytes(1, 1), bytes(125, 2), bytes(126, 3), bytes(65535, 4), bytes(65536, 5),
    bytes(1 << 20, 6), bytes(4 << 20, 7, false), bytes(30000, 8).subarray(7, 29000).buffer,
    'x'.repeat(limit),
  ];
  const echo = await open();
  if (deflate && !/^permessage-deflate\b/.test(echo.ws.extensions)) {
    fail(`deflate offered, server answered extensions ${JSON.stringify(echo.ws.extensions)}`);
  }
  if (!deflate && echo.ws.extensions !== '') fail(`server accepted ${JSON.stringify(echo.ws.extensions)} unasked`);
  const extensions = echo.ws.extensions;
  for (const m of messages) echo.ws.send(m);
  await receive(echo, messages.length);
  if (echo.received.length !== messages.length) {
    fail(`echo: ${echo.received.length} of ${messages.length} messages came back, then close ${JSON.stringify(echo.close)}`);
  }
  for (let i = 0; i < echo.received.length; i++) {
    if (!same(messages[i], echo.received[i])) {
      fail(`echo: message ${i}, sent ${describe(messages[i])}, got ${describe(echo.received[i])} that differs`);
    }
  }

  // 2. The client closes with a code and a reason (multi-byte, the longest that fits in 123
  //    bytes): the server answers with the code, cleanly (echoing the reason is optional).
  const reason = '✓'.repeat(41);
  echo.ws.close(4001, reason);
  const c1 = await echo.closed;
  if (c1.code !== 4001 || ![reason, ''].includes(c1.reason) || !c1.wasClean) {
    fail(`close(4001, reason): got ${JSON.stringify(c1)}`);
  }

  // 3. close() without a code: the client's close frame is empty, the server's answer too.
  const bare = await open();
  bare.ws.close();
  const c2 = await bare.closed;
  if (c2.code !== 1005 || c2.reason !== '' || !c2.wasClean) fail(`close(): got ${JSON.stringify(c2)}, want 1005, clean`);

  // 4. One byte over the limit: the messages before it come back, then the server closes
  //    with 1009; the message after it never comes back.
  const big = await open();
  big.ws.send('before');
  big.ws.send(bytes(limit + 1, 9));
  big.ws.send('after');
  const c3 = await big.closed;
  const got = big.received.map((m) => (typeof m === 'string' ? m : describe(m)));
  if (got.length !== 1 || got[0] !== 'before') fail(`over the limit: received ${JSON.stringify(got)}, want ["before"]`);
  if (c3.code !== 1009) fail(`over the limit: closed with ${JSON.stringify(c3)}, want 1009`);

  // 5. Four connections at once, interleaving their messages.
  const many = await Promise.all([0, 1, 2, 3].map(() => open()));
  const per = 50;
  for (let i = 0; i < per; i++) {
    many.forEach((s, k) => s.ws.send(i % 2 ? text(100 + i * 40 + k) : bytes(3000 + i * 7, i * 4 + k)));
  }
  for (const [k, s] of many.entries()) {
    await receive(s, per);
    for (let i = 0; i < per; i++) {
      const sent = i % 2 ? text(100 + i * 40 + k) : bytes(3000 + i * 7, i * 4 + k);
      if (!same(sent, s.received[i])) {
        fail(`connection ${k} of 4: message ${i} ${s.received[i] === undefined ? 'missing' : 'differs'}`);
        break;
      }
    }
    s.ws.close(1000, 'done');
    const c = await s.closed;
    if (c.code !== 1000 || !['done', ''].includes(c.reason) || !c.wasClean) fail(`connection ${k} of 4: closed with ${JSON.stringify(c)}`);
  }

  return { failures, extensions, tooBig: c3 };
}

// The page the sockets open from, so they carry a real http Origin.
const page = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><title>lowbit websockets: browser interop</title>');
});
page.listen(0, '127.0.0.1');
await once(page, 'listening');
const origin = `http://127.0.0.1:${page.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // The machine has no network beyond loopback: keep Chromium from calling home.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
console.log(`browser: Chromium ${browser.version()}`);
let failed = 0;
try {
  for (const t of targets) {
    const tab = await browser.newPage();
    try {
      await tab.goto(origin);
      const started = Date.now();
      const report = await Promise.race([
        tab.evaluate(scenario, t),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no result within 120 s')), 120_000).unref()),
      ]);
      const took = ((Date.now() - started) / 1000).toFixed(1);
      if (report.failures.length === 0) {
        console.log(`ok      ${t.name} (${took} s; extensions: ${JSON.stringify(report.extensions)}; over the limit: ${report.tooBig.code}${report.tooBig.wasClean ? ', clean' : ''})`);
      } else {
        failed++;
        console.log(`FAILED  ${t.name} (${took} s)`);
        for (const f of report.failures) console.log(`        ${f}`);
      }
    } catch (e) {
      failed++;
      console.log(`FAILED  ${t.name}: ${e.message}`);
    } finally {
      await tab.close();
    }
  }
} finally {
  await browser.close();
  page.close();
}
console.log(`${targets.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
