// The exchange of exchange.cjs under Deno, with the package loaded through `npm:`.
import { WebSocket, WebSocketServer } from "npm:@lowbit/websockets";
import lib from "./exchange.cjs";

await lib.exchange(WebSocket, WebSocketServer, "Deno (npm:)");
