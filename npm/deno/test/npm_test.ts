// The npm package (@lowbit/websockets, Node-API addon) running under Deno through an npm:
// specifier (here it resolves to this checkout: the package.json beside deno.json is it):
// our server with Deno's built-in WebSocket client, and our client with it.
import { assertEquals } from "./assert.ts";
import { WebSocket as LbWebSocket, WebSocketServer } from "npm:@lowbit/websockets";

Deno.test("npm package under Deno: server with Deno's WebSocket client, deflate on", async () => {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: true });
  await new Promise((resolve) => wss.once("listening", resolve));
  wss.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
  const port = (wss.address() as { port: number }).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((resolve) => ws.addEventListener("open", resolve, { once: true }));
  for (const text of ["hello", "x".repeat(70000)]) {
    ws.send(text);
    const m = await new Promise<MessageEvent>((resolve) => ws.addEventListener("message", resolve, { once: true }));
    assertEquals(m.data, text);
  }
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve, { once: true }));
  ws.close(4005, "bye");
  assertEquals((await closed).code, 4005);

  // Our npm client against the same server, negotiating permessage-deflate.
  const c = new LbWebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((resolve) => c.once("open", resolve));
  assertEquals(c.extensions.startsWith("permessage-deflate"), true);
  c.send("y".repeat(5000));
  const [data] = await new Promise<[Uint8Array, boolean]>((resolve) => c.once("message", (d, b) => resolve([d, b])));
  assertEquals(data.length, 5000);
  const done = new Promise<number>((resolve) => c.once("close", (code) => resolve(code)));
  c.close(1000);
  assertEquals(await done, 1000);
  await new Promise((resolve) => wss.close(resolve));
});
