// The exchange of exchange.cjs through the package's ESM entry.
import { WebSocket, WebSocketServer } from '@lowbit/websockets';
import lib from './exchange.cjs';

await lib.exchange(WebSocket, WebSocketServer, 'ESM');
