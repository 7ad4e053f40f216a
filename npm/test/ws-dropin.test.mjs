// The ws 8 behaviours the package copies (issue 17): request options over http.request,
// TLS options, redirects, handshake events, Blob, binaryType, close() without a code,
// createWebSocketStream, ws's err.code values. Peers are ws's own classes where it helps.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { WebSocketServer as WsServer } from 'ws';
import WebSocket, { WebSocketServer, createWebSocketStream } from '../index.mjs';

async function wsPeer(options = {}) {
  const wss = new WsServer({ port: 0, ...options });
  await once(wss, 'listening');
  return { wss, url: `ws://127.0.0.1:${wss.address().port}` };
}

/** Every 'message' of `ws`, in order: `next()` resolves with [data, isBinary]. */
function inbox(ws) {
  const got = [];
  const waiting = [];
  ws.on('message', (...m) => (waiting.length ? waiting.shift()(m) : got.push(m)));
  return { next: () => (got.length ? Promise.resolve(got.shift()) : new Promise((r) => waiting.push(r))) };
}

function closeWss(wss) {
  for (const c of wss.clients) c.terminate();
  return new Promise((resolve) => wss.close(() => resolve()));
}

describe('client request options (http.request)', () => {
  test('headers, origin and URL userinfo reach the server', async () => {
    const { wss, url } = await wsPeer();
    const seen = once(wss, 'connection');
    const ws = new WebSocket(url.replace('ws://', 'ws://user:secret@'), { headers: { 'X-Foo': 'bar' }, origin: 'https://example.com' });
    ws.on('error', () => {});
    const [, req] = await seen;
    assert.equal(req.headers['x-foo'], 'bar');
    assert.equal(req.headers.origin, 'https://example.com');
    assert.equal(req.headers.authorization, `Basic ${Buffer.from('user:secret').toString('base64')}`);
    ws.terminate();
    await closeWss(wss);
  });

  test('an agent carries the connection', async () => {
    const { wss, url } = await wsPeer();
    let used = 0;
    const agent = new http.Agent();
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (...args) => {
      used++;
      return create(...args);
    };
    const ws = new WebSocket(url, { agent });
    await once(ws, 'open');
    assert.equal(used, 1);
    ws.close();
    await once(ws, 'close');
    await closeWss(wss);
  });

  test('TLS options at the top level: a self-signed server is refused, then trusted with ca', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lowbit-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
    const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (peer) => peer.on('message', (m) => peer.send(m)));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `wss://localhost:${server.address().port}`;

    const refused = new WebSocket(url);
    const [err] = await once(refused, 'error');
    assert.match(err.code, /SELF_SIGNED|UNABLE_TO_VERIFY/);

    const ws = new WebSocket(url, { ca: fs.readFileSync(cert) });
    await once(ws, 'open');
    ws.send('over tls');
    const [m] = await once(ws, 'message');
    assert.equal(m.toString(), 'over tls');
    ws.close();
    await once(ws, 'close');
    await new Promise((resolve) => wss.close(resolve));
    server.close();
    fs.rmSync(dir, { recursive: true });
  });

  test('followRedirects: the redirect is followed and announced; off, it is an unexpected response', async () => {
    const { wss, url } = await wsPeer();
    const server = http.createServer((req, res) => {
      res.writeHead(302, { Location: `${url}/landed` });
      res.end();
    });
    server.on('upgrade', (req, socket) => {
      socket.end(`HTTP/1.1 302 Found\r\nLocation: ${url}/landed\r\nContent-Length: 0\r\n\r\n`);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const start = `ws://127.0.0.1:${server.address().port}/start`;

    const ws = new WebSocket(start, { followRedirects: true });
    const redirected = once(ws, 'redirect');
    const [, req] = await once(wss, 'connection');
    assert.equal(req.url, '/landed');
    assert.equal((await redirected)[0], `${url}/landed`);
    await once(ws, 'open');
    ws.terminate();

    const plain = new WebSocket(start);
    const [, res] = await once(plain, 'unexpected-response');
    assert.equal(res.statusCode, 302);
    const failed = once(plain, 'error');
    plain.terminate();
    const [err] = await failed;
    assert.match(err.message, /closed before the connection was established/);
    server.close();
    await closeWss(wss);
  });

  test("'unexpected-response' absent: 'error' with ws's message, then 'close' 1006", async () => {
    const server = http.createServer();
    server.on('upgrade', (req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const ws = new WebSocket(`ws://127.0.0.1:${server.address().port}`);
    const closed = new Promise((resolve) => ws.on('close', (...a) => resolve(a)));
    const [err] = await once(ws, 'error');
    assert.equal(err.message, 'Unexpected server response: 403');
    const [code] = await closed;
    assert.equal(code, 1006);
    server.close();
  });
});

describe('handshake events and checks', () => {
  test("'upgrade' on the client, 'headers' on the server", async () => {
    const wss = new WebSocketServer({ port: 0 });
    await once(wss, 'listening');
    wss.on('headers', (headers) => headers.push('X-Extra: yes'));
    const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}`);
    const open = once(ws, 'open'); // emitted right after 'upgrade'
    const [res] = await once(ws, 'upgrade');
    assert.equal(res.headers['x-extra'], 'yes');
    await open;
    ws.close();
    await once(ws, 'close');
    await new Promise((resolve) => wss.close(resolve));
  });

  test('a server that picks no subprotocol when some were offered is refused', async () => {
    const { wss, url } = await wsPeer({ handleProtocols: () => false });
    const ws = new WebSocket(url, ['a', 'b']);
    const [err] = await once(ws, 'error');
    assert.equal(err.message, 'Server sent no subprotocol');
    await closeWss(wss);
  });

  test('a second close(cb) gets an error; a second handleUpgrade on a socket throws', async () => {
    const wss = new WebSocketServer({ noServer: true });
    const server = http.createServer();
    let thrown = null;
    server.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, () => {});
      try {
        wss.handleUpgrade(req, socket, head, () => {});
      } catch (e) {
        thrown = e;
      }
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const ws = new WebSocket(`ws://127.0.0.1:${server.address().port}`);
    await once(ws, 'open');
    assert.match(thrown.message, /more than once with the same socket/);
    ws.terminate();
    await once(ws, 'close');
    await new Promise((resolve) => wss.close(resolve));
    const second = await new Promise((resolve) => wss.close(resolve));
    assert.equal(second.message, 'The server is not running');
    server.close();
  });
});

describe('messages', () => {
  test('Blob both ways, binaryType blob / arraybuffer / fragments, text stays text', async () => {
    const { wss, url } = await wsPeer();
    wss.on('connection', (peer) => peer.on('message', (m, isBinary) => peer.send(m, { binary: isBinary })));
    const ws = new WebSocket(url);
    const box = inbox(ws);
    await once(ws, 'open');
    ws.send(new Blob(['blob-bytes']));
    ws.send('after the blob');
    let [m, isBinary] = await box.next();
    assert.equal(isBinary, true);
    assert.equal(m.toString(), 'blob-bytes');
    [m, isBinary] = await box.next();
    assert.equal(isBinary, false);
    assert.equal(m.toString(), 'after the blob', 'order kept behind the Blob');

    ws.binaryType = 'blob';
    ws.send(Buffer.from('b'));
    [m] = await box.next();
    assert.ok(m instanceof Blob);
    assert.equal(await m.text(), 'b');

    ws.binaryType = 'arraybuffer';
    const textEvent = new Promise((resolve) => ws.addEventListener('message', resolve, { once: true }));
    ws.send('text');
    assert.equal((await textEvent).data, 'text', 'text is a string whatever binaryType');
    await box.next();
    ws.send(Buffer.from([1, 2]));
    [m] = await box.next();
    assert.ok(m instanceof ArrayBuffer);

    ws.binaryType = 'fragments';
    ws.send(Buffer.from([3]));
    [m] = await box.next();
    assert.ok(Array.isArray(m) && Buffer.concat(m).equals(Buffer.from([3])));

    assert.throws(() => ws.send({}), TypeError);
    ws.close();
    await once(ws, 'close');
    await closeWss(wss);
  });

  test('close() without a code: an empty close frame, both sides report 1005; the reason is echoed', async () => {
    const { wss, url } = await wsPeer();
    const peerClosed = new Promise((resolve) => wss.on('connection', (peer) => peer.on('close', (c) => resolve(c))));
    const ws = new WebSocket(url);
    await once(ws, 'open');
    ws.close();
    assert.equal((await once(ws, 'close'))[0], 1005);
    assert.equal(await peerClosed, 1005);

    const ws2 = new WebSocket(url);
    wss.once('connection', (peer) => peer.close(4001, 'why'));
    const [code, reason] = await once(ws2, 'close');
    assert.deepEqual([code, reason.toString()], [4001, 'why']);
    await closeWss(wss);
  });

  test('addEventListener adds a listener once', async () => {
    const ws = new WebSocket('ws://127.0.0.1:1');
    ws.on('error', () => {});
    const f = () => {};
    ws.addEventListener('message', f);
    ws.addEventListener('message', f);
    assert.equal(ws.listenerCount('message'), 1);
    ws.terminate();
  });

  test('bufferedAmount counts sends after close, and their callbacks fail', async () => {
    const { wss, url } = await wsPeer();
    const ws = new WebSocket(url);
    await once(ws, 'open');
    ws.terminate();
    await once(ws, 'close');
    const err = await new Promise((resolve) => ws.send('abc', resolve));
    assert.match(err.message, /not open/);
    assert.equal(ws.bufferedAmount, 3);
    await closeWss(wss);
  });
});

describe('createWebSocketStream', () => {
  test('carries messages both ways, with backpressure on the readable side', async () => {
    const { wss, url } = await wsPeer();
    const N = 64;
    wss.on('connection', (peer) => {
      for (let i = 0; i < N; i++) peer.send(Buffer.alloc(16 * 1024, i));
      peer.on('message', (m) => peer.send(`echo:${m}`));
    });
    const ws = new WebSocket(url);
    const duplex = createWebSocketStream(ws, { highWaterMark: 1024 });
    await once(ws, 'open');
    // Nobody reads yet: the stream fills and pauses the WebSocket.
    while (!ws.isPaused) await new Promise((r) => setTimeout(r, 5));
    assert.ok(duplex.readableLength >= 1024);
    let got = 0;
    for await (const chunk of duplex) {
      got += chunk.length;
      if (got === N * 16 * 1024) break;
    }
    assert.equal(got, N * 16 * 1024);
    duplex.destroy();
    await closeWss(wss);
  });
});

describe("ws's err.code values", () => {
  // Raw frames from a server to our client, each one violation; the code ws reports for it.
  const cases = [
    [[0x83, 0x00], 'WS_ERR_INVALID_OPCODE', RangeError],
    [[0x80, 0x00], 'WS_ERR_INVALID_OPCODE', RangeError],
    [[0xc1, 0x00], 'WS_ERR_UNEXPECTED_RSV_1', RangeError],
    [[0xa1, 0x00], 'WS_ERR_UNEXPECTED_RSV_2_3', RangeError],
    [[0x09, 0x00], 'WS_ERR_EXPECTED_FIN', RangeError],
    [[0x89, 0x7e, 0x00, 0x7e], 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', RangeError],
    [[0x81, 0x80, 0, 0, 0, 0], 'WS_ERR_UNEXPECTED_MASK', RangeError],
    [[0x81, 0x02, 0xc3, 0x28], 'WS_ERR_INVALID_UTF8', Error],
    [[0x88, 0x02, 0x03, 0xec], 'WS_ERR_INVALID_CLOSE_CODE', RangeError],
    [[0x82, 0x7e, 0x04, 0x00], 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', RangeError],
  ];
  for (const [bytes, code, Ctor] of cases) {
    test(`${code} for ${Buffer.from(bytes).toString('hex')}`, async () => {
      const wss = new WebSocketServer({ port: 0 });
      await once(wss, 'listening');
      wss.on('connection', (peer) => peer._socket.write(Buffer.from(bytes)));
      const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}`, { maxPayload: 512 });
      const closed = new Promise((resolve) => ws.on('close', (...a) => resolve(a)));
      const [err] = await once(ws, 'error');
      assert.equal(err.code, code);
      assert.ok(err instanceof Ctor);
      await closed;
      await new Promise((resolve) => wss.close(resolve));
    });
  }

  test('WS_ERR_EXPECTED_MASK: an unmasked client frame at our server', async () => {
    const wss = new WebSocketServer({ port: 0 });
    await once(wss, 'listening');
    const errored = new Promise((resolve) => wss.on('connection', (peer) => peer.on('error', resolve)));
    const sock = net.connect(wss.address().port, '127.0.0.1');
    await once(sock, 'connect');
    sock.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
      + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await once(sock, 'data');
    sock.write(Buffer.from([0x81, 0x00]));
    assert.equal((await errored).code, 'WS_ERR_EXPECTED_MASK');
    sock.destroy();
    await new Promise((resolve) => wss.close(resolve));
  });
});
