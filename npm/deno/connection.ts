/**
 * One WebSocket connection over a Deno stream, after its handshake: moves bytes between the
 * stream and the native session and hands events to the listeners.
 * @module
 */

import { contract, decoder, EMPTY, encoder, errorMessage, L, native, takeOutput, view } from "./ffi.ts";
import { DEDICATED, reserve, SLAB, slab, take, written } from "./pool.ts";
import { type LivenessOptions, Watch } from "./liveness.ts";

const { EVENT_TEXT, EVENT_BINARY, EVENT_CLOSE, EVENT_PING, EVENT_PONG, EVENT_HEAD_LEN, STATE_CLOSE_SENT, STATE_FINISHED } =
  contract;

/** `lbws_receive_at` results: events' length, output's length, fitted, state. */
const INFO = new Uint32Array(4);
/** Lengths passed as `u32`: larger inputs take the `usize` functions. */
const U32_MAX = 0xffffffff;
/**
 * Each connection's read buffer follows use, as core's buffers do (crates/core/src/sizing.rs):
 * it starts at READ_SIZE, doubles when a read fills it (up to READ_SIZE_MAX), and after
 * READ_WINDOW reads whose largest used a quarter of it or less, is replaced by one of twice
 * that (at least READ_FLOOR). An idle connection, parked in a read, holds 1 KiB.
 */
const READ_SIZE = 1024;
const READ_SIZE_MAX = 256 * 1024;
const READ_FLOOR = 4096;
const READ_WINDOW = 64;
const I32_MAX = 0x7fffffff;
/** How long a finished connection waits for the peer to hang up (see `#linger`). */
const LINGER_MS = 2000;
/**
 * Bytes one connection may read before it yields to the event loop. A read that completes
 * at once resumes the loop in a microtask, so without this a peer that keeps the socket full
 * (a flood of empty continuation frames) would get all the service; like core's pump budget.
 */
const READ_BUDGET = 256 * 1024;

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
export interface ConnectionOptions extends LivenessOptions {
  /** Offer (client) or accept (server) permessage-deflate. */
  perMessageDeflate?: boolean | DeflateOptions;
  /** The largest message accepted, after inflation (default 100 MiB); larger ones close with 1009. */
  maxPayload?: number;
  /** The largest frame written (default 64 KiB). */
  maxFrame?: number;
  /** The most frames one message may arrive in (`ws`'s `maxFragments`; default 131 072, 0: no cap); past it the connection closes with 1009. */
  maxFragments?: number;
  /** Stop reading the socket while this many bytes wait to be written (default 16 MiB). */
  readPauseMark?: number;
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
  #watch: Watch;
  /** Resolves when the connection is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  #resolveClosed!: (v: { code: number; reason: string }) => void;

  /** @internal Use {@link serve}, {@link accept} or {@link connect}. */
  constructor(conn: Deno.Conn, h: Deno.PointerValue, leftover: Uint8Array, options: ConnectionOptions) {
    this.#conn = conn;
    this.#h = h;
    const info = decoder.decode(view(native.lbws_handshake_info_ptr(h), native.lbws_handshake_info_len(h))).split("\n");
    [this.protocol, this.extensions, this.path] = [info[0] ?? "", info[1] ?? "", info[2] ?? ""];
    this.#readPauseMark = options.readPauseMark ?? 16 * 1024 * 1024;
    this.#watch = new Watch(options, {
      writing: () => this.#writing !== null,
      ping: () => this.ping().catch(() => {}),
      drop: () => this.terminate(),
    });
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
    const op = (options?.binary ?? typeof data !== "string") ? EVENT_BINARY : EVENT_TEXT;
    const compress = options?.compress === false ? 0 : 1;
    const fin = options?.fin === false ? 0 : 1;
    const s = native;
    let n: number;
    if (bytes.length <= U32_MAX) {
      // Try the slab's free end first; a frame that does not fit waits in the session.
      n = s.lbws_send_at(this.#h, op, bytes, bytes.length, compress, fin, slab.buf, slab.off, SLAB - slab.off);
      if (n > 0) return this.#enqueue(take(n));
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
    const rc = native.lbws_ping(this.#h, bytes, L(bytes.length));
    return rc === 0 ? this.#flush() : Promise.reject(this.#error(rc));
  }

  pong(data: string | Uint8Array = EMPTY): Promise<void> {
    if (this.readyState === 3) return Promise.reject(new WebSocketError("WebSocket is closed", -1));
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    const rc = native.lbws_pong(this.#h, bytes, L(bytes.length));
    return rc === 0 ? this.#flush() : Promise.reject(this.#error(rc));
  }

  /** Starts the close handshake (core checks code and reason). */
  close(code = 1000, reason = ""): Promise<void> {
    if (this.readyState === 3 || native.lbws_state(this.#h) & STATE_CLOSE_SENT) return Promise.resolve();
    const r = encoder.encode(reason);
    const rc = native.lbws_close(this.#h, code, r, L(r.length));
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
    return new WebSocketError(errorMessage(this.#h), rc);
  }

  /** Moves the session's output onto the write queue. */
  #flush(): Promise<void> {
    const s = native;
    const len = Number(s.lbws_output_len(this.#h));
    if (len === 0) return this.#idle();
    let bytes: Uint8Array;
    if (len <= I32_MAX) {
      bytes = reserve(len, true);
      s.lbws_output_at(this.#h, bytes, 0, len);
    } else {
      bytes = takeOutput(this.#h);
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
      data = reserve(total, true);
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
    this.#watch.writeStarted();
    this.#conn.write(data).then(this.#onWritten, this.#onWriteFailed);
  }

  #onWritten = (n: number) => {
    const data = this.#writing!;
    this.#written += n;
    this.#watch.wrote(n);
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
    let reads = 0;
    let peak = 0;
    let taken = 0;
    try {
      // (terminate() may have come first, and freed the session.)
      while (this.readyState !== 3) {
        if (n !== 0) {
          this.#receive(chunk, n);
          // A full read: the peer sends large frames; read them whole rather than in pieces.
          if (chunk === buf && n === buf.length && n < READ_SIZE_MAX) buf = new Uint8Array(n * 2);
          else if (chunk === buf) {
            // Reads well below the buffer for a window: give the memory back.
            peak = Math.max(peak, n);
            if (++reads === READ_WINDOW) {
              const keep = Math.max(peak, READ_FLOOR);
              if (buf.length > 4 * keep) buf = new Uint8Array(2 * keep);
              reads = 0;
              peak = 0;
            }
          }
          // (The close handshake can only have completed once closing started.)
          if (this.readyState !== 1 && native.lbws_state(this.#h) === STATE_FINISHED) {
            await this.#idle();
            break;
          }
        }
        if (this.bufferedAmount > this.#readPauseMark) await this.#idle();
        taken += n;
        if (taken >= READ_BUDGET) {
          taken = 0;
          await new Promise((resolve) => setTimeout(resolve, 0));
          if (this.readyState === 3) break;
        }
        const read = await this.#conn.read(buf);
        if (read === null) {
          native.lbws_receive_eof(this.#h);
          break;
        }
        this.#watch.heard();
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
    const s = native;
    const h = this.#h;
    // Events and the bytes to write land in the slab (or, after a large message, in a buffer
    // of that size): payloads are handed out as slices of it, never reused.
    let landing = this.#landing;
    if (landing === null && this.#expect !== 0) landing = this.#landing = new Uint8Array(this.#expect);
    let buf = landing ?? slab.buf;
    let off = landing === null ? slab.off : 0;
    const rc = s.lbws_receive_at(h, chunk, n, buf, off, buf.length - off, INFO);
    const eventsLen = INFO[0];
    const outLen = INFO[1];
    const total = eventsLen + outLen;
    if (INFO[2] === 1) {
      if (landing === null) take(total);
      else if (total !== 0) {
        this.#landing = null;
        if (total <= DEDICATED) this.#expect = 0;
      }
    } else if (total <= I32_MAX) {
      buf = reserve(total);
      off = 0;
      s.lbws_take_events(h, buf, off, total);
      this.#landing = null;
      this.#expect = total > DEDICATED && total <= READ_SIZE_MAX ? total : 0;
    } else {
      buf = new Uint8Array(total);
      off = 0;
      buf.set(view(s.lbws_events_ptr(h), eventsLen));
      buf.set(takeOutput(h), eventsLen);
    }
    const error = rc !== 0 ? this.#error(rc) : null;
    this.#corked = true;
    try {
      if (outLen !== 0) this.#enqueue(buf.subarray(off + eventsLen, off + eventsLen + outLen));
      for (let i = off, end = off + eventsLen; i < end;) {
        const kind = buf[i];
        const len = (buf[i + 4] | (buf[i + 5] << 8) | (buf[i + 6] << 16) | (buf[i + 7] << 24)) >>> 0;
        const payload = buf.subarray(i + EVENT_HEAD_LEN, i + EVENT_HEAD_LEN + len);
        if (kind === EVENT_TEXT || kind === EVENT_BINARY) {
          // #dispatch("message", ...), without its rest-arguments array on the hot path.
          const ls = this.#listeners.message;
          if (ls !== undefined) {
            const isBinary = kind === EVENT_BINARY;
            for (let j = 0; j < ls.length; j++) {
              try {
                ls[j](payload, isBinary);
              } catch (e) {
                reportError(e);
              }
            }
          }
        } else if (kind === EVENT_PING) this.#dispatch("ping", payload);
        else if (kind === EVENT_PONG) this.#dispatch("pong", payload);
        else if (kind === EVENT_CLOSE) {
          this.#closeCode = buf[i + 2] | (buf[i + 3] << 8);
          this.#closeReason = decoder.decode(payload);
          this.readyState = 2;
          // Core held its answer so that replies to the messages above go out first.
          s.lbws_reply_close(h);
          this.#flush();
        }
        i += EVENT_HEAD_LEN + len;
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
    if (native.lbws_state(this.#h) === STATE_FINISHED) this.#idle().then(() => this.#finish());
  }

  #finish() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#watch.stop();
    closeQuietly(this.#conn);
    // Free the session once pending writes settle.
    this.#idle().then(() => native.lbws_free(this.#h));
    this.#emit("close", this.#closeCode, this.#closeReason);
    this.#resolveClosed({ code: this.#closeCode, reason: this.#closeReason });
  }
}

/** Closes `conn`, which may be closed already. */
export function closeQuietly(conn: Deno.Conn) {
  try {
    conn.close();
  } catch {
    // closed
  }
}

