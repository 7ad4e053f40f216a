// The shared conformance list (host-tests/conformance/cases.rs, the one the native Conn and
// the component run) against our Node server over loopback TCP: the same close codes and
// the same core error kinds. The list is printed by crates/node's lbws-conformance-cases.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ourEchoServer, closeServer } from './helpers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'target/release/lbws-conformance-cases');

/** The shared list as JSON lines (`--handshakes`: the handshake list), hex fields decoded. */
function loadCases(...args) {
  if (!existsSync(bin)) {
    execFileSync('cargo', ['build', '--release', '-p', 'lowbit-ws-node', '--bin', 'lbws-conformance-cases'], { cwd: root, stdio: 'inherit' });
  }
  const out = execFileSync(bin, args, { maxBuffer: 1 << 30, encoding: 'utf8' });
  return out.trim().split('\n').map((line) => {
    const c = JSON.parse(line);
    if (c.bytes !== undefined) c.bytes = Buffer.from(c.bytes, 'hex');
    if (c.request !== undefined) c.request = Buffer.from(c.request, 'hex');
    return c;
  });
}

/** Sends a raw request; resolves with the response head (what came before the blank line). */
function responseHead(port, request) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(request));
    let got = Buffer.alloc(0);
    const done = () => {
      sock.destroy();
      const end = got.indexOf('\r\n\r\n');
      resolve(got.toString('latin1', 0, end === -1 ? got.length : end));
    };
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.includes('\r\n\r\n')) done();
    });
    sock.on('error', () => {}); // the server may answer and reset before reading it all
    sock.on('close', done);
    setTimeout(() => reject(new Error('no answer')), 10_000).unref();
  });
}

/** Frames the server sent after its 101: echoed messages and the close code (or null). */
function runCase(port, c) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('connect', () => {
      sock.write(
        'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
          (c.deflate ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : '') + '\r\n',
      );
    });
    let chunks = [];
    let size = 0;
    let sent = false;
    let start = -1;
    sock.on('data', (d) => {
      chunks.push(d);
      size += d.length;
      if (sent) return;
      const buf = Buffer.concat(chunks);
      chunks = [buf];
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      assert.match(buf.toString('latin1', 0, end), /^HTTP\/1\.1 101/);
      start = end + 4;
      sent = true;
      // Like the native run over an in-memory stream: the bytes, then end of stream.
      sock.end(c.bytes);
    });
    sock.on('error', () => {}); // a reset after the server's close is fine
    sock.on('close', () => {
      const buf = Buffer.concat(chunks).subarray(start);
      let i = 0;
      let messages = 0;
      let close;
      while (i + 2 <= buf.length) {
        const fin = buf[i] & 0x80;
        const op = buf[i] & 0x0f;
        let len = buf[i + 1] & 0x7f;
        let h = 2;
        if (len === 126) { len = buf.readUInt16BE(i + 2); h = 4; }
        else if (len === 127) { len = Number(buf.readBigUInt64BE(i + 2)); h = 10; }
        if (i + h + len > buf.length) break;
        if (op === 8) { close = len >= 2 ? buf.readUInt16BE(i + h) : 1005; break; }
        if (fin && op !== 9 && op !== 10) messages++;
        i += h + len;
      }
      resolve({ messages, close: close ?? null });
    });
    setTimeout(() => reject(new Error('case timed out')), 60_000).unref();
  });
}

describe('shared conformance list (host-tests/conformance) on the Node server', () => {
  const cases = loadCases();
  const servers = new Map();
  const serverFor = async (c) => {
    const key = `${c.maxReadLimit}/${c.deflate}`;
    if (!servers.has(key)) {
      servers.set(key, await ourEchoServer({ maxPayload: c.maxReadLimit || 1024 * 1024, perMessageDeflate: c.deflate }));
    }
    return servers.get(key).wss;
  };
  after(async () => {
    for (const { wss } of servers.values()) await closeServer(wss);
  });

  test('the list is there', () => assert.ok(cases.length >= 30, `${cases.length} cases`));

  for (const c of cases) {
    test(c.name, async () => {
      const wss = await serverFor(c);
      const serverSide = new Promise((resolve) => {
        wss.once('connection', (ws) => {
          let kind = null;
          ws.on('error', (e) => (kind = e.kind));
          ws.once('close', (code) => resolve({ kind, code }));
        });
      });
      const wire = await runCase(wss.address().port, c);
      const server = await serverSide;
      const e = c.expect;
      if (e.type === 'echo') {
        assert.equal(wire.messages, e.messages, 'messages echoed');
        assert.equal(wire.close, e.close, 'close code echoed');
        assert.equal(server.kind, null, 'no error');
      } else if (e.type === 'fail' && e.code === null) {
        assert.equal(wire.close, null, 'no close frame sent');
        assert.equal(server.code, 1006, 'abnormal closure reported');
      } else if (e.type === 'fail') {
        assert.equal(wire.close, e.code, 'close code sent');
        assert.equal(server.kind, e.kind, 'core error kind');
        // As in ws, the failing side's 'close' reports 1006: it stops reading after its close.
        assert.equal(server.code, 1006, 'close code reported');
      } else {
        assert.ok(e.codes.includes(wire.close), `close code ${wire.close} in ${e.codes}`);
      }
    });
  }
});

describe('shared handshake list (host-tests/conformance/handshakes.rs) on the Node server', () => {
  const cases = loadCases('--handshakes');
  let wss;
  before(async () => ({ wss } = await ourEchoServer({ perMessageDeflate: true })));
  after(() => closeServer(wss));

  test('the list is there', () => assert.ok(cases.length >= 20, `${cases.length} cases`));

  for (const c of cases) {
    test(c.name, async () => {
      const head = await responseHead(wss.address().port, c.request);
      const lines = head.toLowerCase().split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      assert.ok(c.status.includes(status), `status ${status}, want one of ${c.status}\n${head}`);
      if (c.has !== null) assert.ok(lines.slice(1).some((l) => l.trimEnd() === c.has), `no \`${c.has}\` line\n${head}`);
      if (c.lacks !== null) assert.ok(!lines.slice(1).some((l) => l.split(':')[0] === c.lacks), `carries ${c.lacks}\n${head}`);
    });
  }
});
