/**
 * lowbit websockets for Deno through `Deno.dlopen`: WebSocket connections over
 * `Deno.listen` / `Deno.connect` TCP streams, with permessage-deflate (which Deno's
 * built-in WebSocket server lacks). The protocol runs in Rust (the same core as the npm
 * package) behind the library's C ABI (`lbws_*`); this module moves bytes between the TCP
 * stream and the native session and never decides anything about the protocol.
 *
 * Needs `--allow-ffi` (load the library), `--allow-net` (sockets) and `--allow-read` /
 * `--allow-env` (find the library; `LOWBIT_WS_LIB` overrides the path).
 *
 * ```ts
 * import { serve } from "./mod.ts";
 * serve({ port: 9001, perMessageDeflate: true }, (ws) => {
 *   ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
 * });
 * ```
 * @module
 */

const symbols = {
  lbws_new: { parameters: ["u32", "f64", "u32"], result: "pointer" },
  lbws_free: { parameters: ["pointer"], result: "void" },
  lbws_accept: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "u32", "u32", "u32", "u32"],
    result: "i32",
  },
  lbws_request: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "buffer", "usize", "u32", "u32", "u32", "u32"],
    result: "i32",
  },
  lbws_response: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  lbws_handshake_used: { parameters: ["pointer"], result: "usize" },
  lbws_handshake_info_ptr: { parameters: ["pointer"], result: "pointer" },
  lbws_handshake_info_len: { parameters: ["pointer"], result: "usize" },
  lbws_receive: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  lbws_receive_at: { parameters: ["pointer", "buffer", "u32", "buffer", "u32", "u32", "buffer"], result: "i32" },
  lbws_take_events: { parameters: ["pointer", "buffer", "u32", "u32"], result: "i32" },
  lbws_send_at: { parameters: ["pointer", "u32", "buffer", "u32", "u32", "u32", "buffer", "u32", "u32"], result: "i32" },
  lbws_output_at: { parameters: ["pointer", "buffer", "u32", "u32"], result: "i32" },
  lbws_events_ptr: { parameters: ["pointer"], result: "pointer" },
  lbws_events_len: { parameters: ["pointer"], result: "usize" },
  lbws_receive_eof: { parameters: ["pointer"], result: "i32" },
  lbws_send: { parameters: ["pointer", "u32", "buffer", "usize", "u32", "u32"], result: "i32" },
  lbws_reply_close: { parameters: ["pointer"], result: "i32" },
  lbws_ping: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  lbws_pong: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  lbws_close: { parameters: ["pointer", "u32", "buffer", "usize"], result: "i32" },
  lbws_output_ptr: { parameters: ["pointer"], result: "pointer" },
  lbws_output_len: { parameters: ["pointer"], result: "usize" },
  lbws_consume_output: { parameters: ["pointer", "usize"], result: "void" },
  lbws_error_ptr: { parameters: ["pointer"], result: "pointer" },
  lbws_error_len: { parameters: ["pointer"], result: "usize" },
  lbws_state: { parameters: ["pointer"], result: "u32" },
} as const;

function libraryPath(): string {
  const override = Deno.env.get("LOWBIT_WS_LIB");
  if (override) return override;
  const arch = Deno.build.arch === "x86_64" ? "x64" : "arm64";
  const name = Deno.build.os === "linux"
    ? `lowbit-websockets.linux-${arch}-gnu.node`
    : Deno.build.os === "darwin"
    ? `lowbit-websockets.darwin-${arch}.node`
    : `lowbit-websockets.win32-${arch}-msvc.node`;
  // The napi build output is the same cdylib, and it exports the C ABI too.
  return new URL(`../${name}`, import.meta.url).pathname;
}

let lib: Deno.DynamicLibrary<typeof symbols> | null = null;
function native() {
  lib ??= Deno.dlopen(libraryPath(), symbols);
  return lib.symbols;
}

/** A length for a `usize` parameter: Deno takes numbers there at run time; its types ask for bigint. */
const L = (n: number) => n as unknown as bigint;

/**
 * Where received messages and the bytes to write live: slices of a shared slab that native
 * code writes into, handed out once and never reused (like Node's `Buffer` pool), so a message
 * costs no `ArrayBuffer` of its own. A region larger than `DEDICATED` gets its own buffer.
 */
const SLAB = 64 * 1024;
const DEDICATED = 16 * 1024;
let pool = new Uint8Array(SLAB);
let poolOff = 0;
/** `lbws_receive_at` results: events' length, output's length, fitted, state. */
const INFO = new Uint32Array(4);
/** Lengths passed as `u32`: larger inputs take the `usize` functions. */
const U32_MAX = 0xffffffff;
/** Each connection's read buffer: its first size, and the most it grows to. */
const READ_SIZE = 64 * 1024;
const READ_SIZE_MAX = 256 * 1024;
const I32_MAX = 0x7fffffff;
/** How long a finished connection waits for the peer to hang up (see `#linger`). */
const LINGER_MS = 2000;

/**
 * Large buffers of bytes to write, reused once written (a fresh `ArrayBuffer` costs zeroing
 * and, later, the garbage collector's time): `writeBuffers` are ours, `spareBuffers` written.
 */
const writeBuffers = new WeakSet<ArrayBuffer>();
const spareBuffers: ArrayBuffer[] = [];
/** Spares kept: every connection with a large write under way may want one back. */
const SPARE_BYTES_MAX = 16 * 1024 * 1024;
const SPARE_SIZE_MAX = 4 * 1024 * 1024;
let spareBytes = 0;

function writeBuffer(n: number): Uint8Array<ArrayBuffer> {
  for (let i = 0; i < spareBuffers.length; i++) {
    const b = spareBuffers[i];
    if (b.byteLength >= n && b.byteLength <= 2 * n) {
      spareBuffers[i] = spareBuffers[spareBuffers.length - 1];
      spareBuffers.pop();
      spareBytes -= b.byteLength;
      return new Uint8Array(b);
    }
  }
  const buf = new Uint8Array(n);
  writeBuffers.add(buf.buffer);
  return buf;
}

/** `data` has been written: its buffer may serve again if it is one of ours. */
function written(data: Uint8Array) {
  if (data.byteLength <= DEDICATED) return;
  const b = data.buffer as ArrayBuffer;
  if (b.byteLength <= SPARE_SIZE_MAX && spareBytes + b.byteLength <= SPARE_BYTES_MAX && writeBuffers.has(b)) {
    spareBuffers.push(b);
    spareBytes += b.byteLength;
  }
}

/**
 * Room for `n` bytes: sets `regionBuf`/`regionOff` (the pool, or a buffer of its own when `n`
 * is large; `forWrite`: a reusable one) and moves the pool past them.
 */
let regionBuf = pool;
let regionOff = 0;
function reserve(n: number, forWrite = false) {
  if (n > DEDICATED) {
    regionBuf = forWrite ? writeBuffer(n) : new Uint8Array(n);
    regionOff = 0;
    return;
  }
  if (SLAB - poolOff < n) {
    pool = new Uint8Array(SLAB);
    poolOff = 0;
  }
  regionBuf = pool;
  regionOff = poolOff;
  poolOff += n;
}

/**
 * Writers waiting for the end of this turn's microtasks: one microtask starts them all, after
 * every read that completed in the same event-loop tick has been handled, so the writes leave
 * back to back (cheaper for the kernel than writes spread between the reads' handling).
 */
let kicks: (() => void)[] = [];
function schedule(kick: () => void) {
  if (kicks.length === 0) queueMicrotask(runKicks);
  kicks.push(kick);
}
function runKicks() {
  const ks = kicks;
  kicks = [];
  for (let i = 0; i < ks.length; i++) ks[i]();
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

function view(ptr: Deno.PointerValue, len: number | bigint): Uint8Array {
  const n = Number(len);
  if (ptr === null || n === 0) return EMPTY;
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, n));
}

/** permessage-deflate settings, with `ws`'s names. */
export interface DeflateOptions {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  /** Client: the largest window the server may compress with (8–15). */
  serverMaxWindowBits?: number;
  /** zlib level 0–9. */
  level?: number;
  /** Messages shorter than this are sent uncompressed (default 1024). */
  threshold?: number;
}

/** Options common to both ends. */
export interface ConnectionOptions {
  /** Offer (client) or accept (server) permessage-deflate. */
  perMessageDeflate?: boolean | DeflateOptions;
  /** The largest message accepted, after inflation (default 100 MiB); larger ones close with 1009. */
  maxPayload?: number;
  /** The largest frame written (default 64 KiB). */
  maxFrame?: number;
  /** Stop reading the socket while this many bytes wait to be written (default 16 MiB). */
  readPauseMark?: number;
}

function deflateArgs(pmd: boolean | DeflateOptions | undefined): [number, number, number, number] {
  if (!pmd) return [0, 0, 255, 0xffffffff];
  const o = pmd === true ? {} : pmd;
  const flags = 1 | (o.serverNoContextTakeover ? 2 : 0) | (o.clientNoContextTakeover ? 4 : 0);
  return [flags, o.serverMaxWindowBits ?? 0, o.level ?? 255, o.threshold ?? 0xffffffff];
}

/** An error from the native session; `code` is the close code sent (or -1). */
export class WebSocketError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = "WebSocketError";
  }
}

/**
 * Listeners. Payloads (`message`, `ping`, `pong`) are views into buffers that native code
 * fills and that several messages may share, as Node's pooled `Buffer`s do: a payload is never
 * reused or overwritten, but its `.buffer` holds more than it; `slice()` it to get a buffer of
 * its own (or to keep a small message without keeping the shared buffer alive).
 */
type Events = {
  message: (data: Uint8Array, isBinary: boolean) => void;
  ping: (data: Uint8Array) => void;
  pong: (data: Uint8Array) => void;
  close: (code: number, reason: string) => void;
  error: (error: WebSocketError) => void;
  drain: () => void;
};

/** Options of {@link WebSocketConnection.send}. */
export interface SendOptions {
  /** Send as binary (default: `true` for bytes, `false` for strings). */
  binary?: boolean;
  /** Compress when deflate is on and the message reaches the threshold (default true). */
  compress?: boolean;
  /** `false` sends a fragment; the message ends with the next `fin: true` send. */
  fin?: boolean;
}

/** One WebSocket connection over a Deno TCP (or TLS) stream. */
export class WebSocketConnection {
  /** 1 open, 2 closing, 3 closed (as `WebSocket.readyState`). */
  readyState = 1;
  /** Bytes handed to {@link send} and friends but not yet written to the stream. */
  bufferedAmount = 0;
  readonly protocol: string;
  readonly extensions: string;
  readonly path: string;
  #conn: Deno.Conn;
  #h: Deno.PointerValue;
  // deno-lint-ignore ban-types
  #listeners: { [event: string]: Function[] | undefined } = {};
  /** Bytes waiting for the writer (adjacent pool slices merged), the write under way. */
  #queue: Uint8Array[] = [];
  #writing: Uint8Array | null = null;
  #written = 0;
  /** Resolves when the queue is written (null: idle), and its resolver. */
  #batch: Promise<void> | null = null;
  #resolveBatch: (() => void) | null = null;
  #rejectBatch: ((e: unknown) => void) | null = null;
  /** #receive is dispatching: sends queue up and go out in one write after it. */
  #corked = false;
  /** After a large message: the size of the buffer the next events land in, and that buffer. */
  #expect = 0;
  #landing: Uint8Array | null = null;
  #scheduled = false;
  #closeCode = 1006;
  #closeReason = "";
  #readPauseMark: number;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves when the connection is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  #resolveClosed!: (v: { code: number; reason: string }) => void;

  /** @internal Use {@link serve}, {@link accept} or {@link connect}. */
  constructor(conn: Deno.Conn, h: Deno.PointerValue, leftover: Uint8Array, options: ConnectionOptions) {
    this.#conn = conn;
    this.#h = h;
    const info = decoder.decode(view(native().lbws_handshake_info_ptr(h), native().lbws_handshake_info_len(h))).split("\n");
    [this.protocol, this.extensions, this.path] = [info[0] ?? "", info[1] ?? "", info[2] ?? ""];
    this.#readPauseMark = options.readPauseMark ?? 16 * 1024 * 1024;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#flush();
    // Not a microtask: frames that came with the handshake must wait until the caller, who
    // gets this connection from a promise (`await accept(...)`, `serve`'s handler), has
    // attached its listeners.
    setTimeout(() => this.#readLoop(leftover), 0);
  }

  on<K extends keyof Events>(event: K, listener: Events[K]): this {
    (this.#listeners[event] ??= []).push(listener);
    return this;
  }

  off<K extends keyof Events>(event: K, listener: Events[K]): this {
    const ls = this.#listeners[event];
    const i = ls?.indexOf(listener) ?? -1;
    if (i !== -1) ls!.splice(i, 1);
    return this;
  }

  #emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>) {
    const ls = this.#listeners[event];
    if (ls === undefined) return;
    for (const l of ls as ((...a: Parameters<Events[K]>) => void)[]) l(...args);
  }

  /**
   * Emits a received event. What a listener throws is reported as uncaught, as for an
   * `EventTarget` listener (`reportError`: the program ends unless a global `error` listener
   * prevents it), and neither stops the other listeners nor fails the connection.
   */
  #dispatch<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>) {
    const ls = this.#listeners[event];
    if (ls === undefined) return;
    for (const l of ls as ((...a: Parameters<Events[K]>) => void)[]) {
      try {
        l(...args);
      } catch (e) {
        reportError(e);
      }
    }
  }

  /** Queues a message; resolves once it is written to the stream. */
  send(data: string | Uint8Array | ArrayBuffer, options?: SendOptions): Promise<void> {
    if (this.readyState !== 1) return Promise.reject(new WebSocketError("WebSocket is not open", -1));
    const bytes = typeof data === "string" ? encoder.encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data);
    const op = (options?.binary ?? typeof data !== "string") ? 2 : 1;
    const compress = options?.compress === false ? 0 : 1;
    const fin = options?.fin === false ? 0 : 1;
    const s = native();
    let n: number;
    if (bytes.length <= U32_MAX) {
      // Try the pool's free end first; a frame that does not fit waits in the session.
      const buf = pool;
      const off = poolOff;
      n = s.lbws_send_at(this.#h, op, bytes, bytes.length, compress, fin, buf, off, SLAB - off);
      if (n > 0) {
        poolOff = off + n;
        return this.#enqueue(buf.subarray(off, off + n));
      }
    } else {
      n = s.lbws_send(this.#h, op, bytes, L(bytes.length), compress, fin) === 0 ? -1 : -2;
    }
    if (n === -2) return Promise.reject(this.#error(-1));
    return n === 0 ? this.#idle() : this.#flush();
  }

  ping(data: string | Uint8Array = EMPTY): Promise<void> {
    // Once finished the native session is freed: it must not be called again.
    if (this.readyState === 3) return Promise.reject(new WebSocketError("WebSocket is closed", -1));
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    const rc = native().lbws_ping(this.#h, bytes, L(bytes.length));
    return rc === 0 ? this.#flush() : Promise.reject(this.#error(rc));
  }

  pong(data: string | Uint8Array = EMPTY): Promise<void> {
    if (this.readyState === 3) return Promise.reject(new WebSocketError("WebSocket is closed", -1));
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    const rc = native().lbws_pong(this.#h, bytes, L(bytes.length));
    return rc === 0 ? this.#flush() : Promise.reject(this.#error(rc));
  }

  /** Starts the close handshake (core checks code and reason). */
  close(code = 1000, reason = ""): Promise<void> {
    if (this.readyState === 3 || native().lbws_state(this.#h) & 1) return Promise.resolve();
    const r = encoder.encode(reason);
    const rc = native().lbws_close(this.#h, code, r, L(r.length));
    if (rc !== 0) return Promise.reject(this.#error(rc));
    this.readyState = 2;
    if (this.#closeTimer === undefined) {
      this.#closeTimer = setTimeout(() => this.terminate(), 30_000);
      Deno.unrefTimer(this.#closeTimer as unknown as number);
    }
    return this.#flush().then(() => this.#maybeFinish());
  }

  /** Closes the stream at once. */
  terminate() {
    this.#finish();
  }

  #error(rc: number): WebSocketError {
    const msg = decoder.decode(view(native().lbws_error_ptr(this.#h), native().lbws_error_len(this.#h)));
    return new WebSocketError(msg, rc);
  }

  /** Moves the session's output onto the write queue. */
  #flush(): Promise<void> {
    const s = native();
    const len = Number(s.lbws_output_len(this.#h));
    if (len === 0) return this.#idle();
    let bytes: Uint8Array;
    if (len <= I32_MAX) {
      reserve(len, true);
      s.lbws_output_at(this.#h, regionBuf, regionOff, len);
      bytes = regionBuf.subarray(regionOff, regionOff + len);
    } else {
      bytes = view(s.lbws_output_ptr(this.#h), len).slice();
      s.lbws_consume_output(this.#h, L(len));
    }
    return this.#enqueue(bytes);
  }

  /** Resolves when everything queued so far is written. */
  #idle(): Promise<void> {
    return this.#batch ?? Promise.resolve();
  }

  /**
   * Queues bytes for the writer. What is queued while #receive dispatches, or in one turn
   * otherwise, goes out in one write.
   */
  #enqueue(bytes: Uint8Array): Promise<void> {
    const q = this.#queue;
    const last = q.length === 0 ? null : q[q.length - 1];
    if (last !== null && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      q[q.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.length + bytes.length);
    } else {
      q.push(bytes);
    }
    this.bufferedAmount += bytes.length;
    this.#batch ??= new Promise((resolve, reject) => {
      this.#resolveBatch = resolve;
      this.#rejectBatch = reject;
    });
    if (this.#writing === null && !this.#corked && !this.#scheduled) {
      this.#scheduled = true;
      schedule(this.#kick);
    }
    return this.#batch;
  }

  #kick = () => {
    this.#scheduled = false;
    if (this.#writing === null && this.#queue.length !== 0) this.#writeNext();
  };

  /** Writes what is queued, or settles the batch when nothing is. */
  #writeNext() {
    const q = this.#queue;
    if (q.length === 0) {
      this.#writing = null;
      const resolve = this.#resolveBatch;
      const reject = this.#rejectBatch;
      this.#batch = null;
      this.#resolveBatch = this.#rejectBatch = null;
      try {
        this.#emit("drain");
      } catch (e) {
        // As before: a throwing drain listener rejects the sends of the batch.
        reject?.(e);
        return;
      }
      resolve?.();
      return;
    }
    let data = q[0];
    if (q.length > 1) {
      let total = 0;
      for (const p of q) total += p.length;
      reserve(total, true);
      data = regionBuf.subarray(regionOff, regionOff + total);
      let o = 0;
      for (const p of q) {
        data.set(p, o);
        o += p.length;
        written(p);
      }
    }
    q.length = 0;
    this.#writing = data;
    this.#written = 0;
    this.#conn.write(data).then(this.#onWritten, this.#onWriteFailed);
  }

  #onWritten = (n: number) => {
    const data = this.#writing!;
    this.#written += n;
    if (this.#written < data.length) {
      this.#conn.write(data.subarray(this.#written)).then(this.#onWritten, this.#onWriteFailed);
      return;
    }
    this.bufferedAmount -= data.length;
    written(data);
    this.#writeNext();
  };

  /** The stream is gone; the read loop reports the close. */
  #onWriteFailed = () => {
    const data = this.#writing!;
    this.bufferedAmount -= data.length;
    written(data);
    this.#writeNext();
  };

  /** Reads until the stream ends or the close handshake completes; `first` came with the handshake. */
  async #readLoop(first: Uint8Array) {
    let buf = new Uint8Array(READ_SIZE);
    let chunk = first;
    let n = first.length;
    try {
      // (terminate() may have come first, and freed the session.)
      while (this.readyState !== 3) {
        if (n !== 0) {
          this.#receive(chunk, n);
          // A full read: the peer sends large frames; read them whole rather than in pieces.
          if (chunk === buf && n === buf.length && n < READ_SIZE_MAX) buf = new Uint8Array(n * 2);
          // (The close handshake can only have completed once closing started.)
          if (this.readyState !== 1 && (native().lbws_state(this.#h) & 3) === 3) {
            await this.#idle();
            break;
          }
        }
        if (this.bufferedAmount > this.#readPauseMark) await this.#idle();
        const read = await this.#conn.read(buf);
        if (read === null) {
          native().lbws_receive_eof(this.#h);
          break;
        }
        chunk = buf;
        n = read;
      }
    } catch {
      // Read errors end the connection (1006).
    }
    await this.#idle();
    await this.#linger(buf);
    this.#finish();
  }

  /**
   * After the close handshake or a failure: FIN, then read and drop what the peer still
   * sends until it hangs up, for at most {@link LINGER_MS}. Closing with unread input would
   * reset the connection, which can destroy our close frame before the peer reads it (a
   * browser still sending a message refused with 1009 would report 1006).
   */
  async #linger(buf: Uint8Array) {
    if (this.readyState === 3) return;
    const timer = setTimeout(() => this.terminate(), LINGER_MS);
    try {
      await this.#conn.closeWrite();
      while ((await this.#conn.read(buf)) !== null);
    } catch {
      // Reset by the peer, or closed by terminate().
    } finally {
      clearTimeout(timer);
    }
  }

  /** Decodes `chunk[0..n]` and hands its events to the listeners. */
  #receive(chunk: Uint8Array, n: number) {
    const s = native();
    const h = this.#h;
    // Events and the bytes to write land in the pool (or, after a large message, in a buffer
    // of that size): payloads are handed out as slices of it, never reused.
    let landing = this.#landing;
    if (landing === null && this.#expect !== 0) landing = this.#landing = new Uint8Array(this.#expect);
    let buf = landing ?? pool;
    let off = landing === null ? poolOff : 0;
    const rc = s.lbws_receive_at(h, chunk, n, buf, off, buf.length - off, INFO);
    const eventsLen = INFO[0];
    const outLen = INFO[1];
    const total = eventsLen + outLen;
    if (INFO[2] === 1) {
      if (landing === null) poolOff = off + total;
      else if (total !== 0) {
        this.#landing = null;
        if (total <= DEDICATED) this.#expect = 0;
      }
    } else if (total <= I32_MAX) {
      reserve(total);
      buf = regionBuf;
      off = regionOff;
      s.lbws_take_events(h, buf, off, total);
      this.#landing = null;
      this.#expect = total > DEDICATED && total <= READ_SIZE_MAX ? total : 0;
    } else {
      buf = new Uint8Array(total);
      off = 0;
      buf.set(view(s.lbws_events_ptr(h), eventsLen));
      buf.set(view(s.lbws_output_ptr(h), outLen), eventsLen);
      s.lbws_consume_output(h, L(outLen));
    }
    const error = rc !== 0 ? this.#error(rc) : null;
    this.#corked = true;
    try {
      if (outLen !== 0) this.#enqueue(buf.subarray(off + eventsLen, off + eventsLen + outLen));
      for (let i = off, end = off + eventsLen; i < end;) {
        const kind = buf[i];
        const len = (buf[i + 4] | (buf[i + 5] << 8) | (buf[i + 6] << 16) | (buf[i + 7] << 24)) >>> 0;
        const payload = buf.subarray(i + 8, i + 8 + len);
        if (kind === 1 || kind === 2) {
          // #dispatch("message", ...), without its rest-arguments array on the hot path.
          const ls = this.#listeners.message;
          if (ls !== undefined) {
            const isBinary = kind === 2;
            for (let j = 0; j < ls.length; j++) {
              try {
                ls[j](payload, isBinary);
              } catch (e) {
                reportError(e);
              }
            }
          }
        } else if (kind === 9) this.#dispatch("ping", payload);
        else if (kind === 10) this.#dispatch("pong", payload);
        else if (kind === 8) {
          this.#closeCode = buf[i + 2] | (buf[i + 3] << 8);
          this.#closeReason = decoder.decode(payload);
          this.readyState = 2;
          // Core held its answer so that replies to the messages above go out first.
          s.lbws_reply_close(h);
          this.#flush();
        }
        i += 8 + len;
      }
      if (error && error.code !== -1) {
        // Core held the close frame so that replies to the messages before the bad frame go
        // out first.
        s.lbws_reply_close(h);
        this.#flush();
        this.#closeCode = error.code;
        this.readyState = 2;
        this.#dispatch("error", error);
        // The read loop sees the session finished, and lingers.
      }
    } finally {
      this.#corked = false;
      if (this.#writing === null && this.#queue.length !== 0 && !this.#scheduled) {
        this.#scheduled = true;
        schedule(this.#kick);
      }
    }
  }

  #maybeFinish() {
    if ((native().lbws_state(this.#h) & 3) === 3) this.#idle().then(() => this.#finish());
  }

  #finish() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    closeQuietly(this.#conn);
    // Free the session once pending writes settle.
    this.#idle().then(() => native().lbws_free(this.#h));
    this.#emit("close", this.#closeCode, this.#closeReason);
    this.#resolveClosed({ code: this.#closeCode, reason: this.#closeReason });
  }
}

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
  const s = native();
  const h = s.lbws_new(0, options.maxPayload ?? 0, options.maxFrame ?? 0);
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
    const err = new WebSocketError(decoder.decode(view(s.lbws_error_ptr(h), s.lbws_error_len(h))), got.rc);
    const out = view(s.lbws_output_ptr(h), s.lbws_output_len(h)).slice();
    s.lbws_free(h);
    try {
      await conn.write(out);
    } catch {
      // the peer is gone
    }
    closeQuietly(conn);
    throw err;
  }
  return new WebSocketConnection(conn, h, got.head.slice(Number(s.lbws_handshake_used(h))), options);
}

/** Closes `conn`, which may be closed already. */
function closeQuietly(conn: Deno.Conn) {
  try {
    conn.close();
  } catch {
    // closed
  }
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
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        break;
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
  const s = native();
  const h = s.lbws_new(1, options.maxPayload ?? 0, options.maxFrame ?? 0);
  const host = encoder.encode(u.host);
  const path = encoder.encode((u.pathname || "/") + u.search);
  const protocols = encoder.encode((options.protocols ?? []).join(","));
  const pmd = options.perMessageDeflate ?? true;
  const [flags, window, level, threshold] = deflateArgs(pmd);
  const rc = s.lbws_request(h, host, L(host.length), path, L(path.length), protocols, L(protocols.length), flags, window, level, threshold);
  if (rc !== 0) {
    const msg = decoder.decode(view(s.lbws_error_ptr(h), s.lbws_error_len(h)));
    s.lbws_free(h);
    throw new WebSocketError(msg, rc);
  }
  const conn = await Deno.connect({ hostname: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 80) });
  try {
    conn.setNoDelay(true);
  } catch {
    // closed already: the handshake below fails
  }
  const request = view(s.lbws_output_ptr(h), s.lbws_output_len(h)).slice();
  s.lbws_consume_output(h, L(request.length));
  await conn.write(request);
  const got = await readHandshake(conn, options.handshakeTimeout, (head) => s.lbws_response(h, head, L(head.length)));
  if (got === "closed" || got === "timeout") {
    s.lbws_free(h);
    closeQuietly(conn);
    const why = got === "timeout" ? "opening handshake has timed out" : "connection closed during the handshake";
    throw new WebSocketError(why, -1);
  }
  if (got.rc !== 0) {
    const msg = decoder.decode(view(s.lbws_error_ptr(h), s.lbws_error_len(h)));
    s.lbws_free(h);
    closeQuietly(conn);
    throw new WebSocketError(`handshake failed: ${msg}`, got.rc);
  }
  return new WebSocketConnection(conn, h, got.head.slice(Number(s.lbws_handshake_used(h))), options);
}
