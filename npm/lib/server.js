'use strict';
// WebSocketServer, API after ws 8: { port | server | noServer }, handleUpgrade(), path,
// maxPayload, maxFragments, perMessageDeflate, handleProtocols, clients; and handshakeTimeout
// (ms, default 10 000) for a server it creates itself. The upgrade request is checked,
// and the 101 response (accept key, subprotocol, permessage-deflate parameters) written, by
// core through the native session; a bad request gets core's rejection response.

const { EventEmitter } = require('node:events');
const http = require('node:http');
const { NativeSession } = require('./native');
const { WebSocket } = require('./websocket');
const { deflateOptions } = require('./options');

const kHandshakeTimer = Symbol('handshakeTimer');

class WebSocketServer extends EventEmitter {
  constructor(options, callback) {
    super();
    options = {
      maxPayload: 100 * 1024 * 1024,
      perMessageDeflate: false,
      handleProtocols: null,
      clientTracking: true,
      verifyClient: null,
      noServer: false,
      backlog: null,
      server: null,
      host: null,
      path: null,
      port: null,
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
    this._state = 0; // 0 running, 1 closing, 2 closed
    if (options.port != null) {
      // A request Node's parser did not take for an upgrade (no `Upgrade` or `Connection`
      // token): core says what is wrong with it, with the status every face answers.
      this._server = http.createServer((req, res) => {
        const native = new NativeSession(false, 0, 0);
        const refused = !native.accept(requestHead(req), false, null, undefined).done;
        const out = native.takeOutput();
        if (refused && out) {
          res.socket.end(out);
          return;
        }
        const body = http.STATUS_CODES[426];
        res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain', Upgrade: 'websocket' });
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
      this._ownServer = true;
    } else if (options.server) {
      this._server = options.server;
    }
    if (this._server) {
      this._onListening = () => this.emit('listening');
      this._onError = (err) => this.emit('error', err);
      this._onUpgrade = (req, socket, head) => {
        this.handleUpgrade(req, socket, head, (ws) => this.emit('connection', ws, req));
      };
      this._server.on('listening', this._onListening);
      this._server.on('error', this._onError);
      this._server.on('upgrade', this._onUpgrade);
    }
  }

  address() {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    return this._server ? this._server.address() : null;
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
    if (!this.shouldHandle(req) || this._state !== 0) return abort(socket, 400);
    if (this.options.verifyClient) {
      const info = { origin: req.headers.origin, secure: !!(req.socket.authorized || req.socket.encrypted), req };
      if (this.options.verifyClient.length === 2) {
        this.options.verifyClient(info, (ok, code, message, headers) => {
          if (!ok) return abort(socket, code || 401, message, headers);
          this._complete(req, socket, head, cb);
        });
        return;
      }
      if (!this.options.verifyClient(info)) return abort(socket, 401);
    }
    this._complete(req, socket, head, cb);
  }

  _complete(req, socket, head, cb) {
    if (!socket.readable || !socket.writable) return socket.destroy();
    const raw = requestHead(req);
    let choose = false;
    let protocol = null;
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
        protocol = chosen === false || chosen == null ? null : String(chosen);
      }
    }
    const o = this.options;
    const native = new NativeSession(false, o.maxPayload, o.maxFrame);
    native.setMaxFragments(o.maxFragments);
    const r = native.accept(raw, choose, protocol, this._deflate || undefined);
    const out = native.takeOutput();
    if (!r.done) {
      if (out) socket.end(out);
      else socket.destroy();
      this.emit('wsClientError', new Error(r.error || 'incomplete upgrade request'), socket, req);
      return;
    }
    socket.removeListener('error', socketOnError);
    socket.write(out);
    const ws = new WebSocket(null);
    ws._setSocket(socket, head, native, r.protocol, r.extensions, o);
    if (this.clients) {
      this.clients.add(ws);
      ws.on('close', () => {
        this.clients.delete(ws);
        if (this._state === 1 && this.clients.size === 0) this._finishClose();
      });
    }
    cb(ws, req);
  }

  close(cb) {
    if (cb) this.once('close', cb);
    if (this._state === 2) {
      process.nextTick(() => this.emit('close'));
      return;
    }
    if (this._state === 1) return;
    this._state = 1;
    if (this._server) {
      this._server.removeListener('listening', this._onListening);
      this._server.removeListener('error', this._onError);
      this._server.removeListener('upgrade', this._onUpgrade);
    }
    if (this._ownServer) {
      this._server.close(() => this._finishClose());
      // Like ws 8, existing connections are not closed; only the listener stops.
      if (typeof this._server.closeIdleConnections === 'function') this._server.closeIdleConnections();
      return;
    }
    process.nextTick(() => this._finishClose());
  }

  _finishClose() {
    if (this._state === 2) return;
    this._state = 2;
    this.emit('close');
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
