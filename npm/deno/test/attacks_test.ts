// Resource attacks against the Deno FFI server, with a second client echoing meanwhile: a
// trickled upgrade request (closed at handshakeTimeout), a flood of empty continuation frames
// (the read loop's budget keeps the other connection served), and a message past
// maxFragments (core's cap, 1009), a reader that stops reading (writeStallTimeout) and a
// peer that goes quiet (idleTimeout, after a ping). Shared data: ../../test/fixtures/attacks.mjs (the Node
// server's test uses the same). Outcomes are asserted; the waits are hang guards.
import { assert, assertEquals } from "./assert.ts";
import { serve, type ServeOptions } from "../mod.ts";
import {
  CAP,
  CAP_CLOSE_CODE,
  ECHOES,
  FLOOD_BATCH,
  FLOOD_START,
  fragmented,
  HANDSHAKE_TIMEOUT_MS,
  IDLE_MS,
  REQUEST,
  serverFrames,
  STALL_MESSAGE,
  STALL_MS,
  TRICKLE_MS,
} from "../../test/fixtures/attacks.mjs";

function echoServer(opts: Omit<ServeOptions, "port">) {
  const server = serve({ port: 0, ...opts }, (ws) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }).catch(() => {}));
  });
  return { server, url: `ws://127.0.0.1:${server.addr.port}` };
}

/** Deno's built-in WebSocket, open. */
async function good(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", reject, { once: true });
  });
  return ws;
}

async function echo(ws: WebSocket, i: number) {
  const got = new Promise<MessageEvent>((resolve, reject) => {
    ws.addEventListener("message", resolve, { once: true });
    ws.addEventListener("error", reject, { once: true });
  });
  ws.send(`echo ${i}`);
  assertEquals((await got).data, `echo ${i}`);
}

async function closeGood(ws: WebSocket) {
  const closed = new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
  ws.close();
  await closed;
}

/** Reads from `conn` into `into.bytes` until the stream ends (or fails). */
async function collect(conn: Deno.Conn, into: { bytes: Uint8Array; ended: boolean }) {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      const next = new Uint8Array(into.bytes.length + n);
      next.set(into.bytes);
      next.set(buf.subarray(0, n), into.bytes.length);
      into.bytes = next;
    }
  } catch {
    // reset
  }
  into.ended = true;
}

async function until(cond: () => boolean, guardMs = 20_000) {
  const deadline = Date.now() + guardMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("hang guard ran out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw client past the upgrade; what it receives after the 101 lands in `state.bytes`. */
async function upgraded(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const state = { bytes: new Uint8Array(0), ended: false };
  const reading = collect(conn, state);
  await conn.write(REQUEST);
  const text = () => new TextDecoder().decode(state.bytes);
  await until(() => text().includes("\r\n\r\n"));
  const end = text().indexOf("\r\n\r\n") + 4;
  assert(text().startsWith("HTTP/1.1 101 "), text());
  state.bytes = state.bytes.slice(end);
  return { conn, state, reading };
}

Deno.test("trickled upgrade requests are closed at the handshake deadline; another client echoes", async () => {
  const { server, url } = echoServer({ handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
  const ws = await good(url);
  const tricklers = await Promise.all([0, 1, 2].map(async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    const state = { bytes: new Uint8Array(0), ended: false };
    return { conn, state, reading: collect(conn, state), sent: 0 };
  }));
  let echoes = 0;
  for (let i = 0; i < REQUEST.length && tricklers.some((t) => !t.state.ended); i++) {
    for (const t of tricklers) {
      if (t.state.ended || t.state.bytes.length > 0) continue;
      try {
        await t.conn.write(REQUEST.subarray(i, i + 1));
        t.sent++;
      } catch {
        // the server hung up
      }
    }
    await echo(ws, echoes++);
    await new Promise((r) => setTimeout(r, TRICKLE_MS));
  }
  for (const t of tricklers) {
    await t.reading;
    assert(t.sent < REQUEST.length, "the whole request went through");
    // The Deno server closes a stalled handshake without an answer (the timer closes the
    // stream to end the pending read): nothing but the end of the stream arrives.
    const answer = new TextDecoder().decode(t.state.bytes);
    assertEquals(answer, "");
    t.conn.close();
  }
  assert(echoes > 1);
  await echo(ws, -1);
  await closeGood(ws);
  server.close();
  await server.finished;
});

Deno.test("a flood of empty continuations does not starve another client", async () => {
  const { server, url } = echoServer({ maxFragments: 0 });
  const flood = await upgraded(server.addr.port);
  let batches = 0;
  let flooding = true;
  await flood.conn.write(FLOOD_START);
  const flooder = (async () => {
    while (flooding && !flood.state.ended) {
      let at = 0;
      while (at < FLOOD_BATCH.length) at += await flood.conn.write(FLOOD_BATCH.subarray(at));
      batches++;
    }
  })();
  await until(() => batches >= 4);
  const ws = await good(url);
  const before = batches;
  for (let i = 0; i < ECHOES; i++) await echo(ws, i);
  const after = batches;
  flooding = false;
  await flooder;
  assert(!flood.state.ended, "the flood was served, not refused");
  assert(after > before, "the flood was still being read while the echoes ran");
  flood.conn.close();
  await flood.reading;
  await closeGood(ws);
  server.close();
  await server.finished;
});

Deno.test("a message past maxFragments closes with 1009; another client is unaffected", async () => {
  const { server, url } = echoServer({ maxFragments: CAP });
  const c = await upgraded(server.addr.port);
  await c.conn.write(fragmented(CAP));
  await until(() => serverFrames(c.state.bytes).length === 1);
  const [echoed] = serverFrames(c.state.bytes);
  assertEquals([echoed.op, echoed.payload.length], [1, CAP]);
  c.state.bytes = new Uint8Array(0);
  await c.conn.write(fragmented(CAP + 1));
  await until(() => serverFrames(c.state.bytes).length >= 1);
  const [close] = serverFrames(c.state.bytes);
  assertEquals(close.op, 8);
  assertEquals((close.payload[0] << 8) | close.payload[1], CAP_CLOSE_CODE);
  const ws = await good(url);
  await echo(ws, 1);
  await closeGood(ws);
  await c.reading;
  c.conn.close();
  server.close();
  await server.finished;
});

Deno.test("a reader that stops reading is dropped at writeStallTimeout; another client echoes", async () => {
  const { server, url } = echoServer({ writeStallTimeout: STALL_MS, idleTimeout: 0 });
  const ws = await good(url);
  // Upgrades, then never reads again: the server's echoes pile up.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await conn.write(REQUEST);
  const head = new Uint8Array(1024);
  let got = "";
  while (!got.includes("\r\n\r\n")) got += new TextDecoder().decode(head.subarray(0, (await conn.read(head)) ?? 0));
  assert(got.startsWith("HTTP/1.1 101 "), got);
  let sent = 0;
  let dropped = false;
  const writer = (async () => {
    try {
      // Bounded, should the drop never come; a write fails once the server has hung up.
      for (; sent < 4000; sent++) {
        for (let at = 0; at < STALL_MESSAGE.length;) at += await conn.write(STALL_MESSAGE.subarray(at));
      }
    } catch {
      dropped = true;
    }
  })();
  for (let i = 0; !dropped && sent < 4000; i++) await echo(ws, i);
  await writer;
  assert(dropped, "the stalled reader was never dropped");
  await echo(ws, -1);
  conn.close();
  await closeGood(ws);
  server.close();
  await server.finished;
});

Deno.test("a quiet peer is pinged, then dropped at idleTimeout; one that answers pings stays", async () => {
  const { server, url } = echoServer({ idleTimeout: IDLE_MS, writeStallTimeout: 0 });
  const ws = await good(url); // Deno's WebSocket answers pings by itself, as browsers do
  const quiet = await upgraded(server.addr.port);
  await quiet.reading;
  const frames = serverFrames(quiet.state.bytes);
  assertEquals(frames.map((f) => f.op), [9], "one ping, then the drop");
  assertEquals(ws.readyState, WebSocket.OPEN);
  await echo(ws, 1);
  quiet.conn.close();
  await closeGood(ws);
  server.close();
  await server.finished;
});
