// Deno FFI (deno/mod.ts over the C ABI): our server with Deno's built-in WebSocket client,
// our client with our server (permessage-deflate), limits and close codes.
import { assert, assertEquals } from "./assert.ts";
import { connect, serve, type WebSocketConnection } from "../mod.ts";

function echoServer(opts: { perMessageDeflate?: boolean; maxPayload?: number; protocols?: string[] } = {}) {
  const conns: WebSocketConnection[] = [];
  const server = serve({ port: 0, ...opts }, (ws) => {
    conns.push(ws);
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }).catch(() => {}));
  });
  return { server, conns, url: `ws://127.0.0.1:${server.addr.port}` };
}

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Deno's built-in WebSocket: next message. */
function nextMessage(ws: WebSocket): Promise<MessageEvent> {
  return new Promise((resolve, reject) => {
    ws.addEventListener("message", resolve, { once: true });
    ws.addEventListener("error", reject, { once: true });
  });
}

Deno.test("FFI server with Deno's built-in WebSocket client", async () => {
  const { server, conns, url } = echoServer({ perMessageDeflate: true, protocols: ["chat"] });
  const ws = new WebSocket(url + "/room?x=1", ["chat"]);
  ws.binaryType = "arraybuffer";
  await new Promise((resolve) => ws.addEventListener("open", resolve, { once: true }));
  assertEquals(ws.protocol, "chat");
  assertEquals(conns[0].path, "/room?x=1");
  for (const size of [0, 20, 1024, 65536, 1 << 20]) {
    const data = bytes(size, size + 3);
    ws.send(data);
    const m = await nextMessage(ws);
    assertEquals(new Uint8Array(m.data), data);
    const text = "é".repeat(size / 2);
    ws.send(text);
    assertEquals((await nextMessage(ws)).data, text);
  }
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve, { once: true }));
  const serverClosed = conns[0].closed;
  ws.close(4001, "deno bye");
  const ev = await closed;
  assertEquals(ev.code, 4001);
  assertEquals(await serverClosed, { code: 4001, reason: "deno bye" });
  server.close();
  await server.finished;
});

Deno.test("FFI server speaks no subprotocol unless configured (core's named policy)", async () => {
  for (const [protocols, want] of [[undefined, ""], [[], ""], [["x", "chat"], "chat"]] as const) {
    const { server, url } = echoServer(protocols ? { protocols: [...protocols] } : {});
    const ws = new WebSocket(url, ["v2", "chat"]);
    await new Promise((resolve) => ws.addEventListener("open", resolve, { once: true }));
    assertEquals(ws.protocol, want, `protocols: ${JSON.stringify(protocols)}`);
    const closed = new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
    ws.close();
    await closed;
    server.close();
    await server.finished;
  }
});

Deno.test("FFI client and server negotiate permessage-deflate and move 16 MiB", async () => {
  const { server, url } = echoServer({ perMessageDeflate: true, maxPayload: 32 << 20 });
  const ws = await connect(url, { perMessageDeflate: true, maxPayload: 32 << 20 });
  assert(ws.extensions.startsWith("permessage-deflate"), ws.extensions);
  const got: [Uint8Array, boolean][] = [];
  let wake = () => {};
  ws.on("message", (d, b) => {
    got.push([d, b]);
    wake();
  });
  const next = async () => {
    while (!got.length) await new Promise<void>((r) => (wake = r));
    return got.shift()!;
  };
  const big = new TextEncoder().encode("lowbit ".repeat((16 << 20) / 7));
  await ws.send(big, { binary: false });
  const [echo, isBinary] = await next();
  assertEquals(isBinary, false);
  assertEquals(echo.length, big.length);
  assertEquals(echo, big);
  // Fragmented send.
  ws.send("frag", { fin: false });
  ws.send("mented", { fin: true });
  assertEquals(new TextDecoder().decode((await next())[0]), "fragmented");
  // Ping / pong.
  const pong = new Promise<Uint8Array>((r) => ws.on("pong", r));
  await ws.ping("hi");
  assertEquals(new TextDecoder().decode(await pong), "hi");
  await ws.close(1000, "done");
  assertEquals((await ws.closed).code, 1000);
  server.close();
  await server.finished;
});

Deno.test("FFI server closes with 1009 over maxPayload", async () => {
  const { server, url } = echoServer({ maxPayload: 100 });
  const ws = new WebSocket(url);
  await new Promise((resolve) => ws.addEventListener("open", resolve, { once: true }));
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve, { once: true }));
  ws.send("x".repeat(101));
  assertEquals((await closed).code, 1009);
  server.close();
  await server.finished;
});

Deno.test("FFI server refuses a bad upgrade with core's status", async () => {
  const { server } = echoServer();
  const conn = await Deno.connect({ port: server.addr.port, hostname: "127.0.0.1" });
  await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 12\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
  const buf = new Uint8Array(4096);
  const n = await conn.read(buf);
  const text = new TextDecoder().decode(buf.subarray(0, n ?? 0));
  assert(text.startsWith("HTTP/1.1 426 "), text);
  conn.close();
  server.close();
  await server.finished;
});

Deno.test("FFI connection after close: send, ping and pong reject, nothing touches the freed session", async () => {
  const { server, conns, url } = echoServer();
  const ws = new WebSocket(url);
  await new Promise((resolve) => ws.addEventListener("open", resolve, { once: true }));
  const closed = new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
  ws.close(1000);
  await closed;
  const conn = conns[0];
  await conn.closed;
  // Let the pending writes settle, so the native session has been freed.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals(conn.readyState, 3);
  // The rejection comes from the JavaScript side: the session is not asked (it is gone).
  for (const call of [() => conn.send("late"), () => conn.ping("late"), () => conn.pong("late")]) {
    const err = await call().then(() => null, (e) => e);
    assert(err instanceof Error, "a call after the close must reject");
    assert(/^WebSocket is (not open|closed)$/.test(err.message), `rejected by the session instead: ${err.message}`);
  }
  await conn.close(1000); // a no-op once closed
  server.close();
  await server.finished;
});

/** `p`, or a failure naming `what` if it has not settled in 10 s (a lost event hangs, not fails). */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within 10 s`)), 10_000);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** `start`, then everything `conn` reads until the peer ends the stream. */
async function readToEnd(conn: Deno.Conn, start: Uint8Array): Promise<Uint8Array> {
  let got = start;
  const chunk = new Uint8Array(4096);
  for (let n; (n = await conn.read(chunk)) !== null;) got = new Uint8Array([...got, ...chunk.subarray(0, n)]);
  return got;
}

/** Reads from `conn` until the bytes hold `\r\n\r\n`; returns the head and what followed. */
async function readHead(conn: Deno.Conn): Promise<[string, Uint8Array]> {
  let got = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(chunk);
    if (n === null) throw new Error("closed before the head ended");
    const next = new Uint8Array(got.length + n);
    next.set(got);
    next.set(chunk.subarray(0, n), got.length);
    got = next;
    const text = new TextDecoder("latin1").decode(got);
    const end = text.indexOf("\r\n\r\n");
    if (end !== -1) return [text.slice(0, end), got.subarray(end + 4)];
  }
}

Deno.test("FFI server: frames in the same packet as the upgrade request reach the handler's listeners", async () => {
  const { server } = echoServer();
  const conn = await Deno.connect({ port: server.addr.port, hostname: "127.0.0.1" });
  const request = new TextEncoder().encode(
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  // A masked text frame "early" (mask key 0), then a close 1000, in the same write.
  const frames = [0x81, 0x85, 0, 0, 0, 0, ...new TextEncoder().encode("early"), 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
  await conn.write(new Uint8Array([...request, ...frames]));
  const [head, rest] = await readHead(conn);
  assert(head.startsWith("HTTP/1.1 101"), head);
  const got = await within(readToEnd(conn, rest), "the echo, the close answer and the end of the stream");
  conn.close();
  // The echo "early", then the close answer.
  assertEquals([...got], [0x81, 5, ...new TextEncoder().encode("early"), 0x88, 2, 0x03, 0xe8]);
  server.close();
  await server.finished;
});

Deno.test("FFI client: a message in the same packet as the 101 reaches listeners attached after connect()", async () => {
  const listener = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (listener.addr as Deno.NetAddr).port;
  const serverSide = (async () => {
    const conn = await listener.accept();
    const [head] = await readHead(conn);
    const key = head.match(/sec-websocket-key: *(\S+)/i)![1];
    const digest = await crypto.subtle.digest(
      "SHA-1",
      new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
    );
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    const response = new TextEncoder().encode(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    // The greeting (unmasked server text frame) in the same write as the 101.
    await conn.write(new Uint8Array([...response, 0x81, 5, ...new TextEncoder().encode("hello")]));
    return conn;
  })();
  const ws = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  const message = new Promise<string>((resolve) => ws.on("message", (data) => resolve(new TextDecoder().decode(data))));
  assertEquals(await within(message, "the greeting"), "hello");
  ws.terminate();
  (await serverSide).close();
  listener.close();
});

Deno.test("FFI server: the 1009 close frame reaches a client still sending the refused message", async () => {
  const { server } = echoServer({ maxPayload: 1 << 20 });
  const conn = await Deno.connect({ port: server.addr.port, hostname: "127.0.0.1" });
  await conn.write(new TextEncoder().encode(
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  const [head, rest] = await readHead(conn);
  assert(head.startsWith("HTTP/1.1 101"), head);
  // A masked binary frame of 32 MiB (mask key 0): far more than the kernel buffers hold, so
  // most of it is still on the way when the server refuses it from its header.
  await conn.write(new Uint8Array([0x82, 0xff, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0]));
  const chunk = new Uint8Array(1 << 20);
  for (let mib = 0; mib < 32; mib++) {
    for (let o = 0; o < chunk.length;) {
      try {
        o += await conn.write(chunk.subarray(o));
      } catch (e) {
        throw new Error(`the server reset the connection after ${mib} MiB of the refused frame: ${e}`);
      }
    }
  }
  const got = await within(readToEnd(conn, rest), "the close frame and the end of the stream");
  conn.close();
  assertEquals(got[0], 0x88);
  assertEquals((got[2] << 8) | got[3], 1009);
  server.close();
  await server.finished;
});

Deno.test("FFI server: a throwing listener is reported and the connection goes on", async () => {
  const reported: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    reported.push(e.error);
  };
  globalThis.addEventListener("error", onError);
  const server = serve({ port: 0 }, (ws) => {
    ws.on("message", (data) => {
      if (new TextDecoder().decode(data) === "boom") throw new Error("listener bug");
    });
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }).catch(() => {}));
  });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.addr.port}`);
    await new Promise((resolve) => ws.addEventListener("open", resolve, { once: true }));
    const echoes: string[] = [];
    const two = new Promise<void>((resolve) =>
      ws.addEventListener("message", (m) => {
        echoes.push(m.data);
        if (echoes.length === 2) resolve();
      })
    );
    ws.send("boom");
    ws.send("after");
    await within(two, "both echoes");
    // The second listener still ran for "boom", and the connection stayed open for "after".
    assertEquals(echoes, ["boom", "after"]);
    assertEquals(reported.map((e) => (e as Error).message), ["listener bug"]);
    const closed = new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
    ws.close();
    await closed;
  } finally {
    globalThis.removeEventListener("error", onError);
    server.close();
    await server.finished;
  }
});

Deno.test("FFI server: a stalled upgrade request is dropped after handshakeTimeout", async () => {
  let handled = 0;
  const server = serve({ port: 0, handshakeTimeout: 300 }, () => handled++);
  const conn = await Deno.connect({ port: server.addr.port, hostname: "127.0.0.1" });
  await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"));
  // The server hangs up without an answer.
  const got = await within(readToEnd(conn, new Uint8Array(0)), "the server hanging up");
  assertEquals(got.length, 0);
  assertEquals(handled, 0);
  conn.close();
  server.close();
  await server.finished;
});

Deno.test("FFI client: handshakeTimeout gives up on a server that never answers", async () => {
  const listener = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const silent = listener.accept(); // accepts, reads nothing, answers nothing
  const port = (listener.addr as Deno.NetAddr).port;
  const attempt = connect(`ws://127.0.0.1:${port}/`, { handshakeTimeout: 300 }).then(
    () => "connected",
    (e: Error) => e.message,
  );
  assertEquals(await within(attempt, "connect() settling"), "opening handshake has timed out");
  (await silent).close();
  listener.close();
});
