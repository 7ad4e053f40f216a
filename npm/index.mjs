// ESM entry: the CommonJS build re-exported.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('./index.js');

export const { WebSocketServer, createWebSocketStream, Codec } = WebSocket;
export { WebSocket };
export default WebSocket;
