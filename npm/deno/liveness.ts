// Dropping stalled peers, core's liveness rule (crates/core/src/liveness.rs) on Deno's timers:
// a peer that stopped reading while our output waits, and (with pings first) one that went
// quiet. `serve`/`accept` set it by default; `connect` only when asked, as in core.

/** When to drop a peer, in ms; 0 turns a rule off. */
export interface LivenessOptions {
  /** Drop the peer when a write makes no progress for this long (server default 30 000). */
  writeStallTimeout?: number;
  /** Drop the peer when nothing arrives for this long (server default 120 000). */
  idleTimeout?: number;
  /** At `idleTimeout`, ping first and drop only if still nothing arrives (default true). */
  sendPingsAutomatically?: boolean;
}

/** The server's defaults, as core's `Liveness::SERVER`. */
export const SERVER_DEFAULTS: LivenessOptions = {
  writeStallTimeout: 30_000,
  idleTimeout: 120_000,
  sendPingsAutomatically: true,
};

/** What a watch needs from its connection. */
export interface Watched {
  /** A write is under way. */
  writing(): boolean;
  ping(): void;
  drop(): void;
}

/** One connection's watch: the driver reports reads (`heard`) and written bytes (`wrote`). */
export class Watch {
  #heard = 0;
  #wrote = 0;
  #stall: number;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  #c: Watched;

  constructor(options: LivenessOptions, c: Watched) {
    this.#c = c;
    this.#stall = options.writeStallTimeout ?? 0;
    const idle = options.idleTimeout ?? 0;
    if (idle > 0) {
      const ping = options.sendPingsAutomatically ?? true;
      let seen = 0;
      let pinged = false;
      // Checked once per `idle`: a peer is dropped after between one and two quiet spells.
      this.#idleTimer = setInterval(() => {
        if (this.#heard !== seen) {
          seen = this.#heard;
          pinged = false;
        } else if (ping && !pinged) {
          pinged = true;
          c.ping();
        } else {
          c.drop();
        }
      }, idle);
    }
  }

  /** Bytes arrived from the peer. */
  heard() {
    this.#heard++;
  }

  /** A write started: time the stall from here unless already timing. */
  writeStarted() {
    if (this.#stall > 0 && this.#stallTimer === undefined) this.#armStall(this.#wrote);
  }

  /** A write made progress of `n` bytes. */
  wrote(n: number) {
    this.#wrote += n;
  }

  #armStall(mark: number) {
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = undefined;
      if (!this.#c.writing()) return;
      if (this.#wrote === mark) this.#c.drop();
      else this.#armStall(this.#wrote);
    }, this.#stall);
  }

  /** The connection is finished: no more timers. */
  stop() {
    clearTimeout(this.#stallTimer);
    clearInterval(this.#idleTimer);
    this.#stallTimer = this.#idleTimer = undefined;
  }
}
