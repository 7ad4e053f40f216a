'use strict';
// Dropping stalled peers, core's liveness rule (crates/core/src/liveness.rs) on Node's timers:
// a peer that stopped reading while our output waits, and (with pings first) one that went
// quiet. The server sets it by default; a client only when asked, as in core.

/** The server's defaults, as core's `Liveness::SERVER`. 0 turns a rule off. */
const SERVER_DEFAULTS = { writeStallTimeout: 30_000, idleTimeout: 120_000, sendPingsAutomatically: true };

/** One socket's watch. The driver calls `heard()` on data and `wrote(n)` for every `n` bytes it hands the socket. */
class Watch {
  constructor(ws, socket, { writeStallTimeout = 0, idleTimeout = 0, sendPingsAutomatically = true }) {
    this._ws = ws;
    this._socket = socket;
    this._stall = writeStallTimeout;
    this._timer = null;
    // Bytes handed to the socket, and how many of them it had written at the last check:
    // `handed - socket.writableLength` only grows when the kernel takes bytes.
    this._handed = 0;
    this._done = 0;
    this._pinged = false;
    if (idleTimeout > 0 && typeof socket.setTimeout === 'function') {
      // Node resets the socket's timeout on every read and write: it fires after a quiet spell.
      socket.setTimeout(idleTimeout);
      socket.on('timeout', () => {
        if (sendPingsAutomatically && !this._pinged && ws.readyState === 1) {
          this._pinged = true;
          ws.ping();
        } else {
          this._drop(); // quiet for idleTimeout (after the ping, if one was sent)
        }
      });
    }
  }

  /** Bytes arrived from the peer (the driver's data handler calls this: a listener of our own
   * would set the socket flowing before the caller's listeners are attached). */
  heard() {
    this._pinged = false;
  }

  /** `n` bytes were handed to the socket: time the stall from here if they wait. */
  wrote(n) {
    this._handed += n;
    if (this._stall > 0 && this._timer === null && this._socket.writableLength > 0) {
      this._done = this._handed - this._socket.writableLength;
      this._timer = setTimeout(() => this._check(), this._stall);
    }
  }

  _check() {
    this._timer = null;
    const waiting = this._socket.writableLength;
    if (waiting === 0) return;
    const done = this._handed - waiting;
    if (done === this._done) {
      this._drop(); // the peer stopped reading: no write progress for writeStallTimeout
      return;
    }
    this._done = done;
    this._timer = setTimeout(() => this._check(), this._stall);
  }

  /** Ends the connection as a socket error does: 'close' follows with 1006. */
  _drop() {
    this.stop();
    this._socket.destroy();
  }

  /** The socket closed: no more checks. */
  stop() {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    if (typeof this._socket.setTimeout === 'function') this._socket.setTimeout(0);
  }
}

/** A watch for `ws` when `options` turn a rule on, else `null`. */
function watch(ws, socket, options) {
  const on = options && (options.writeStallTimeout > 0 || options.idleTimeout > 0);
  return on ? new Watch(ws, socket, options) : null;
}

module.exports = { SERVER_DEFAULTS, watch };
