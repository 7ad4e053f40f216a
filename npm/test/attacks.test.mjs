// Resource attacks against our Node server, with a second client echoing meanwhile: a trickled
// upgrade request (408 at handshakeTimeout), a flood of empty continuation frames, a
// message past maxFragments (core's cap, 1009), a reader that stops reading
// (writeStallTimeout) and a peer that goes quiet (idleTimeout, after a ping). Shared data: fixtures/attacks.mjs (the Deno
// server's test uses the same). Outcomes are asserted; the waits are hang guards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from '../index.mjs';
import { ourEchoServer, closeServer, opened, nextMessage } from './helpers.mjs';
import {
  REQUEST, HANDSHAKE_TIMEOUT_MS, TRICKLE_MS, CAP, CAP_CLOSE_CODE, ECHOES,
  FLOOD_START, FLOOD_BATCH, fragmented, serverFrames, STALL_MS, IDLE_MS, STALL_MESSAGE,
} from './fixtures/attacks.mjs';

/** A raw TCP client; `received` collects what the server sends. */
async function raw(port) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const state = { socket, received: Buffer.alloc(0), ended: false };
  socket.on('data', (d) => { state.received = Buffer.concat([state.received, d]); });
  socket.on('close', () => { state.ended = true; });
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  return state;
}

/** A raw client past the upgrade (the 101 head removed from `received`). */
async function upgraded(port) {
  const c = await raw(port);
  c.socket.write(REQUEST);
  await until(() => c.received.includes('\r\n\r\n'));
  const end = c.received.indexOf('\r\n\r\n') + 4;
  assert.match(c.received.subarray(0, end).toString(), /^HTTP\/1\.1 101 /);
  c.received = c.received.subarray(end);
  return c;
}

/** Waits (bounded) until `cond()` holds. */
async function until(cond, guardMs = 20_000) {
  const deadline = Date.now() + guardMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('hang guard ran out');
    await sleep(5);
  }
}

async function echo(ws, i) {
  const next = nextMessage(ws);
  ws.send(`echo ${i}`);
  const [data] = await next;
  assert.equal(data.toString(), `echo ${i}`);
}

test('trickled upgrade requests get 408 at the handshake deadline; another client echoes', { timeout: 60_000 }, async () => {
  const { wss, url } = await ourEchoServer({ handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
  const port = wss.address().port;
  const good = await opened(new WebSocket(url));
  const tricklers = await Promise.all([0, 1, 2].map(() => raw(port)));
  const sent = tricklers.map(() => 0);
  let echoes = 0;
  for (let i = 0; i < REQUEST.length && tricklers.some((t) => !t.ended); i++) {
    tricklers.forEach((t, k) => {
      if (!t.ended && t.received.length === 0) {
        t.socket.write(REQUEST.subarray(i, i + 1));
        sent[k]++;
      }
    });
    await echo(good, echoes++);
    await sleep(TRICKLE_MS);
  }
  for (const [k, t] of tricklers.entries()) {
    await until(() => t.ended);
    assert.ok(sent[k] < REQUEST.length, 'the whole request went through');
    assert.match(t.received.toString(), /^HTTP\/1\.1 408 /);
  }
  assert.ok(echoes > 1);
  await echo(good, -1);
  good.terminate();
  await closeServer(wss);
});

test('a flood of empty continuations does not starve another client', { timeout: 60_000 }, async () => {
  const { wss, url } = await ourEchoServer({ maxFragments: 0 });
  const flood = await upgraded(wss.address().port);
  let batches = 0;
  let flooding = true;
  flood.socket.write(FLOOD_START);
  const flooder = (async () => {
    while (flooding && !flood.ended) {
      // Wait for the socket to drain: the flood goes as fast as the server takes it.
      if (!flood.socket.write(FLOOD_BATCH)) await new Promise((r) => flood.socket.once('drain', r));
      batches++;
    }
  })();
  await until(() => batches >= 4);
  const good = await opened(new WebSocket(url));
  const before = batches;
  for (let i = 0; i < ECHOES; i++) await echo(good, i);
  const after = batches;
  flooding = false;
  await flooder;
  assert.ok(!flood.ended, 'the flood was served, not refused');
  assert.ok(after > before, 'the flood was still being read while the echoes ran');
  flood.socket.destroy();
  good.terminate();
  await closeServer(wss);
});

test('a message past maxFragments closes with 1009; another client is unaffected', { timeout: 60_000 }, async () => {
  const { wss, url } = await ourEchoServer({ maxFragments: CAP });
  const c = await upgraded(wss.address().port);
  c.socket.write(fragmented(CAP));
  await until(() => serverFrames(c.received).length === 1);
  const [echoed] = serverFrames(c.received);
  assert.equal(echoed.op, 1);
  assert.equal(echoed.payload.length, CAP);
  c.received = Buffer.alloc(0);
  c.socket.write(fragmented(CAP + 1));
  await until(() => serverFrames(c.received).length >= 1);
  const [close] = serverFrames(c.received);
  assert.equal(close.op, 8);
  assert.equal((close.payload[0] << 8) | close.payload[1], CAP_CLOSE_CODE);
  const good = await opened(new WebSocket(url));
  await echo(good, 1);
  good.terminate();
  c.socket.destroy();
  await closeServer(wss);
});

test('a reader that stops reading is dropped at writeStallTimeout; another client echoes', { timeout: 60_000 }, async () => {
  const { wss, url } = await ourEchoServer({ writeStallTimeout: STALL_MS, idleTimeout: 0 });
  const good = await opened(new WebSocket(url));
  const stalled = await upgraded(wss.address().port);
  stalled.socket.pause(); // reads nothing more: the server's echoes pile up
  let sent = 0;
  // Send until the server drops us; bounded, should the drop never come.
  while (!stalled.ended && sent < 4000) {
    if (!stalled.socket.write(STALL_MESSAGE)) {
      await Promise.race([new Promise((r) => stalled.socket.once('drain', r)), until(() => stalled.ended)]);
    }
    sent++;
    if (sent % 16 === 0) await echo(good, sent);
  }
  await until(() => stalled.ended);
  assert.ok(sent < 4000, 'the stalled reader was never dropped');
  await echo(good, -1);
  assert.equal(good.readyState, WebSocket.OPEN);
  good.terminate();
  await closeServer(wss);
});

test('a quiet peer is pinged, then dropped at idleTimeout; one that answers pings stays', { timeout: 60_000 }, async () => {
  const { wss, url } = await ourEchoServer({ idleTimeout: IDLE_MS, writeStallTimeout: 0 });
  const good = await opened(new WebSocket(url)); // answers pings by itself, as browsers do
  const quiet = await upgraded(wss.address().port);
  await until(() => quiet.ended);
  const frames = serverFrames(quiet.received);
  assert.equal(frames.length, 1, 'one ping, then the drop');
  assert.equal(frames[0].op, 9);
  // The good client was as quiet, but answered the server's pings: still served.
  assert.equal(good.readyState, WebSocket.OPEN);
  await echo(good, 1);
  good.terminate();
  await closeServer(wss);
});
