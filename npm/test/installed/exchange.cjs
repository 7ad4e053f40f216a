'use strict';
// Run inside a project that installed the packed tarballs (`cargo xtask test`, step "npm
// packages as users install them"): a server and a client of the installed package exchange a
// compressible message with permessage-deflate and close. `exchange` also serves the ESM and
// Deno entry points (exchange.mjs, exchange_deno.ts), which hand it their own imports.

const assert = require('node:assert');

/** One round trip with deflate on both sides; resolves to what the wire carried. */
function exchange(WebSocket, WebSocketServer, label) {
  const message = 'permessage-deflate makes repeated text small. '.repeat(1500);
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true }, () => {
      const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`, { perMessageDeflate: true });
      ws.on('error', reject);
      ws.on('open', () => {
        assert.match(ws.extensions, /permessage-deflate/, 'the server accepted the deflate offer');
        ws.send(message);
      });
      ws.on('message', (data, isBinary) => {
        assert.strictEqual(isBinary, false);
        assert.strictEqual(data.toString(), message);
        ws.close(1000, 'done');
      });
      ws.on('close', (code) => {
        assert.strictEqual(code, 1000);
        wss.close();
        resolve({ length: message.length, onWire: serverSocketBytes });
      });
    });
    let serverSocketBytes = 0;
    wss.on('connection', (ws, req) => {
      ws.on('message', (data, isBinary) => {
        // What the client's frame took on the wire: the upgrade request is already counted.
        serverSocketBytes = req.socket.bytesRead;
        ws.send(data, { binary: isBinary });
      });
    });
    wss.on('error', reject);
  }).then(({ length, onWire }) => {
    // The message crossed compressed: far fewer bytes than its length reached the server.
    assert.ok(onWire > 0 && onWire < length / 10, `${onWire} bytes on the wire for ${length}`);
    console.log(`${label}: ${length} B message echoed with permessage-deflate, ${onWire} B read by the server (upgrade request included)`);
  });
}

module.exports = { exchange };

if (require.main === module) {
  const WebSocket = require('@lowbit/websockets');
  const label = process.env.NAPI_RS_FORCE_WASI ? 'CommonJS on the WebAssembly fallback' : 'CommonJS';
  exchange(WebSocket, WebSocket.WebSocketServer, label).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
