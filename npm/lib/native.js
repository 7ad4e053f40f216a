'use strict';
// The addon's functions behind a class. The generated napi-rs loader (binding.js, from
// `napi build --platform`) picks the .node file for this platform. The session is an External
// handle: plain functions on it are much cheaper per call than napi-rs class methods.

const b = require('../binding.js');

/**
 * The numbers shared with Rust (crates/node/src/contract.rs), exported by the addon: event
 * kinds, close-state bits, the length of a packed event's head.
 */
const {
  EVENT_TEXT, EVENT_BINARY, EVENT_CLOSE, EVENT_PING, EVENT_PONG, EVENT_HEAD_LEN,
  STATE_CLOSE_SENT, STATE_CLOSE_RECEIVED, STATE_FINISHED,
} = b;
for (const [name, value] of Object.entries({ EVENT_TEXT, EVENT_BINARY, EVENT_CLOSE, EVENT_PING, EVENT_PONG, EVENT_HEAD_LEN, STATE_CLOSE_SENT, STATE_CLOSE_RECEIVED, STATE_FINISHED })) {
  // A stale build of the addon: fail here rather than misread every event.
  if (typeof value !== 'number') throw new Error(`the addon does not export ${name}: rebuild it (npm run build)`);
}
/**
 * What `receiveInto` packed, shared by every session (it is read right after each call, before
 * any listener runs that could decode more): the events' length, the output's length, whether
 * both landed in SCRATCH, and the session state.
 */
const INFO = new Uint32Array(4);
/**
 * Where small results land (shared like INFO): the receive path copies out the messages it
 * hands on, the send path the bytes it writes. Copying into pooled Buffers in JavaScript costs
 * less than creating a Buffer through Node-API.
 */
const SCRATCH = Buffer.allocUnsafeSlow(64 * 1024);

class NativeSession {
  constructor(client, maxPayload, maxFrame) {
    this.h = b.sessionNew(client, maxPayload ?? null, maxFrame ?? null);
    this.status = 0;
  }
  static offeredProtocols(head) { return b.offeredProtocols(head); }
  /** ws's `maxFragments` (0: no cap); unset keeps core's default, ws's 131072. */
  setMaxFragments(n) { if (n !== undefined) b.sessionSetMaxFragments(this.h, n); }
  start(deflate) { b.sessionStart(this.h, deflate); }
  accept(head, choose, protocol, deflate) { return b.sessionAccept(this.h, head, choose, protocol, deflate); }
  request(host, path, protocols, deflate) { b.sessionRequest(this.h, host, path, protocols, deflate); }
  response(head) { return b.sessionResponse(this.h, head); }
  /**
   * The hot path: decodes `data` and returns the Buffer its events are packed in (per event
   * an EVENT_HEAD_LEN-byte head — kind, 0, close code u16 LE, payload length u32 LE — then
   * the payload), followed by the bytes to write; `INFO` describes it and `this.status` is 0
   * or the error's close code (-1: another error; see `error()`). Valid until the next call.
   */
  receiveInto(data) {
    this.status = b.sessionReceiveInto(this.h, data, SCRATCH, INFO);
    return INFO[2] === 1 ? SCRATCH : b.sessionTakePacked(this.h);
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
  /** The transport is gone: frees the native session now rather than at garbage collection. */
  release() { b.sessionRelease(this.h); }
  get closeSent() { return (b.sessionState(this.h) & STATE_CLOSE_SENT) !== 0; }
  get closed() { return (b.sessionState(this.h) & STATE_CLOSE_RECEIVED) !== 0; }
  get finished() { return b.sessionState(this.h) === STATE_FINISHED; }
}

module.exports = {
  NativeSession, INFO, SCRATCH, closeCodeFor: b.closeCodeFor,
  EVENT_TEXT, EVENT_BINARY, EVENT_CLOSE, EVENT_PING, EVENT_PONG, EVENT_HEAD_LEN,
};
