/**
 * The entry points: {@link accept} and {@link connect} run the opening handshake over a Deno
 * stream (core builds, checks and negotiates it; this module reads and writes the bytes), and
 * {@link serve} accepts connections on a TCP listener.
 * @module
 */

import { contract, encoder, errorMessage, L, native, takeOutput } from "./ffi.ts";
import { SERVER_DEFAULTS } from "./liveness.ts";
import {
  closeQuietly,
  type ConnectionOptions,
  type DeflateOptions,
  WebSocketConnection,
  WebSocketError,
} from "./connection.ts";

/** The C ABI's deflate arguments for `perMessageDeflate`: flags, window, level, threshold. */
function deflateArgs(pmd: boolean | DeflateOptions | undefined): [number, number, number, number] {
  const { DEFLATE_ON, DEFLATE_SERVER_NO_CONTEXT_TAKEOVER, DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER } = contract;
  const { DEFLATE_DEFAULT_LEVEL, DEFLATE_DEFAULT_THRESHOLD } = contract;
  if (!pmd) return [0, 0, DEFLATE_DEFAULT_LEVEL, DEFLATE_DEFAULT_THRESHOLD];
  const o = pmd === true ? {} : pmd;
  const flags = DEFLATE_ON | (o.serverNoContextTakeover ? DEFLATE_SERVER_NO_CONTEXT_TAKEOVER : 0) |
    (o.clientNoContextTakeover ? DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER : 0);
  return [flags, o.serverMaxWindowBits ?? 0, o.level ?? DEFLATE_DEFAULT_LEVEL, o.threshold ?? DEFLATE_DEFAULT_THRESHOLD];
}

/** Pause after a failed accept (out of file descriptors), and the interval between reports. */
const ACCEPT_PAUSE_MS = 100;
const ACCEPT_REPORT_MS = 10_000;

/** Server options. */
export interface ServeOptions extends ConnectionOptions {
  port: number;
  hostname?: string;
  /** Subprotocols the server speaks; the client's first offer among them is chosen. */
  protocols?: string[];
  signal?: AbortSignal;
  onListen?: (addr: Deno.NetAddr) => void;
  /** Milliseconds a client may take to send its upgrade request (default 10 000). */
  handshakeTimeout?: number;
}

/**
 * Server side of the handshake on an accepted stream: reads the request, lets core check it
 * and negotiate, writes the 101 (or core's rejection, then closes and throws).
 */
export async function accept(conn: Deno.Conn, options: Omit<ServeOptions, "port"> = {}): Promise<WebSocketConnection> {
  const s = native;
  const h = s.lbws_new(0, options.maxPayload ?? 0, options.maxFrame ?? 0);
  if (options.maxFragments !== undefined) s.lbws_set_max_fragments(h, options.maxFragments);
  const protocols = encoder.encode((options.protocols ?? []).join(","));
  const [flags, window, level, threshold] = deflateArgs(options.perMessageDeflate);
  // A client that stalls mid-request must not hold the connection forever.
  const got = await readHandshake(conn, options.handshakeTimeout ?? 10_000, (head) =>
    s.lbws_accept(h, head, L(head.length), protocols, L(protocols.length), flags, window, level, threshold));
  if (got === "closed" || got === "timeout") {
    s.lbws_free(h);
    closeQuietly(conn);
    throw new WebSocketError("connection closed during the handshake", -1);
  }
  if (got.rc !== 0) {
    const err = new WebSocketError(errorMessage(h), got.rc);
    const out = takeOutput(h);
    s.lbws_free(h);
    try {
      await conn.write(out);
    } catch {
      // the peer is gone
    }
    closeQuietly(conn);
    throw err;
  }
  // Servers drop stalled and (after a ping) quiet peers unless told otherwise.
  return new WebSocketConnection(conn, h, got.head.slice(Number(s.lbws_handshake_used(h))), { ...SERVER_DEFAULTS, ...options });
}

/**
 * Reads a handshake head from `conn`, asking `step` (core's parser) after each read whether
 * the head so far is complete: 1 reads on, anything else is returned with the head. A stream
 * that ends or fails gives "closed"; one that takes longer than `timeout` ms is closed and
 * gives "timeout".
 */
async function readHandshake(
  conn: Deno.Conn,
  timeout: number | undefined,
  step: (head: Uint8Array) => number,
): Promise<{ head: Uint8Array; rc: number } | "closed" | "timeout"> {
  let timedOut = false;
  const timer = timeout === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    closeQuietly(conn); // ends the read below
  }, timeout);
  try {
    let head = new Uint8Array(0);
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      let n: number | null = null;
      try {
        n = await conn.read(buf);
      } catch {
        // reset by the peer, or closed by the timeout: the end of the stream
      }
      if (n === null) return timedOut ? "timeout" : "closed";
      const next = new Uint8Array(head.length + n);
      next.set(head);
      next.set(buf.subarray(0, n), head.length);
      head = next;
      const rc = step(head);
      if (rc !== 1) return { head, rc };
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A running server: `finished` resolves when it stops (`close()` or the signal). */
export interface Server {
  addr: Deno.NetAddr;
  finished: Promise<void>;
  close(): void;
}

/** Listens on TCP and calls `handler` with each upgraded connection. */
export function serve(options: ServeOptions, handler: (ws: WebSocketConnection) => void): Server {
  const listener = Deno.listen({ port: options.port, hostname: options.hostname ?? "127.0.0.1" });
  const addr = listener.addr as Deno.NetAddr;
  options.onListen?.(addr);
  let stopped = false;
  const close = () => {
    if (stopped) return;
    stopped = true;
    try {
      listener.close();
    } catch {
      // closed
    }
  };
  options.signal?.addEventListener("abort", close);
  const finished = (async () => {
    // At the file descriptor limit accept() fails at once and again: pause after each failure
    // and report once per interval (core's tcp::AcceptBackoff does the same for Rust servers).
    let reported = -Infinity;
    let failures = 0;
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (stopped || e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) break;
        failures++;
        if (performance.now() - reported >= ACCEPT_REPORT_MS) {
          console.error(`accept failed (${failures} since the last report; pausing ${ACCEPT_PAUSE_MS} ms after each): ${e}`);
          reported = performance.now();
          failures = 0;
        }
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_PAUSE_MS));
        continue;
      }
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // The peer is already gone; accept() below notices.
      }
      accept(conn, options).then(handler, () => {});
    }
  })();
  return { addr, finished, close };
}

/** Client options. */
export interface ConnectOptions extends ConnectionOptions {
  protocols?: string[];
  /** Milliseconds to wait for the server's answer before giving up (as `ws`'s; default: none). */
  handshakeTimeout?: number;
}

/** Opens a client connection to `ws://host:port/path` (core builds and checks the handshake). */
export async function connect(url: string | URL, options: ConnectOptions = {}): Promise<WebSocketConnection> {
  const u = new URL(url);
  if (u.protocol !== "ws:") throw new TypeError(`unsupported scheme ${u.protocol} (use ws:)`);
  const s = native;
  const h = s.lbws_new(1, options.maxPayload ?? 0, options.maxFrame ?? 0);
  if (options.maxFragments !== undefined) s.lbws_set_max_fragments(h, options.maxFragments);
  const host = encoder.encode(u.host);
  const path = encoder.encode((u.pathname || "/") + u.search);
  const protocols = encoder.encode((options.protocols ?? []).join(","));
  const pmd = options.perMessageDeflate ?? true;
  const [flags, window, level, threshold] = deflateArgs(pmd);
  const rc = s.lbws_request(h, host, L(host.length), path, L(path.length), protocols, L(protocols.length), flags, window, level, threshold);
  if (rc !== 0) {
    const msg = errorMessage(h);
    s.lbws_free(h);
    throw new WebSocketError(msg, rc);
  }
  const conn = await Deno.connect({ hostname: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 80) });
  try {
    conn.setNoDelay(true);
  } catch {
    // closed already: the handshake below fails
  }
  await conn.write(takeOutput(h));
  const got = await readHandshake(conn, options.handshakeTimeout, (head) => s.lbws_response(h, head, L(head.length)));
  if (got === "closed" || got === "timeout") {
    s.lbws_free(h);
    closeQuietly(conn);
    const why = got === "timeout" ? "opening handshake has timed out" : "connection closed during the handshake";
    throw new WebSocketError(why, -1);
  }
  if (got.rc !== 0) {
    const msg = errorMessage(h);
    s.lbws_free(h);
    closeQuietly(conn);
    throw new WebSocketError(`handshake failed: ${msg}`, got.rc);
  }
  return new WebSocketConnection(conn, h, got.head.slice(Number(s.lbws_handshake_used(h))), options);
}
