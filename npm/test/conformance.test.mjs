// Conformance: raw bytes after the handshake → the close code our Node server sends, checked
// against the expected code and against core's own answer (Error::close_code, through
// Codec.closeCodeFor), so the face adds nothing to and drops nothing from core's rules.
// (No shared case list exists under host-tests/conformance; these are the raw-bytes cases.)
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { Codec } from '../index.mjs';
import { ourEchoServer, closeServer } from './helpers.mjs';

const MAX = 1000;

/** A masked (client) frame. */
function frame({ fin = true, rsv = 0, op, payload = Buffer.alloc(0), len, mask = true }) {
  payload = Buffer.from(payload);
  const n = len ?? payload.length;
  const head = [(fin ? 0x80 : 0) | rsv | op];
  let ext = Buffer.alloc(0);
  if (n < 126) head.push((mask ? 0x80 : 0) | n);
  else if (n < 65536 && len === undefined) { head.push((mask ? 0x80 : 0) | 126); ext = Buffer.alloc(2); ext.writeUInt16BE(n); }
  else { head.push((mask ? 0x80 : 0) | 127); ext = Buffer.alloc(8); ext.writeBigUInt64BE(BigInt(n)); }
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = Buffer.from(payload);
  if (mask) for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), ext, mask ? key : Buffer.alloc(0), body]);
}
/** A frame header with an explicit (possibly non-minimal) length encoding. */
function rawHeader(byte0, lenByte, ext) {
  return Buffer.concat([Buffer.from([byte0, 0x80 | lenByte]), Buffer.from(ext), Buffer.from([1, 2, 3, 4])]);
}
function closeBody(code, reason = Buffer.alloc(0)) {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.from(reason)]);
}
function compress(data) {
  const z = zlib.deflateRawSync(Buffer.from(data), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return z.subarray(0, z.length - 4);
}
const cat = (...parts) => Buffer.concat(parts);
const badUtf8 = Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xed, 0xa0, 0x80]);

export const CASES = [
  { name: 'unmasked text frame', bytes: frame({ op: 1, payload: 'hi', mask: false }), code: 1002 },
  { name: 'reserved data opcode 3', bytes: frame({ op: 3 }), code: 1002 },
  { name: 'reserved control opcode 0xB', bytes: frame({ op: 0xb }), code: 1002 },
  { name: 'RSV1 without an extension', bytes: frame({ op: 1, rsv: 0x40, payload: 'x' }), code: 1002 },
  { name: 'RSV2 set', bytes: frame({ op: 2, rsv: 0x20 }), code: 1002 },
  { name: 'RSV3 set', bytes: frame({ op: 2, rsv: 0x10 }), code: 1002 },
  { name: 'continuation with nothing to continue', bytes: frame({ op: 0, payload: 'x' }), code: 1002 },
  { name: 'new text frame inside a fragmented message', bytes: cat(frame({ op: 1, fin: false, payload: 'a' }), frame({ op: 1, payload: 'b' })), code: 1002 },
  { name: 'ping with 126 bytes', bytes: frame({ op: 9, payload: Buffer.alloc(126) }), code: 1002 },
  { name: 'fragmented ping', bytes: frame({ op: 9, fin: false }), code: 1002 },
  { name: 'invalid UTF-8 text', bytes: frame({ op: 1, payload: badUtf8 }), code: 1007 },
  { name: 'invalid UTF-8 across fragments', bytes: cat(frame({ op: 1, fin: false, payload: badUtf8.subarray(0, 8) }), frame({ op: 0, payload: badUtf8.subarray(8) })), code: 1007 },
  { name: 'close with a 1-byte body', bytes: frame({ op: 8, payload: [3] }), code: 1002 },
  { name: 'close with code 1005', bytes: frame({ op: 8, payload: closeBody(1005) }), code: 1002 },
  { name: 'close with code 999', bytes: frame({ op: 8, payload: closeBody(999) }), code: 1002 },
  { name: 'close with code 2000', bytes: frame({ op: 8, payload: closeBody(2000) }), code: 1002 },
  { name: 'close with invalid UTF-8 reason', bytes: frame({ op: 8, payload: closeBody(1000, badUtf8) }), code: 1007 },
  { name: '16-bit length not minimal', bytes: rawHeader(0x82, 126, [0, 10]), code: 1002 },
  { name: '64-bit length with the top bit set', bytes: rawHeader(0x82, 127, [0x80, 0, 0, 0, 0, 0, 0, 1]), code: 1002 },
  { name: 'message over maxPayload', bytes: frame({ op: 2, payload: Buffer.alloc(MAX + 1) }), code: 1009 },
  { name: 'fragmented message over maxPayload', bytes: cat(frame({ op: 2, fin: false, payload: Buffer.alloc(600) }), frame({ op: 0, payload: Buffer.alloc(600) })), code: 1009 },
  { name: 'frame header announcing 2^40 bytes', bytes: rawHeader(0x82, 127, [0, 0, 1, 0, 0, 0, 0, 0]), code: 1009 },
  { name: 'normal close is echoed', bytes: frame({ op: 8, payload: closeBody(1000, 'bye') }), code: 1000, ok: true },
  { name: 'close 4000 after a message is echoed', bytes: cat(frame({ op: 1, payload: 'hi' }), frame({ op: 8, payload: closeBody(4000) })), code: 4000, ok: true },
  { name: 'empty close is answered empty', bytes: frame({ op: 8 }), code: null, ok: true },
  { name: 'deflate: corrupt compressed data', deflate: true, bytes: frame({ op: 2, rsv: 0x40, payload: [0xff, 0xff, 0xff, 0xff] }), code: 1007 },
  { name: 'deflate: RSV1 on a continuation', deflate: true, bytes: cat(frame({ op: 2, fin: false, payload: 'a' }), frame({ op: 0, rsv: 0x40, payload: 'b' })), code: 1002 },
  { name: 'deflate: RSV1 on a ping', deflate: true, bytes: frame({ op: 9, rsv: 0x40 }), code: 1002 },
  { name: 'deflate: bomb past maxPayload', deflate: true, bytes: frame({ op: 2, rsv: 0x40, payload: compress(Buffer.alloc(100000)) }), code: 1009 },
  { name: 'deflate: compressed invalid UTF-8', deflate: true, bytes: frame({ op: 1, rsv: 0x40, payload: compress(badUtf8) }), code: 1007 },
  { name: 'deflate: valid compressed text then close', deflate: true, bytes: cat(frame({ op: 1, rsv: 0x40, payload: compress('hello') }), frame({ op: 8, payload: closeBody(1000) })), code: 1000, ok: true },
];

/** Upgrades a raw socket, sends `bytes`, returns the close code of the server's close frame. */
async function serverCloseCode(port, bytes, deflate) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => sock.once('connect', resolve));
  sock.write(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      (deflate ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : '') + '\r\n',
  );
  let buf = Buffer.alloc(0);
  let sent = false;
  return new Promise((resolve, reject) => {
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      if (!sent) {
        assert.match(buf.toString('latin1', 0, end), /^HTTP\/1\.1 101/);
        if (deflate) assert.match(buf.toString('latin1', 0, end), /permessage-deflate/i);
        sent = true;
        sock.write(bytes);
      }
      // Skip echoed data frames; find the close frame.
      let i = end + 4;
      while (i + 2 <= buf.length) {
        const op = buf[i] & 0x0f;
        let len = buf[i + 1] & 0x7f;
        let h = 2;
        if (len === 126) { if (i + 4 > buf.length) return; len = buf.readUInt16BE(i + 2); h = 4; }
        else if (len === 127) { if (i + 10 > buf.length) return; len = Number(buf.readBigUInt64BE(i + 2)); h = 10; }
        if (i + h + len > buf.length) return;
        if (op === 8) {
          sock.destroy();
          resolve(len >= 2 ? buf.readUInt16BE(i + h) : null);
          return;
        }
        i += h + len;
      }
    });
    sock.on('close', () => resolve('no close frame'));
  });
}

describe('conformance: raw bytes → close code', () => {
  const servers = {};
  before(async () => {
    servers.plain = await ourEchoServer({ maxPayload: MAX });
    servers.deflate = await ourEchoServer({ maxPayload: MAX, perMessageDeflate: true });
  });
  after(async () => {
    await closeServer(servers.plain.wss);
    await closeServer(servers.deflate.wss);
  });

  for (const c of CASES) {
    test(c.name, async () => {
      const deflate = !!c.deflate;
      const core = Codec.closeCodeFor(c.bytes, { deflate, maxPayload: MAX });
      assert.equal(core, c.ok ? null : c.code, 'core: expected close code');
      const { wss } = deflate ? servers.deflate : servers.plain;
      const wire = await serverCloseCode(wss.address().port, c.bytes, deflate);
      assert.equal(wire, c.code, 'the Node server sent this close code');
    });
  }
});

/** Server frames as [opcode, payload] parsed from `buf` (unmasked, unfragmented). */
function serverFrames(buf) {
  const frames = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    let len = buf[i + 1] & 0x7f;
    let h = 2;
    if (len === 126) { len = buf.readUInt16BE(i + 2); h = 4; }
    else if (len === 127) { len = Number(buf.readBigUInt64BE(i + 2)); h = 10; }
    if (i + h + len > buf.length) break;
    frames.push([buf[i] & 0x0f, buf.subarray(i + h, i + h + len)]);
    i += h + len;
  }
  return frames;
}

describe('conformance: frames that come with the upgrade request', () => {
  test('reach the listeners the connection callback attaches', async () => {
    const { wss } = await ourEchoServer();
    try {
      const sock = net.connect(wss.address().port, '127.0.0.1');
      await new Promise((resolve) => sock.once('connect', resolve));
      let buf = Buffer.alloc(0);
      sock.on('data', (d) => (buf = Buffer.concat([buf, d])));
      // One write: the server reads the frames together with the request.
      sock.write(cat(
        Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
        frame({ op: 1, payload: 'early' }),
        frame({ op: 8, payload: closeBody(1000) }),
      ));
      await new Promise((resolve) => sock.once('close', resolve));
      const end = buf.indexOf('\r\n\r\n');
      assert.match(buf.toString('latin1', 0, end), /^HTTP\/1\.1 101/);
      const frames = serverFrames(buf.subarray(end + 4)).map(([op, p]) => [op, op === 8 ? p.readUInt16BE(0) : p.toString()]);
      assert.deepEqual(frames, [[1, 'early'], [8, 1000]]);
    } finally {
      await closeServer(wss);
    }
  });
});
