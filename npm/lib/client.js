'use strict';
// The client's opening handshake, over Node's `http.request` / `https.request` as in ws 8,
// so every request option ws takes works: headers, origin, auth and URL userinfo, agent,
// createConnection, lookup, finishRequest, top-level TLS options, followRedirects /
// maxRedirects ('redirect'), ws+unix: URLs, 'upgrade' and 'unexpected-response'.
//
// Core writes the WebSocket part of the request (key, version, subprotocols, deflate offer)
// and checks the 101 answer (accept key, subprotocol, extension negotiation); Node's HTTP
// client carries them.

const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const tls = require('node:tls');
const { NativeSession } = require('./native');
const { deflateOptions } = require('./options');
const { clientHandshakeMessage } = require('./errors');

/** Protocol versions ws accepts for `protocolVersion`; core speaks 13 only (RFC 6455). */
const PROTOCOL_VERSIONS = [13];
/** The headers of core's request that the WebSocket handshake owns. */
const HANDSHAKE_HEADERS = new Set([
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions',
]);

/** ws's client defaults; the caller's options override them. */
function clientDefaults(options) {
  return {
    autoPong: true,
    closeTimeout: 30_000,
    protocolVersion: 13,
    maxPayload: 100 * 1024 * 1024,
    skipUTF8Validation: false,
    perMessageDeflate: true,
    followRedirects: false,
    maxRedirects: 10,
    ...options,
  };
}

/**
 * Starts the handshake of client `ws` to `address` (string or URL). Throws a SyntaxError or
 * RangeError for a bad URL, subprotocol or protocol version, as ws does; after a redirect
 * those become an 'error' instead.
 */
function initClient(ws, address, protocols, options) {
  const opts = {
    ...clientDefaults(options),
    socketPath: undefined, hostname: undefined, protocol: undefined, timeout: undefined,
    method: 'GET', host: undefined, path: undefined, port: undefined,
  };
  ws._autoPong = opts.autoPong;
  ws._closeTimeout = opts.closeTimeout;
  ws._clientOptions = opts;
  if (!PROTOCOL_VERSIONS.includes(opts.protocolVersion)) {
    throw new RangeError(
      `Unsupported protocol version: ${opts.protocolVersion} (supported versions: ${PROTOCOL_VERSIONS.join(', ')})`,
    );
  }

  let url;
  if (address instanceof URL) url = address;
  else {
    try {
      url = new URL(address);
    } catch {
      throw new SyntaxError(`Invalid URL: ${address}`);
    }
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  ws._url = url.href;

  const secure = url.protocol === 'wss:';
  const ipc = url.protocol === 'ws+unix:';
  let invalid;
  if (url.protocol !== 'ws:' && !secure && !ipc) {
    invalid = 'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"';
  } else if (ipc && !url.pathname) invalid = "The URL's pathname is empty";
  else if (url.hash) invalid = 'The URL contains a fragment identifier';
  if (invalid) {
    const err = new SyntaxError(invalid);
    if (ws._redirects === 0) throw err;
    ws._failHandshake(err);
    return;
  }

  const defaultPort = secure ? 443 : 80;
  opts.createConnection = opts.createConnection || (secure ? tlsConnect : netConnect);
  opts.defaultPort = opts.defaultPort || defaultPort;
  opts.port = url.port || defaultPort;
  opts.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  opts.path = url.pathname + url.search;
  opts.timeout = opts.handshakeTimeout;
  if (opts.tls) Object.assign(opts, opts.tls); // our older `tls:` key: the same TLS options

  // Core writes the WebSocket part of the request; it refuses bad or repeated subprotocols.
  const native = new NativeSession(true, opts.maxPayload, opts.maxFrame);
  native.setMaxFragments(opts.maxFragments);
  const pmd = deflateOptions(opts.perMessageDeflate, opts);
  for (const p of protocols) {
    if (typeof p !== 'string') throw new SyntaxError('An invalid or duplicated subprotocol was specified');
  }
  try {
    native.request(url.host || 'localhost', opts.path || '/', protocols, pmd || undefined);
  } catch {
    throw new SyntaxError('An invalid or duplicated subprotocol was specified');
  }
  const wsHeaders = handshakeHeaders(native.takeOutput());
  opts.headers = {
    ...opts.headers,
    'Sec-WebSocket-Version': wsHeaders['sec-websocket-version'],
    'Sec-WebSocket-Key': wsHeaders['sec-websocket-key'],
    Connection: 'Upgrade',
    Upgrade: 'websocket',
  };
  if (wsHeaders['sec-websocket-extensions']) opts.headers['Sec-WebSocket-Extensions'] = wsHeaders['sec-websocket-extensions'];
  if (wsHeaders['sec-websocket-protocol']) opts.headers['Sec-WebSocket-Protocol'] = wsHeaders['sec-websocket-protocol'];
  if (opts.origin) opts.headers.Origin = opts.origin;
  if (url.username || url.password) opts.auth = `${url.username}:${url.password}`;
  if (ipc) {
    const [socketPath, path] = opts.path.split(':');
    opts.socketPath = socketPath;
    opts.path = path;
  }

  let req;
  if (opts.followRedirects) {
    options = redirectHeaders(ws, options, opts, url, ipc, secure);
    req = ws._req = (secure ? https.request : http.request)(opts);
    if (ws._redirects) ws.emit('redirect', ws.url, req);
  } else {
    req = ws._req = (secure ? https.request : http.request)(opts);
  }

  if (opts.timeout) req.on('timeout', () => ws._abortHandshake(req, 'Opening handshake has timed out'));
  req.on('error', (err) => {
    if (req === null || req._lowbitAborted) return;
    req = ws._req = null;
    ws._failHandshake(err);
  });
  req.on('response', (res) => {
    const location = res.headers.location;
    const status = res.statusCode;
    if (location && opts.followRedirects && status >= 300 && status < 400) {
      if (++ws._redirects > opts.maxRedirects) {
        ws._abortHandshake(req, 'Maximum redirects exceeded');
        return;
      }
      req.abort();
      let next;
      try {
        next = new URL(location, address);
      } catch {
        ws._failHandshake(new SyntaxError(`Invalid URL: ${location}`));
        return;
      }
      initClient(ws, next, protocols, options);
    } else if (!ws.emit('unexpected-response', req, res)) {
      ws._abortHandshake(req, `Unexpected server response: ${res.statusCode}`);
    }
  });
  req.on('upgrade', (res, socket, head) => {
    ws.emit('upgrade', res);
    // A listener may have closed the connection.
    if (ws.readyState !== 0) return;
    req = ws._req = null;
    const r = native.response(responseHead(res));
    if (r.error != null || !r.done) {
      const message = r.error != null ? clientHandshakeMessage(r, !!pmd, protocols.length > 0) : 'Invalid handshake response';
      ws._abortHandshake(socket, message);
      return;
    }
    // ws's client requires one of the subprotocols it offered (RFC 6455 §4.1 lets a client
    // fail the connection when the server's choice does not suit it).
    if (protocols.length && !r.protocol) {
      const sent = res.headers['sec-websocket-protocol'] !== undefined;
      ws._abortHandshake(socket, sent ? 'Server sent an invalid subprotocol' : 'Server sent no subprotocol');
      return;
    }
    ws._setSocket(socket, head, native, r.protocol, r.extensions, opts);
  });

  if (opts.finishRequest) opts.finishRequest(req, ws);
  else req.end();
}

/** The WebSocket headers of core's request, lower-cased names → values. */
function handshakeHeaders(request) {
  const out = {};
  const lines = request.toString('latin1').split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    if (colon <= 0) continue;
    const name = lines[i].slice(0, colon).trim().toLowerCase();
    if (HANDSHAKE_HEADERS.has(name)) out[name] = lines[i].slice(colon + 1).trim();
  }
  return out;
}

/** The response head as the server sent it, rebuilt from Node's parse, for core to check. */
function responseHead(res) {
  let s = `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage || ''}\r\n`;
  const h = res.rawHeaders;
  for (let i = 0; i < h.length; i += 2) s += `${h[i]}: ${h[i + 1]}\r\n`;
  return Buffer.from(`${s}\r\n`, 'latin1');
}

/**
 * The header rules ws follows across redirects (those of curl 7.77): on the first request the
 * caller's headers are copied with lower-cased names; on a redirect to another host (or from
 * https to http) `authorization`, `cookie` (and `host`) are dropped unless a 'redirect'
 * listener takes charge. Returns the options to use for the next redirect.
 */
function redirectHeaders(ws, options, opts, url, ipc, secure) {
  if (ws._redirects === 0) {
    ws._originalIpc = ipc;
    ws._originalSecure = secure;
    ws._originalHostOrSocketPath = ipc ? opts.socketPath : url.host;
    const headers = options && options.headers;
    options = { ...options, headers: {} };
    if (headers) for (const [k, v] of Object.entries(headers)) options.headers[k.toLowerCase()] = v;
  } else if (ws.listenerCount('redirect') === 0) {
    const sameHost = ipc
      ? ws._originalIpc && opts.socketPath === ws._originalHostOrSocketPath
      : !ws._originalIpc && url.host === ws._originalHostOrSocketPath;
    if (!sameHost || (ws._originalSecure && !secure)) {
      delete opts.headers.authorization;
      delete opts.headers.cookie;
      if (!sameHost) delete opts.headers.host;
      opts.auth = undefined;
    }
  }
  // The first Authorization wins: the header if set, else the userinfo / `auth`.
  if (opts.auth && !options.headers.authorization) {
    options.headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  }
  return options;
}

function netConnect(options) {
  options.path = options.socketPath;
  return net.connect(options);
}

function tlsConnect(options) {
  options.path = undefined;
  if (!options.servername && options.servername !== '') {
    options.servername = net.isIP(options.host) ? '' : options.host;
  }
  return tls.connect(options);
}

module.exports = { initClient };
