import { WebSocketServer, WebSocket } from '@lowbit/websockets';

const wss = new WebSocketServer({ port: 8080, perMessageDeflate: true });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

const ws = new WebSocket('ws://127.0.0.1:8080/');
ws.on('open', () => ws.send('hello'));
ws.on('message', (data) => { console.log(data.toString()); ws.close(1000, 'bye'); });
