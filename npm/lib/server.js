'use strict';
// WebSocketServer, API after ws 8: { port | server | noServer }, handleUpgrade(), path,
// maxPayload, maxFragments, perMessageDeflate, handleProtocols, clients; and handshakeTimeout
// (ms, default 10 000) for a server it creates itself. The upgrade request is checked,
// and the 101 response (accept key, subprotocol, permessage-deflate parameters) written, by
// core through the native session; a bad request gets core's rejection response.

const { EventEmitter } = require('node:events');
const http = require('node:http');
const { NativeSession } = require('./native');
const { SERVER_DEFAULTS } = require('./liveness');
const { WebSocket } = require('./websocket');
const { deflateOptions } = require('./options');
const { serverHandshakeMessage } = require('./errors');

const RUNNING = 0;
const CLOSING = 1;
const CLOSED = 2;
/** Marks a socket handleUpgrade completed, so that a second call on it throws, as in ws. */
const kUpgraded = Symbol('lowbit:upgraded');

const kHandshakeTimer = Symbol('handshakeTimer');

class WebSocketServer extends EventEmitter {
  constructor(options, callback) {
    super();
    options = {
      allowSynchronousEvents: true,
      autoPong: true,
      maxPayload: 100 * 1024 * 1024,
      skipUTF8Validation: false,
      perMessageDeflate: false,
      handleProtocols: null,
      clientTracking: true,
      closeTimeout: 30_000,
      verifyClient: null,
      noServer: false,
      backlog: null,
      server: null,
      host: null,
      path: null,
      port: null,
      WebSocket,
      // Ours: drop stalled and (after a ping) quiet peers; see liveness.js.
      ...SERVER_DEFAULTS,
      ...options,
    };
    if ((options.port == null && !options.server && !options.noServer) ||
        (options.port != null && (options.server || options.noServer)) ||
        (options.server && options.noServer)) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    this.options = options;
    this._deflate = deflateOptions(options.perMessageDeflate);
    this.clients = options.clientTracking ? new Set() : undefined;
    this._state = RUNNING;
    if (options.port != null) {
      // A request Node's parser did not take for an upgrade. A plain HTTP request (no
      // WebSocket header at all) gets 426, as from ws; a broken handshake (say, no `Upgrade`
      // token) gets core's rejection, with the status every face answers.
      this._server = http.createServer((req, res) => {
        if (req.headers['sec-websocket-key'] !== undefined || req.headers.upgrade !== undefined) {
          const native = new NativeSession(false, 0, 0);
          const r = native.accept(requestHead(req), false, null, undefined);
          const out = native.takeOutput();
          if (!r.done && out) {
            res.socket.end(withBody(out, serverHandshakeMessage(r)));
            return;
          }
        }
        const body = http.STATUS_CODES[426];
        res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
        res.end(body);
      });
      // Every connection to our own server is for an upgrade: one whose request head is not
      // complete within `handshakeTimeout` ms (total, however it trickles in) gets 408.
      const timeout = options.handshakeTimeout ?? 10_000;
      if (timeout > 0) {
        this._server.on('connection', (socket) => {
          socket[kHandshakeTimer] = setTimeout(() => abort(socket, 408), timeout);
          socket.once('close', () => clearTimeout(socket[kHandshakeTimer]));
        });
      }
      this._server.listen(options.port, options.host, options.backlog, callback);
    } else if (options.server) {
      this._server = options.server;
    }
    if (this._server) {
      const listeners = {
        listening: () => this.emit('listening'),
        error: (err) => this.emit('error', err),
        upgrade: (req, socket, head) => this.handleUpgrade(req, socket, head, (ws) => this.emit('connection', ws, req)),
      };
      for (const [event, fn] of Object.entries(listeners)) this._server.on(event, fn);
      this._removeListeners = () => {
        for (const [event, fn] of Object.entries(listeners)) this._server.removeListener(event, fn);
      };
    }
  }

  address() {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    return this._server ? this._server.address() : null;
  }

  /**
   * Stops accepting connections (existing ones stay open, as in ws 8); 'close' once the
   * server is closed and, unless it is ours, every tracked client is gone. A second call's
   * callback gets an error.
   */
  close(cb) {
    if (this._state === CLOSED) {
      if (cb) this.once('close', () => cb(new Error('The server is not running')));
      process.nextTick(() => this._finishClose());
      return;
    }
    if (cb) this.once('close', cb);
    if (this._state === CLOSING) return;
    this._state = CLOSING;
    const server = this._server;
    if (server) {
      this._removeListeners();
      this._removeListeners = this._server = null;
    }
    if (this.options.port != null) {
      server.close(() => this._finishClose());
      return;
    }
    if (this.clients && this.clients.size) this._shouldEmitClose = true;
    else process.nextTick(() => this._finishClose());
  }

  _finishClose() {
    this._state = CLOSED;
    this.emit('close');
  }

  shouldHandle(req) {
    if (this.options.path) {
      const i = req.url.indexOf('?');
      const pathname = i !== -1 ? req.url.slice(0, i) : req.url;
      if (pathname !== this.options.path) return false;
    }
    return true;
  }

  /** Completes the upgrade of `socket` (from an 'upgrade' listener) and calls `cb(ws, req)`. */
  handleUpgrade(req, socket, head, cb) {
    clearTimeout(socket[kHandshakeTimer]);
    socket.on('error', socketOnError);
    const raw = requestHead(req);
    // Core checks the request (and answers it, below); a bad one is refused here, before
    // the path and verifyClient, as ws does.
    const check = new NativeSession(false, 0, 0);
    const r = check.accept(raw, false, null, this._deflate || undefined);
    if (!r.done) {
      const out = check.takeOutput();
      this._refuse(req, socket, r, out);
      return;
    }
    if (!this.shouldHandle(req)) return abort(socket, 400);
    if (this.options.verifyClient) {
      const info = { origin: req.headers.origin, secure: !!(req.socket.authorized || req.socket.encrypted), req };
      if (this.options.verifyClient.length === 2) {
        this.options.verifyClient(info, (ok, code, message, headers) => {
          if (!ok) return abort(socket, code || 401, message, headers);
          this.completeUpgrade(raw, req, socket, head, cb);
        });
        return;
      }
      if (!this.options.verifyClient(info)) return abort(socket, 401);
    }
    this.completeUpgrade(raw, req, socket, head, cb);
  }

  /**
   * A request core refused: with 'wsClientError' listeners, they get ws's error and the
   * socket; otherwise core's status goes out with ws's message as the body.
   */
  _refuse(req, socket, r, out) {
    const message = serverHandshakeMessage(r);
    if (this.listenerCount('wsClientError')) {
      const err = new Error(message);
      this.emit('wsClientError', err, socket, req);
      return;
    }
    if (!out) return socket.destroy();
    socket.once('finish', socket.destroy);
    socket.end(withBody(out, message));
  }

  /** Writes the 101 response and calls `cb(ws, req)`. `raw`: the request head. */
  completeUpgrade(raw, req, socket, head, cb) {
    if (!socket.readable || !socket.writable) return socket.destroy();
    if (socket[kUpgraded]) {
      throw new Error('server.handleUpgrade() was called more than once with the same socket, possibly due to a misconfiguration');
    }
    if (this._state > RUNNING) return abort(socket, 503);
    let choose = false;
    let protocol = null;
    let unoffered = null;
    if (this.options.handleProtocols) {
      let offered = null;
      try {
        offered = NativeSession.offeredProtocols(raw);
      } catch {
        // accept() below refuses the request with the right status.
      }
      if (offered && offered.length) {
        choose = true;
        const chosen = this.options.handleProtocols(new Set(offered), req);
        protocol = chosen === false || chosen == null || chosen === '' ? null : String(chosen);
        // A name the client did not offer: core would refuse it (RFC 6455 §4.2.2), ws sends
        // it as the application asked (and its client refuses it); see README.
        if (protocol !== null && !offered.includes(protocol)) {
          unoffered = protocol;
          protocol = null;
        }
      }
    }
    const o = this.options;
    const native = new NativeSession(false, o.maxPayload, o.maxFrame);
    native.setMaxFragments(o.maxFragments);
    const r = native.accept(raw, choose, protocol, this._deflate || undefined);
    let out = native.takeOutput();
    if (!r.done) {
      this._refuse(req, socket, r, out);
      return;
    }
    if (unoffered !== null || this.listenerCount('headers')) out = this._emitHeaders(out, req, unoffered);
    socket.removeListener('error', socketOnError);
    socket[kUpgraded] = true;
    socket.write(out);
    const ws = new o.WebSocket(null, undefined, o);
    ws._setSocket(socket, head, native, unoffered || r.protocol, r.extensions, o);
    if (this.clients) {
      this.clients.add(ws);
      ws.on('close', () => {
        this.clients.delete(ws);
        if (this._shouldEmitClose && !this.clients.size) process.nextTick(() => this._finishClose());
      });
    }
    cb(ws, req);
  }

  /** ws's 'headers' event: listeners see (and may add to) the 101 response's lines. */
  _emitHeaders(out, req, protocol) {
    const text = out.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    const lines = text.slice(0, end).split('\r\n');
    if (protocol !== null) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
    this.emit('headers', lines, req);
    return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${text.slice(end + 4)}`, 'latin1');
  }
}

/**
 * The request head as the client sent it, rebuilt from what Node's HTTP parser kept
 * (method, target, version and the raw header lines), for core to check.
 */
function requestHead(req) {
  let s = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const h = req.rawHeaders;
  for (let i = 0; i < h.length; i += 2) s += `${h[i]}: ${h[i + 1]}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

/** Core's rejection response with `message` as its body, as ws writes it. */
function withBody(response, message) {
  const text = response.toString('latin1');
  const head = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n')
    .filter((l) => !/^content-(length|type):/i.test(l));
  head.push('Content-Type: text/html', `Content-Length: ${Buffer.byteLength(message)}`);
  return `${head.join('\r\n')}\r\n\r\n${message}`;
}

function socketOnError() {
  this.destroy();
}

function abort(socket, code, message, headers) {
  message = message || http.STATUS_CODES[code];
  headers = { Connection: 'close', 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(message), ...headers };
  socket.once('finish', socket.destroy);
  socket.end(
    `HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\n` +
      Object.keys(headers).map((h) => `${h}: ${headers[h]}`).join('\r\n') +
      '\r\n\r\n' +
      message,
  );
}

module.exports = { WebSocketServer };
