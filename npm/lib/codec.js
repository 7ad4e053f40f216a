'use strict';
// The low-level sans-IO codec: the seed's primitives over the native session, for callers
// that own their transport. Bytes in → events; calls → bytes to write.

const {
  NativeSession, INFO, closeCodeFor, EVENT_TEXT, EVENT_BINARY, EVENT_CLOSE, EVENT_PING, EVENT_PONG, EVENT_HEAD_LEN,
} = require('./native');
const { deflateOptions, toBuffer } = require('./options');

const TYPES = new Map([
  [EVENT_TEXT, 'text'], [EVENT_BINARY, 'binary'], [EVENT_CLOSE, 'close'], [EVENT_PING, 'ping'], [EVENT_PONG, 'pong'],
]);

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
    const native = this._native;
    const buf = native.receiveInto(toBuffer(bytes));
    const [eventsLen, outLen] = INFO;
    // Copies: `buf` may be the shared scratch buffer.
    const copy = (start, length) => Buffer.from(buf.subarray(start, start + length));
    const events = [];
    for (let i = 0; i < eventsLen;) {
      const type = TYPES.get(buf[i]);
      const length = buf.readUInt32LE(i + 4);
      const payload = copy(i + EVENT_HEAD_LEN, length);
      if (type === 'close') events.push({ type, code: buf.readUInt16LE(i + 2), reason: payload.toString() });
      else events.push({ type, data: payload });
      i += EVENT_HEAD_LEN + length;
    }
    const output = outLen === 0 ? null : copy(eventsLen, outLen);
    const status = native.status;
    let error = null;
    if (status !== 0) {
      const [message, kind] = native.error();
      error = { code: status === -1 ? null : status, message, kind };
    }
    return { events, output, error };
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
    return this._native.send(isBinary ? EVENT_BINARY : EVENT_TEXT, toBuffer(data), compress, fin);
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
