'use strict';
// The WebSocket class (client and server side), API after `ws` 8. This file owns the socket
// and moves bytes: every protocol decision (handshake checks, deflate negotiation, framing,
// masking, UTF-8, close codes, limits) is made by the native session (Rust core). The client's
// handshake is in client.js, the browser-style events in events.js.

const { EventEmitter } = require('node:events');
const {
  INFO, SCRATCH, EVENT_TEXT, EVENT_BINARY, EVENT_PING, EVENT_PONG, EVENT_HEAD_LEN,
} = require('./native');
const { toBuffer, isBlob } = require('./options');
const { frameError } = require('./errors');
const { watch } = require('./liveness');
const { addEventListener, removeEventListener, defineEventAttributes } = require('./events');

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
const readyStates = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const BINARY_TYPES = ['nodebuffer', 'arraybuffer', 'fragments', 'blob'];

/** How long to wait for the peer's close frame (or TCP close) after ours, like ws. */
const CLOSE_TIMEOUT = 30_000;
/** Defaults of the backpressure marks; see README "Backpressure". */
const DEFAULT_READ_PAUSE = 16 * 1024 * 1024;
const DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);
const NOOP = () => {};

class WebSocket extends EventEmitter {
  /**
   * Client: `new WebSocket('ws://host:port/path', protocols?, options?)`.
   * Server side: created by WebSocketServer (`address` null, the server's options).
   */
  constructor(address, protocols, options) {
    super();
    this._readyState = CONNECTING;
    this._socket = null;
    this._req = null;
    this._native = null;
    this._protocol = '';
    this._extensions = '';
    this._url = '';
    this._binaryType = 'nodebuffer';
    this._closeCode = 1006;
    this._closeReason = EMPTY;
    this._closeFrameReceived = false;
    this._closeFrameSent = false;
    this._closeTimer = null;
    this._watch = null; // liveness.js, when the options turn it on
    this._closeTimeout = CLOSE_TIMEOUT;
    this._readPaused = false;
    this._userPaused = false;
    this._deflate = false;
    this._readPauseMark = DEFAULT_READ_PAUSE;
    this._maxBufferedAmount = DEFAULT_MAX_BUFFERED;
    this._errorEmitted = false;
    /** Bytes of sends made after the connection stopped being open (ws counts them). */
    this._bufferedAfterClose = 0;
    /** Sends waiting behind a Blob being read, in order; null when none. */
    this._queue = null;
    this._queuedBytes = 0;
    this._sender = new FrameWriter(this);
    if (address !== null) {
      this._redirects = 0;
      if (protocols === undefined) protocols = [];
      else if (!Array.isArray(protocols)) {
        if (typeof protocols === 'object' && protocols !== null) {
          options = protocols;
          protocols = [];
        } else protocols = [protocols];
      }
      // Loaded here: client.js needs this module's class.
      require('./client').initClient(this, address, protocols, options);
    } else if (options) {
      if (options.autoPong !== undefined) this._autoPong = options.autoPong;
      if (options.closeTimeout !== undefined) this._closeTimeout = options.closeTimeout;
    }
  }

  get readyState() { return this._readyState; }
  get protocol() { return this._protocol; }
  /** The names of the negotiated extensions, comma-separated, as ws gives them. */
  get extensions() { return this._extensions; }
  get url() { return this._url; }
  get isPaused() { return this._userPaused; }
  get binaryType() { return this._binaryType; }
  set binaryType(t) {
    if (BINARY_TYPES.includes(t)) this._binaryType = t;
  }
  /** Bytes queued and not yet handed to the kernel (and, as in ws, sends after close). */
  get bufferedAmount() {
    const socket = this._socket;
    return (socket ? socket.writableLength : 0) + this._queuedBytes + this._bufferedAfterClose;
  }

  /** Internal: attaches an upgraded socket and its live native session. */
  _setSocket(socket, head, native, protocol, extensions, options) {
    this._socket = socket;
    this._native = native;
    this._protocol = protocol || '';
    this._extensions = extensionNames(extensions);
    this._deflate = this._extensions.includes('permessage-deflate');
    if (options) {
      if (options.readPauseMark !== undefined) this._readPauseMark = options.readPauseMark;
      if (options.maxBufferedAmount !== undefined) this._maxBufferedAmount = options.maxBufferedAmount;
    }
    // Any Duplex can carry a connection; only sockets have these.
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
    if (typeof socket.setTimeout === 'function') socket.setTimeout(0);
    this._watch = watch(this, socket, options);
    // Bytes that came with the handshake go back to the socket, to be read like the rest once
    // the caller has attached its listeners (the server's callback runs after this returns).
    if (head && head.length) socket.unshift(head);
    this._onSocketData = (chunk) => this._onData(chunk);
    socket.on('data', this._onSocketData);
    socket.on('end', () => this._onEnd());
    socket.on('close', () => this._onSocketClose());
    socket.on('error', (err) => this._onSocketError(err));
    socket.on('drain', () => this._onDrain());
    this._readyState = OPEN;
    this.emit('open');
    if (socket.readableFlowing === null || socket.isPaused()) socket.resume();
  }

  _onData(chunk) {
    const native = this._native;
    if (!native || this._readyState === CLOSED) return;
    if (this._watch) this._watch.heard();
    const buf = native.receiveInto(chunk);
    // Read the shared description before any listener runs.
    const eventsLen = INFO[0];
    const outLen = INFO[1];
    const code = native.status;
    const socket = this._socket;
    const cork = typeof socket.cork === 'function';
    if (cork) socket.cork();
    try {
      if (outLen !== 0) this._write(bytes(buf, eventsLen, outLen));
      if (eventsLen !== 0) {
        const len = buf.readUInt32LE(4);
        if (EVENT_HEAD_LEN + len === eventsLen) {
          this._dispatch(buf[0], bytes(buf, EVENT_HEAD_LEN, len), buf.readUInt16LE(2));
        } else {
          // Copy every payload out of the shared buffers before any listener runs: a send from
          // a listener reuses them. Per event: kind, payload, close code.
          const events = [];
          for (let i = 0; i < eventsLen;) {
            const n = buf.readUInt32LE(i + 4);
            events.push(buf[i], bytes(buf, i + EVENT_HEAD_LEN, n), buf.readUInt16LE(i + 2));
            i += EVENT_HEAD_LEN + n;
          }
          for (let i = 0; i < events.length; i += 3) this._dispatch(events[i], events[i + 1], events[i + 2]);
        }
      }
    } finally {
      if (cork) socket.uncork();
    }
    if (code !== 0) {
      const [message, kind] = native.error();
      this._fail(code, message, kind);
    }
  }

  _dispatch(kind, data, code) {
    if (kind === EVENT_BINARY) {
      this.emit('message', binaryAs(this._binaryType, data), true);
    } else if (kind === EVENT_TEXT) {
      this.emit('message', data, false);
    } else if (kind === EVENT_PING) {
      this.emit('ping', data);
    } else if (kind === EVENT_PONG) {
      this.emit('pong', data);
    } else {
      this._onCloseFrame(code, data);
    }
  }

  /** The peer's close: answered like ws, with the same code and reason (none for 1005). */
  _onCloseFrame(code, reason) {
    this._closeFrameReceived = true;
    this._closeCode = code;
    this._closeReason = reason;
    if (this._readyState === CLOSED) return;
    const native = this._native;
    if (!native.closeSent) {
      const out = code === 1005 ? native.close(undefined, '') : native.close(code, reason.toString());
      if (out !== null) this._write(out);
    }
    this._closeFrameSent = true;
    this._readyState = CLOSING;
    if (native.finished) this._socket.end();
    this._armCloseTimer();
  }

  /** A protocol violation (core chose the close frame) or a misuse while reading. */
  _fail(code, message, kind) {
    if (code === -1) return; // closed already: nothing to report
    // Core held the close frame so that replies to the messages before the bad frame went
    // out first.
    const out = this._native.replyClose();
    if (out !== null && this._socket) this._write(out);
    this._closeFrameSent = true;
    this._readyState = CLOSING;
    // As in ws, the failing side's 'close' reports 1006 unless the peer's close arrived.
    const err = frameError(kind, message, code);
    if (this._socket) this._socket.end();
    this._armCloseTimer();
    this._emitError(err);
  }

  _emitError(err) {
    if (this._errorEmitted) return;
    this._errorEmitted = true;
    this.emit('error', err);
  }

  _onEnd() {
    if (this._native) this._native.receiveEof();
    this._readyState = CLOSING;
    if (this._socket) this._socket.end();
  }

  _onSocketError() {
    // Like ws: socket errors end the connection; 'close' follows with 1006.
    this._readyState = CLOSING;
    if (this._socket) this._socket.destroy();
  }

  _onSocketClose() {
    if (this._readyState === CLOSED) return;
    this._readyState = CLOSING;
    if (this._closeTimer) clearTimeout(this._closeTimer);
    this._closeTimer = null;
    if (this._watch) this._watch.stop();
    this._failQueue(new Error('The socket was closed while the blob was being read'));
    // Nothing more can be read or written: the native session and its buffers go now.
    if (this._native) this._native.release();
    this._readyState = CLOSED;
    // The peer's close code, the code we failed with, or 1006 (closed without a close frame).
    this.emit('close', this._closeCode, this._closeReason);
  }

  _onDrain() {
    if (this._readPaused) {
      this._readPaused = false;
      if (!this._userPaused) this._socket.resume();
    }
    this.emit('drain');
  }

  _armCloseTimer() {
    if (this._closeTimer || !this._socket) return;
    const socket = this._socket;
    this._closeTimer = setTimeout(() => socket.destroy(), this._closeTimeout);
  }

  /** Writes native output; pauses reading while the socket holds more than the read mark. */
  _write(buf, cb) {
    const socket = this._socket;
    socket.write(buf, cb);
    if (this._watch) this._watch.wrote(buf.length);
    if (!this._readPaused && socket.writableLength > this._readPauseMark) {
      this._readPaused = true;
      socket.pause();
    }
  }

  send(data, options, cb) {
    if (this._readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (typeof options === 'function') {
      cb = options;
      options = {};
    } else if (!options) options = {};
    if (typeof data === 'number') data = data.toString();
    if (this._readyState !== OPEN || this._native.closeSent) return this._sendAfterClose(data, cb);
    const binary = options.binary !== undefined ? !!options.binary : typeof data !== 'string';
    if (this._queue !== null || isBlob(data)) {
      this._enqueue(data, binary, options, cb);
      return;
    }
    this._sendNow(data || EMPTY, binary, options, cb);
  }

  _sendNow(data, binary, options, cb) {
    if (this.bufferedAmount > this._maxBufferedAmount) {
      const err = new Error(`send buffer is over maxBufferedAmount (${this._maxBufferedAmount} bytes); wait for 'drain'`);
      err.code = 'WS_ERR_BUFFER_FULL';
      if (cb) process.nextTick(cb, err);
      return;
    }
    const compress = this._deflate && options.compress !== false;
    const fin = options.fin !== false;
    const out = this._native.sendCopy(binary ? EVENT_BINARY : EVENT_TEXT, toBuffer(data), compress, fin);
    if (out !== null) this._write(out, cb);
    else if (cb) process.nextTick(cb);
  }

  /** A send behind a Blob: kept in order until the Blob is read. */
  _enqueue(data, binary, options, cb) {
    const blob = isBlob(data);
    const size = blob ? data.size : data ? toBuffer(data).length : 0;
    const entry = { data, binary, options, cb, size };
    this._queuedBytes += size;
    if (this._queue === null) this._queue = [];
    this._queue.push(entry);
    if (blob && this._queue.length === 1) this._readBlob(entry);
  }

  _readBlob(entry) {
    entry.data.arrayBuffer().then(
      (ab) => {
        if (!this._queue || this._queue[0] !== entry) return;
        if (!this._socket || this._socket.destroyed || this._native.closeSent) {
          this._failQueue(new Error('The socket was closed while the blob was being read'));
          return;
        }
        entry.data = Buffer.from(ab);
        this._flushQueue();
      },
      (err) => {
        // ws reports a Blob that cannot be read as an error of the connection.
        this._failQueue(err);
        if (this._readyState === OPEN) {
          this._readyState = CLOSING;
          this._armCloseTimer();
        }
        if (this._socket) this._socket.end();
        this._emitError(err);
      },
    );
  }

  /** Sends queued entries in order until the next unread Blob. */
  _flushQueue() {
    const queue = this._queue;
    while (queue.length) {
      const e = queue[0];
      if (isBlob(e.data)) {
        this._readBlob(e);
        return;
      }
      queue.shift();
      this._queuedBytes -= e.size;
      if (this._native.closeSent || this._socket.destroyed) {
        if (e.cb) process.nextTick(e.cb, notOpenError(this));
      } else if (e.close) this._writeClose(e.code, e.reason);
      else this._sendNow(e.data || EMPTY, e.binary, e.options, e.cb);
    }
    this._queue = null;
  }

  _failQueue(err) {
    const queue = this._queue;
    if (!queue) return;
    this._queue = null;
    this._queuedBytes = 0;
    for (const e of queue) if (e.cb) e.cb(err);
  }

  /** ws's answer to a send once the connection is not open: counted, and the callback fails. */
  _sendAfterClose(data, cb) {
    if (data) this._bufferedAfterClose += isBlob(data) ? data.size : toBuffer(data).length;
    if (cb) process.nextTick(cb, notOpenError(this));
  }

  ping(data, mask, cb) {
    this._control(true, data, mask, cb);
  }

  pong(data, mask, cb) {
    this._control(false, data, mask, cb);
  }

  _control(ping, data, mask, cb) {
    if (this._readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof mask === 'function') cb = mask;
    if (typeof data === 'number') data = data.toString();
    if (this._readyState !== OPEN || this._native.closeSent) return this._sendAfterClose(data, cb);
    const payload = data ? toBuffer(data) : EMPTY;
    // Core refuses a control payload over 125 bytes (RFC 6455 §5.5); ws's error for it.
    if (payload.length > 125) throw new RangeError('The data size must not be greater than 125 bytes');
    const out = ping ? this._native.ping(payload) : this._native.pong(payload);
    if (out !== null) this._write(out, cb);
    else if (cb) process.nextTick(cb);
  }

  /**
   * Starts the close handshake. Without a code, the close frame has no body (the peer sees
   * 1005), as in ws. Core checks the code and the reason's length.
   */
  close(code, reason) {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      this._abortHandshake(this._req, 'WebSocket was closed before the connection was established');
      return;
    }
    const native = this._native;
    if (this._readyState === CLOSING) {
      if (this._closeFrameSent && (this._closeFrameReceived || this._errorEmitted)) this._socket.end();
      return;
    }
    if (code !== undefined && (typeof code !== 'number' || !Number.isInteger(code))) {
      throw new TypeError('First argument must be a valid error code number');
    }
    reason = code === undefined || reason === undefined ? '' : String(reason);
    if (this._queue !== null) {
      // Behind the sends that wait for a Blob, as in ws.
      this._queue.push({ close: true, code, reason, size: 0 });
    } else this._writeClose(code, reason);
    this._readyState = CLOSING;
    this._armCloseTimer();
  }

  _writeClose(code, reason) {
    const native = this._native;
    let out;
    try {
      out = native.close(code, reason);
    } catch (err) {
      if (/close code/i.test(err.message)) throw new TypeError('First argument must be a valid error code number');
      if (/125|123|too long/i.test(err.message)) throw new RangeError('The message must not be greater than 123 bytes');
      throw err;
    }
    this._closeFrameSent = true;
    if (out !== null) this._write(out);
    if (native.finished) this._socket.end();
  }

  terminate() {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      this._abortHandshake(this._req, 'WebSocket was closed before the connection was established');
      return;
    }
    if (this._socket) {
      this._readyState = CLOSING;
      this._socket.destroy();
    }
  }

  pause() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._userPaused = true;
    this._socket.pause();
  }

  resume() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._userPaused = false;
    if (!this._readPaused) this._socket.resume();
  }

  /** The handshake failed: 'error', then 'close' (1006). */
  _failHandshake(err) {
    if (this._readyState === CLOSED) return;
    this._readyState = CLOSING;
    this._errorEmitted = true;
    this.emit('error', err);
    this._emitCloseWithoutSocket();
  }

  _emitCloseWithoutSocket() {
    if (this._readyState === CLOSED) return;
    this._readyState = CLOSED;
    this.emit('close', this._closeCode, this._closeReason);
  }

  /** Stops the handshake on `stream` (the request, or the upgraded socket) with `message`. */
  _abortHandshake(stream, message) {
    this._readyState = CLOSING;
    const err = new Error(message);
    Error.captureStackTrace(err, this._abortHandshake);
    if (!stream) {
      process.nextTick(() => this._failHandshake(err));
    } else if (typeof stream.setHeader === 'function') {
      stream._lowbitAborted = true;
      stream.destroy();
      if (stream.socket && !stream.socket.destroyed) stream.socket.destroy();
      process.nextTick(() => this._failHandshake(err));
    } else {
      stream.destroy(err);
      stream.once('error', (e) => this.emit('error', e));
      stream.once('close', () => this._emitCloseWithoutSocket());
    }
  }
}

/**
 * `ws._sender.sendFrame(list, cb)`: writes frames encoded once for many sockets (a broadcast),
 * as frameworks built on ws do. Safe for frames a server sends (unmasked), not compressed or
 * compressed without context takeover, written between whole messages: they go straight to
 * the socket. Refused (the callback gets an error) once the connection is closing.
 */
class FrameWriter {
  constructor(ws) { this._ws = ws; }

  sendFrame(list, cb) {
    const ws = this._ws;
    if (ws._readyState !== OPEN || !ws._native || ws._native.closeSent) {
      if (cb) process.nextTick(cb, notOpenError(ws));
      return;
    }
    const socket = ws._socket;
    if (list.length === 1) {
      ws._write(list[0], cb);
      return;
    }
    socket.cork();
    for (let i = 0; i < list.length - 1; i++) {
      socket.write(list[i]);
      if (ws._watch) ws._watch.wrote(list[i].length);
    }
    ws._write(list[list.length - 1], cb);
    socket.uncork();
  }
}

for (const [i, name] of readyStates.entries()) {
  Object.defineProperty(WebSocket, name, { enumerable: true, value: i });
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true, value: i });
}
for (const name of ['binaryType', 'bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url']) {
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true });
}
WebSocket.prototype.addEventListener = addEventListener;
WebSocket.prototype.removeEventListener = removeEventListener;
defineEventAttributes(WebSocket.prototype);

/** `length` bytes at `start` of a receive result; copied out of the shared scratch buffer. */
function bytes(buf, start, length) {
  if (length === 0) return EMPTY;
  const view = buf.subarray(start, start + length);
  return buf === SCRATCH ? Buffer.from(view) : view;
}

/** A binary message in the form `binaryType` asks for. */
function binaryAs(type, data) {
  switch (type) {
    case 'nodebuffer': return data;
    case 'arraybuffer': return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    case 'fragments': return [data];
    default: return new Blob([data]);
  }
}

/** The extension names of a negotiated Sec-WebSocket-Extensions value. */
function extensionNames(value) {
  if (!value) return '';
  return value.split(',').map((e) => e.split(';')[0].trim()).filter(Boolean).join();
}

function notOpenError(ws) {
  return new Error(`WebSocket is not open: readyState ${ws._readyState} (${readyStates[ws._readyState]})`);
}

module.exports = { WebSocket, CONNECTING, OPEN, CLOSING, CLOSED, NOOP };
