'use strict';
// @lowbit/websockets: a ws-compatible WebSocket API for Node.js (and Deno via npm:), with the
// protocol in Rust (lowbit websockets core) through a Node-API addon.

const { WebSocket } = require('./lib/websocket');
const { WebSocketServer } = require('./lib/server');
const { createWebSocketStream } = require('./lib/stream');
const { Codec } = require('./lib/codec');

WebSocket.WebSocket = WebSocket;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.Server = WebSocketServer;
WebSocket.createWebSocketStream = createWebSocketStream;
WebSocket.Codec = Codec;

module.exports = WebSocket;
