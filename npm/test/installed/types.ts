// Type-checked with `tsc --noEmit --strict` against the installed package's index.d.ts: the
// ws-style API as a TypeScript user writes it.
import WebSocket, { WebSocketServer, Codec } from "@lowbit/websockets";

const wss: WebSocketServer = new WebSocketServer({ port: 0, perMessageDeflate: true });
wss.on("connection", (ws: WebSocket) => {
  ws.on("message", (data, isBinary: boolean) => ws.send(data, { binary: isBinary }));
});
const ws = new WebSocket("ws://127.0.0.1:8080/", { perMessageDeflate: true });
ws.on("open", () => ws.send("hello"));
ws.on("close", (code: number, reason: Buffer) => console.log(code, reason.toString()));
const state: number = ws.readyState;
const codec = new Codec({ client: true });
void [state, codec];
