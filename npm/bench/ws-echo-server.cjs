// ws 8 echo server for the benchmark (bufferutil and utf-8-validate installed: ws uses them).
// `node bench/ws-echo-server.cjs --port PORT [--deflate]`
const { WebSocketServer } = require('ws');
const args = process.argv.slice(2);
const port = Number(args[args.indexOf('--port') + 1]);
const deflate = args.includes('--deflate');
const wss = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: deflate ? { threshold: 1024 } : false, maxPayload: 64 * 1024 * 1024 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`ws echo server on ${port}`));
