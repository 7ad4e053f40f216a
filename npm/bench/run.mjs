// `npm run bench`: one run, one load generator (crates/node lbws-loadgen, Rust, blocking
// clients), the same machine. Echo messages/s and p99 latency at 20 B, 1 KiB and 64 KiB with
// 100 connections:
//   our Node server vs ws 8 (bufferutil + utf-8-validate), with and without permessage-deflate;
//   our Deno FFI server vs Deno's built-in WebSocket server (no deflate: Deno's has none).
// Env: BENCH_SECS (default 4), BENCH_CONNS (100), BENCH_ROUNDS (2: best of), BENCH_ONLY
// (lowbit | lowbit-deno-ffi | lowbit-wasm: one pair only; lowbit-wasm, the WebAssembly
// fallback against the native addon, runs only so), BENCH_DEPTH (1: messages in flight per connection),
// BENCH_PIN (1: server on CPU 0, load generator on CPU 1, via taskset, so each has one whole
// core and the table measures the server). Writes target/bench/node-depthN.json and prints a
// Markdown table.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import net from 'node:net';
import os from 'node:os';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, '..');
const root = path.resolve(pkg, '..');
const loadgen = path.join(root, 'target/release/lbws-loadgen');
const deno = path.join(pkg, 'node_modules/.bin/deno');
const SECS = Number(process.env.BENCH_SECS || 4);
const CONNS = Number(process.env.BENCH_CONNS || 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 2);
const DEPTH = Number(process.env.BENCH_DEPTH || 1);
const SIZES = [20, 1024, 64 * 1024];
const PIN = process.env.BENCH_PIN === '1';
/** `[cmd, args]` run on one CPU when pinning. */
const onCpu = (cpu, [cmd, args]) => (PIN ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);

if (!existsSync(loadgen) || process.env.BENCH_REBUILD) {
  execFileSync('cargo', ['build', '--release', '-p', 'lowbit-ws-node', '--bin', 'lbws-loadgen'], { cwd: root, stdio: 'inherit' });
}

const SERVERS = {
  lowbit: (port, deflate) => [process.execPath, [path.join(pkg, 'examples/echo-server.mjs'), '--port', port, ...(deflate ? ['--deflate'] : [])]],
  ws: (port, deflate) => [process.execPath, [path.join(here, 'ws-echo-server.cjs'), '--port', port, ...(deflate ? ['--deflate'] : [])]],
  'lowbit-deno-ffi': (port, deflate) => [deno, ['run', '--allow-ffi', '--allow-net', '--allow-read', '--allow-env', path.join(pkg, 'examples/echo-server-deno.ts'), '--port', port, ...(deflate ? ['--deflate'] : [])]],
  'deno-builtin': (port) => [deno, ['run', '--allow-net', path.join(here, 'deno-builtin-echo.ts'), '--port', port]],
  // The same Node server on the WebAssembly fallback (napi-rs wasm32-wasip1-threads, built by
  // `cargo xtask package` or the test's npm step); `error` forbids falling back to native.
  'lowbit-wasm': (port, deflate) => SERVERS.lowbit(port, deflate),
};
/** Environment for a server beyond ours. */
const SERVER_ENV = { 'lowbit-wasm': { NAPI_RS_FORCE_WASI: 'error' } };

async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`server on ${port} did not start`);
}

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function measure(server, size, deflate) {
  const port = String(await freePort());
  const [cmd, args] = onCpu(0, SERVERS[server](port, deflate));
  const env = { ...process.env, ...SERVER_ENV[server] };
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
  proc.on('exit', (code, sig) => { if (code) console.error(`${server} exited with ${code ?? sig}`); });
  try {
    await waitPort(Number(port));
    const gen = onCpu(1, [loadgen, ['--addr', `127.0.0.1:${port}`, '--conns', String(CONNS), '--size', String(size), '--secs', String(SECS), '--warmup', '1', '--depth', String(DEPTH), ...(deflate ? ['--deflate'] : [])]]);
    const out = execFileSync(...gen, { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop());
    if (r.errors) throw new Error(`${server}: ${r.errors} connections failed`);
    return r;
  } finally {
    proc.kill('SIGTERM');
    await new Promise((resolve) => proc.once('exit', resolve));
  }
}

const results = [];
const fmtSize = (s) => (s >= 1024 ? `${s / 1024} KiB` : `${s} B`);
const pairs = [
  ['lowbit', 'ws', [false, true]],
  ['lowbit-deno-ffi', 'deno-builtin', [false]],
  // Only on request (BENCH_ONLY=lowbit-wasm): the fallback's cost against the native addon.
  ['lowbit-wasm', 'lowbit', [false, true]],
].filter(([ours]) => (process.env.BENCH_ONLY ? ours === process.env.BENCH_ONLY : ours !== 'lowbit-wasm'));
for (const [ours, theirs, modes] of pairs) {
  for (const deflate of modes) {
    for (const size of SIZES) {
      // Alternate the two servers ROUNDS times and keep each one's best run: the machine is
      // shared, and the best run is the least disturbed one.
      let a = null;
      let b = null;
      for (let round = 0; round < ROUNDS; round++) {
        const x = await measure(ours, size, deflate);
        const y = await measure(theirs, size, deflate);
        if (!a || x.msgs_per_sec > a.msgs_per_sec) a = x;
        if (!b || y.msgs_per_sec > b.msgs_per_sec) b = y;
      }
      const row = { ours, theirs, size, deflate, a, b, ratio: a.msgs_per_sec / b.msgs_per_sec };
      results.push(row);
      console.error(`${ours} vs ${theirs} ${fmtSize(size)}${deflate ? ' deflate' : ''}: ${a.msgs_per_sec} vs ${b.msgs_per_sec} msg/s (${row.ratio.toFixed(2)}x), p99 ${a.p99_us} vs ${b.p99_us} µs`);
    }
  }
}

mkdirSync(path.join(root, 'target/bench'), { recursive: true });
writeFileSync(path.join(root, `target/bench/node-depth${DEPTH}${PIN ? '-pinned' : ''}.json`), JSON.stringify({ secs: SECS, conns: CONNS, depth: DEPTH, pinned: PIN, results }, null, 2));
console.log(`\n${CONNS} connections, ${SECS} s per run, best of ${ROUNDS}, ${DEPTH} in flight per connection${PIN ? ', server pinned to CPU 0 and load generator to CPU 1' : ''}, echo of a JSON-like text message, loadgen: lbws-loadgen, load average at start ${os.loadavg()[0].toFixed(1)}\n`);
console.log('| server vs baseline | size | deflate | ours msg/s | baseline msg/s | ratio | ours p99 | baseline p99 |');
console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(`| ${r.ours} vs ${r.theirs} | ${fmtSize(r.size)} | ${r.deflate ? 'yes' : 'no'} | ${r.a.msgs_per_sec} | ${r.b.msgs_per_sec} | ${r.ratio.toFixed(2)}x | ${(r.a.p99_us / 1000).toFixed(2)} ms | ${(r.b.p99_us / 1000).toFixed(2)} ms |`);
}
