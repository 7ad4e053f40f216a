// Interop over loopback: our server with ws 8 clients, our client with a ws 8 server, with and
// without permessage-deflate.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WsWebSocket from 'ws';
import { WebSocket } from '../index.mjs';
import { ourEchoServer, wsEchoServer, closeServer, opened, nextMessage, closed, payload, text } from './helpers.mjs';

const SIZES = [0, 20, 1024, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024];

for (const deflate of [false, true]) {
  const label = deflate ? 'with deflate' : 'without deflate';

  describe(`our server, ws client, ${label}`, () => {
    let server;
    before(async () => { server = await ourEchoServer({ perMessageDeflate: deflate, maxPayload: 32 * 1024 * 1024 }); });
    after(() => closeServer(server.wss));

    test('negotiates permessage-deflate as asked', async () => {
      const ws = await opened(new WsWebSocket(server.url, { perMessageDeflate: true }));
      assert.equal(Object.keys(ws.extensions).length > 0 ? 'permessage-deflate' : '', deflate ? 'permessage-deflate' : '');
      ws.close();
      await closed(ws);
    });

    test('echoes text and binary up to 16 MiB', async () => {
      const ws = await opened(new WsWebSocket(server.url, { maxPayload: 32 * 1024 * 1024 }));
      for (const size of SIZES) {
        const bin = payload(size, size + 1);
        ws.send(bin);
        const [d1, b1] = await nextMessage(ws);
        assert.equal(b1, true);
        assert.ok(bin.equals(d1), `binary ${size}`);
        const t = text(size);
        ws.send(t);
        const [d2, b2] = await nextMessage(ws);
        assert.equal(b2, false);
        assert.equal(d2.toString(), t, `text ${size}`);
      }
      const serverSaw = new Promise((resolve) => {
        for (const peer of server.wss.clients) peer.once('close', (code, reason) => resolve([code, reason.toString()]));
      });
      ws.close(1000, 'done');
      // The answering side echoes code and reason, as ws does.
      assert.deepEqual(await closed(ws), [1000, 'done']);
      assert.deepEqual(await serverSaw, [1000, 'done']);
    });

    test('reassembles fragmented sends (fin: false)', async () => {
      const ws = await opened(new WsWebSocket(server.url));
      ws.send('hel', { fin: false });
      ws.send('lo ', { fin: false });
      ws.send('world', { fin: true });
      const [d, isBinary] = await nextMessage(ws);
      assert.equal(isBinary, false);
      assert.equal(d.toString(), 'hello world');
      ws.close();
      await closed(ws);
    });

    test('answers pings and reports pongs', async () => {
      const ws = await opened(new WsWebSocket(server.url));
      const pong = new Promise((resolve) => ws.once('pong', resolve));
      ws.ping(Buffer.from('are you there'));
      assert.equal((await pong).toString(), 'are you there');
      ws.close();
      await closed(ws);
    });

    test('server-initiated close carries code and reason', async () => {
      const got = new Promise((resolve) => server.wss.once('connection', (ws) => {
        ws.once('message', () => ws.close(4321, 'server says bye'));
        ws.once('close', (code, reason) => resolve([code, reason.toString()]));
      }));
      const ws = await opened(new WsWebSocket(server.url));
      ws.send('x');
      assert.deepEqual(await closed(ws), [4321, 'server says bye']);
      assert.deepEqual(await got, [4321, 'server says bye']);
    });

    test('a message over maxPayload closes with 1009', async () => {
      const small = await ourEchoServer({ perMessageDeflate: deflate, maxPayload: 1000 });
      const serverSide = new Promise((resolve) => small.wss.once('connection', (ws) => {
        ws.on('error', (e) => resolve(e));
      }));
      const ws = await opened(new WsWebSocket(small.url));
      ws.on('error', () => {});
      ws.send(text(1001));
      const [code] = await closed(ws);
      assert.equal(code, 1009);
      const err = await serverSide;
      assert.equal(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
      await closeServer(small.wss);
    });
  });

  describe(`our client, ws server, ${label}`, () => {
    let server;
    before(async () => { server = await wsEchoServer({ perMessageDeflate: deflate }); });
    after(() => closeServer(server.wss));

    test('send({ fin: false }) continues one message as ws does (core\'s Session.send_part)', async () => {
      const ws = await opened(new WebSocket(server.url, { perMessageDeflate: true }));
      ws.send('ab', { fin: false });
      ws.ping('between fragments');
      ws.send(Buffer.from('cd'), { fin: false, binary: true }); // the message stays text
      ws.send('ef');
      const [data, isBinary] = await nextMessage(ws);
      assert.equal(isBinary, false);
      assert.equal(data.toString(), 'abcdef');
      ws.close();
      await closed(ws);
    });

    test('negotiates and echoes text and binary up to 16 MiB', async () => {
      const ws = await opened(new WebSocket(server.url, { perMessageDeflate: true, maxPayload: 32 * 1024 * 1024 }));
      assert.equal(ws.extensions.startsWith('permessage-deflate'), deflate);
      for (const size of SIZES) {
        const bin = payload(size, size + 7);
        ws.send(bin);
        const [d1, b1] = await nextMessage(ws);
        assert.equal(b1, true);
        assert.ok(bin.equals(d1), `binary ${size}`);
        const t = text(size);
        ws.send(t);
        const [d2, b2] = await nextMessage(ws);
        assert.equal(b2, false);
        assert.equal(d2.toString(), t, `text ${size}`);
      }
      ws.close(4000, 'client done');
      assert.deepEqual(await closed(ws), [4000, 'client done']);
    });

    test('fragmented sends, ping/pong, send callbacks', async () => {
      const ws = await opened(new WebSocket(server.url));
      const sent = new Promise((resolve, reject) => ws.send(Buffer.from([1, 2]), { fin: false }, (e) => (e ? reject(e) : resolve())));
      ws.send(Buffer.from([3]), { fin: true });
      await sent;
      const [d, isBinary] = await nextMessage(ws);
      assert.equal(isBinary, true);
      assert.deepEqual([...d], [1, 2, 3]);
      const pong = new Promise((resolve) => ws.once('pong', resolve));
      ws.ping('p1');
      assert.equal((await pong).toString(), 'p1');
      ws.close(); // no code: an empty close frame, answered empty (1005), as in ws
      assert.equal((await closed(ws))[0], 1005);
    });

    test('ws server close code and reason reach our client', async () => {
      server.wss.once('connection', (peer) => peer.once('message', () => peer.close(4100, 'from ws')));
      const ws = await opened(new WebSocket(server.url));
      const done = closed(ws);
      ws.send('trigger');
      assert.deepEqual(await done, [4100, 'from ws']);
      assert.equal(ws.readyState, WebSocket.CLOSED);
    });

    test('a message over our maxPayload closes with 1009', async () => {
      const ws = await opened(new WebSocket(server.url, { maxPayload: 1000 }));
      const err = new Promise((resolve) => ws.once('error', resolve));
      ws.send(Buffer.alloc(2000, 1)); // echoed back: too big for us
      assert.equal((await err).code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
      // 1009 goes out; as in ws, the failing side itself reports 1006.
      const [code] = await closed(ws);
      assert.equal(code, 1006);
    });
  });
}

describe('our client with our server', () => {
  test('subprotocols via handleProtocols, path, addEventListener', async () => {
    const { wss, url } = await ourEchoServer({
      path: '/chat',
      handleProtocols: (protocols) => (protocols.has('b') ? 'b' : false),
    });
    const ws = new WebSocket(`${url}/chat`, ['a', 'b']);
    const events = [];
    ws.addEventListener('open', () => events.push('open'));
    ws.onmessage = (e) => events.push(`message:${e.data}`);
    await opened(ws);
    assert.equal(ws.protocol, 'b');
    ws.send('hi');
    await nextMessage(ws);
    ws.close(1000);
    await closed(ws);
    assert.deepEqual(events, ['open', 'message:hi']);
    await closeServer(wss);
  });

  test("without handleProtocols the subprotocol is ws's default: the client's first offer", async () => {
    // Our server's default is core's named policy (SubprotocolPolicy::ClientFirst); ws 8 itself
    // is the reference it must match.
    for (const server of [await ourEchoServer(), await wsEchoServer()]) {
      for (const ws of [new WsWebSocket(server.url, ['b', 'a']), new WebSocket(server.url, ['b', 'a'])]) {
        await opened(ws);
        assert.equal(ws.protocol, 'b');
        ws.close();
        await closed(ws);
      }
      await closeServer(server.wss);
    }
  });

  test('wrong path and bad requests are refused', async () => {
    const { wss, url } = await ourEchoServer({ path: '/only' });
    const ws = new WebSocket(`${url}/other`);
    const err = await new Promise((resolve) => ws.once('error', resolve));
    assert.match(err.message, /400/);
    // A request without Sec-WebSocket-Key: core refuses it with 400.
    const net = await import('node:net');
    const sock = net.connect(wss.address().port, '127.0.0.1');
    sock.write('GET /only HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n');
    let answer = '';
    sock.on('data', (d) => (answer += d));
    await new Promise((resolve) => sock.on('close', resolve));
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /Sec-WebSocket-Key/);
    await closeServer(wss);
  });

  test('noServer + handleUpgrade on a shared http server', async () => {
    const http = await import('node:http');
    const { WebSocketServer } = await import('../index.mjs');
    const server = http.createServer();
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
        wss.emit('connection', ws, req);
      });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const ws = await opened(new WebSocket(`ws://127.0.0.1:${server.address().port}/`));
    ws.send('via handleUpgrade');
    assert.equal((await nextMessage(ws))[0].toString(), 'via handleUpgrade');
    assert.equal(wss.clients.size, 1);
    ws.close();
    await closed(ws);
    await new Promise((resolve) => server.close(resolve));
  });
});

describe('batched events', () => {
  test('several messages in one chunk, each answered from its listener, arrive intact', async () => {
    const { wss, url } = await ourEchoServer();
    const net = await import('node:net');
    const { Codec } = await import('../index.mjs');
    const client = new Codec({ client: true, handshake: true });
    client.request('127.0.0.1', '/');
    const sock = net.connect(wss.address().port, '127.0.0.1');
    sock.write(client.takeOutput());
    const words = ['alpha', 'beta', 'gamma', 'delta', 'x'.repeat(3000), 'epsilon'];
    let head = Buffer.alloc(0);
    let upgraded = false;
    const got = [];
    await new Promise((resolve) => {
      sock.on('data', (d) => {
        let chunk = d;
        if (!upgraded) {
          head = Buffer.concat([head, d]);
          const r = client.response(head);
          if (!r.done) return;
          upgraded = true;
          chunk = head.subarray(r.used);
          // All messages and the close in one write: one chunk on the server.
          sock.write(Buffer.concat([...words.map((w) => client.send(w)), client.close(1000, '')]));
        }
        for (const e of client.receive(chunk).events) {
          if (e.type === 'text') got.push(e.data.toString());
          if (e.type === 'close') resolve();
        }
      });
    });
    assert.deepEqual(got, words, 'every echo, in order, before the close');
    sock.destroy();
    await closeServer(wss);
  });
});
