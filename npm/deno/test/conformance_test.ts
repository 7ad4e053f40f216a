// The shared conformance list (host-tests/conformance/cases.rs, printed by crates/node's
// lbws-conformance-cases) against the Deno FFI server over loopback TCP: the same close
// codes as the native Conn.
import { assert, assertEquals } from "./assert.ts";
import { serve, type WebSocketConnection } from "../mod.ts";

const root = new URL("../../../", import.meta.url).pathname;
const bin = `${root}target/release/lbws-conformance-cases`;

type Expect =
  | { type: "echo"; messages: number; close: number }
  | { type: "fail"; kind: string; code: number | null }
  | { type: "failAnyOf"; codes: number[] };
interface Case { name: string; maxReadLimit: number; deflate: boolean; expect: Expect; bytes: Uint8Array }

function hex(s: string): Uint8Array {
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.substr(i * 2, 2), 16);
  return b;
}

/** The shared list's JSON lines (`--handshakes`: the handshake list). */
async function caseLines(...args: string[]): Promise<Record<string, unknown>[]> {
  try {
    await Deno.stat(bin);
  } catch {
    const build = new Deno.Command("cargo", { args: ["build", "--release", "-p", "lowbit-ws-node", "--bin", "lbws-conformance-cases"], cwd: root });
    assert((await build.output()).success, "building lbws-conformance-cases");
  }
  const out = await new Deno.Command(bin, { args, stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((line) => JSON.parse(line));
}

async function loadCases(): Promise<Case[]> {
  return (await caseLines()).map((c) => ({ ...c, bytes: hex(c.bytes as string) }) as Case);
}

async function runCase(port: number, c: Case): Promise<{ messages: number; close: number | null }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
      (c.deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "") + "\r\n",
  ));
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(1 << 16);
  let head = -1;
  let all = new Uint8Array(0);
  const writer = (async () => {
    // Send once the 101 is in; then half-close, like the native run's in-memory stream.
    while (head === -1) await new Promise((r) => setTimeout(r, 1));
    let off = 0;
    while (off < c.bytes.length) off += await conn.write(c.bytes.subarray(off));
    await conn.closeWrite();
  })().catch(() => {});
  for (;;) {
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch {
      n = null;
    }
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    if (head === -1) {
      all = new Uint8Array(chunks.reduce((a, b) => a + b.length, 0));
      let o = 0;
      for (const ch of chunks) { all.set(ch, o); o += ch.length; }
      const text = new TextDecoder("latin1").decode(all);
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) {
        assert(text.startsWith("HTTP/1.1 101"), text.slice(0, 80));
        head = end + 4;
      }
    }
  }
  await writer;
  try {
    conn.close();
  } catch {
    // closed
  }
  all = new Uint8Array(chunks.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const ch of chunks) { all.set(ch, o); o += ch.length; }
  const b = all.subarray(head);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let i = 0;
  let messages = 0;
  while (i + 2 <= b.length) {
    const fin = b[i] & 0x80;
    const op = b[i] & 0x0f;
    let len = b[i + 1] & 0x7f;
    let h = 2;
    if (len === 126) { len = dv.getUint16(i + 2); h = 4; }
    else if (len === 127) { len = Number(dv.getBigUint64(i + 2)); h = 10; }
    if (i + h + len > b.length) break;
    if (op === 8) return { messages, close: len >= 2 ? dv.getUint16(i + h) : 1005 };
    if (fin && op !== 9 && op !== 10) messages++;
    i += h + len;
  }
  return { messages, close: null };
}

const cases = await loadCases();
const servers = new Map<string, { port: number; close: () => void; finished: Promise<void> }>();
function serverFor(c: Case) {
  const key = `${c.maxReadLimit}/${c.deflate}`;
  if (!servers.has(key)) {
    const s = serve({ port: 0, maxPayload: c.maxReadLimit || 1 << 20, perMessageDeflate: c.deflate }, (ws: WebSocketConnection) => {
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }).catch(() => {}));
    });
    servers.set(key, { port: s.addr.port, close: s.close, finished: s.finished });
  }
  return servers.get(key)!;
}

Deno.test("shared conformance list on the Deno FFI server", async (t) => {
  assert(cases.length >= 30, `${cases.length} cases`);
  for (const c of cases) {
    await t.step(c.name, async () => {
      const wire = await runCase(serverFor(c).port, c);
      const e = c.expect;
      if (e.type === "echo") {
        assertEquals(wire, { messages: e.messages, close: e.close });
      } else if (e.type === "fail") {
        assertEquals(wire.close, e.code, "close code sent");
      } else {
        assert(wire.close !== null && e.codes.includes(wire.close), `close code ${wire.close} in ${e.codes}`);
      }
    });
  }
  for (const s of servers.values()) {
    s.close();
    await s.finished;
  }
});

interface HandshakeCase { name: string; request: string; status: number[]; has: string | null; lacks: string | null }

/** Sends a raw request; returns the response head (what came before the blank line). */
async function responseHead(port: number, request: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // The server may answer and close before reading a long request.
  const writing = conn.write(request).catch(() => 0);
  let got = new Uint8Array(0);
  const buf = new Uint8Array(4096);
  const text = () => new TextDecoder("latin1").decode(got);
  while (!text().includes("\r\n\r\n")) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    const next = new Uint8Array(got.length + n);
    next.set(got);
    next.set(buf.subarray(0, n), got.length);
    got = next;
  }
  await writing;
  conn.close();
  return text().split("\r\n\r\n")[0];
}

Deno.test("shared handshake list on the Deno FFI server", async (t) => {
  const handshakes = (await caseLines("--handshakes")) as unknown as HandshakeCase[];
  assert(handshakes.length >= 20, `${handshakes.length} handshake cases`);
  const s = serve({ port: 0, perMessageDeflate: true }, (ws: WebSocketConnection) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }).catch(() => {}));
  });
  for (const c of handshakes) {
    await t.step(c.name, async () => {
      const head = await responseHead(s.addr.port, hex(c.request));
      const lines = head.toLowerCase().split("\r\n");
      const status = Number(lines[0].split(" ")[1]);
      assert(c.status.includes(status), `status ${status}, want one of ${c.status}\n${head}`);
      if (c.has !== null) assert(lines.slice(1).some((l) => l.trimEnd() === c.has), `no \`${c.has}\` line\n${head}`);
      if (c.lacks !== null) assert(!lines.slice(1).some((l) => l.split(":")[0] === c.lacks), `carries ${c.lacks}\n${head}`);
    });
  }
  s.close();
  await s.finished;
});
