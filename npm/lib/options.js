'use strict';
// Converts ws-style options into the native session's shapes. No protocol decisions here:
// negotiation, limits and validation happen in core.

/**
 * ws's `perMessageDeflate` option (`true`, `false` or an object with ws's names) as the
 * native DeflateOptions, or `null` when off.
 */
function deflateOptions(pmd) {
  if (!pmd) return null;
  const o = pmd === true ? {} : pmd;
  const out = {};
  if (o.serverNoContextTakeover) out.serverNoContextTakeover = true;
  if (o.clientNoContextTakeover) out.clientNoContextTakeover = true;
  if (typeof o.serverMaxWindowBits === 'number') out.serverMaxWindowBits = o.serverMaxWindowBits;
  if (typeof o.clientMaxWindowBits === 'number') out.clientMaxWindowBits = o.clientMaxWindowBits;
  const z = o.zlibDeflateOptions || {};
  if (typeof z.level === 'number') out.level = z.level;
  if (typeof z.memLevel === 'number') out.memLevel = z.memLevel;
  if (typeof o.level === 'number') out.level = o.level;
  if (typeof o.threshold === 'number') out.threshold = o.threshold;
  return out;
}

/**
 * Message data as bytes, as ws takes it: strings as UTF-8; ArrayBuffers and views without a
 * copy; an array of Buffers joined (ours); anything else through `Buffer.from` (an array of
 * byte values; a plain object throws a TypeError).
 */
function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (typeof data === 'string') return Buffer.from(data);
  if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data) && data.length && data.every(Buffer.isBuffer)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Whether `value` is a Blob (or a File). */
function isBlob(value) {
  return typeof Blob !== 'undefined' && value instanceof Blob;
}

module.exports = { deflateOptions, toBuffer, isBlob };
