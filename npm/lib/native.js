'use strict';
// The addon's functions behind a class. The generated napi-rs loader (binding.js, from
// `napi build --platform`) picks the .node file for this platform. The session is an External
// handle: plain functions on it are much cheaper per call than napi-rs class methods.

const b = require('../binding.js');

/**
 * The event description `receiveInto` fills, shared by every session: it is read right after
 * each call, before any listener runs that could decode more.
 */
const META = { a: new Int32Array(4 + 4 * 4096) };
/**
 * Where small results land (shared like META): the receive path copies out the messages it
 * hands on, the send path the bytes it writes. Copying into pooled Buffers in JavaScript costs
 * less than creating a Buffer through Node-API.
 */
const SCRATCH = Buffer.allocUnsafeSlow(64 * 1024);

class NativeSession {
  constructor(client, maxPayload, maxFrame) {
    this.h = b.sessionNew(client, maxPayload ?? null, maxFrame ?? null);
  }
  static offeredProtocols(head) { return b.offeredProtocols(head); }
  start(deflate) { b.sessionStart(this.h, deflate); }
  accept(head, choose, protocol, deflate) { return b.sessionAccept(this.h, head, choose, protocol, deflate); }
  request(host, path, protocols, deflate) { b.sessionRequest(this.h, host, path, protocols, deflate); }
  response(head) { return b.sessionResponse(this.h, head); }
  receive(data) { return b.sessionReceive(this.h, data); }
  /**
   * The hot path: decodes `data` and returns one Buffer with every payload and the output,
   * described by `META.a` (see `sessionReceiveInto`); valid until the next call.
   */
  receiveInto(data) {
    const need = 4 + 4 * ((data.length >> 1) + 2);
    if (META.a.length < need) META.a = new Int32Array(need);
    return b.sessionReceiveInto(this.h, data, META.a, SCRATCH) ?? SCRATCH;
  }
  /** send() for the hot path: the bytes to write, in a fresh (pooled) Buffer. */
  sendCopy(op, data, compress, fin) {
    const n = b.sessionSendInto(this.h, op, data, compress, fin, SCRATCH);
    if (n < 0) return b.sessionTakeOutput(this.h);
    return n === 0 ? null : Buffer.from(SCRATCH.subarray(0, n));
  }
  /** [message, kind] of the last receiveInto error. */
  error() { return b.sessionError(this.h); }
  receiveEof() { return b.sessionReceiveEof(this.h); }
  send(op, data, compress, fin) { return b.sessionSend(this.h, op, data, compress, fin); }
  ping(data) { return b.sessionPing(this.h, data); }
  pong(data) { return b.sessionPong(this.h, data); }
  close(code, reason) { return b.sessionClose(this.h, code, reason); }
  replyClose() { return b.sessionReplyClose(this.h); }
  fail(code, reason) { return b.sessionFail(this.h, code, reason); }
  takeOutput() { return b.sessionTakeOutput(this.h); }
  get closeSent() { return (b.sessionState(this.h) & 1) !== 0; }
  get closed() { return (b.sessionState(this.h) & 2) !== 0; }
  get finished() { return b.sessionState(this.h) === 3; }
}

module.exports = { NativeSession, META, SCRATCH, closeCodeFor: b.closeCodeFor };
