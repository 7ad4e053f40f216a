// The low-level Codec: a client and a server codec talking through bytes, no sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Codec } from '../index.mjs';

test('client and server codecs: handshake, messages, ping, close', () => {
  const client = new Codec({ client: true, handshake: true });
  const server = new Codec({ handshake: true });
  client.request('example.com', '/chat', { protocols: ['v1'], perMessageDeflate: true });
  const request = client.takeOutput();
  const accepted = server.acceptUpgrade(request, { perMessageDeflate: true });
  assert.equal(accepted.done, true);
  assert.equal(accepted.path, '/chat');
  assert.equal(accepted.protocol, 'v1');
  assert.match(accepted.extensions, /^permessage-deflate/);
  const response = server.takeOutput();
  // The server's first frames may arrive in the same chunk as its response.
  const chunk = Buffer.concat([response, server.send('early'), server.send('hi')]);
  const r = client.response(chunk);
  assert.equal(r.done, true);
  assert.equal(r.protocol, 'v1');
  const early = client.receive(chunk.subarray(r.used));
  assert.deepEqual(early.events.map((e) => [e.type, e.data.toString()]), [['text', 'early'], ['text', 'hi']]);

  const big = 'z'.repeat(5000);
  const wire = Buffer.concat([client.send(big), client.ping('p'), client.send(Buffer.from([1, 2, 3]))]);
  assert.ok(wire.length < 200, 'compressed');
  const got = server.receive(wire);
  assert.equal(got.error, null);
  assert.deepEqual(got.events.map((e) => e.type), ['text', 'ping', 'binary']);
  assert.equal(got.events[0].data.toString(), big);
  const pong = client.receive(got.output);
  assert.deepEqual(pong.events.map((e) => [e.type, e.data.toString()]), [['pong', 'p']]);

  const closing = server.receive(Buffer.concat([client.send('last'), client.close(4000, 'bye')]));
  assert.deepEqual(closing.events.map((e) => e.type), ['text', 'close']);
  assert.deepEqual(closing.events[1], { type: 'close', code: 4000, reason: 'bye' });
  assert.equal(closing.output, null, 'the answer to the close is held');
  assert.equal(server.finished, false);
  const answer = Buffer.concat([server.send('reply to last'), server.replyClose()]);
  assert.equal(server.finished, true);
  const echoed = client.receive(answer);
  assert.equal(echoed.events.shift().data.toString(), 'reply to last');
  assert.deepEqual(echoed.events, [{ type: 'close', code: 4000, reason: '' }]);
  assert.equal(client.finished, true);
});

test('violations report core close codes; bad close codes are refused', () => {
  const server = new Codec();
  const r = server.receive(Buffer.from([0x81, 0x02, 0x68, 0x69])); // unmasked
  assert.equal(r.error.code, 1002);
  assert.equal(r.error.kind, 'UnmaskedFrame');
  assert.equal(r.output, null, 'the close frame is held until replyClose()');
  const close = server.replyClose();
  assert.equal(close[0], 0x88);
  assert.equal(close.readUInt16BE(2), 1002);
  assert.equal(Codec.closeCodeFor(Buffer.from([0x81, 0x02, 0x68, 0x69])), 1002);
  assert.throws(() => new Codec().close(1005, ''), /1005/);
});

test('a bad upgrade request gets core rejection bytes', () => {
  const server = new Codec({ handshake: true });
  const r = server.acceptUpgrade(Buffer.from('POST / HTTP/1.1\r\nHost: x\r\n\r\n'));
  assert.equal(r.done, false);
  assert.equal(r.status, 405);
  assert.match(server.takeOutput().toString(), /^HTTP\/1\.1 405 /);
});
