/**
 * Where received messages and the bytes to write live: slices of a shared slab that native
 * code writes into, handed out once and never reused (like Node's `Buffer` pool), so a message
 * costs no `ArrayBuffer` of its own. A region larger than {@link DEDICATED} gets its own
 * buffer; large buffers of bytes to write are reused once written.
 * @module
 */

/** Bytes of one slab. */
export const SLAB = 64 * 1024;
/** Regions larger than this get a buffer of their own. */
export const DEDICATED = 16 * 1024;

/** The current slab and its free end. Native code writes at `buf[off..]`, then {@link take} hands it out. */
export const slab = {
  buf: new Uint8Array(SLAB),
  off: 0,
};

/** The `n` bytes at the slab's free end, which native code has filled, now handed out. */
export function take(n: number): Uint8Array {
  const region = slab.buf.subarray(slab.off, slab.off + n);
  slab.off += n;
  return region;
}

/**
 * Room for `n` bytes, handed out: a slice of the slab (a fresh slab when this one is short),
 * or a buffer of its own when `n` is large (`forWrite`: one that {@link written} may reuse).
 */
export function reserve(n: number, forWrite = false): Uint8Array {
  if (n > DEDICATED) return forWrite ? writeBuffer(n) : new Uint8Array(n);
  if (SLAB - slab.off < n) {
    slab.buf = new Uint8Array(SLAB);
    slab.off = 0;
  }
  return take(n);
}

/**
 * Large buffers of bytes to write, reused once written (a fresh `ArrayBuffer` costs zeroing
 * and, later, the garbage collector's time): `writeBuffers` are ours, `spareBuffers` written.
 * The spares are bounded by what is in flight: a written buffer is kept only while the spares
 * stay within the bytes of our write buffers being written at that moment plus
 * {@link SPARE_FLOOR} (so one connection writing large messages one after the other reuses
 * its buffer), and when no spare fits a new write, the spares are cut to that bound again.
 */
const writeBuffers = new WeakSet<ArrayBuffer>();
const spareBuffers: ArrayBuffer[] = [];
const SPARE_FLOOR = 1024 * 1024;
const SPARE_SIZE_MAX = 4 * 1024 * 1024;
let spareBytes = 0;
/** Bytes of our write buffers handed out and not yet written. */
let inFlight = 0;

/** Drops spares (the oldest first) until they fit in `bound` bytes. */
function trimSpares(bound: number) {
  while (spareBytes > bound && spareBuffers.length > 0) {
    spareBytes -= spareBuffers.shift()!.byteLength;
  }
}

function writeBuffer(n: number): Uint8Array<ArrayBuffer> {
  for (let i = 0; i < spareBuffers.length; i++) {
    const b = spareBuffers[i];
    if (b.byteLength >= n && b.byteLength <= 2 * n) {
      spareBuffers[i] = spareBuffers[spareBuffers.length - 1];
      spareBuffers.pop();
      spareBytes -= b.byteLength;
      inFlight += b.byteLength;
      return new Uint8Array(b, 0, n);
    }
  }
  trimSpares(inFlight + SPARE_FLOOR);
  const buf = new Uint8Array(n);
  writeBuffers.add(buf.buffer);
  inFlight += buf.byteLength;
  return buf;
}

/** `data` has been written: its buffer may serve again if it is one of ours. */
export function written(data: Uint8Array) {
  if (data.byteLength <= DEDICATED) return;
  const b = data.buffer as ArrayBuffer;
  if (!writeBuffers.has(b)) return;
  const bound = inFlight + SPARE_FLOOR;
  inFlight -= b.byteLength;
  if (b.byteLength <= SPARE_SIZE_MAX && spareBytes + b.byteLength <= bound) {
    spareBuffers.push(b);
    spareBytes += b.byteLength;
  }
}

/** Bytes held as spares and in flight, for tests. */
export function poolBytes(): { spare: number; inFlight: number } {
  return { spare: spareBytes, inFlight };
}
