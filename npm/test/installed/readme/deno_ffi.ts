import { connect, serve } from "@lowbit/websockets/deno";

serve({ port: 9001, perMessageDeflate: true }, (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
const ws = await connect("ws://127.0.0.1:9001/", { perMessageDeflate: true });
ws.on("message", (data) => console.log(new TextDecoder().decode(data)));
await ws.send("hello");
