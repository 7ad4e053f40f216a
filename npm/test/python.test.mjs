// Python `websockets` (a real third-party client) against our Node server, with and without
// permessage-deflate. The venv lives at target/py-venv and is created when missing.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ourEchoServer, closeServer } from './helpers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const venv = path.join(root, 'target/py-venv');
const python = path.join(venv, 'bin/python');

function ensureVenv() {
  if (!existsSync(python)) execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  try {
    execFileSync(python, ['-c', 'import websockets'], { stdio: 'ignore' });
  } catch {
    execFileSync(python, ['-m', 'pip', 'install', '--quiet', 'websockets'], { stdio: 'inherit' });
  }
}

const CLIENT = `
import asyncio, sys, os
from websockets.asyncio.client import connect

async def main(url, deflate):
    async with connect(url, compression="deflate" if deflate else None, max_size=2**25) as ws:
        neg = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        assert ("permessage-deflate" in neg) == deflate, neg
        for size in (0, 20, 1024, 65536, 1 << 20, 16 << 20):
            data = os.urandom(size)
            await ws.send(data)
            assert await ws.recv() == data, ("binary", size)
            text = ("lowbit " * (size // 7 + 1))[:size]
            await ws.send(text)
            assert await ws.recv() == text, ("text", size)
        await ws.send(["frag", "mented ", "text"])
        assert await ws.recv() == "fragmented text"
        pong = await ws.ping(b"py")
        await pong
        await ws.close(4002, "python done")
    print("ok", ws.close_code if hasattr(ws, "close_code") else "")

asyncio.run(main(sys.argv[1], sys.argv[2] == "1"))
`;

function runClient(url, deflate) {
  return new Promise((resolve, reject) => {
    const p = spawn(python, ['-c', CLIENT, url, deflate ? '1' : '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`python exited ${code}: ${err}`))));
  });
}

describe('Python websockets client against our Node server', () => {
  before(() => ensureVenv());
  for (const deflate of [false, true]) {
    test(deflate ? 'with deflate' : 'without deflate', async () => {
      const { wss, url } = await ourEchoServer({ perMessageDeflate: deflate, maxPayload: 32 * 1024 * 1024 });
      const closedWith = new Promise((resolve) => wss.once('connection', (ws) => ws.once('close', (c, r) => resolve([c, r.toString()]))));
      const out = await runClient(url, deflate);
      assert.match(out, /^ok/);
      assert.deepEqual(await closedWith, [4002, 'python done']);
      await closeServer(wss);
    });
  }
});
