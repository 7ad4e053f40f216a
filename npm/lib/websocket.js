'use strict';
// The WebSocket class (client and server side), API after `ws` 8. This file owns the socket
// and moves bytes: every protocol decision (handshake checks, deflate negotiation, framing,
// masking, UTF-8, close codes, limits) is made by the native session (Rust core).

const { EventEmitter } = require('node:events');
const net = require('node:net');
const tls = require('node:tls');
const {
  NativeSession, INFO, SCRATCH, EVENT_TEXT, EVENT_BINARY, EVENT_PING, EVENT_PONG, EVENT_HEAD_LEN,
} = require('./native');
const { deflateOptions, toBuffer } = require('./options');

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
const readyStates = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];

/** How long to wait for the peer's close frame (or TCP close) after ours, like ws. */
const CLOSE_TIMEOUT = 30_000;
/** Defaults of the backpressure marks; see README "Backpressure". */
const DEFAULT_READ_PAUSE = 16 * 1024 * 1024;
const DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

class WebSocket extends EventEmitter {
  /**
   * Client: `new WebSocket('ws://host:port/path', protocols?, options?)`.
   * Server side: created by WebSocketServer (address `null`).
   */
  constructor(address, protocols, options) {
    super();
    this._readyState = CONNECTING;
    this._socket = null;
    this._native = null;
    this._protocol = '';
    this._extensions = '';
    this._url = '';
    this._binaryType = 'nodebuffer';
    this._closeCode = 1006;
    this._closeReason = EMPTY;
    this._closeFrameReceived = false;
    this._closeTimer = null;
    this._readPaused = false;
    this._userPaused = false;
    this._deflate = false;
    this._readPauseMark = DEFAULT_READ_PAUSE;
    this._maxBufferedAmount = DEFAULT_MAX_BUFFERED;
    this._errorEmitted = false;
    if (address !== null) {
      if (!Array.isArray(protocols) && typeof protocols === 'object' && protocols !== null) {
        options = protocols;
        protocols = undefined;
      }
      if (protocols === undefined) protocols = [];
      else if (!Array.isArray(protocols)) protocols = [protocols];
      initClient(this, address, protocols, options || {});
    }
  }

  get readyState() { return this._readyState; }
  get protocol() { return this._protocol; }
  get extensions() { return this._extensions; }
  get url() { return this._url; }
  get isPaused() { return this._userPaused; }
  get binaryType() { return this._binaryType; }
  set binaryType(t) {
    if (t === 'nodebuffer' || t === 'arraybuffer') this._binaryType = t;
  }
  /** Bytes queued on the socket and not yet handed to the kernel. */
  get bufferedAmount() {
    return this._socket ? this._socket.writableLength : 0;
  }

  /** Internal: attaches an upgraded socket and its live native session. */
  _setSocket(socket, head, native, protocol, extensions, options) {
    this._socket = socket;
    this._native = native;
    this._protocol = protocol || '';
    this._extensions = extensions || '';
    this._deflate = !!extensions && extensions.includes('permessage-deflate');
    if (options) {
      if (options.readPauseMark !== undefined) this._readPauseMark = options.readPauseMark;
      if (options.maxBufferedAmount !== undefined) this._maxBufferedAmount = options.maxBufferedAmount;
    }
    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.removeAllListeners('data');
    socket.removeAllListeners('timeout');
    // Bytes that came with the handshake go back to the socket, to be read like the rest once
    // the caller has attached its listeners (the server's callback runs after this returns).
    if (head && head.length) socket.unshift(head);
    socket.on('data', (chunk) => this._onData(chunk));
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
    const buf = native.receiveInto(chunk);
    // Read the shared description before any listener runs.
    const eventsLen = INFO[0];
    const outLen = INFO[1];
    const code = native.status;
    const socket = this._socket;
    socket.cork();
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
      socket.uncork();
    }
    if (code !== 0) {
      const [message, kind] = native.error();
      this._fail(code, message, kind);
    }
  }

  _dispatch(kind, data, code) {
    if (kind === EVENT_TEXT || kind === EVENT_BINARY) {
      this.emit('message', this._binaryType === 'arraybuffer' ? toArrayBuffer(data) : data, kind === EVENT_BINARY);
    } else if (kind === EVENT_PING) {
      this.emit('ping', data);
    } else if (kind === EVENT_PONG) {
      this.emit('pong', data);
    } else {
      // The peer's close.
      this._closeFrameReceived = true;
      this._closeCode = code;
      this._closeReason = data;
      this._readyState = CLOSING;
      // Core held its answer so that replies to the messages before it went out first.
      const answer = this._native.replyClose();
      if (answer !== null) this._write(answer);
      if (this._native.finished) this._socket.end();
      this._armCloseTimer();
    }
  }

  /** A protocol violation (core chose the close frame) or a misuse while reading. */
  _fail(code, message, kind) {
    if (code === -1) return; // closed already: nothing to report
    // Core held the close frame so that replies to the messages before the bad frame went
    // out first.
    const out = this._native.replyClose();
    if (out !== null && this._socket) this._write(out);
    this._readyState = CLOSING;
    this._closeCode = code;
    const err = new RangeError(message);
    err.code = wsErrorCode(code);
    /** The core error variant, e.g. 'UnmaskedFrame'. */
    err.kind = kind;
    err[Symbol.for('status-code')] = code;
    if (this._socket) this._socket.end();
    this._armCloseTimer();
    this._emitError(err);
  }

  _emitError(err) {
    if (this._errorEmitted) return;
    this._errorEmitted = true;
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  _onEnd() {
    if (this._native) this._native.receiveEof();
    this._readyState = CLOSING;
    if (this._socket) this._socket.end();
  }

  _onSocketError(err) {
    // Like ws: socket errors end the connection; 'close' follows with 1006.
    this._readyState = CLOSING;
    if (this._socket) this._socket.destroy();
  }

  _onSocketClose() {
    if (this._readyState === CLOSED) return;
    this._readyState = CLOSED;
    if (this._closeTimer) clearTimeout(this._closeTimer);
    this._closeTimer = null;
    // Nothing more can be read or written: the native session and its buffers go now.
    if (this._native) this._native.release();
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
    this._closeTimer = setTimeout(() => this._socket.destroy(), CLOSE_TIMEOUT);
    this._closeTimer.unref();
  }

  /** Writes native output; pauses reading while the socket holds more than the read mark. */
  _write(buf, cb) {
    const socket = this._socket;
    socket.write(buf, cb);
    if (!this._readPaused && socket.writableLength > this._readPauseMark) {
      this._readPaused = true;
      socket.pause();
    }
  }

  send(data, options, cb) {
    if (typeof options === 'function') {
      cb = options;
      options = {};
    } else if (!options) options = {};
    if (this._readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (typeof data === 'number') data = data.toString();
    if (this._readyState !== OPEN || this._native.closeSent) return notOpen(this, cb);
    if (this.bufferedAmount > this._maxBufferedAmount) {
      const err = new Error(`send buffer is over maxBufferedAmount (${this._maxBufferedAmount} bytes); wait for 'drain'`);
      err.code = 'WS_ERR_BUFFER_FULL';
      if (cb) process.nextTick(cb, err);
      return;
    }
    const binary = options.binary !== undefined ? !!options.binary : typeof data !== 'string';
    const compress = this._deflate && options.compress !== false;
    const fin = options.fin !== false;
    const out = this._native.sendCopy(binary ? EVENT_BINARY : EVENT_TEXT, toBuffer(data), compress, fin);
    if (out !== null) this._write(out, cb);
    else if (cb) process.nextTick(cb);
  }

  ping(data, mask, cb) {
    if (typeof data === 'function') { cb = data; data = undefined; }
    else if (typeof mask === 'function') { cb = mask; }
    if (this._readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (this._readyState !== OPEN || this._native.closeSent) return notOpen(this, cb);
    const out = this._native.ping(data === undefined ? EMPTY : toBuffer(typeof data === 'number' ? String(data) : data));
    if (out !== null) this._write(out, cb);
  }

  pong(data, mask, cb) {
    if (typeof data === 'function') { cb = data; data = undefined; }
    else if (typeof mask === 'function') { cb = mask; }
    if (this._readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (this._readyState !== OPEN || this._native.closeSent) return notOpen(this, cb);
    const out = this._native.pong(data === undefined ? EMPTY : toBuffer(typeof data === 'number' ? String(data) : data));
    if (out !== null) this._write(out, cb);
  }

  /** Starts the close handshake. Without a code, 1000 is sent. Core checks code and reason. */
  close(code, reason) {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      this._abortConnect(new Error('WebSocket was closed before the connection was established'));
      return;
    }
    if (this._native.closeSent) {
      if (this._native.finished) this._socket.end();
      return;
    }
    const out = this._native.close(code === undefined ? 1000 : code, reason === undefined ? '' : String(reason));
    this._readyState = CLOSING;
    if (out !== null) this._write(out);
    if (this._native.finished) this._socket.end();
    this._armCloseTimer();
  }

  terminate() {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      this._abortConnect(new Error('WebSocket was closed before the connection was established'));
      return;
    }
    this._readyState = CLOSING;
    this._socket.destroy();
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

  _abortConnect(err) {
    this._readyState = CLOSING;
    if (this._socket) this._socket.destroy();
    this._emitError(err);
    if (!this._socket) this._onSocketClose();
  }

  // EventTarget-style API, as in ws.
  addEventListener(type, handler, options = {}) {
    if (typeof handler !== 'function' && !(handler && typeof handler.handleEvent === 'function')) return;
    const call = (event) => (typeof handler === 'function' ? handler.call(this, event) : handler.handleEvent(event));
    let wrapper;
    if (type === 'message') wrapper = (data, isBinary) => call({ type, target: this, data: isBinary ? data : data.toString() });
    else if (type === 'close') wrapper = (code, reason) => call({ type, target: this, code, reason: reason.toString(), wasClean: this._closeFrameReceived });
    else if (type === 'error') wrapper = (error) => call({ type, target: this, error, message: error.message });
    else if (type === 'open') wrapper = () => call({ type, target: this });
    else return;
    wrapper._listener = handler;
    if (options.once) this.once(type, wrapper);
    else this.on(type, wrapper);
  }

  removeEventListener(type, handler) {
    for (const l of this.listeners(type)) {
      if (l._listener === handler) {
        this.removeListener(type, l);
        return;
      }
    }
  }
}

for (const [i, name] of readyStates.entries()) {
  Object.defineProperty(WebSocket, name, { enumerable: true, value: i });
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true, value: i });
}
for (const type of ['open', 'message', 'close', 'error']) {
  Object.defineProperty(WebSocket.prototype, `on${type}`, {
    enumerable: true,
    get() {
      for (const l of this.listeners(type)) if (l._onProp) return l._listener;
      return null;
    },
    set(handler) {
      for (const l of this.listeners(type)) if (l._onProp) this.removeListener(type, l);
      if (typeof handler !== 'function') return;
      this.addEventListener(type, handler);
      const ls = this.listeners(type);
      ls[ls.length - 1]._onProp = true;
    },
  });
}

/** `length` bytes at `start` of a receive result; copied out of the shared scratch buffer. */
function bytes(buf, start, length) {
  if (length === 0) return EMPTY;
  const view = buf.subarray(start, start + length);
  return buf === SCRATCH ? Buffer.from(view) : view;
}

function notOpen(ws, cb) {
  if (cb) {
    const err = new Error(`WebSocket is not open: readyState ${ws._readyState} (${readyStates[ws._readyState]})`);
    process.nextTick(cb, err);
  }
}

function toArrayBuffer(buf) {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

function wsErrorCode(code) {
  switch (code) {
    case 1009: return 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
    case 1007: return 'WS_ERR_INVALID_UTF8';
    default: return 'WS_ERR_PROTOCOL';
  }
}

/** Client: connects, sends the upgrade request built by core, checks the answer with core. */
function initClient(ws, address, protocols, options) {
  const url = address instanceof URL ? address : new URL(address);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new SyntaxError(`The URL's protocol must be one of "ws:", "wss:", "http:", "https:"`);
  }
  ws._url = url.href;
  const secure = url.protocol === 'wss:';
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const hostHeader = url.port ? `${url.hostname}:${url.port}` : url.hostname;
  const path = (url.pathname || '/') + url.search;
  const pmd = options.perMessageDeflate === undefined ? true : options.perMessageDeflate;
  const native = new NativeSession(true, options.maxPayload, options.maxFrame);
  native.setMaxFragments(options.maxFragments);
  native.request(hostHeader, path, protocols, deflateOptions(pmd) || undefined);
  const socket = secure
    ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...options.tls })
    : net.connect({ host, port });
  ws._socket = socket;
  let head = EMPTY;
  let timer = null;
  if (options.handshakeTimeout) {
    timer = setTimeout(() => ws._abortConnect(new Error('Opening handshake has timed out')), options.handshakeTimeout);
  }
  const onConnectError = (err) => {
    if (timer) clearTimeout(timer);
    ws._readyState = CLOSING;
    ws._emitError(err);
  };
  socket.once(secure ? 'secureConnect' : 'connect', () => socket.write(native.takeOutput()));
  socket.on('error', onConnectError);
  socket.once('close', () => {
    if (ws._readyState !== OPEN && ws._native === null) ws._onSocketClose();
  });
  const onData = (chunk) => {
    head = head.length ? Buffer.concat([head, chunk]) : chunk;
    const r = native.response(head);
    if (r.error !== undefined && r.error !== null) {
      socket.removeListener('data', onData);
      ws._abortConnect(new Error(`Unexpected server response: ${r.error}`));
      return;
    }
    if (!r.done) return;
    if (timer) clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('error', onConnectError);
    ws._setSocket(socket, head.subarray(r.used), native, r.protocol, r.extensions, options);
  };
  socket.on('data', onData);
}

module.exports = { WebSocket, CONNECTING, OPEN, CLOSING, CLOSED };
