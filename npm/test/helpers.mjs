// Shared helpers for the node:test suites.
import { once } from 'node:events';
import { WebSocketServer as WsServer } from 'ws';
import { WebSocketServer } from '../index.mjs';

/** Our echo server on an ephemeral port. */
export async function ourEchoServer(options = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  return { wss, url: `ws://127.0.0.1:${wss.address().port}` };
}

/** A ws 8 echo server on an ephemeral port. */
export async function wsEchoServer(options = {}) {
  const wss = new WsServer({ port: 0, host: '127.0.0.1', maxPayload: 64 * 1024 * 1024, ...options });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  return { wss, url: `ws://127.0.0.1:${wss.address().port}` };
}

export function closeServer(wss) {
  for (const c of wss.clients) c.terminate();
  return new Promise((resolve) => wss.close(() => resolve()));
}

/** Opens `ws` (either library) and waits for 'open'. */
export async function opened(ws) {
  if (ws.readyState === 1) return ws;
  await once(ws, 'open');
  return ws;
}

/** The next message as [data, isBinary]. */
export function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    const onMsg = (data, isBinary) => { ws.off('error', onErr); resolve([data, isBinary]); };
    const onErr = (e) => { ws.off('message', onMsg); reject(e); };
    ws.once('message', onMsg);
    ws.once('error', onErr);
  });
}

/** Resolves with [code, reason string] on 'close'. */
export function closed(ws) {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
}

/** Deterministic pseudo-random bytes. */
export function payload(size, seed = 1) {
  const b = Buffer.allocUnsafe(size);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Text that compresses (for deflate cases). */
export function text(size) {
  const unit = 'lowbit websockets — the quick brown fox jumps over the lazy dog 0123456789 ';
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}
