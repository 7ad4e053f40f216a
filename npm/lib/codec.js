'use strict';
// The low-level sans-IO codec: the seed's primitives over the native session, for callers
// that own their transport. Bytes in → events; calls → bytes to write.

const { NativeSession, closeCodeFor } = require('./native');
const { deflateOptions, toBuffer } = require('./options');

const KINDS = { 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

class Codec {
  /**
   * `client`: mask what we send and expect unmasked frames; `deflate`: permessage-deflate
   * already agreed (defaults) — for a negotiated setup use acceptUpgrade/request.
   */
  constructor({ client = false, maxPayload, maxFrame, deflate = false, handshake = false } = {}) {
    this._native = new NativeSession(client, maxPayload, maxFrame);
    if (!handshake) this._native.start(!!deflate);
  }

  /** Server handshake: the request head → {done, used, protocol, extensions, path, error, status}; the response is in takeOutput(). */
  acceptUpgrade(head, { protocol, perMessageDeflate } = {}) {
    return this._native.accept(toBuffer(head), protocol !== undefined, protocol ?? null, deflateOptions(perMessageDeflate) || undefined);
  }

  /** Client handshake: queues the request (read it with takeOutput()). */
  request(host, path, { protocols = [], perMessageDeflate = false } = {}) {
    this._native.request(host, path, protocols, deflateOptions(perMessageDeflate) || undefined);
  }

  /** Client handshake: checks the response head. */
  response(head) {
    return this._native.response(toBuffer(head));
  }

  /** Decodes bytes: { events: [{type, data} | {type: 'close', code, reason}], output, error }. */
  receive(bytes) {
    const r = this._native.receive(toBuffer(bytes));
    const events = [];
    for (let i = 4; i < r.length; ) {
      const type = KINDS[r[i]];
      if (type === 'close') {
        events.push({ type, code: r[i + 1], reason: r[i + 2] });
        i += 3;
      } else {
        events.push({ type, data: r[i + 1] });
        i += 2;
      }
    }
    const error = r[1] === 0 ? null : { code: r[1] === -1 ? null : r[1], message: r[2], kind: r[3] };
    return { events, output: r[0], error };
  }

  /**
   * After a 'close' event or an error: queues our close frame (the answer to the peer's
   * close, or the one the violation sends) and returns the bytes to write. Core holds it so
   * that answers to the messages before it go out first.
   */
  replyClose() { return this._native.replyClose(); }
  receiveEof() { return this._native.receiveEof(); }
  send(data, { binary, fin = true, compress = true } = {}) {
    const isBinary = binary !== undefined ? !!binary : typeof data !== 'string';
    return this._native.send(isBinary ? 2 : 1, toBuffer(data), compress, fin);
  }
  ping(data = Buffer.alloc(0)) { return this._native.ping(toBuffer(data)); }
  pong(data = Buffer.alloc(0)) { return this._native.pong(toBuffer(data)); }
  close(code = 1000, reason = '') { return this._native.close(code, reason); }
  fail(code, reason = '') { return this._native.fail(code, reason); }
  takeOutput() { return this._native.takeOutput(); }
  get closeSent() { return this._native.closeSent; }
  get closed() { return this._native.closed; }
  get finished() { return this._native.finished; }

  /** The close code core answers `bytes` with at a fresh session (`null`: accepted). */
  static closeCodeFor(bytes, { client = false, deflate = false, maxPayload = 100 * 1024 * 1024 } = {}) {
    return closeCodeFor(client, deflate, maxPayload, toBuffer(bytes));
  }
}

module.exports = { Codec };
