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
 */
const writeBuffers = new WeakSet<ArrayBuffer>();
const spareBuffers: ArrayBuffer[] = [];
/** Spares kept: every connection with a large write under way may want one back. */
const SPARE_BYTES_MAX = 16 * 1024 * 1024;
const SPARE_SIZE_MAX = 4 * 1024 * 1024;
let spareBytes = 0;

function writeBuffer(n: number): Uint8Array<ArrayBuffer> {
  for (let i = 0; i < spareBuffers.length; i++) {
    const b = spareBuffers[i];
    if (b.byteLength >= n && b.byteLength <= 2 * n) {
      spareBuffers[i] = spareBuffers[spareBuffers.length - 1];
      spareBuffers.pop();
      spareBytes -= b.byteLength;
      return new Uint8Array(b, 0, n);
    }
  }
  const buf = new Uint8Array(n);
  writeBuffers.add(buf.buffer);
  return buf;
}

/** `data` has been written: its buffer may serve again if it is one of ours. */
export function written(data: Uint8Array) {
  if (data.byteLength <= DEDICATED) return;
  const b = data.buffer as ArrayBuffer;
  if (b.byteLength <= SPARE_SIZE_MAX && spareBytes + b.byteLength <= SPARE_BYTES_MAX && writeBuffers.has(b)) {
    spareBuffers.push(b);
    spareBytes += b.byteLength;
  }
}
